"""Faults inside a search: a calculator that raises, hangs, returns NaN or huge forces,
explodes or collapses the cell, or leaves an isolated atom is recorded as a failed
candidate (db row ``status="failed"``, reason naming the fault) and the search goes
on.  A hung call is cut off by the relaxer's time limit.  A run folder that cannot be
written is refused at start with one clear line.
"""

import errno
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from ase_fuse import FuseBasinHopping, InputError
from ase_fuse.calculators.guards import Guards
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.cli import main as cli_main
from ase_fuse.records import RunRecords


class Faulty(Calculator):
    """Fails in one way (``mode``); energies from ``E = sign * k * V`` where needed."""
    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, mode, **kw):
        super().__init__(**kw)
        self.mode = mode

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        zeros = np.zeros((n, 3))
        volume = self.atoms.get_volume()
        if self.mode == "raise":
            raise RuntimeError("back-end crashed")
        if self.mode == "hang":
            time.sleep(60)
        if self.mode == "nan":
            self.results = {"energy": float("nan"), "forces": zeros, "stress": np.zeros(6)}
        elif self.mode == "huge":
            self.results = {"energy": 0.0, "forces": np.full((n, 3), 1e5),
                            "stress": np.zeros(6)}
        elif self.mode in ("explode", "isolate"):  # E = -V: tensile stress, cell grows
            self.results = {"energy": -volume, "forces": zeros,
                            "stress": -np.array([1.0, 1, 1, 0, 0, 0])}
        elif self.mode == "collapse":  # E = +V: compressive stress, cell shrinks
            self.results = {"energy": volume, "forces": zeros,
                            "stress": np.array([1.0, 1, 1, 0, 0, 0])}
        else:
            raise ValueError(self.mode)


class EveryOtherStep:
    """A relaxer: EMT for the initial population, then the faulty tier on odd steps."""

    def __init__(self, mode, n_initial, guards=None, time_limit=None):
        self.good = TieredRelaxer([Tier(EMT(), fmax=0.05, steps=100, name="emt")])
        self.bad = TieredRelaxer([Tier(Faulty(mode), fmax=0.01, steps=2000,
                                       fail_force_factor=None, name=f"faulty-{mode}")],
                                 guards=guards, time_limit=time_limit)
        self.n_initial = n_initial
        self.calls = 0

    def relax(self, atoms):
        self.calls += 1
        step = self.calls - self.n_initial
        use_bad = step > 0 and step % 2 == 1
        return (self.bad if use_bad else self.good).relax(atoms)


FAULTS = [  # mode, words the reason must contain, guards, time limit
    ("raise", ["calculator error", "back-end crashed"], None, None),
    ("hang", ["time limit"], None, 1.0),
    ("nan", ["non-finite energy"], None, None),
    ("huge", ["huge forces"], None, None),
    ("explode", ["cell exploded"], None, None),
    ("collapse", ["too close"], Guards(volume_ratio_window=None), None),
    ("isolate", ["isolated"], Guards(volume_ratio_window=None), None),
]


@pytest.mark.parametrize("mode, words, guards, time_limit", FAULTS,
                         ids=[f[0] for f in FAULTS])
def test_fault_is_recorded_and_search_goes_on(tmp_path, mode, words, guards, time_limit):
    relaxer = EveryOtherStep(mode, n_initial=2, guards=guards, time_limit=time_limit)
    # reuse=False: every step relaxes, so the faulty steps are the odd ones
    opt = FuseBasinHopping("Cu", relaxer=relaxer, max_atoms=4, initial_population=2,
                           seed=11, directory=tmp_path / "run", logfile=None, reuse=False)
    t0 = time.monotonic()
    opt.run(steps=4)
    elapsed = time.monotonic() - t0
    assert opt.nsteps == 4, "the search stopped early"
    records = RunRecords(tmp_path / "run" / "fuse.db")
    failed = records.rows(status="failed")
    # steps 1 and 3 used the faulty calculator; each is a failed row with its reason
    assert sorted(r.step for r in failed) == [1, 3]
    for row in failed:
        assert row.reason.startswith(f"faulty-{mode}: ")
        for word in words:
            assert word in row.reason, row.reason
        assert row.get("energy_per_atom") is None
    relaxed_steps = {r.step for r in records.rows(status="relaxed")}
    assert {2, 4} <= relaxed_steps, "steps after a failure were not relaxed"
    assert np.isfinite(opt.best_energy)
    assert records.check_integrity() == []
    if mode == "hang":  # two hung calls, each cut off after ~1 s, not 60 s
        assert elapsed < 20


# -- the time limit interrupts one hung call ------------------------------------------
class Sleeper(Calculator):
    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        time.sleep(self.seconds)
        forces = np.zeros((len(self.atoms), 3))
        forces[0, 0] = 1.0  # never converged: the optimiser keeps calling
        self.results = {"energy": 0.0, "forces": forces, "stress": np.zeros(6)}


def cu():
    return bulk("Cu", "fcc", a=3.61, cubic=True)


def test_single_hung_call_is_interrupted_in_main_thread():
    relaxer = TieredRelaxer([Tier(Sleeper(60), name="slow")], time_limit=0.5)
    t0 = time.monotonic()
    result = relaxer.relax(cu())
    assert time.monotonic() - t0 < 5
    assert "time limit" in result.failed and "interrupted" in result.failed


def test_callers_alarm_is_restored():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 100.0)
        TieredRelaxer([Tier(Sleeper(60), name="slow")], time_limit=0.3).relax(cu())
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 90 < remaining <= 100
        assert signal.getsignal(signal.SIGALRM) is not previous  # ours is back
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        time.sleep(0.2)
        assert fired == [1]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_no_alarm_left_after_a_normal_relaxation():
    before = signal.getsignal(signal.SIGALRM)
    TieredRelaxer([Tier(EMT(), steps=20)], time_limit=30).relax(cu())
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    assert signal.getsignal(signal.SIGALRM) is before


def test_worker_thread_falls_back_to_between_call_checks():
    # off the main thread no SIGALRM: a 0.3 s call is finished, then the deadline stops it
    relaxer = TieredRelaxer([Tier(Sleeper(0.3), name="slow", relax_cell=False)],
                            time_limit=0.5)
    out = {}

    def work():
        t0 = time.monotonic()
        out["result"] = relaxer.relax(cu())
        out["elapsed"] = time.monotonic() - t0
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    assert "time limit" in out["result"].failed
    assert "interrupted" not in out["result"].failed
    assert 0.5 <= out["elapsed"] < 3


# -- a run folder that cannot be written ------------------------------------------------
def start_search(directory):
    return FuseBasinHopping("Cu", calculator=EMT(), max_atoms=2, initial_population=1,
                            seed=0, directory=directory, logfile=None)


def test_file_where_the_run_folder_should_be(tmp_path):
    blocker = tmp_path / "run"
    blocker.write_text("not a folder")
    with pytest.raises(InputError) as info:
        start_search(blocker)
    assert info.value.field == "directory" and "\n" not in str(info.value)


def test_run_folder_below_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError) as info:
        start_search(tmp_path / "file" / "run")
    assert info.value.field == "directory"


@pytest.mark.parametrize("code, words", [(errno.EROFS, "Read-only file system"),
                                         (errno.ENOSPC, "No space left on device")])
def test_read_only_or_full_disk_is_refused_at_start(tmp_path, monkeypatch, code, words):
    # simulated: tests run as root, where chmod does not stop writes; the write probe
    # is made to fail with the OS error a read-only or full file system gives
    real_write = Path.write_text

    def failing_write(self, *args, **kw):
        if self.parent == tmp_path / "run":
            raise OSError(code, os.strerror(code), str(self))
        return real_write(self, *args, **kw)
    monkeypatch.setattr(Path, "write_text", failing_write)
    with pytest.raises(InputError) as info:
        start_search(tmp_path / "run")
    assert info.value.field == "directory" and words in str(info.value)
    assert not (tmp_path / "run" / "fuse.db").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 0500")
def test_chmod_read_only_folder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError):
            start_search(folder)
    finally:
        folder.chmod(0o700)


def test_cli_unwritable_folder_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code = cli_main(["run", "Cu", "--max-atoms", "2", "--steps", "1",
                     "--initial-population", "1", "--calculator", "emt",
                     "-o", str(tmp_path / "file" / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "directory" in err


def test_population_that_all_fails_names_the_commonest_reason(tmp_path):
    from ase_fuse.errors import GenerationError

    relaxer = TieredRelaxer([Tier(Faulty("raise"), fmax=0.05, steps=10)])
    with pytest.raises(GenerationError) as err:
        FuseBasinHopping("Cu", relaxer=relaxer, max_atoms=4, initial_population=3, seed=1,
                         directory=tmp_path / "run", logfile=None).run(steps=1)
    message = str(err.value)
    assert "every structure of the initial population failed" in message
    assert "3 of 3" in message and "back-end crashed" in message
    assert len(RunRecords(tmp_path / "run" / "fuse.db").rows(status="failed")) == 3
