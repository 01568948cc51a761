"""TieredRelaxer: chains of calculators, records, single points, positions-only fallback."""

import warnings

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from ase_fuse.calculators.tiers import RelaxResult, Tier, TieredRelaxer
from ase_fuse.errors import InputError


def rattled_cu(seed=1):
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True)  # experimental a = 3.615 A
    atoms.rattle(0.05, seed=seed)
    return atoms


def lj_cu():
    # sigma = a / 2^(1/2) / 2^(1/6) puts the LJ minimum at the Cu nearest-neighbour distance
    return LennardJones(sigma=2.28, epsilon=0.4, rc=6.0, smooth=True)


class NoStressEMT(Calculator):
    """EMT energies and forces, without stress."""
    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        inner = EMT()
        self.results = {"energy": inner.get_potential_energy(self.atoms),
                        "forces": inner.get_forces(self.atoms)}


def test_two_tier_chain_relaxes_through_both_and_records():
    atoms = rattled_cu()
    before = atoms.get_positions().copy(), atoms.cell[:].copy()
    seen = []
    relaxer = TieredRelaxer([Tier(lj_cu(), name="lj", steps=300),
                             Tier(EMT, name="emt", steps=300)],
                            callback=lambda i, rec: seen.append((i, rec.name)))
    result = relaxer.relax(atoms)
    assert isinstance(result, RelaxResult)
    assert result.failed is None and result.converged
    assert [r.name for r in result.tiers] == ["lj", "emt"]
    assert seen == [(0, "lj"), (1, "emt")]
    for record in result.tiers:
        assert record.steps > 0 and record.wall_time > 0 and record.converged
        assert record.fmax <= 0.05 and record.cell_relaxed
    # final energy is the last tier's and matches a fresh EMT evaluation of the result
    assert result.energy == result.tiers[-1].energy
    check = result.atoms.copy()
    check.calc = EMT()
    assert check.get_potential_energy() == pytest.approx(result.energy, abs=1e-8)
    assert result.energy_per_atom == pytest.approx(result.energy / len(atoms))
    # relaxed EMT copper: forces small and the lattice near EMT's Cu minimum (~3.59 A)
    assert np.abs(check.get_forces()).max() < 0.06
    assert np.isclose(result.atoms.cell.lengths(), 3.59, atol=0.05).all()
    # the result carries a SinglePointCalculator, not the live calculator
    assert isinstance(result.atoms.calc, SinglePointCalculator)
    assert result.atoms.get_stress().shape == (6,)
    # the input is untouched
    assert atoms.calc is None
    assert np.array_equal(atoms.get_positions(), before[0])
    assert np.array_equal(atoms.cell[:], before[1])


def test_second_tier_starts_from_first_tier_geometry():
    atoms = rattled_cu(seed=3)
    first = TieredRelaxer([Tier(lj_cu(), name="lj")]).relax(atoms)
    chained = TieredRelaxer([Tier(lj_cu(), name="lj"),
                             Tier(EMT(), name="emt-sp", single_point=True)]).relax(atoms)
    assert chained.failed is None
    # a single point after LJ leaves the LJ geometry in place and gives EMT's energy there
    assert np.allclose(chained.atoms.positions, first.atoms.positions)
    ref = first.atoms.copy()
    ref.calc = EMT()
    assert chained.energy == pytest.approx(ref.get_potential_energy())


@pytest.mark.parametrize("kw", [{"single_point": True}, {"steps": 0}])
def test_single_point_tier_keeps_geometry(kw):
    atoms = rattled_cu()
    result = TieredRelaxer(Tier(EMT(), **kw)).relax(atoms)
    assert result.failed is None
    assert result.tiers[0].steps == 0
    assert np.allclose(result.atoms.positions, atoms.positions)
    ref = atoms.copy()
    ref.calc = EMT()
    assert result.energy == pytest.approx(ref.get_potential_energy())
    assert np.allclose(result.atoms.get_forces(), ref.get_forces())


def test_calculator_without_stress_relaxes_positions_only_with_warning():
    atoms = rattled_cu()
    with pytest.warns(RuntimeWarning, match="no stress"):
        result = TieredRelaxer(Tier(NoStressEMT(), name="nostress")).relax(atoms)
    assert result.failed is None and result.converged
    assert not result.tiers[0].cell_relaxed
    assert np.allclose(result.atoms.cell[:], atoms.cell[:])
    assert "stress" not in result.atoms.calc.results


def test_factory_called_lazily_once():
    calls = []

    def factory():
        calls.append(1)
        return EMT()

    tier = Tier(factory, name="lazy", single_point=True)
    relaxer = TieredRelaxer(tier)
    assert calls == []
    results = relaxer.relax_many([rattled_cu(1), rattled_cu(2)])
    assert calls == [1]
    assert all(r.failed is None for r in results)
    assert results[0].energy != results[1].energy


@pytest.mark.parametrize("optimizer", ["FIRE", "FIRE2", "BFGS", "LBFGS"])
def test_optimizers_by_name_lower_energy(optimizer):
    atoms = rattled_cu(seed=5)
    start = atoms.copy()
    start.calc = EMT()
    result = TieredRelaxer(Tier(EMT(), optimizer=optimizer, relax_cell=False)).relax(atoms)
    assert result.failed is None and result.converged
    assert result.energy < start.get_potential_energy()


def test_step_limit_small_force_is_not_converged_but_not_failed():
    atoms = rattled_cu(seed=7)
    result = TieredRelaxer(Tier(EMT(), steps=2, fmax=0.01, fail_force_factor=None)).relax(atoms)
    assert result.failed is None
    assert result.converged is False
    assert result.tiers[0].steps == 2


def test_bad_tier_arguments_raise_input_error():
    with pytest.raises(InputError, match="optimizer"):
        Tier(EMT(), optimizer="NEWTON")
    with pytest.raises(InputError, match="fmax"):
        Tier(EMT(), fmax=0)
    with pytest.raises(InputError, match="steps"):
        Tier(EMT(), steps=-1)
    with pytest.raises(InputError, match="calc"):
        Tier(42)
    with pytest.raises(InputError, match="tiers"):
        TieredRelaxer([])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Tier(EMT(), optimizer="BFGS")


def test_unit_cell_filter_relaxes_the_cell_too():
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from ase_fuse.calculators.tiers import Tier, TieredRelaxer
    atoms = bulk("Cu", "fcc", a=3.9)
    results = {}
    for name in ("frechet", "unit"):
        result = TieredRelaxer([Tier(EMT(), fmax=0.01, steps=300, cell_filter=name)]) \
            .relax(atoms)
        assert result.ok and result.converged
        results[name] = result
    # both find EMT's lattice constant (the cell really relaxed from a = 3.9 A)
    for result in results.values():
        assert abs(result.atoms.cell.cellpar()[0] * 2 ** 0.5 - 3.59) < 0.02
    assert results["unit"].energy_per_atom == pytest.approx(
        results["frechet"].energy_per_atom, abs=2e-4)


def test_unknown_cell_filter_is_a_clear_error():
    from ase.calculators.emt import EMT

    from ase_fuse.calculators.tiers import Tier
    from ase_fuse.errors import InputError
    with pytest.raises(InputError, match="cell_filter.*known: frechet, unit"):
        Tier(EMT(), cell_filter="exp")


def test_cached_frechet_filter_follows_ase_exactly_with_fewer_cell_gradients():
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    from ase_fuse.calculators.tiers import CachedFrechetCellFilter

    if not hasattr(FrechetCellFilter(bulk("Cu")), "_utility"):
        pytest.skip("counts calls through FrechetCellFilter._utility, an ASE >= 3.29 internal")

    def relax(filter_class):
        atoms = bulk("Cu", "fcc", a=3.8, cubic=True)
        atoms.rattle(0.05, seed=3)
        atoms.calc = EMT()
        target = filter_class(atoms)
        calls = []
        inner = target._utility.get_forces_frechet

        def counted(*args, **kwargs):
            calls.append(1)
            return inner(*args, **kwargs)

        target._utility.get_forces_frechet = counted
        optimizer = FIRE(target, logfile=None)
        optimizer.run(fmax=0.01, steps=60)
        return atoms, optimizer.nsteps, len(calls), target.stress

    class ScipyMath(CachedFrechetCellFilter):   # the cache alone: bit for bit ASE's
        fast_math = False

    plain, plain_steps, plain_calls, plain_stress = relax(FrechetCellFilter)
    cached, cached_steps, cached_calls, cached_stress = relax(ScipyMath)
    assert cached_steps == plain_steps > 5
    np.testing.assert_array_equal(cached.positions, plain.positions)
    np.testing.assert_array_equal(cached.cell.array, plain.cell.array)
    np.testing.assert_array_equal(cached_stress, plain_stress)
    assert cached_calls <= cached_steps + 1 < plain_calls
    # with the eigendecomposition's matrix functions: the same path, to rounding
    fast, fast_steps, fast_calls, fast_stress = relax(CachedFrechetCellFilter)
    assert fast_steps == plain_steps and fast_calls == cached_calls
    np.testing.assert_allclose(fast.positions, plain.positions, atol=1e-9)
    np.testing.assert_allclose(fast.cell.array, plain.cell.array, atol=1e-9)
    np.testing.assert_allclose(fast_stress, plain_stress, atol=1e-9)


def test_cell_matrix_functions_agree_with_scipy_and_fall_back_where_unsafe():
    from scipy.linalg import expm, expm_frechet, logm

    from ase_fuse.calculators import cellmath
    from ase_fuse.calculators.tiers import CachedFrechetCellFilter

    rng = np.random.default_rng(7)
    frechet = cellmath.make_expm_frechet()
    for scale in (0.0, 0.01, 0.2, 0.6):
        for _ in range(25):
            f = np.eye(3) + scale * rng.standard_normal((3, 3))
            if np.linalg.det(f) <= 0.1:
                continue
            np.testing.assert_allclose(cellmath.logm(f), logm(f), atol=1e-11)
            a = logm(f)
            direction = np.zeros((3, 3))
            direction[rng.integers(3), rng.integers(3)] = 1.0
            np.testing.assert_allclose(frechet(a, direction, compute_expm=False),
                                       expm_frechet(a, direction, compute_expm=False),
                                       atol=1e-11)
            e, d = frechet(a, direction)
            np.testing.assert_allclose(e, expm(a), atol=1e-12)
    # a defective matrix (one Jordan block): eigenvectors singular, scipy's answer
    jordan = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(cellmath.logm(jordan), logm(jordan), atol=1e-12)
    np.testing.assert_allclose(frechet(jordan, np.eye(3), compute_expm=False),
                               expm_frechet(jordan, np.eye(3), compute_expm=False),
                               atol=1e-12)
    # a negative eigenvalue has no real logarithm: scipy decides (complex result)
    flip = np.diag([-1.0, 1.0, 1.0])
    assert np.iscomplexobj(cellmath.logm(flip)) and np.iscomplexobj(logm(flip))
    # the filter uses them (on ASE's helper where it has one)
    target = CachedFrechetCellFilter(bulk("Cu"))
    holder = getattr(target, "_utility", target)
    assert holder.logm is cellmath.logm


def test_an_ase_optimizer_class_is_a_tier_optimizer():
    from ase.optimize import MDMin
    from ase.optimize.optimize import Optimizer

    calls = []

    class CountingMDMin(MDMin):       # a user's own Optimizer subclass
        def step(self, *args, **kwargs):
            calls.append(1)
            return super().step(*args, **kwargs)

    tier = Tier(EMT(), fmax=0.05, steps=300, optimizer=CountingMDMin,
                optimizer_kwargs={"dt": 0.1}, name="emt")
    assert tier.optimizer == "CountingMDMin" and "CountingMDMin" in repr(tier)
    result = TieredRelaxer([tier]).relax(rattled_cu())
    assert not result.failed and result.tiers[0].steps == len(calls) > 0
    assert issubclass(tier.optimizer_class, Optimizer)
    for bad in (int, "Newton", MDMin(bulk("Cu"))):
        with pytest.raises(InputError) as err:
            Tier(EMT(), optimizer=bad)
        assert err.value.field == "optimizer"
