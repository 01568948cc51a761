"""Sub-module decomposition: exact round trips on real crystals and the garnet grid."""

import numpy as np
import pytest

from ase_fuse.composition import Composition
from ase_fuse.submodules import SITES, SubmoduleGrid, decompose, grid_shape

CRYSTALS = {"rutile": "TiO2", "garnet": "Ca3Al2Si3O12", "quartz": "SiO2",
            "triclinic": "CaSiO2", "rocksalt": "NaCl", "copper": "Cu"}


def assert_same_structure(a, b):
    assert np.allclose(a.cell.array, b.cell.array, atol=1e-12)
    assert a.get_chemical_symbols() == b.get_chemical_symbols()
    assert np.abs(a.positions - b.positions).max() < 1e-8
    assert list(a.pbc) == list(b.pbc)


def assert_each_atom_in_one_submodule(sub):
    # one index per atom, inside the grid, and a local position in [0, 1)
    assert sub.index.shape == (len(sub), 3)
    assert np.all(sub.index >= 0) and np.all(sub.index < np.array(sub.grid))
    assert np.all(sub.local >= -1e-9) and np.all(sub.local < 1 + 1e-9)
    assert sub.occupancy().sum() == len(sub)
    members = np.concatenate([sub.atoms_in(ijk) for ijk in np.ndindex(*sub.grid)])
    assert sorted(members) == list(range(len(sub)))


def independent_submodule_of(atoms, grid):
    """Sub-module of each atom computed directly: floor(wrapped fraction * grid)."""
    frac = np.linalg.solve(atoms.cell.array.T, atoms.positions.T).T
    frac = frac - np.floor(frac + 1e-9)
    return np.minimum(np.floor(frac * grid + 1e-9).astype(int), np.array(grid) - 1)


@pytest.mark.parametrize("name", ["rutile", "garnet", "quartz", "triclinic", "rocksalt",
                                  "copper"])
def test_round_trip_is_exact(name, request):
    atoms = request.getfixturevalue(name)
    sub = decompose(atoms, CRYSTALS[name])
    assert_each_atom_in_one_submodule(sub)
    assert np.array_equal(sub.index, independent_submodule_of(atoms, sub.grid))
    assert_same_structure(sub.assemble(), atoms)


def test_atoms_outside_the_cell_round_trip(triclinic, quartz):
    for atoms, formula in ((triclinic, "CaSiO2"), (quartz, "SiO2")):
        shifted = atoms.copy()
        shifts = np.array([[-1, 0, 2], [0, -2, 0], [1, 1, -1]])
        frac = shifted.get_scaled_positions(wrap=False)
        frac[:3] += shifts  # negative and > 1 fractional coordinates
        shifted.set_scaled_positions(frac)
        assert (shifted.get_scaled_positions(wrap=False) < 0).any()
        sub = decompose(shifted, formula)
        assert_each_atom_in_one_submodule(sub)
        assert_same_structure(sub.assemble(), shifted)
        # wrapping drops the image offsets: same sub-modules, positions in the cell
        wrapped = sub.wrapped().assemble()
        # compared modulo 1 as a periodic difference: -5e-17 and 0 are the same place
        # (a plain ``% 1.0`` on both sides puts them at 1.0 and 0.0)
        diff = wrapped.get_scaled_positions(wrap=False) - shifted.get_scaled_positions()
        assert np.allclose(diff - np.round(diff), 0.0, atol=1e-9)


def test_garnet_grid(garnet):
    comp = Composition("Ca3Al2Si3O12")
    assert comp.ip == pytest.approx(4.24, abs=0.005)
    sub = decompose(garnet, comp)
    assert sub.grid == (3, 3, 6) == grid_shape(garnet.cell.lengths(), comp.ip)
    assert sub.n_submodules == 54
    assert sub.n_modules == 6
    assert sub.occupancy().shape == (3, 3, 6)
    # each module is a 3 x 3 layer holding the atoms with k-th sixth of c
    frac_c = garnet.get_scaled_positions()[:, 2]
    for k in range(6):
        in_layer = np.flatnonzero((frac_c >= k / 6 - 1e-9) & (frac_c < (k + 1) / 6 - 1e-9))
        assert sorted(sub.atoms_in_module(k)) == sorted(in_layer)
    assert sum(len(sub.atoms_in_module(k)) for k in range(6)) == 160
    # the sub-module cell is the crystal cell over the grid: about Ip x Ip x Ip/2
    assert np.allclose(np.diag(sub.submodule_cell), [11.85 / 3, 11.85 / 3, 11.85 / 6])


def test_explicit_grid_and_ip(rutile):
    sub = decompose(rutile, grid=(2, 2, 1))
    assert sub.grid == (2, 2, 1)
    assert_same_structure(sub.assemble(), rutile)
    assert decompose(rutile, ip=2.0).grid == grid_shape(rutile.cell.lengths(), 2.0)
    with pytest.raises(ValueError):
        decompose(rutile)


def test_with_cell_keeps_local_positions(rutile):
    sub = decompose(rutile, "TiO2")
    bigger = sub.with_cell(rutile.cell.array * 1.1)
    atoms = bigger.assemble()
    assert np.allclose(atoms.get_scaled_positions(), rutile.get_scaled_positions(),
                       atol=1e-9)
    assert np.allclose(atoms.cell.array, rutile.cell.array * 1.1)


def test_sites_and_copy():
    assert SITES.shape == (4, 3)
    assert np.allclose(SITES[:, 2], 0.5)
    sub = SubmoduleGrid(np.eye(3) * 4, (1, 1, 2), ["Mn", "Mn"], [[0, 0, 0], [0, 0, 1]],
                        [SITES[0], SITES[2]])
    twin = sub.copy()
    twin.local[0, 0] = 0.25
    assert sub.local[0, 0] == 0.0  # deep copy
    assert np.allclose(sub.assemble().positions, [[0, 0, 1], [2, 2, 3]])
    with pytest.raises(ValueError):
        SubmoduleGrid(np.eye(3), (1, 1, 1), ["Mn"], [[0, 0, 1]], [[0, 0, 0]])
