"""benchmarks/proxy_share.py: the proxy tier's share of a race's relaxation time,
read from run databases written here with known tier records."""

import json
import sys
from pathlib import Path

import ase.db
from ase.build import bulk

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import proxy_share  # noqa: E402


def tiers(proxy_s, ml_s, ml_steps, discarded):
    note = "discarded: volume x1.40 (bound 0.25)" if discarded else None
    return [{"name": "proxy", "wall_time": proxy_s, "steps": 10, "note": note},
            {"name": "chgnet", "wall_time": ml_s, "steps": ml_steps}]


def race_folder(tmp_path):
    db_path = tmp_path / "race" / "runs" / "nacl_s0" / "ase-fuse" / "fuse.db"
    db_path.parent.mkdir(parents=True)
    with ase.db.connect(str(db_path)) as con:
        con.write(bulk("NaCl", "rocksalt", a=5.6), data={"tiers": tiers(1.0, 9.0, 100, True)})
        con.write(bulk("NaCl", "rocksalt", a=5.7), data={"tiers": tiers(1.0, 4.0, 20, False)})
        con.write(bulk("NaCl", "rocksalt", a=5.8), data={"tiers": tiers(1.0, 4.0, 40, False)})
        con.write(bulk("NaCl", "rocksalt", a=5.9), data={"tiers": []})   # re-used: no tiers
    return tmp_path / "race"


def test_shares_and_steps_come_from_the_tier_records(tmp_path):
    numbers = proxy_share.share_of(next(race_folder(tmp_path).glob("runs/*/*/fuse.db")))
    assert numbers["relaxations"] == 3
    assert abs(numbers["discarded"] - 1 / 3) < 1e-12
    assert abs(numbers["proxy_share"] - 3 / 20) < 1e-12     # 3 s of 20
    assert abs(numbers["wasted_share"] - 1 / 20) < 1e-12    # the discarded one's 1 s
    assert numbers["ml_steps_after_kept"] == 30 and numbers["ml_steps_after_discarded"] == 100


def test_main_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "share.json"
    assert proxy_share.main([str(race_folder(tmp_path)), "--out", str(out)]) == 0
    assert "| nacl_s0 | 3 | 33% | 15.0% | 5.0% |" in capsys.readouterr().out
    runs = json.loads(out.read_text())["summary"]["runs"]
    assert [r["run"] for r in runs] == ["nacl_s0"]


def test_a_folder_without_runs_is_one_line_and_exit_2(tmp_path, capsys):
    assert proxy_share.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
