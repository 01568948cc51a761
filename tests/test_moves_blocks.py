"""Moves 7-10: sub-module swaps, module swaps, re-shaping and site mutation.

The expected sub-module contents are computed here with plain numpy from the
fractional coordinates (not with ase_fuse.submodules), so the test is independent.
"""

import numpy as np
import pytest
from ase import Atoms

from ase_fuse.composition import Composition
from ase_fuse.moves import ALL_MOVES
from ase_fuse.submodules import SITES
from moves_helpers import STRUCTURES, apply_checked, context, cu, nacl

SEEDS = range(5)
CASES = {**STRUCTURES, "NaCl-2x2x1": lambda: nacl().repeat((2, 2, 1))}


def formula_of(name):
    return name.split("-")[0]


def ip_grid(atoms, formula):
    ip = Composition(formula).ip
    a, b, c = atoms.cell.lengths()
    return tuple(max(1, int(round(x))) for x in (a / ip, b / ip, 2 * c / ip))


def split(atoms, grid):
    """(index, local) of each atom on ``grid``, from wrapped fractional coordinates."""
    frac = atoms.cell.scaled_positions(atoms.positions)
    frac -= np.floor(frac + 1e-9)
    scaled = frac * np.array(grid)
    index = np.clip(np.floor(scaled + 1e-9).astype(int), 0, np.array(grid) - 1)
    return index, scaled - index


def contents(atoms, grid):
    """{(i, j, k): sorted [(symbol, local rounded)]} for every sub-module."""
    index, local = split(atoms, grid)
    local = np.round(local, 4) % 1.0
    table = {ijk: [] for ijk in np.ndindex(*grid)}
    for s, ijk, loc in zip(atoms.get_chemical_symbols(), map(tuple, index), local):
        table[ijk].append((s, *np.round(loc, 4).tolist()))
    return {k: sorted(v) for k, v in table.items()}


def run(number, name, seed):
    return apply_checked(number, CASES[name](), context(formula_of(name)), seed)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", SEEDS)
def test_swap_submodules_exchanges_two_differing_contents(name, seed):
    atoms, new, origin = run(7, name, seed)
    grid = ip_grid(atoms, formula_of(name))
    assert tuple(origin["grid"]) == grid
    a, b = (tuple(x) for x in origin["submodules"])
    old, now = contents(atoms, grid), contents(new, grid)
    assert old[a] != old[b]
    assert now[a] == old[b] and now[b] == old[a]
    for ijk in old:
        if ijk not in (a, b):
            assert now[ijk] == old[ijk]
    assert np.allclose(new.cell.array, atoms.cell.array)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", SEEDS)
def test_swap_modules_exchanges_two_layers(name, seed):
    atoms, new, origin = run(8, name, seed)
    grid = ip_grid(atoms, formula_of(name))
    nc = grid[2]
    a, b = origin["modules"]
    assert a != b and 0 <= a < nc and 0 <= b < nc
    old_frac = atoms.cell.scaled_positions(atoms.positions) % 1.0
    new_frac = new.get_scaled_positions()
    layer, _ = split(atoms, grid)
    expected = old_frac.copy()
    expected[layer[:, 2] == a, 2] += (b - a) / nc
    expected[layer[:, 2] == b, 2] += (a - b) / nc
    diff = new_frac - expected
    diff -= np.round(diff)  # compare positions modulo the cell
    assert np.allclose(diff, 0, atol=1e-8)
    assert np.allclose(new.cell.array, atoms.cell.array)
    assert contents(atoms, grid) != contents(new, grid) or a == b


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", SEEDS)
def test_reshape_lays_the_same_submodules_on_a_new_grid(name, seed):
    atoms, new, origin = run(9, name, seed)
    old_grid, new_grid = tuple(origin["old_grid"]), tuple(origin["new_grid"])
    assert old_grid == ip_grid(atoms, formula_of(name))
    assert new_grid != old_grid and np.prod(new_grid) == np.prod(old_grid)
    sub = atoms.cell.array / np.array(old_grid)[:, None]
    assert np.allclose(new.cell.array, sub * np.array(new_grid)[:, None])
    assert np.allclose(new.cell.angles(), atoms.cell.angles())
    old_index, old_local = split(atoms, old_grid)
    new_index, new_local = split(new, new_grid)
    flat = np.ravel_multi_index(old_index.T, old_grid)
    assert np.array_equal(new_index, np.stack(np.unravel_index(flat, new_grid), axis=1))
    diff = new_local - old_local
    assert np.allclose(diff - np.round(diff), 0, atol=1e-8)
    assert new.get_chemical_symbols() == atoms.get_chemical_symbols()


@pytest.mark.parametrize("name", sorted(CASES) + ["Cu"])
@pytest.mark.parametrize("seed", SEEDS)
def test_site_mutation_puts_one_submodule_on_fuse_sites(name, seed):
    if name == "Cu":
        atoms, ctx = cu(), context("Cu")
        new = ALL_MOVES[10].apply(atoms, ctx, np.random.default_rng(seed))
        origin = new.info["origin"]
    else:
        atoms, new, origin = run(10, name, seed)
    grid = tuple(origin["grid"])
    index, _ = split(atoms, grid)
    target = tuple(origin["submodule"])
    members = np.flatnonzero(np.all(index == target, axis=1))
    assert 1 <= len(members) <= 4 and sorted(members) == sorted(origin["atoms"])
    others = np.setdiff1d(np.arange(len(atoms)), members)
    assert np.allclose(new.positions[others], atoms.get_positions(wrap=True)[others])
    new_index, new_local = split(new, grid)
    assert np.all(new_index[members] == target)
    rows = [int(np.flatnonzero(np.all(np.isclose(loc, SITES), axis=1))[0])
            for loc in new_local[members]]
    assert len(set(rows)) == len(rows) == len(members)
    assert rows == list(origin["sites"])


def test_block_moves_give_reasons_when_they_cannot_apply():
    ctx = context("Cu")
    for number in (7, 8, 9):  # fcc Cu's cell is a single sub-module
        reason = ALL_MOVES[number].applicable(cu(), ctx)
        assert isinstance(reason, str) and reason
        assert ALL_MOVES[number].apply(cu(), ctx, np.random.default_rng(0)) is None
    # 16 atoms in one sub-module: nothing to mutate onto 4 sites
    assert "1 to 4" in ALL_MOVES[10].applicable(cu().repeat((2, 2, 1)), ctx)
    ip = Composition("Cu").ip
    # two identical sub-modules side by side along a: nothing to swap
    twins = Atoms("Cu2", scaled_positions=[[0, 0, 0], [0.5, 0, 0]],
                  cell=[2 * ip, ip, ip / 2], pbc=True)
    assert "same content" in ALL_MOVES[7].applicable(twins, ctx)
    # two identical modules stacked along c: nothing to swap
    layers = Atoms("Cu2", scaled_positions=[[0, 0, 0], [0, 0, 0.5]],
                   cell=[ip, ip, ip], pbc=True)
    assert "same content" in ALL_MOVES[8].applicable(layers, ctx)
    assert "same content" in ALL_MOVES[7].applicable(layers, ctx)
