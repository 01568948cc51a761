"""BatchedRelaxer (torch-sim batched FIRE) and lock-step walkers."""

import math

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from ase_fuse import FuseBasinHopping, InputError
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.records import RunRecords

from conftest import make_rutile, rattled_copper_cells

pytest.importorskip("torch_sim", reason="torch-sim-atomistic not installed ([batched])")

from ase_fuse.calculators.batched import BatchedRelaxer, calculator_backend  # noqa: E402
from ase_fuse.walkers import run_walkers  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def rattled(n, seed=0):
    return rattled_copper_cells(n, seed)


class RecordingBackend:
    """EMT per structure; remembers every geometry it was shown and every batch size."""

    def __init__(self, poison=None):
        self.inner = calculator_backend(EMT)
        self.seen = []
        self.batches = []
        self.poison = poison

    def __call__(self, structures):
        self.batches.append(len(structures))
        self.seen.extend(a.copy() for a in structures)
        results = self.inner(structures)
        if self.poison is not None:
            results = [self.poison(a, r) for a, r in zip(structures, results)]
        return results


class CountingBatch:
    """A relaxer whose relax_many is the batched EMT one; counts batches and sizes."""

    def __init__(self):
        self.inner = BatchedRelaxer(calculator_backend(EMT), fmax=0.05, steps=150,
                                    batch_size=8)
        self.sizes = []

    def relax(self, atoms):
        return self.relax_many([atoms])[0]

    def relax_many(self, structures):
        self.sizes.append(len(structures))
        return self.inner.relax_many(structures)


# -- agreement with the ASE path ------------------------------------------------------
def test_emt_batched_matches_ase_fire_with_cell_filter():
    structures = rattled(4) + [bulk("Ag", "fcc", a=4.3, cubic=True)]
    batched = BatchedRelaxer(calculator_backend(EMT), fmax=0.01, steps=500,
                             batch_size=3).relax_many(structures)
    ase_path = TieredRelaxer([Tier(EMT(), fmax=0.01, steps=500)])
    for atoms, result in zip(structures, batched):
        reference = ase_path.relax(atoms)
        assert result.ok and result.converged
        assert result.energy_per_atom == pytest.approx(reference.energy_per_atom, abs=5e-5)
        assert abs(result.steps - reference.steps) <= 2
        assert abs(result.atoms.cell.volume / reference.atoms.cell.volume - 1) < 2e-3


def test_result_does_not_depend_on_batch_size_or_companions():
    structures = rattled(5, seed=1)
    alone = [BatchedRelaxer(calculator_backend(EMT), batch_size=1).relax(a)
             for a in structures]
    together = BatchedRelaxer(calculator_backend(EMT), batch_size=4).relax_many(structures)
    for a, b in zip(alone, together):
        assert a.energy == pytest.approx(b.energy, abs=1e-9)
        assert a.steps == b.steps
        assert np.allclose(a.atoms.positions, b.atoms.positions, atol=1e-8)


def test_structures_are_evaluated_in_full_batches():
    backend = RecordingBackend()
    relaxer = BatchedRelaxer(backend, fmax=0.05, batch_size=4)
    results = relaxer.relax_many(rattled(6))
    assert all(r.ok for r in results)
    assert max(backend.batches) == 4
    # far fewer model calls than the sum of per-structure steps
    assert len(backend.batches) < 0.5 * sum(r.steps for r in results)


def test_results_carry_single_points_and_inputs_are_untouched():
    atoms = rattled(1)[0]
    before = atoms.positions.copy()
    result = BatchedRelaxer(calculator_backend(EMT)).relax(atoms)
    assert np.array_equal(atoms.positions, before) and atoms.calc is None
    assert isinstance(result.atoms.calc, SinglePointCalculator)
    assert result.atoms.get_potential_energy() == pytest.approx(result.energy)
    check = result.atoms.copy()
    check.calc = EMT()
    assert check.get_potential_energy() == pytest.approx(result.energy, abs=1e-8)
    assert np.abs(result.atoms.get_forces()).max() < 0.05


# -- failures: dropped from the batch, never raising ---------------------------------
def test_bad_start_fails_without_reaching_the_model():
    close = rattled(1)[0]
    close.positions[1] = close.positions[0] + [0.2, 0, 0]
    backend = RecordingBackend()
    results = BatchedRelaxer(backend).relax_many([close] + rattled(2))
    assert not results[0].ok and "too close" in results[0].failed
    assert results[1].ok and results[2].ok
    assert all(len(a) == 4 and a.get_all_distances(mic=True)[np.triu_indices(4, 1)].min()
               > 0.5 for a in backend.seen)


def test_collapsing_cell_is_dropped_before_the_model_sees_it():
    def squeeze(atoms, result):
        if len(atoms) == 8:                  # the doubled cell: pull it together hard
            result = dict(result, stress=np.eye(3) * 5.0)
        return result

    victim = bulk("Cu", "fcc", a=3.61, cubic=True) * (1, 1, 2)
    start = victim.cell.volume
    backend = RecordingBackend(poison=squeeze)
    results = BatchedRelaxer(backend, steps=500, batch_size=3).relax_many(
        [victim] + rattled(2))
    assert not results[0].ok
    assert "collapsed" in results[0].failed or "too close" in results[0].failed
    assert results[1].ok and results[2].ok
    shown = [a for a in backend.seen if len(a) == 8]
    assert len(shown) > 1 and min(a.cell.volume for a in shown) >= 0.2 * start


def test_nan_and_crashing_models_fail_only_their_structures():
    def nan_for_ag(atoms, result):
        return dict(result, energy=math.nan) if atoms[0].symbol == "Ag" else result

    mixed = [bulk("Ag", "fcc", a=4.1, cubic=True)] + rattled(2)
    results = BatchedRelaxer(RecordingBackend(poison=nan_for_ag)).relax_many(mixed)
    assert "nan-energy" in results[0].failed or "non-finite" in results[0].failed
    assert results[1].ok and results[2].ok

    def broken(structures):
        raise RuntimeError("model exploded")

    failed = BatchedRelaxer(broken, name="boom").relax_many(rattled(2))
    assert all(r.failed.startswith("boom: ") and "model exploded" in r.failed
               for r in failed)


@pytest.mark.parametrize("kwargs, field", [
    (dict(model="mace"), "model"), (dict(model=3), "model"), (dict(batch_size=0), "batch_size"),
    (dict(steps=0), "steps"), (dict(fmax=-1), "fmax"), (dict(device="tpu"), "device")])
def test_bad_options_name_the_field(kwargs, field):
    with pytest.raises(InputError, match=f"^{field}:"):
        BatchedRelaxer(**kwargs)


# -- CHGNet: batched equals the ASE path -----------------------------------------------
@pytest.mark.slow
def test_chgnet_batched_energies_match_the_ase_path():
    pytest.importorskip("chgnet")
    from ase_fuse.calculators.chgnet import chgnet_tier
    structures = [bulk("Si", "diamond", a=5.6), bulk("NaCl", "rocksalt", a=5.5),
                  make_rutile()]
    batched = BatchedRelaxer("chgnet", fmax=0.05, steps=300, batch_size=3)
    results = batched.relax_many(structures)
    ase_path = TieredRelaxer([chgnet_tier(fmax=0.05, steps=300, optimizer="FIRE")])
    for atoms, result in zip(structures, results):
        reference = ase_path.relax(atoms)
        assert result.ok and reference.ok
        assert abs(result.energy_per_atom - reference.energy_per_atom) < 0.005
    assert batched.model_calls < sum(r.steps for r in results)


# -- the search and lock-step walkers -----------------------------------------------------
def sequence(db_path):
    rows = RunRecords(db_path).rows()
    return [(r.step, r.slot, r.get("move"), r.status,
             round(r.get("energy_per_atom", math.nan), 9), r.get("accepted"))
            for r in sorted(rows, key=lambda r: (r.step, r.slot))]


def test_initial_population_is_relaxed_as_one_batch(tmp_path):
    relaxer = CountingBatch()
    opt = FuseBasinHopping("Cu", relaxer=relaxer, max_atoms=4, initial_population=5,
                           seed=2, directory=tmp_path, logfile=None)
    opt.run(steps=1)
    assert relaxer.sizes[0] == 5
    assert opt.records.count(step=0) == 5 and opt.records.check_integrity() == []


def test_walker_sequence_does_not_depend_on_its_neighbours(tmp_path):
    options = dict(max_atoms=4, initial_population=3, steps=4)
    alone = run_walkers("Cu", [3], batch_relaxer=CountingBatch(),
                        directory=tmp_path / "alone", **options)
    relaxer = CountingBatch()
    pair = run_walkers("Cu", [3, 4], batch_relaxer=relaxer, directory=tmp_path / "pair",
                       **options)
    assert sequence(alone[0].records.path) == sequence(pair[0].records.path)
    assert sequence(pair[0].records.path) != sequence(pair[1].records.path)
    # the same structures and moves; a batch of other neighbours may change the last
    # bits of a batched sum
    assert alone[0].best_energy == pytest.approx(pair[0].best_energy, abs=1e-9)
    assert relaxer.sizes[0] == 6                      # both initial populations at once
    assert 2 in relaxer.sizes                         # the two walkers' steps batched
    assert all(w.nsteps == 4 for w in pair)
    assert all(w.records.check_integrity() == [] for w in pair)


def test_walkers_refuse_bad_input(tmp_path):
    with pytest.raises(InputError, match="^seeds:"):
        run_walkers("Cu", [1, 1], batch_relaxer=CountingBatch(), directory=tmp_path)
    with pytest.raises(InputError, match="^batch_relaxer:"):
        run_walkers("Cu", [1], batch_relaxer=None, directory=tmp_path)
