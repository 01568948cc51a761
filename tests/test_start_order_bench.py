"""benchmarks/start_order.py: orderings of the search's starts, scored offline.

The ordering rules are tested on structures with known space groups and energies;
the quick mode runs the real script (the proxy everywhere, NaCl) and checks its JSON.
"""

import json
import sys
from pathlib import Path

import numpy as np
from ase.build import bulk

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import start_order  # noqa: E402


def structures(groups):
    out = []
    for g in groups:
        atoms = bulk("Si")
        atoms.info["spacegroup"] = g
        out.append(atoms)
    return out


def test_orders_proxy_ml_and_one_per_space_group_first():
    starts = structures([221, 221, 225, 221, 216, 225])
    ml = np.array([-1.0, -3.0, np.nan, -2.0, -5.0, -4.0])
    got = start_order.orders(starts, ml, 5)
    assert got["proxy"] == [0, 1, 2, 3, 4]
    assert got["ml"] == [4, 5, 1, 3, 0]               # NaN left out; the 6th may enter
    assert got["sg"] == [0, 2, 4, 1, 3]               # 221, 225, 216 first


def test_first_hit_counts_time_up_to_and_including_it():
    rows = [{"wall_s": 2.0, "hit": None}, {"wall_s": 3.0, "hit": "match"},
            {"wall_s": 1.0, "hit": None}]
    assert start_order.first_hit([0, 1, 2], rows) == (2, 5.0)
    assert start_order.first_hit([2, 1], rows, extra_s=0.5) == (2, 4.5)
    assert start_order.first_hit([0, 2], rows) == (None, None)


def test_quick_mode_runs_and_writes_json(tmp_path):
    summary = start_order.main(["--quick", "--out", str(tmp_path)])
    assert [s["key"] for s in summary] == ["nacl"]
    data = json.loads((tmp_path / "start_order.json").read_text())
    rows = data["summary"]["rows"]
    assert len(rows) == summary[0]["candidates"] and 0 < len(rows) <= 6
    for name in start_order.ORDERS:
        assert summary[0][name]["hits"] <= 3
