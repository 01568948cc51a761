"""CHGNet adapter: energies, relaxation, batched single points, isolated atoms."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

pytest.importorskip("chgnet", reason="chgnet not installed")

from ase_fuse.calculators import chgnet as chgnet_mod  # noqa: E402
from ase_fuse.calculators.tiers import TieredRelaxer  # noqa: E402


@pytest.fixture(scope="module")
def calc():
    import torch
    torch.set_num_threads(1)
    return chgnet_mod.chgnet_calculator()


def si2():
    return bulk("Si", "diamond", a=5.431)  # experimental lattice constant


def test_model_loaded_once(calc):
    assert chgnet_mod.load_chgnet_model() is calc.model
    assert chgnet_mod.chgnet_calculator().model is calc.model


def test_si_energy_in_chgnet_range(calc):
    atoms = si2()
    atoms.calc = calc
    per_atom = atoms.get_potential_energy() / len(atoms)
    # CHGNet (MPtrj, PBE-like) gives about -5.3 to -5.4 eV/atom for diamond Si
    assert np.isfinite(per_atom)
    assert -5.6 < per_atom < -5.1
    # at the experimental lattice constant the symmetric structure has ~zero forces
    assert np.abs(atoms.get_forces()).max() < 1e-3
    assert atoms.get_stress().shape == (6,)


def test_relaxation_of_rattled_si_lowers_energy(calc):
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.rattle(0.1, seed=0)
    start = atoms.copy()
    start.calc = calc
    e0 = start.get_potential_energy()
    result = TieredRelaxer(chgnet_mod.chgnet_tier(steps=300)).relax(atoms)
    assert result.failed is None
    assert result.energy < e0 - 0.05
    assert result.tiers[0].steps > 0 and result.tiers[0].fmax < 0.05
    assert result.atoms.calc.__class__.__name__ == "SinglePointCalculator"


def test_batched_single_points_match_one_at_a_time(calc):
    strained = si2()
    strained.set_cell(strained.cell * 1.03, scale_atoms=True)
    rattled = bulk("Si", "diamond", a=5.431, cubic=True)
    rattled.rattle(0.05, seed=2)
    nacl = bulk("NaCl", "rocksalt", a=5.64)
    structures = [si2(), strained, rattled, nacl, bulk("Cu", "fcc", a=3.615)]
    batched = chgnet_mod.chgnet_single_points(structures, batch_size=2)
    single = []
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = calc
        single.append(atoms.get_potential_energy() / len(atoms))
    assert np.allclose(batched, single, atol=1e-3)
    assert len(set(np.round(batched, 3))) == len(structures)


def isolated_pair():
    return Atoms("Si2", positions=[[0, 0, 0], [7.0, 7.0, 7.0]], cell=[14, 14, 14], pbc=True)


def test_isolated_atom_fails_without_calling_model(calc, monkeypatch):
    def forbidden(*args, **kw):
        raise AssertionError("CHGNet model called on a structure with an isolated atom")

    monkeypatch.setattr(calc.model, "predict_graph", forbidden)
    result = TieredRelaxer(chgnet_mod.chgnet_tier()).relax(isolated_pair())
    assert result.failed is not None and "isolated" in result.failed
    # also through the calculator alone, and the batched path gives NaN
    guard = pytest.raises(Exception, match="isolated")
    atoms = isolated_pair()
    atoms.calc = chgnet_mod.chgnet_calculator()
    with guard:
        atoms.get_potential_energy()
    energies = chgnet_mod.chgnet_single_points([isolated_pair()])
    assert np.isnan(energies).all()


def test_bad_batch_size():
    from ase_fuse.errors import InputError
    with pytest.raises(InputError, match="batch_size"):
        chgnet_mod.chgnet_single_points([si2()], batch_size=0)


def test_isolated_atoms_agrees_with_checks_module():
    from ase_fuse.checks import nearest_neighbour_distances
    rng = np.random.default_rng(3)
    for _ in range(5):
        atoms = Atoms("Si4", scaled_positions=rng.random((4, 3)),
                      cell=np.diag(rng.uniform(4, 16, 3)), pbc=True)
        expected = np.flatnonzero(~np.isfinite(nearest_neighbour_distances(atoms, 6.0)))
        assert np.array_equal(chgnet_mod.isolated_atoms(atoms), expected)
    assert list(chgnet_mod.isolated_atoms(isolated_pair())) == [0, 1]


def test_one_pass_efs_matches_chgnets_own_forward():
    """chgnet_efs (one backward pass) gives CHGNet's own energies, forces and stress."""
    from pymatgen.io.ase import AseAtomsAdaptor
    from ase.spacegroup import crystal

    rutile = crystal(["Ti", "O"], [(0, 0, 0), (0.3048, 0.3048, 0)], spacegroup=136,
                     cellpar=[4.594, 4.594, 2.959, 90, 90, 90])
    rattled = bulk("NaCl", "rocksalt", a=5.5) * (2, 1, 1)
    rattled.rattle(0.1, seed=1)
    rattled.set_cell(rattled.cell * [1.03, 0.98, 1.0], scale_atoms=True)
    model = chgnet_mod.load_chgnet_model()
    graphs = [model.graph_converter(AseAtomsAdaptor.get_structure(a))
              for a in (rutile, rattled)]
    fast = chgnet_mod.chgnet_efs(model, graphs)
    ref = model(graphs, task="efs")
    for k, atoms in enumerate((rutile, rattled)):
        e_ref = float(ref["e"][k]) * (len(atoms) if model.is_intensive else 1)
        assert fast[k]["energy"] == pytest.approx(e_ref, abs=1e-5)
        np.testing.assert_allclose(fast[k]["forces"], ref["f"][k].detach().numpy(),
                                   atol=1e-4)
        stress_ref = ref["s"][k].detach().numpy() / 160.21766208
        np.testing.assert_allclose(fast[k]["stress"], stress_ref, atol=1e-6)
    # a rattled, strained cell has real forces and stress to compare
    assert np.abs(fast[1]["forces"]).max() > 0.05
    assert np.abs(fast[1]["stress"]).max() > 1e-3


def test_fast_calculator_matches_chgnets_calculator():
    atoms = bulk("NaCl", "rocksalt", a=5.5) * (2, 1, 1)
    atoms.rattle(0.1, seed=2)
    results = []
    for fast in (True, False):
        a = atoms.copy()
        a.calc = chgnet_mod.chgnet_calculator(fast=fast)
        results.append((a.get_potential_energy(), a.get_forces(), a.get_stress()))
    (e1, f1, s1), (e2, f2, s2) = results
    assert e1 == pytest.approx(e2, abs=1e-5)
    np.testing.assert_allclose(f1, f2, atol=1e-4)
    np.testing.assert_allclose(s1, s2, atol=1e-6)
    # magnetic moments still come from CHGNet's own path
    a = atoms.copy()
    a.calc = chgnet_mod.chgnet_calculator()
    assert a.get_magnetic_moments().shape == (len(a),)
