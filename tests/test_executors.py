"""Relaxations through executors: in-process, a process pool, a real Dask LocalCluster."""

import math
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from ase_fuse import FuseBasinHopping, InputError
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.executors import SerialExecutor, check_executor, relax_structures
from ase_fuse.records import RunRecords
from ase_fuse.runs import run_many


def emt_relaxer():
    return TieredRelaxer([Tier(EMT(), fmax=0.05, steps=150)])


def rattled_copper(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.rattle(0.05, rng=rng)
        out.append(atoms)
    return out


def sequence(db_path):
    rows = RunRecords(db_path).rows()
    return [(r.step, r.slot, r.get("move"), r.status,
             round(r.get("energy_per_atom", math.nan), 10), r.get("accepted"))
            for r in sorted(rows, key=lambda r: (r.step, r.slot))]


class SlowFirstRelaxer:
    """EMT relaxation; the first call anywhere writes its pid to a file and sleeps."""

    def __init__(self, marker, sleep=60.0):
        self.marker = str(marker)
        self.sleep = sleep
        self.inner = emt_relaxer()

    def relax(self, atoms):
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return self.inner.relax(atoms)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(self.sleep)
        return self.inner.relax(atoms)


class CountingRelaxer:
    def __init__(self, interrupt_at=None):
        self.calls = 0
        self.interrupt_at = interrupt_at
        self.inner = emt_relaxer()

    def relax(self, atoms):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt("driver killed")
        return self.inner.relax(atoms)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       memory_limit="1GiB", host="127.0.0.1",
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


# -- in-process and process pool ----------------------------------------------------
def test_serial_executor_runs_at_submission_and_keeps_errors():
    ex = SerialExecutor()
    assert ex.submit(pow, 2, 5).result() == 32
    future = ex.submit(int, "x")
    assert isinstance(future.exception(), ValueError)


def test_not_an_executor_is_refused_naming_the_field():
    with pytest.raises(InputError, match="^executor:"):
        check_executor(object())
    with pytest.raises(InputError, match="^executor:"):
        FuseBasinHopping("Cu", relaxer=emt_relaxer(), max_atoms=4, executor="dask",
                         logfile=None)


def test_run_many_refuses_configs_sharing_or_lacking_a_directory(tmp_path):
    with pytest.raises(InputError, match="directory"):
        run_many([{"composition": "Cu"}])
    same = {"composition": "Cu", "directory": str(tmp_path / "x")}
    with pytest.raises(InputError, match="share"):
        run_many([same, dict(same)])


def test_process_pool_gives_the_serial_results_in_order():
    structures = rattled_copper(4)
    serial = relax_structures(emt_relaxer(), structures)
    seen = []
    with ProcessPoolExecutor(2) as pool:
        parallel = relax_structures(emt_relaxer(), structures, pool,
                                    on_result=lambda i, r: seen.append(i))
    assert sorted(seen) == [0, 1, 2, 3]
    for a, b in zip(serial, parallel):
        assert a.ok and b.ok
        assert b.energy == pytest.approx(a.energy, abs=1e-10)
        assert np.allclose(a.atoms.positions, b.atoms.positions)


def test_restarted_driver_resubmits_only_queued_work(tmp_path):
    options = dict(max_atoms=4, initial_population=4, seed=5, directory=tmp_path,
                   logfile=None, executor=SerialExecutor())
    first = FuseBasinHopping("Cu", relaxer=CountingRelaxer(interrupt_at=3), **options)
    with pytest.raises(KeyboardInterrupt):
        first.run(steps=2)
    statuses = [r.status for r in sorted(first.records.rows(), key=lambda r: r.slot)]
    assert statuses == ["relaxed", "relaxed", "queued", "queued"]
    relaxer = CountingRelaxer()
    again = FuseBasinHopping("Cu", relaxer=relaxer, restart=True, **options)
    again.run(steps=2)
    # two queued structures, then two steps; an input equal to one relaxed before takes
    # that result instead (re-use: FUSE-only starts of Cu repeat without pyxtal)
    reused = sum(r.get("reused_from") is not None for r in again.records.rows())
    assert relaxer.calls + reused == 2 + 2
    assert relaxer.calls >= 1
    reference = FuseBasinHopping("Cu", relaxer=emt_relaxer(),
                                 **dict(options, directory=tmp_path / "ref"))
    reference.run(steps=2)
    assert sequence(again.records.path) == sequence(reference.records.path)
    assert again.records.check_integrity() == []


# -- Dask ---------------------------------------------------------------------------
@pytest.mark.slow
def test_dask_search_equals_the_serial_search(tmp_path, dask_client):
    options = dict(max_atoms=4, initial_population=4, seed=3, logfile=None)
    serial = FuseBasinHopping("Cu", relaxer=emt_relaxer(), directory=tmp_path / "s",
                              **options)
    serial.run(steps=4)
    dask = FuseBasinHopping("Cu", relaxer=emt_relaxer(), directory=tmp_path / "d",
                            executor=dask_client.get_executor(), **options)
    dask.run(steps=4)
    assert sequence(dask.records.path) == sequence(serial.records.path)
    assert dask.best_energy == serial.best_energy
    assert np.allclose(dask.best_atoms.positions, serial.best_atoms.positions)


def test_run_many_fans_seeds_out_over_dask(tmp_path, dask_client):
    configs = [{"composition": "Cu", "seed": seed, "steps": 2, "max_atoms": 4,
                "initial_population": 2, "relaxer": emt_relaxer(),
                "directory": str(tmp_path / f"seed{seed}")} for seed in (1, 2)]
    summaries = run_many(configs, dask_client.get_executor())
    assert [s["seed"] for s in summaries] == [1, 2]
    for summary, config in zip(summaries, configs):
        alone = run_many([dict(config, directory=config["directory"] + "_serial")])[0]
        assert summary["best_energy_per_atom"] == alone["best_energy_per_atom"]
        assert sequence(summary["db"]) == sequence(alone["db"])


@pytest.mark.slow
def test_killed_worker_loses_nothing(tmp_path, dask_client):
    marker = tmp_path / "slow.pid"
    relaxer = SlowFirstRelaxer(marker)
    options = dict(max_atoms=4, initial_population=4, seed=9, logfile=None)
    opt = FuseBasinHopping("Cu", relaxer=relaxer, directory=tmp_path / "run",
                           executor=dask_client.get_executor(), **options)
    import threading
    killed = []

    def killer():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if marker.exists() and marker.read_text():
                pid = int(marker.read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    started = time.monotonic()
    opt.run(steps=2)
    thread.join()
    assert killed and killed[0] != os.getpid()
    assert time.monotonic() - started < 50          # did not wait out the sleeping task
    rows = opt.records.rows()
    initial = sorted(r.slot for r in rows if r.step == 0)
    assert initial == [0, 1, 2, 3]                  # each candidate recorded once
    assert all(r.status in ("relaxed", "failed", "invalid") for r in rows)
    assert opt.records.check_integrity() == []
    reference = FuseBasinHopping("Cu", relaxer=emt_relaxer(), directory=tmp_path / "ref",
                                 **options)
    reference.run(steps=2)
    assert sequence(opt.records.path) == sequence(reference.records.path)


def test_batching_relaxer_batches_on_each_dask_worker(dask_client):
    pytest.importorskip("torch_sim")
    from ase_fuse.calculators.batched import BatchedRelaxer, calculator_backend
    from ase_fuse.executors import chunk_size, executor_slots
    rng = np.random.default_rng(5)
    items = []
    for k in range(6):
        atoms = bulk("Cu", "fcc", a=3.5 + 0.04 * k, cubic=True)
        atoms.rattle(0.05, rng=rng)
        items.append(atoms)
    relaxer = BatchedRelaxer(calculator_backend(EMT), fmax=0.05, steps=200, batch_size=2)
    executor = dask_client.get_executor()
    assert executor_slots(executor) == 2
    assert chunk_size(relaxer, len(items), executor) == 3     # 6 over two workers
    pooled = relax_structures(relaxer, items, executor)
    serial = relaxer.relax_many(items)
    assert all(r.ok for r in pooled)
    for a, b in zip(pooled, serial):
        assert a.energy == pytest.approx(b.energy, abs=1e-9)
