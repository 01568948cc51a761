"""FUSE random generator: composition, contacts, lattice types, stacking, seeding, errors."""

import itertools
from collections import Counter

import numpy as np
import pytest
from ase import Atoms

from ase.neighborlist import neighbor_list

from ase_fuse.checks import Limits, nearest_neighbour_distances, shortest_contacts
from ase_fuse.composition import Composition
from ase_fuse.errors import CompositionError, GenerationError, InputError
from ase_fuse.generators.fuse import FuseGenerator, lattice_grids
from ase_fuse.submodules import SITES, decompose

FORMULAS = ["Ca3Ti2O7", "CoAs2", "Mn", "Pb5(AsO4)3Cl", "Li4OBrCl"]
N_STRUCTURES = 200


def shortest_scaled_contact(atoms, radii):
    """min over all pairs and periodic images of d_ij / (r_i + r_j), by brute force.

    Images are enumerated as far as the cell's plane spacings require for the largest
    possible contact limit, independently of ASE's neighbour list.
    """
    r = np.array([radii[s] for s in atoms.get_chemical_symbols()])
    reach = 2 * r.max()
    cell = atoms.cell.array
    spacing = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)  # distance between planes
    n = np.ceil(reach / spacing).astype(int)
    shifts = np.array(list(itertools.product(*(range(-k, k + 1) for k in n)))) @ cell
    diff = atoms.positions[None, :, None, :] - atoms.positions[:, None, None, :]
    d = np.linalg.norm(diff + shifts[None, None, :, :], axis=-1)  # (i, j, image)
    zero = np.all(shifts == 0, axis=1)
    d[np.arange(len(atoms)), np.arange(len(atoms)), :] = np.where(
        zero, np.inf, d[np.arange(len(atoms)), np.arange(len(atoms)), :])
    return (d / (r[:, None, None] + r[None, :, None])).min()


@pytest.fixture(scope="module")
def batches():
    return {f: FuseGenerator(f, max_atoms=50, seed=7).generate_many(N_STRUCTURES)
            for f in FORMULAS}


@pytest.mark.parametrize("formula", FORMULAS)
def test_composition_size_and_contacts(batches, formula):
    comp = Composition(formula)
    factor = Limits().min_distance_factor
    for atoms in batches[formula]:
        z = comp.formula_units_of(atoms)
        assert z is not None and z == atoms.info["formula_units"]
        assert len(atoms) == z * comp.atoms_per_formula_unit <= 50
        assert shortest_scaled_contact(atoms, comp.radii) >= factor - 1e-9
        ratio = atoms.get_volume() / comp.sphere_volume(z)
        assert 0.5 <= ratio <= 4.0
        assert atoms.pbc.all()


@pytest.mark.parametrize("formula", FORMULAS)
def test_variety(batches, formula):
    structures = batches[formula]
    types = Counter(a.info["lattice_type"] for a in structures)
    assert len(types) >= 5  # cubic needs 2 n^3 sub-modules, not always possible
    assert len({a.info["formula_units"] for a in structures}) >= 2
    assert len({a.get_volume().round(6) for a in structures}) > 10


def test_info_and_submodules(batches):
    for atoms in batches["Ca3Ti2O7"] + batches["Li4OBrCl"]:
        info = atoms.info
        assert info["origin"] == "fuse"
        grid = info["submodule_grid"]
        assert isinstance(grid, list) and len(grid) == 3 and all(g >= 1 for g in grid)
        sub = decompose(atoms, grid=grid)
        assert sub.offsets is None or not sub.offsets.any()  # inside the cell
        assert sub.occupancy().max() <= 4
        assert 0.5 <= len(atoms) / (4 * sub.n_submodules) <= 1.0
        assert np.allclose(sub.local[:, 2], 0.5)  # sites at mid-height
        # in-plane: a site plus the layer's shift
        letters = info["stacking"]
        assert len(letters) == grid[2]
        gamma = atoms.cell.cellpar()[5]
        shifts = {"A": (0, 0), "B": (0.25, 0.25)} if abs(gamma - 90) < 1e-6 else \
            {"A": (0, 0), "B": (1 / 6, 1 / 3), "C": (1 / 3, 1 / 6)}
        expected_sites = [SITES[:, :2] + shifts[letters[k]] for k in sub.index[:, 2]]
        for xy, options in zip(sub.local[:, :2], expected_sites):
            assert np.min(np.abs(options - xy).max(axis=1)) < 1e-9
        # the cell is the grid of Ip x Ip x Ip/2 sub-modules
        ip = Composition("Ca3Ti2O7" if len(set(atoms.symbols)) == 3 else "Li4OBrCl").ip
        assert np.allclose(atoms.cell.lengths(), np.array(grid) * [ip, ip, ip / 2])


def test_stacking_rules(batches):
    for atoms in itertools.chain.from_iterable(batches.values()):
        letters = atoms.info["stacking"]
        gamma = atoms.cell.cellpar()[5]
        if abs(gamma - 90) < 1e-6:
            assert letters == "AB" * (len(letters) // 2) + "A" * (len(letters) % 2)
        elif len(letters) > 1:
            cyclic = letters + letters[0]
            assert all(x != y for x, y in zip(cyclic, cyclic[1:]))


def test_lattice_types_have_their_cells(batches):
    seen = set()
    for atoms in itertools.chain.from_iterable(batches.values()):
        a, b, c, alpha, beta, gamma = atoms.cell.cellpar()
        kind = atoms.info["lattice_type"]
        seen.add(kind)
        same = np.isclose
        if kind == "cubic":
            assert same(a, b) and same(b, c) and same([alpha, beta, gamma], 90).all()
        elif kind == "tetragonal":
            assert same(a, b) and not same(a, c) and same([alpha, beta, gamma], 90).all()
        elif kind == "hexagonal":
            assert same(a, b) and same([alpha, beta], 90).all() and same(gamma, 120)
        elif kind == "orthorhombic":
            assert not (same(a, b) or same(b, c) or same(a, c))
            assert same([alpha, beta, gamma], 90).all()
        elif kind == "monoclinic":
            assert same(alpha, 90) and same(gamma, 90) and not same(beta, 90)
        else:
            assert kind == "triclinic"
            assert same([alpha, beta, gamma], 90).sum() <= 1
        assert atoms.get_volume() > 0
    assert seen == {"cubic", "tetragonal", "hexagonal", "orthorhombic", "monoclinic",
                    "triclinic"}


def test_lattice_grids_respect_fill_and_type():
    table = lattice_grids(32)
    assert set(table) == {"cubic", "tetragonal", "hexagonal", "orthorhombic",
                          "monoclinic", "triclinic"}
    assert table["cubic"] == [(2, 2, 4)]  # 16 sub-modules = 64 sites for 32 atoms
    assert "cubic" not in lattice_grids(24)  # 64 sites would be only 3/8 full
    for kind, grids in table.items():
        for na, nb, nc in grids:
            assert 0.5 <= 32 / (4 * na * nb * nc) <= 1.0
            if kind in ("tetragonal", "hexagonal"):
                assert na == nb
    assert lattice_grids(1) == {}  # one atom cannot fill half a sub-module


def test_rejection_agrees_with_brute_force():
    """The checks the generator rejects with, on raw (unchecked) candidates of every
    lattice type, agree with brute-force contacts and with ASE's neighbour list."""
    flagged = 0
    for formula in ("Pb5(AsO4)3Cl", "Si6Al6B3Fe3NaO30F"):
        gen = FuseGenerator(formula, seed=4)
        radii = gen.composition.radii
        for _ in range(80):
            sub, info = gen.draw()
            atoms = sub.assemble(info)
            short = shortest_scaled_contact(atoms, radii) < 0.5
            flagged += short
            assert bool(shortest_contacts(atoms, radii, 0.5)) == short
            i, d = neighbor_list("id", atoms, 4.0)
            expected = np.full(len(atoms), np.inf)
            np.minimum.at(expected, i, d)
            assert np.allclose(nearest_neighbour_distances(atoms, 4.0), expected)
    assert flagged > 0  # the sample did contain candidates to reject


def same_structures(first, second):
    return len(first) == len(second) and all(
        a.get_chemical_symbols() == b.get_chemical_symbols()
        and np.array_equal(a.cell.array, b.cell.array)
        and np.array_equal(a.positions, b.positions) for a, b in zip(first, second))


def test_seeding():
    one = FuseGenerator("Ca3Ti2O7", seed=11).generate_many(15)
    two = FuseGenerator("Ca3Ti2O7", seed=11).generate_many(15)
    other = FuseGenerator("Ca3Ti2O7", seed=12).generate_many(15)
    from_rng = FuseGenerator("Ca3Ti2O7", rng=np.random.default_rng(11)).generate_many(15)
    assert same_structures(one, two)
    assert same_structures(one, from_rng)
    assert not same_structures(one, other)
    state = np.random.get_state()[1].copy()
    FuseGenerator("CoAs2", seed=1).generate_many(3)
    assert np.array_equal(np.random.get_state()[1], state)  # global state untouched


def test_fixed_formula_units_and_iteration():
    gen = FuseGenerator("CoAs2", max_atoms=30, seed=2, formula_units=[2, 4])
    assert {a.info["formula_units"] for a in gen.generate_many(20)} <= {2, 4}
    assert {a.info["formula_units"] for a in gen.generate_many(5, formula_units=3)} == {3}
    assert all(a.info["formula_units"] == 5 for a in
               FuseGenerator("CoAs2", max_atoms=30, seed=2).generate_many(4, formula_units=5))
    stream = iter(gen)
    first, second = next(stream), next(stream)
    assert isinstance(first, Atoms) and isinstance(second, Atoms)


def test_generation_error_when_impossible():
    gen = FuseGenerator("Ca3Ti2O7", seed=1, limits=Limits(min_distance_factor=2.0),
                        max_tries=8)
    with pytest.raises(GenerationError, match="Ca3Ti2O7 in 8 tries"):
        gen.generate()
    with pytest.raises(GenerationError, match="no sub-module grid"):
        FuseGenerator("Mn", max_atoms=1, seed=1).generate()
    with pytest.raises(GenerationError, match="volume ratio"):
        FuseGenerator("Mn", seed=1, limits=Limits(volume_window=(0.1, 0.2)),
                      max_tries=10).generate()


@pytest.mark.parametrize("kwargs, error, field", [
    (dict(composition="Ca3Xx2O7"), CompositionError, "formula"),
    (dict(composition="Ca3Ti2O7", max_atoms=11), CompositionError, "max_atoms"),
    (dict(composition="Ca3Ti2O7", max_atoms=0), CompositionError, "max_atoms"),
    (dict(composition="Ca3Ti2O7", formula_units=5), InputError, "formula_units"),
    (dict(composition="Ca3Ti2O7", formula_units=[0]), InputError, "formula_units"),
    (dict(composition="Ca3Ti2O7", formula_units=["two"]), InputError, "formula_units"),
    (dict(composition="Ca3Ti2O7", rng=np.random.default_rng(1), seed=1), InputError,
     "seed"),
    (dict(composition="Ca3Ti2O7", rng=42), InputError, "rng"),
    (dict(composition="Ca3Ti2O7", max_tries=0), InputError, "max_tries"),
    (dict(composition="Ca3Ti2O7", site_fill=(0.8, 0.5)), InputError, "site_fill"),
    (dict(composition=3), InputError, "composition"),
])
def test_bad_input(kwargs, error, field):
    with pytest.raises(error) as err:
        FuseGenerator(**kwargs)
    assert str(err.value).startswith(field + ":")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("n", [0, -3, 2.5, "4"])
def test_bad_count(n):
    with pytest.raises(InputError, match="^n:"):
        FuseGenerator("Mn", seed=1).generate_many(n)


def test_oxidation_state_composition():
    comp = Composition("Ca3Ti2O7", oxidation_states={"Ca": 2, "Ti": 4, "O": -2})
    gen = FuseGenerator(comp, max_atoms=24, seed=3)
    for atoms in gen.generate_many(10):
        assert comp.formula_units_of(atoms) in (1, 2)
        assert atoms.info["submodule_ip"] == pytest.approx(comp.ip)
