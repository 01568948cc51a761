"""BatchedStack (ASE tiers, then one batched tier), batched stacks by name, and chunked
submission of a batching relaxer to an executor."""

import concurrent.futures as cf

import pytest
from ase.calculators.emt import EMT
from conftest import rattled_copper_cells

from ase_fuse import InputError
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.executors import SerialExecutor, chunk_size, relax_structures

pytest.importorskip("torch_sim", reason="torch-sim-atomistic not installed ([batched])")

from ase_fuse.calculators.batched import BatchedRelaxer, calculator_backend  # noqa: E402
from ase_fuse.calculators.batched_stack import BatchedStack  # noqa: E402
from ase_fuse.calculators.stacks import build_stack  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def structures(n, seed=0):
    return rattled_copper_cells(n, seed, a0=3.45, da=0.06, amplitude=0.08)


class Sizes:
    """An EMT backend that records how many structures each model call saw."""

    def __init__(self):
        self.inner = calculator_backend(EMT)
        self.calls = []

    def __call__(self, batch):
        self.calls.append(len(batch))
        return self.inner(batch)


def pre_tier(steps=30):
    return Tier(EMT(), fmax=0.3, steps=steps, name="pre")


# -- BatchedStack -------------------------------------------------------------------------
def test_stack_matches_the_plain_tiers_and_keeps_both_records():
    items = structures(4)
    backend = Sizes()
    stack = BatchedStack(TieredRelaxer([pre_tier()]),
                         BatchedRelaxer(backend, fmax=0.01, steps=400, batch_size=4,
                                        name="late"))
    plain = TieredRelaxer([pre_tier(), Tier(EMT(), fmax=0.01, steps=400, name="late")])
    results = stack.relax_many(items)
    assert max(backend.calls) == 4                     # the late tier ran as one batch
    for atoms, result in zip(items, results):
        reference = plain.relax(atoms)
        assert result.ok and result.converged
        assert [t.name for t in result.tiers] == ["pre", "late"]
        assert result.steps == sum(t.steps for t in result.tiers)
        assert result.energy_per_atom == pytest.approx(reference.energy_per_atom, abs=5e-5)
        assert result.atoms.calc.results["energy"] == pytest.approx(result.energy)


def test_a_structure_failing_early_never_reaches_the_batch():
    items = structures(3)
    squeezed = items[1].copy()
    squeezed.positions[1] = squeezed.positions[0] + [0.2, 0, 0]   # 0.2 A apart
    items[1] = squeezed
    backend = Sizes()
    stack = BatchedStack(TieredRelaxer([pre_tier()]),
                         BatchedRelaxer(backend, fmax=0.05, batch_size=8, name="late"))
    results = stack.relax_many(items)
    assert not results[1].ok and results[1].failed.startswith("pre:")
    assert [t.name for t in results[1].tiers] == ["pre"]
    assert results[0].ok and results[2].ok
    assert max(backend.calls) == 2


def test_stack_without_pre_tiers_is_the_batched_relaxer():
    items = structures(3, seed=4)
    alone = BatchedRelaxer(calculator_backend(EMT), batch_size=3).relax_many(items)
    stacked = BatchedStack(None, BatchedRelaxer(calculator_backend(EMT), batch_size=3))
    for a, b in zip(alone, stacked.relax_many(items)):
        assert a.energy == pytest.approx(b.energy, abs=1e-12)
    assert stacked.relax(items[0]).energy == pytest.approx(alone[0].energy, abs=1e-9)


def test_stack_refuses_wrong_parts():
    with pytest.raises(InputError, match="^pre:"):
        BatchedStack(EMT(), BatchedRelaxer(calculator_backend(EMT)))
    with pytest.raises(InputError, match="^batched:"):
        BatchedStack(None, TieredRelaxer([pre_tier()]))


# -- by name ----------------------------------------------------------------------------
def test_named_stacks_batch_their_chgnet_tier():
    stack = build_stack("proxy+chgnet", "SrTiO3", batch_size=8,
                        chgnet={"steps": 50, "device": "cpu"})
    assert isinstance(stack, BatchedStack) and stack.batch_size == 8
    assert [t.name for t in stack.pre.tiers] == ["proxy"]
    assert stack.batched.steps == 50 and stack.batched.name == "chgnet"
    assert build_stack("chgnet", batch_size=4).pre is None
    assert isinstance(build_stack("proxy+chgnet", "SrTiO3", batch_size=1), TieredRelaxer)


@pytest.mark.parametrize("name, kwargs, field", [
    ("proxy", {"batch_size": 4}, "batch_size"),
    ("proxy+chgnet", {"batch_size": -2}, "batch_size"),
    ("proxy+chgnet", {"batch_size": 2.5}, "batch_size"),
    ("chgnet", {"batch_size": 4, "chgnet": {"optimizer": "BFGS"}}, "chgnet"),
])
def test_bad_batched_stacks_name_the_field(name, kwargs, field):
    with pytest.raises(InputError, match=f"^{field}:"):
        build_stack(name, "SrTiO3", **kwargs)


def test_batching_without_torch_sim_says_what_to_install(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch_sim" else real(name, *a))
    with pytest.raises(InputError, match=r"^batch_size: .*ase-fuse\[batched\]"):
        build_stack("proxy+chgnet", "SrTiO3", batch_size=8)


# -- chunks through an executor -------------------------------------------------------------
class CountingExecutor(cf.Executor):
    """Runs at submission (like SerialExecutor) but reports two workers and counts tasks."""

    _max_workers = 2

    def __init__(self):
        self.tasks = []

    def submit(self, fn, /, *args, **kwargs):
        self.tasks.append(fn.__name__)
        return SerialExecutor().submit(fn, *args, **kwargs)


def test_chunk_size_keeps_each_workers_batch_full():
    batched = BatchedRelaxer(calculator_backend(EMT), batch_size=8)
    two = CountingExecutor()
    assert chunk_size(batched, 200, two) == 25           # 8 tasks: 4 per worker, <= 4 batches
    assert chunk_size(batched, 25, two) == 13            # the population over 2 workers
    assert chunk_size(batched, 3, two) == 2              # both workers busy
    assert chunk_size(TieredRelaxer([pre_tier()]), 200, two) == 1


def test_batching_relaxer_gets_chunks_with_the_serial_results():
    items = structures(7, seed=2)
    backend = Sizes()
    relaxer = BatchedRelaxer(backend, fmax=0.02, steps=300, batch_size=2)
    executor = CountingExecutor()
    seen = []
    results = relax_structures(relaxer, items, executor,
                               on_result=lambda i, r: seen.append(i))
    assert executor.tasks == ["_relax_chunk"] * 2        # 4 + 3 structures
    assert sorted(seen) == list(range(7))
    serial = BatchedRelaxer(calculator_backend(EMT), fmax=0.02, steps=300,
                            batch_size=2).relax_many(items)
    for a, b in zip(results, serial):
        assert a.energy == pytest.approx(b.energy, abs=1e-12)
    assert max(backend.calls) == 2


def test_batched_relaxer_pickles_for_process_pools():
    import pickle
    relaxer = build_stack("proxy+chgnet", "SrTiO3", batch_size=4)
    copy = pickle.loads(pickle.dumps(relaxer))
    assert copy.batched.backend.device == "cpu" and copy.batch_size == 4
