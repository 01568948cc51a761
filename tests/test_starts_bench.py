"""benchmarks/starts.py: the same starts relaxed by several stacks, hits per second.

The summary is tested on hand-made rows; the quick mode runs the real script (the
proxy, NaCl) with two stacks on the random and the search's own starts.
"""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import starts  # noqa: E402


def row(stack, wall, hit, failed=None, steps=10, energy=-1.0):
    return {"key": "zns", "generator": "symmetric", "stack": stack, "wall_s": wall,
            "generation_s": 0.5, "ml_steps": steps, "failed": failed, "hit": hit,
            "energy_per_atom": energy, "reference_energy_per_atom": -1.5}


def test_summary_counts_hits_per_stack_and_per_100_s_of_relaxation():
    rows = [row("a", 2.0, "match"), row("a", 3.0, None), row("a", 5.0, None, "collapsed"),
            row("b", 1.0, None), row("b", 1.0, "energy", energy=-2.0)]
    summary = starts.summarize(rows)["zns"]
    a, b = summary["symmetric / a"], summary["symmetric / b"]
    assert (a["n"], a["hits"], a["failed"]) == (3, 1, 1)
    assert a["hits_per_100s"] == pytest.approx(10.0)        # 1 hit in 10 s of relaxing
    assert b["hits_per_100s"] == pytest.approx(50.0)        # 1 hit in 2 s
    assert b["best"] == -2.0


def test_quick_mode_relaxes_each_start_with_each_stack(tmp_path):
    pytest.importorskip("chgnet", reason="the second stack is CHGNet alone")
    summary = starts.main(["--quick", "--generators", "symmetric", "search",
                           "--stacks", "proxy", "chgnet", "--n", "2",
                           "--out", str(tmp_path)])
    labels = set(summary["nacl"])
    assert labels == {"symmetric / proxy", "symmetric / chgnet",
                      "search / proxy", "search / chgnet"}
    data = json.loads((tmp_path / "starts.json").read_text())
    records = data["records"]
    assert len(records) == 8                          # 2 generators x 2 starts x 2 stacks
    assert {r["ml_steps"] > 0 for r in records if r["stack"] == "chgnet"} == {True}
    assert {r["ml_steps"] for r in records if r["stack"] == "proxy"} == {0}
    for generator in ("symmetric", "search"):         # the same start for every stack
        for k in range(2):
            sizes = {r["atoms"] for r in records
                     if r["generator"] == generator and r["start"] == k}
            assert len(sizes) == 1
