"""Every way a relaxation can go wrong gives ``failed="<reason>"``, never an exception.

Each test uses a small calculator built to fail in one way, puts a spy tier after
it and checks that the spy is never called (no later tier runs after a failure).
"""

import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, SCFError, all_changes
from ase.calculators.emt import EMT

from ase_fuse.calculators.guards import GuardedCalculator, GuardFailure, Guards
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.errors import InputError


class Scripted(Calculator):
    """Energy, forces and stress from ``model(atoms) -> (e, f, s)``; records each geometry."""
    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, model, **kw):
        super().__init__(**kw)
        self.model = model
        self.seen = []

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.seen.append(self.atoms.copy())
        energy, forces, stress = self.model(self.atoms)
        self.results = {"energy": energy, "forces": forces, "stress": stress}


class Spy(EMT):
    calls = 0

    def calculate(self, *args, **kw):
        Spy.calls += 1
        super().calculate(*args, **kw)


def cu():
    return bulk("Cu", "fcc", a=3.61, cubic=True)


def calm(atoms):
    return 0.0, np.zeros((len(atoms), 3)), np.zeros(6)


def run_failing(model, atoms=None, guards=None, time_limit=None, **tier_kw):
    Spy.calls = 0
    calc = Scripted(model)
    relaxer = TieredRelaxer([Tier(calc, name="bad", **tier_kw), Tier(Spy(), name="next")],
                            guards=guards, time_limit=time_limit)
    atoms = cu() if atoms is None else atoms
    result = relaxer.relax(atoms)
    assert result.failed is not None and result.failed.startswith("bad: ")
    assert len(result.tiers) == 1 and result.tiers[0].failed
    assert Spy.calls == 0, "a tier ran after a failure"
    assert result.energy is None
    assert atoms.calc is None
    return result, calc


def test_calculator_exception():
    def model(atoms):
        raise RuntimeError("segfault in back-end")
    result, _ = run_failing(model)
    assert "calculator error" in result.failed and "segfault" in result.failed


def test_nan_energy():
    result, _ = run_failing(lambda a: (np.nan,) + calm(a)[1:])
    assert "non-finite energy" in result.failed


def test_nan_forces():
    def model(atoms):
        forces = np.zeros((len(atoms), 3))
        forces[0, 0] = np.nan
        return 0.0, forces, np.zeros(6)
    result, _ = run_failing(model)
    assert "non-finite forces" in result.failed


def test_huge_forces():
    def model(atoms):
        forces = np.zeros((len(atoms), 3))
        forces[1] = [1e6, 0, 0]
        return 0.0, forces, np.zeros(6)
    result, _ = run_failing(model)
    assert "huge forces" in result.failed


def test_scf_error():
    def model(atoms):
        raise SCFError("electronic loop did not converge in 60 steps")
    result, _ = run_failing(model)
    assert "SCF not converged" in result.failed


def test_cell_expansion_is_stopped():
    # E = -k V: the stress (1/V dE/de = -k) drives the cell to expand without bound
    def model(atoms):
        return -0.5 * atoms.get_volume(), np.zeros((len(atoms), 3)), -0.5 * np.array(
            [1, 1, 1, 0, 0, 0.0])
    result, calc = run_failing(model, steps=2000)
    assert "cell exploded" in result.failed
    start = cu().get_volume()
    assert max(a.get_volume() for a in calc.seen) <= 5.0 * start


def test_absolute_volume_window():
    def model(atoms):
        return -0.5 * atoms.get_volume(), np.zeros((len(atoms), 3)), -0.5 * np.array(
            [1, 1, 1, 0, 0, 0.0])
    guards = Guards(volume_per_atom_window=(5.0, 20.0), volume_ratio_window=None)
    result, calc = run_failing(model, guards=guards, steps=2000)
    assert "cell exploded" in result.failed and "per atom" in result.failed
    assert max(a.get_volume() / len(a) for a in calc.seen) <= 20.0


def spring(i, j, k=5.0):
    """Pull atoms i and j together with a zero-length spring (minimum image ignored)."""
    def model(atoms):
        d = atoms.positions[j] - atoms.positions[i]
        forces = np.zeros((len(atoms), 3))
        forces[i], forces[j] = 2 * k * d, -2 * k * d
        return k * float(d @ d), forces, np.zeros(6)
    return model


def test_atoms_pulled_together():
    atoms = cu()
    result, calc = run_failing(spring(0, 1), atoms=atoms, relax_cell=False, steps=2000)
    assert "too close" in result.failed
    # the calculator never saw the pair closer than the guard's limit
    assert min(a.get_distance(0, 1) for a in calc.seen) >= 0.5


def test_atom_pushed_far_away():
    cluster = Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [1.25, 2.1, 0]], pbc=False)

    def model(atoms):
        forces = np.zeros((len(atoms), 3))
        forces[0] = [-1.0, 0, 0]  # push atom 0 away from the others along -x
        return float(atoms.positions[0, 0]), forces, np.zeros(6)
    result, calc = run_failing(model, atoms=cluster, relax_cell=False, steps=2000)
    assert "isolated" in result.failed and "atom 0" in result.failed
    nearest = [min(a.get_distance(0, 1), a.get_distance(0, 2)) for a in calc.seen]
    assert max(nearest) <= 6.0 + 1e-9  # never computed once atom 0 was isolated


def test_step_limit_with_large_forces_fails():
    def model(atoms):
        forces = np.tile([2.0, 0, 0], (len(atoms), 1))  # uniform push: never relaxes
        return 0.0, forces, np.zeros(6)
    result, _ = run_failing(model, relax_cell=False, steps=3, fmax=0.05)
    assert "not converged" in result.failed and "3 steps" in result.failed


def test_time_limit():
    def model(atoms):
        time.sleep(0.15)
        forces = np.zeros((len(atoms), 3))
        forces[0] = [0.3, 0, 0]
        return 0.0, forces, np.zeros(6)
    t0 = time.monotonic()
    result, _ = run_failing(model, time_limit=0.5, relax_cell=False, steps=1000,
                            fail_force_factor=None)
    assert "time limit" in result.failed
    assert time.monotonic() - t0 < 3.0


def test_factory_that_cannot_build():
    def factory():
        raise OSError("model file missing")
    Spy.calls = 0
    result = TieredRelaxer([Tier(factory, name="bad"), Tier(Spy(), name="next")]).relax(cu())
    assert "could not create calculator" in result.failed and "model file" in result.failed
    assert Spy.calls == 0


def test_guard_runs_before_calculator_sees_collapsed_cell():
    # E = +k V: the stress drives the cell to collapse; the calculator must never be
    # asked about a geometry below the guard threshold
    threshold = 0.5
    start = cu().get_volume()

    def model(atoms):
        assert atoms.get_volume() >= threshold * start - 1e-9, \
            "calculator called on a collapsed cell"
        return 2.0 * atoms.get_volume(), np.zeros((len(atoms), 3)), 2.0 * np.array(
            [1, 1, 1, 0, 0, 0.0])
    guards = Guards(volume_ratio_window=(threshold, 2.0), min_distance=None)
    result, calc = run_failing(model, guards=guards, steps=5000)
    assert "cell collapsed" in result.failed
    assert len(calc.seen) > 2  # it did optimise for a while before being stopped
    assert min(a.get_volume() for a in calc.seen) >= threshold * start - 1e-9


def test_guarded_calculator_raises_guard_failure_directly():
    atoms = cu()
    atoms.positions[1] = atoms.positions[0] + [0.1, 0, 0]
    inner = Scripted(calm)
    atoms.calc = GuardedCalculator(inner, Guards())
    with pytest.raises(GuardFailure) as info:
        atoms.get_potential_energy()
    assert info.value.kind == "too-close"
    assert inner.seen == []


def test_covalent_radius_distance_guard():
    atoms = cu()
    atoms.positions[1] = atoms.positions[0] + [1.2, 0, 0]  # Cu-Cu covalent sum is 2.64 A
    inner = Scripted(calm)
    atoms.calc = GuardedCalculator(inner, Guards(min_distance_factor=0.6))
    with pytest.raises(GuardFailure, match="too close"):
        atoms.get_potential_energy()
    atoms.calc = GuardedCalculator(inner, Guards(min_distance_factor=0.4))
    assert atoms.get_potential_energy() == 0.0


def test_bad_guard_settings():
    with pytest.raises(InputError, match="volume_ratio_window"):
        Guards(volume_ratio_window=(2.0, 1.0))
    with pytest.raises(InputError, match="min_distance"):
        Guards(min_distance=-1)


@pytest.mark.parametrize("seed", range(4))
def test_pair_distances_match_ase_neighbour_list(seed):
    from ase.neighborlist import neighbor_list

    from ase_fuse.calculators.guards import pair_distances
    rng = np.random.default_rng(seed)
    cell = np.diag(rng.uniform(2.5, 7.0, 3)) + np.triu(rng.uniform(-2, 2, (3, 3)), 1)
    pbc = [True, True, True] if seed < 3 else [True, False, True]
    atoms = Atoms("Cu5", scaled_positions=rng.random((5, 3)), cell=cell, pbc=pbc)
    i, j, d = pair_distances(atoms, 6.0)
    ai, aj, ad = neighbor_list("ijd", atoms, 6.0)
    # every ASE pair distance appears twice in the full list and once in the half list
    assert np.allclose(np.sort(np.concatenate([d, d])), np.sort(ad))
    # the dense path and the fallback agree
    fi, fj, fd = pair_distances(atoms, 6.0, max_work=0)
    assert np.allclose(np.sort(fd), np.sort(d))
