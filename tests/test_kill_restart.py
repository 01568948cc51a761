"""A search killed with SIGKILL at random moments restarts to the same state.

The run is driven in a subprocess that is killed (SIGKILL) at random times and
restarted with restart=True until it finishes; the result must be the candidate
sequence of an uninterrupted run with the same seed: no duplicate rows, no lost
finished candidates, a db that passes the integrity check.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ase_fuse.records import RunRecords

SCRIPT = textwrap.dedent("""
    import sys
    from ase.calculators.emt import EMT
    from ase_fuse import FuseBasinHopping
    from ase_fuse.calculators.tiers import Tier, TieredRelaxer

    directory, steps, restart = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    relaxer = TieredRelaxer([Tier(EMT(), fmax=0.05, steps=100)])
    opt = FuseBasinHopping("Cu", relaxer=relaxer, max_atoms=4, initial_population=3,
                           seed=21, directory=directory, restart=restart, logfile=None)
    opt.run(steps=steps - opt.nsteps)
    print("DONE", opt.nsteps, opt.best_energy)
""")


def sequence(db_path):
    rows = RunRecords(db_path).rows()
    return [(r.step, r.slot, r.get("move"), r.status,
             round(r.get("energy_per_atom", np.nan), 10), r.get("accepted"))
            for r in sorted(rows, key=lambda r: (r.step, r.slot))]


def run_to_end(script, directory, steps, kills, rng, latest=4.0):
    """Run, killing the child ``kills`` times at random moments; returns kills done.

    Each kill comes 0.3 to ``latest`` s after a (re)start: in imports, in the initial
    population, mid-relaxation or mid-commit, wherever that lands."""
    done_kills = 0
    restart = "0"
    while True:
        proc = subprocess.Popen([sys.executable, str(script), str(directory), str(steps),
                                 restart], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        restart = "1"
        if done_kills < kills:
            try:
                out, err = proc.communicate(timeout=float(rng.uniform(0.3, latest)))
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.communicate()
                done_kills += 1
                continue
        else:
            out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        assert "DONE" in out
        return done_kills


def check_killed_run(tmp_path, kills, steps):
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    reference = tmp_path / "reference"
    start = time.perf_counter()
    run_to_end(script, reference, steps, 0, np.random.default_rng(0))
    # every kill lands before the run could end: a restart redoes at least its imports,
    # so after j kills more than (kills + 1 - j) / (kills + 1) of the run is left
    latest = min(4.0, (time.perf_counter() - start) / (kills + 1))
    assert latest > 1.0, "the run is too short to be killed mid-way: raise its steps"
    killed = tmp_path / "killed"
    done = run_to_end(script, killed, steps, kills, np.random.default_rng(kills), latest)
    records = RunRecords(killed / "fuse.db")
    assert records.check_integrity() == []
    assert sequence(killed / "fuse.db") == sequence(reference / "fuse.db")
    state = records.load_state()
    assert state["nsteps"] == steps
    assert state["best_energy"] == pytest.approx(
        RunRecords(reference / "fuse.db").load_state()["best_energy"])
    return done


def test_sigkill_and_restart_gives_the_uninterrupted_run(tmp_path):
    assert check_killed_run(tmp_path, kills=3, steps=60) == 3


@pytest.mark.slow
def test_twenty_random_sigkills(tmp_path):
    assert check_killed_run(tmp_path, kills=20, steps=400) == 20
