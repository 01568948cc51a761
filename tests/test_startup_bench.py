"""benchmarks/startup.py: the Wyckoff tables both ways, and the table row."""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import startup  # noqa: E402

pytest.importorskip("pyxtal")


def test_both_ways_build_the_same_wyckoff_tables():
    pyxtal_way, light_way = startup.child_space("pyxtal"), startup.child_space("light")
    assert pyxtal_way["positions"] == light_way["positions"] == 1730  # groups 2-230
    assert pyxtal_way["digest"] == light_way["digest"]
    assert pyxtal_way["seconds"] > 0 and light_way["seconds"] > 0


def test_row_shows_a_missing_first_result_as_a_dash():
    phases = dict.fromkeys(startup.PHASES, 1.0)
    phases["total"] = 5.0
    row = startup.row_text({"reference": "nacl", "seed": 0, "phases_s": phases,
                            "first_result_s": {"ase-fuse": 7.25, "airss": None}})
    assert row.startswith("| nacl | 0 | 7.25 | - | 1.00 |") and row.endswith("| 5.00 |")
    assert row.count("|") == startup.HEADER.splitlines()[0].count("|")
