"""benchmarks/start_repeats.py: how many of a race's relaxed starts repeat an earlier
start's minimum, read from a run database written here with known energies."""

import json
import sys
from pathlib import Path

import ase.db
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import start_repeats  # noqa: E402


def write(con, origin, energy_per_atom, steps, step=0, status="relaxed"):
    atoms = bulk("NaCl", "rocksalt", a=5.6)
    atoms.calc = SinglePointCalculator(atoms, energy=energy_per_atom * len(atoms))
    con.write(atoms, origin=origin, step=step, status=status,
              data={"tiers": [{"name": "chgnet", "steps": steps}]})


def race_folder(tmp_path):
    db_path = tmp_path / "race" / "runs" / "nacl_s0" / "ase-fuse" / "fuse.db"
    db_path.parent.mkdir(parents=True)
    with ase.db.connect(str(db_path)) as con:
        write(con, "gnoa", -3.556, 40)
        write(con, "gnoa", -3.5565, 10)        # within 1 meV/atom: a repeat
        write(con, "symmetric", -3.667, 30)
        write(con, "gnoa", -3.6672, 20)        # repeats the symmetric start only
        write(con, "symmetric", -3.212, 50)
        write(con, "gnoa", -3.0, 99, step=3)    # a hop: not a start
        write(con, "gnoa", -3.556, 99, status="queued")
    return tmp_path / "race"


def test_repeats_are_counted_per_origin_in_row_order(tmp_path):
    db = next(race_folder(tmp_path).glob("runs/*/*/fuse.db"))
    starts = start_repeats.starts_of(db)
    assert [s[0] for s in starts] == ["gnoa", "gnoa", "symmetric", "gnoa", "symmetric"]
    counts = start_repeats.repeats(starts)
    assert counts["gnoa"] == dict(starts=3, same_origin=1, any_origin=2, steps=70,
                                  repeat_steps=30)
    assert counts["symmetric"] == dict(starts=2, same_origin=0, any_origin=0, steps=80,
                                       repeat_steps=0)
    tight = start_repeats.repeats(starts, tol=1e-4)
    assert tight["gnoa"]["any_origin"] == 0


def test_main_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "repeats.json"
    assert start_repeats.main([str(race_folder(tmp_path)), "--out", str(out)]) == 0
    assert "| gnoa | 3 | 1 | 2 | 67% | 43% |" in capsys.readouterr().out
    total = json.loads(out.read_text())["summary"]["total"]
    assert total["symmetric"]["starts"] == 2


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert start_repeats.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert start_repeats.main([str(race_folder(tmp_path)), "--tol", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
