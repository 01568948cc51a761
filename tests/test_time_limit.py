"""--time-limit and streamed results: a run stops by itself and never loses work.

Issue "Time to the right answer": every relaxation of the initial population is
written as it finishes; a run stopped (time limit, STOP) or killed at any moment
keeps every finished relaxation, and a restart does not redo it.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from ase.db import connect

from ase_fuse import FuseBasinHopping
from ase_fuse.calculators.stacks import build_stack
from ase_fuse.cli import main
from ase_fuse.durations import parse_duration
from ase_fuse.errors import InputError
from ase_fuse.executors import relax_structures


def _statuses(db):
    if not os.path.exists(db):  # connect() would create it
        return {}
    with connect(str(db), use_lock_file=False) as con:
        return {row.id: (row.status, row.get("finished_at")) for row in con.select()}


class SlowRelaxer:
    """The proxy stack, with a pause per structure and a look at the db in between."""

    def __init__(self, composition, db=None, pause=0.0):
        self.inner = build_stack("proxy", composition)
        self.db, self.pause, self.seen = db, pause, []

    def __repr__(self):
        return "SlowRelaxer(proxy)"

    def relax(self, atoms):
        if self.db is not None and os.path.exists(self.db):
            self.seen.append(sum(s == "relaxed" for s, _ in _statuses(self.db).values()))
        time.sleep(self.pause)
        return self.inner.relax(atoms)


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("30m", 1800),
                                           ("2h", 7200), ("1h30m", 5400), (45, 45),
                                           ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "-5", "0", "inf", "3y", "1h-2", True])
def test_bad_durations_name_the_field(bad):
    with pytest.raises(InputError, match="time_limit"):
        parse_duration(bad)


def test_population_written_as_each_relaxation_finishes(tmp_path):
    relaxer = SlowRelaxer("NaCl", db=str(tmp_path / "fuse.db"))
    opt = FuseBasinHopping("NaCl", relaxer=relaxer, max_atoms=8, initial_population=5,
                           seed=2, directory=tmp_path, logfile=None)
    opt.run(steps=0)
    # when the k-th structure started, the k-1 before it were already in the db
    assert relaxer.seen[:5] == [0, 1, 2, 3, 4]


def test_time_limit_inside_population_keeps_work_and_restart_matches(tmp_path):
    kw = dict(max_atoms=8, initial_population=8, seed=5, logfile=None, generator="fuse")
    ref = FuseBasinHopping("NaCl", relaxer="proxy", directory=tmp_path / "ref", **kw)
    ref.run(steps=6)
    expected = [(r.step, r.slot, round(r.energy_per_atom, 8)) for r in
                ref.records.relaxed_sorted()]

    relaxer = SlowRelaxer("NaCl", pause=0.4)
    cut = FuseBasinHopping("NaCl", relaxer=relaxer, directory=tmp_path / "cut", **kw)
    t0 = time.monotonic()
    cut.run(steps=6, time_limit=1.0)
    elapsed = time.monotonic() - t0
    longest = max(r.get("relax_time", 0.0) for r in cut.records.rows(status="relaxed"))
    assert elapsed < 1.0 + 0.4 + longest + 3.0        # the limit plus one relaxation
    rows = _statuses(tmp_path / "cut" / "fuse.db")
    done = {k: v for k, v in rows.items() if v[0] == "relaxed"}
    assert 0 < len(done) < 8 and cut.current_id is None
    assert (tmp_path / "cut" / "best.cif").exists()   # outputs as for STOP
    cut.close()

    again = FuseBasinHopping("NaCl", relaxer=SlowRelaxer("NaCl"), directory=tmp_path / "cut",
                             restart=True, **kw)
    again.run(steps=6)
    after = _statuses(tmp_path / "cut" / "fuse.db")
    for row_id, (status, finished) in done.items():   # not relaxed again
        assert after[row_id] == (status, finished)
    got = [(r.step, r.slot, round(r.energy_per_atom, 8)) for r in
           again.records.relaxed_sorted()]
    assert got == expected                             # as if never stopped


def test_time_limit_between_steps(tmp_path):
    opt = FuseBasinHopping("NaCl", relaxer="proxy", max_atoms=8, initial_population=3,
                           seed=1, directory=tmp_path, logfile=None, generator="fuse")
    t0 = time.monotonic()
    opt.run(steps=100000, time_limit=8)
    longest = max(r.get("relax_time", 0.0) for r in opt.records.rows(status="relaxed"))
    assert time.monotonic() - t0 < 8 + longest + 3.0   # the limit plus one relaxation
    assert 0 < opt.nsteps < 100000
    assert (tmp_path / "current.cif").exists() and (tmp_path / "best.cif").exists()


def test_should_stop_is_honoured_by_the_executor_path(tmp_path):
    from ase.build import bulk

    from ase_fuse.executors import SerialExecutor
    relaxer = build_stack("proxy", "NaCl")
    structures = [bulk("NaCl", "rocksalt", a=5.6 + 0.05 * k) for k in range(6)]
    seen = []
    out = relax_structures(relaxer, structures, SerialExecutor(),
                           on_result=lambda i, r: seen.append(i),
                           should_stop=lambda: len(seen) >= 2)
    assert seen == [0, 1] and out[2:] == [None] * 4


def test_batched_relaxer_streams_and_stops(tmp_path):
    pytest.importorskip("torch_sim")
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from ase_fuse.calculators.batched import BatchedRelaxer, calculator_backend
    relaxer = BatchedRelaxer(calculator_backend(EMT), fmax=0.05, steps=200, batch_size=2)
    structures = [bulk("Cu", "fcc", a=3.5 + 0.04 * k, cubic=True) for k in range(6)]
    for atoms in structures:
        atoms.rattle(0.05, seed=1)
    seen = []
    out = relaxer.relax_many(structures, on_result=lambda i, r: seen.append(i),
                             should_stop=lambda: len(seen) >= 3)
    assert len(seen) >= 3 and sorted(seen) == sorted(i for i, r in enumerate(out) if r)
    assert any(r is None for r in out)                 # stopped before the end
    assert all(out[i].energy is not None for i in seen)


def test_cli_time_limit_ends_by_itself(tmp_path, capsys):
    out = tmp_path / "run"
    t0 = time.monotonic()
    code = main(["run", "NaCl", "--max-atoms", "8", "--steps", "100000", "--seed", "3",
                 "--calculator", "proxy", "--generator", "fuse", "--time-limit", "4s",
                 "-o", str(out)])
    elapsed = time.monotonic() - t0
    with connect(str(out / "fuse.db"), use_lock_file=False) as con:
        longest = max(r.get("relax_time", 0.0) for r in con.select(status="relaxed"))
    assert code == 0 and elapsed < 4 + longest + 3.0
    assert (out / "best.cif").exists() and (out / "summary.json").exists()
    assert "time limit reached" in capsys.readouterr().out


def _wait_for(predicate, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sigkill_during_initial_population_keeps_finished_relaxations(tmp_path):
    out = tmp_path / "run"
    db = out / "fuse.db"
    cmd = [sys.executable, "-m", "ase_fuse.cli", "run", "NaCl", "--max-atoms", "8",
           "--steps", "5", "--seed", "4", "--initial-population", "25",
           "--calculator", "proxy", "--generator", "fuse", "-q", "-o", str(out)]

    def relaxed():
        try:
            return sum(s == "relaxed" for s, _ in _statuses(db).values())
        except (OSError, sqlite3.Error):  # the db is being created or written
            return 0

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: relaxed() >= 3, 120), "no relaxation was written"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    before = {k: v for k, v in _statuses(db).items() if v[0] == "relaxed"}
    assert 3 <= len(before) < 25, "killed too late to test the population"
    done = subprocess.run(cmd + ["--restart"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = _statuses(db)
    for row_id, value in before.items():
        assert after[row_id] == value                  # kept, not relaxed again
    with connect(str(db), use_lock_file=False) as con:
        assert con.count(step=0) == 25


@pytest.mark.slow
def test_default_stack_time_limit_60s(tmp_path):
    """The issue's check as a user runs it: the default stack (proxy, then CHGNet)."""
    pytest.importorskip("chgnet")
    out = tmp_path / "run"
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "ase_fuse.cli", "run", "SrTiO3",
                           "--max-atoms", "10", "--seed", "1", "--time-limit", "60s",
                           "-o", str(out)], capture_output=True, text=True, timeout=400)
    elapsed = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    assert (out / "best.cif").exists(), done.stdout
    with connect(str(out / "fuse.db"), use_lock_file=False) as con:
        longest = max(r.get("relax_time", 0.0) for r in con.select(status="relaxed"))
    assert elapsed < 60 + longest + 10.0, (elapsed, longest)  # + interpreter start
