"""benchmarks/step_cost.py: the step's cost outside the model, old path against new.

The quick mode relaxes rattled Cu with EMT both ways: the same relaxations (to
rounding), and the new path is the one the search uses once the script is done.
"""

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import step_cost  # noqa: E402


def test_quick_mode_relaxes_each_start_both_ways_and_restores_the_fast_path(tmp_path):
    from ase_fuse.calculators.guards import GuardedCalculator
    from ase_fuse.calculators.tiers import CachedFrechetCellFilter

    summary = step_cost.main(["--quick", "--n", "3", "--out", str(tmp_path)])
    cu = summary["Cu"]
    assert cu["starts"] == 3 and cu["plain_steps"] > 3 and cu["fast_steps"] > 3
    assert cu["max_energy_difference"] < 1e-6          # EMT: a short, tame relaxation
    assert cu["speedup"] > 0
    records = json.loads((tmp_path / "step_cost.json").read_text())["records"]
    assert sorted((r["start"], r["mode"]) for r in records) == \
        [(k, m) for k in range(3) for m in ("fast", "plain")]
    assert CachedFrechetCellFilter.fast_math and GuardedCalculator.take_computed
