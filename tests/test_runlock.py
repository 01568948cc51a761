"""One live search per run folder: the folder's lock, across processes and within one."""

import gc
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from ase.calculators.emt import EMT

from ase_fuse import FuseBasinHopping, InputError
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.cli import main
from ase_fuse.records import RunRecords
from ase_fuse.runlock import LOCK_FILE, RunLock, read_owner

TINY = ["--calculator", "proxy", "--max-atoms", "8", "--initial-population", "3",
        "--seed", "3"]


def cli(*args):
    return [sys.executable, "-m", "ase_fuse.cli", "run", "NaCl", *TINY, *args]


def search(folder, **kw):
    options = dict(relaxer=TieredRelaxer([Tier(EMT(), fmax=0.05, steps=100)]),
                   max_atoms=4, initial_population=3, seed=3, directory=folder,
                   logfile=None)
    options.update(kw)
    return FuseBasinHopping("Cu", **options)


def wait_for_owner(folder, pid, proc, timeout=120):
    """Until ``folder``'s lock file names ``pid`` (the process has started its search)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        owner = read_owner(folder)
        if owner is not None and owner.get("pid") == pid:
            return owner
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{folder} never locked by {pid}")


def one_run_rows(db, steps):
    """The db holds one run of ``steps`` steps: no candidate twice, one outcome a step."""
    records = RunRecords(db)
    assert records.check_integrity() == []
    assert records.count(step=0) == 3
    done = [r for r in records.rows() if r.step > 0 and r.status in ("relaxed", "failed")]
    assert sorted(r.step for r in done) == list(range(1, steps + 1))
    return records.count()


def test_two_runs_started_at_once_one_runs_the_other_is_refused(tmp_path):
    # the reproduction: the same command twice at the same moment
    out = tmp_path / "d"
    procs = [subprocess.Popen(cli("--steps", "15", "-q", "-o", str(out)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.pid, *p.communicate(timeout=600), p.returncode) for p in procs]
    assert sorted(r[3] for r in results) == [0, 2], results
    (winner,) = [r for r in results if r[3] == 0]
    (loser,) = [r for r in results if r[3] == 2]
    lines = loser[2].strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in loser[2]
    assert f"pid {winner[0]} on host " in lines[0] and "in use" in lines[0]
    one_run_rows(out / "fuse.db", 15)
    assert read_owner(out) is None            # released at the end: the file is empty


def test_restart_while_the_run_is_live_is_refused_naming_its_owner(tmp_path):
    out = tmp_path / "d"
    first = subprocess.Popen(cli("--steps", "100000", "-q", "-o", str(out)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        owner = wait_for_owner(out, first.pid, first)
        second = subprocess.run(cli("--steps", "100000", "-q", "-o", str(out), "--restart"),
                                capture_output=True, text=True, timeout=600)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert f"pid {first.pid} on host {owner['host']} since {owner['since']}" in lines[0]
        assert first.poll() is None               # the first run went on meanwhile
    finally:
        (out / "STOP").write_text("")
        first.communicate(timeout=600)
    assert first.returncode == 0
    steps = json.loads((out / "summary.json").read_text())["steps"]
    one_run_rows(out / "fuse.db", steps)


def test_second_search_in_one_process_is_refused_until_the_first_ends(tmp_path):
    folder = tmp_path / "run"
    first = search(folder)
    with pytest.raises(InputError, match=f"pid {os.getpid()} on host") as info:
        search(folder, restart=True)
    assert "\n" not in str(info.value) and info.value.field == "directory"
    assert not (folder / "fuse.db").exists() or RunRecords(folder / "fuse.db").count() == 0
    first.run(steps=2)                           # a finished run() lets the folder go
    assert read_owner(folder) is None
    second = search(folder, restart=True)
    assert second.nsteps == 2
    with pytest.raises(InputError, match="in use"):
        search(folder, restart=True)
    second.close()
    with search(folder, restart=True) as third:  # the context manager releases too
        assert third.nsteps == 2 and read_owner(folder)["pid"] == os.getpid()
    assert read_owner(folder) is None
    fourth = search(folder, restart=True)
    del fourth                                   # and garbage collection
    gc.collect()
    search(folder, restart=True).close()


def test_refused_construction_does_not_keep_the_lock(tmp_path):
    folder = tmp_path / "run"
    search(folder).run(steps=1)
    with pytest.raises(InputError, match="--restart"):   # a run is there: not ours
        search(folder)
    with pytest.raises(InputError, match="temperature"):  # a mismatching restart
        search(folder, restart=True, temperature=0.5)
    assert read_owner(folder) is None
    search(folder, restart=True).close()


def test_an_object_whose_run_ended_does_not_continue_a_run_that_moved_on(tmp_path):
    folder = tmp_path / "run"
    old = search(folder)
    old.run(steps=2)
    newer = search(folder, restart=True)
    newer.run(steps=2)                           # the run is at step 4 now
    with pytest.raises(InputError, match="moved on"):
        old.run(steps=1)
    assert RunRecords(folder / "fuse.db").check_integrity() == []
    assert read_owner(folder) is None


def test_lock_of_a_killed_process_is_taken_over_with_a_notice(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom ase_fuse.runlock import RunLock\n"
         f"lock = RunLock({str(folder)!r}); lock.acquire(); print('held', flush=True)\n"
         "time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(InputError, match=f"pid {holder.pid} "):
        search(folder)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    assert read_owner(folder)["pid"] == holder.pid   # the dead owner's file is still there
    log = tmp_path / "fuse.log"
    opt = search(folder, logfile=str(log))
    assert read_owner(folder)["pid"] == os.getpid()
    opt.run(steps=1)
    notices = [line for line in log.read_text().splitlines() if "taking it over" in line]
    assert len(notices) == 1 and f"pid {holder.pid} on host" in notices[0]
    assert read_owner(folder) is None


def test_readers_do_not_need_the_lock_of_a_live_run(tmp_path, capsys):
    folder = tmp_path / "run"
    live = search(folder)
    steps = live.irun(steps=50)
    for _ in range(4):                           # mid-run: the lock is held
        next(steps)
    assert read_owner(folder)["pid"] == os.getpid()
    assert main(["report", str(folder)]) == 0
    report = capsys.readouterr().out
    assert "integrity: ok" in report and "rows: relaxed" in report
    assert main(["plot", str(folder), "-o", str(tmp_path / "e.png")]) == 0
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"
    ase_db = subprocess.run([sys.executable, "-m", "ase", "db", str(folder / "fuse.db"),
                             "-c", "id,status"], capture_output=True, text=True, timeout=300)
    assert ase_db.returncode == 0 and "relaxed" in ase_db.stdout, ase_db.stderr
    with pytest.raises(InputError, match="in use"):  # still ours after the readers
        search(folder, restart=True)
    for _ in steps:                              # and the run goes on to its end
        pass
    live.close()
    assert read_owner(folder) is None
    assert live.nsteps == 50 or live.converged()


def test_each_walker_folder_is_locked(tmp_path):
    from ase_fuse.calculators.stacks import build_stack
    from ase_fuse.walkers import run_walkers
    options = dict(max_atoms=4, initial_population=2, directory=tmp_path)
    busy = RunLock(tmp_path / "seed2")
    busy.acquire()
    with pytest.raises(InputError, match=f"seed2 is in use.*pid {os.getpid()}"):
        run_walkers("Ag", [1, 2], steps=2, batch_relaxer=build_stack("emt"), **options)
    assert read_owner(tmp_path / "seed1") is None    # the walker made first let go
    busy.release()
    group = run_walkers("Ag", [1, 2], steps=2, batch_relaxer=build_stack("emt"), **options)
    assert [w.nsteps for w in group] == [2, 2]
    for seed in (1, 2):                          # released at the end of the run
        assert (tmp_path / f"seed{seed}" / LOCK_FILE).exists()
        assert read_owner(tmp_path / f"seed{seed}") is None


def test_walker_runs_on_one_folder_at_once_are_refused(tmp_path):
    out = tmp_path / "w"
    argv = ["run", "Ag", "--calculator", "emt", "--max-atoms", "4", "--initial-population",
            "2", "--seed", "1", "--walkers", "2", "-q", "-o", str(out)]
    assert main(argv + ["--steps", "1"]) == 0
    holder = FuseBasinHopping("Ag", relaxer="emt", max_atoms=4, initial_population=2,
                              seed=2, directory=out / "seed2", restart=True, logfile=None)
    first = subprocess.run([sys.executable, "-m", "ase_fuse.cli"] + argv
                           + ["--steps", "3", "--restart"],
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 2 and f"pid {os.getpid()}" in first.stderr
    assert len(first.stderr.strip().splitlines()) == 1
    holder.close()
    assert main(argv + ["--steps", "3", "--restart"]) == 0
