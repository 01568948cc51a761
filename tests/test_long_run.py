"""Long runs: memory stays flat over a few hundred steps, and the run's db can be read
by another process while the search writes it (row counts grow, never 'database is
locked').  The writer is ``benchmarks/long_run.py`` in a subprocess (positions-only
proxy relaxations, the cheapest real search step); this test process is the reader.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ase.db import connect

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "long_run.py"


def start_writer(tmp_path, steps, every, warm_up):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "long_run.json"
    cmd = [sys.executable, str(SCRIPT), "--steps", str(steps), "--every", str(every),
           "--warm-up", str(warm_up), "--fixed-cell", "--seed", "3",
           "--directory", str(tmp_path / "run"), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return proc, out, tmp_path / "run" / "fuse.db"


def read_while_running(proc, db_path, timeout):
    """Row counts read from another process every 0.2 s until the writer exits."""
    counts, errors = [], []
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if db_path.exists():
            try:
                counts.append(connect(str(db_path), use_lock_file=False).count())
            except Exception as err:  # any read failure is what this test looks for
                errors.append(f"{type(err).__name__}: {err}")
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
        pytest.fail(f"writer did not finish within {timeout} s")
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr[-2000:]
    return counts, errors, stdout


def check_concurrent_reads(counts, errors, db_path):
    assert not errors, errors[:3]
    assert not any("locked" in e for e in errors)
    assert len(counts) >= 3, "the reader hardly saw the run"
    assert all(b >= a for a, b in zip(counts, counts[1:])), "row count went down"
    assert len(set(counts)) >= 3, f"counts did not grow while running: {sorted(set(counts))}"
    final = connect(str(db_path), use_lock_file=False).count()
    assert counts[-1] <= final


def test_db_readable_by_another_process_during_a_run(tmp_path):
    proc, out, db_path = start_writer(tmp_path, steps=30, every=10, warm_up=10)
    counts, errors, stdout = read_while_running(proc, db_path, timeout=300)
    check_concurrent_reads(counts, errors, db_path)
    summary = json.loads(out.read_text())["summary"]
    assert summary["steps"] == 30
    assert "steps/s" in stdout


@pytest.mark.slow
def test_memory_flat_over_a_few_hundred_steps(tmp_path):
    proc, out, db_path = start_writer(tmp_path, steps=300, every=25, warm_up=100)
    counts, errors, _ = read_while_running(proc, db_path, timeout=1200)
    check_concurrent_reads(counts, errors, db_path)
    result = json.loads(out.read_text())
    summary, points = result["summary"], result["checkpoints"]
    assert summary["steps"] == 300 and summary["warm_up_step"] == 100
    # after warm-up (imports, caches, first db pages) resident memory may wobble but
    # not grow with the number of steps: a leak of 50 kB per step (e.g. every
    # candidate's Atoms kept alive) would add 10 MB over these 200 steps
    assert summary["rss_growth_after_warm_up_mb"] < 10, points
    late = [p["rss_mb"] for p in points if p["step"] >= 100]
    assert max(late) - min(late) < 10, late
    # the db grows with the rows (a few kB each), not with anything else
    rows = connect(str(db_path), use_lock_file=False).count()
    assert summary["db_mb"] < 0.05 * rows + 1
