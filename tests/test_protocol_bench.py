"""benchmarks/protocol.py: the relaxation protocols compared on the same starts.

The summary's basin comparison is tested on rows written here; the quick mode runs
the real script (proxy as the ML stage, NaCl, two starts) and checks its JSON.
"""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import protocol  # noqa: E402


def row(key, name, start, energy, steps, wall, hit=None, failed=None):
    return {"key": key, "protocol": name, "start": start, "energy_per_atom": energy,
            "ml_steps": steps, "wall_s": wall, "hit": hit, "failed": failed, "natoms": 2}


def test_summary_counts_other_basins_against_fire_and_time_ratios():
    rows = [row("x", "fire", 0, -1.000, 100, 10.0, hit="match"),
            row("x", "fire", 1, -2.000, 50, 5.0),
            row("x", "bfgs", 0, -1.010, 40, 4.0),            # 10 meV lower: other basin
            row("x", "bfgs", 1, -1.996, 30, 2.0),            # 4 meV higher: the same
            row("x", "lbfgs", 0, None, 0, 1.0, failed="guard"),
            row("x", "lbfgs", 1, -1.990, 60, 6.0)]           # 10 meV higher
    summary = protocol.summarize(rows)
    per = summary["references"]["x"]
    assert per["fire"]["hits"] == 1 and per["fire"]["ml_steps_mean"] == 75
    assert (per["bfgs"]["lower"], per["bfgs"]["higher"]) == (1, 0)
    assert (per["lbfgs"]["failed"], per["lbfgs"]["higher"], per["lbfgs"]["compared"]) \
        == (1, 1, 1)
    assert per["bfgs"]["time_ratio"] == pytest.approx(6.0 / 15.0)
    assert summary["totals"]["lbfgs"]["time_ratio"] == pytest.approx(7.0 / 15.0)


def test_every_protocol_names_a_known_optimiser():
    from ase_fuse.calculators.tiers import OPTIMIZERS
    for stages in protocol.PROTOCOLS.values():
        for optimizer, fmax, steps in stages:
            assert optimizer in OPTIMIZERS and fmax > 0 and steps > 0


def test_quick_mode_runs_and_writes_json(tmp_path, capsys):
    summary = protocol.main(["--quick", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "protocol.json").read_text())
    assert set(summary["references"]["nacl"]) == {"fire", "lbfgs"}
    assert len(data["records"]) == 4           # 2 starts x 2 protocols
    assert all(r["ml_steps"] is not None for r in data["records"] if not r["failed"])
    assert "| nacl | lbfgs |" in capsys.readouterr().out
