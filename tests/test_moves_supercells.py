"""Moves 11-12: doubling and tripling the cell along one axis."""

import json

import numpy as np
import pytest

from ase_fuse.moves import ALL_MOVES
from moves_helpers import (STRUCTURES, assert_untouched, context, counts, cu,
                           same_candidate, snapshot)

SEEDS = range(8)
CASES = {**STRUCTURES, "Cu": cu}


def run(number, formula, seed, max_atoms=40):
    atoms = CASES[formula]()
    ctx = context(formula, max_atoms=max_atoms)
    before = snapshot(atoms)
    move = ALL_MOVES[number]
    assert move.applicable(atoms, ctx) is None
    new = move.apply(atoms, ctx, np.random.default_rng(seed))
    assert_untouched(atoms, before)
    factor = number - 9  # 11 -> 2, 12 -> 3
    assert len(new) == factor * len(atoms)
    assert counts(new) == {el: factor * n for el, n in counts(atoms).items()}
    json.dumps(new.info["origin"])
    assert same_candidate(new, move.apply(atoms, ctx, np.random.default_rng(seed)))
    origin = new.info["origin"]
    axis = origin["axis"]
    expected_cell = atoms.cell.array.copy()
    expected_cell[axis] *= factor
    assert np.allclose(new.cell.array, expected_cell)
    return atoms, new, origin


def copy_positions(atoms, origin, m, factor):
    """Where copy ``m`` of the input atoms should be, in Cartesian coordinates."""
    frac = atoms.get_scaled_positions(wrap=True)
    axis = origin["axis"]
    if origin["variant"] == "shift":
        frac = frac.copy()
        frac[:, origin["shifted_axes"]] += m / factor
    elif origin["variant"] == "invert" and m == 1:
        frac = -frac
    elif origin["variant"] == "mirror" and m == 1:
        frac = frac.copy()
        frac[:, axis] = -frac[:, axis]
    frac = frac.copy()
    frac[:, axis] = frac[:, axis] % 1.0 + m  # copy m fills the m-th old cell along the axis
    return frac @ atoms.cell.array


def assert_same_modulo_cell(positions, expected, cell):
    frac = np.linalg.solve(cell.T, (positions - expected).T).T
    assert np.allclose(frac - np.round(frac), 0, atol=1e-8)


@pytest.mark.parametrize("number", [11, 12])
@pytest.mark.parametrize("formula", sorted(CASES))
@pytest.mark.parametrize("seed", SEEDS)
def test_multiplied_cell_holds_the_claimed_copies(number, formula, seed):
    atoms, new, origin = run(number, formula, seed)
    factor = number - 9
    assert origin["variant"] in ALL_MOVES[number].variants
    if origin["variant"] == "shift":
        assert 1 <= len(origin["shifted_axes"]) <= 2
        assert origin["axis"] not in origin["shifted_axes"]
    n = len(atoms)
    for m in range(factor):
        part = slice(m * n, (m + 1) * n)
        assert new.get_chemical_symbols()[part] == atoms.get_chemical_symbols()
        assert_same_modulo_cell(new.positions[part], copy_positions(atoms, origin, m, factor),
                                new.cell.array)


def test_every_variant_is_drawn():
    seen = {11: set(), 12: set()}
    for number in seen:
        for seed in range(40):
            new = ALL_MOVES[number].apply(cu(), context("Cu"), np.random.default_rng(seed))
            seen[number].add((new.info["origin"]["variant"], new.info["origin"]["axis"]))
    assert {v for v, _ in seen[11]} == {"repeat", "shift", "invert", "mirror"}
    assert {v for v, _ in seen[12]} == {"repeat", "shift"}
    assert {a for _, a in seen[11]} == {0, 1, 2}


def test_multiplying_respects_max_atoms():
    atoms = STRUCTURES["NaCl"]()  # 8 atoms
    assert ALL_MOVES[11].applicable(atoms, context("NaCl", max_atoms=16)) is None
    reason = ALL_MOVES[11].applicable(atoms, context("NaCl", max_atoms=15))
    assert isinstance(reason, str) and "max_atoms=15" in reason
    assert ALL_MOVES[11].apply(atoms, context("NaCl", max_atoms=15),
                               np.random.default_rng(0)) is None
    assert ALL_MOVES[12].applicable(atoms, context("NaCl", max_atoms=24)) is None
    assert "max_atoms=23" in ALL_MOVES[12].applicable(atoms, context("NaCl", max_atoms=23))
