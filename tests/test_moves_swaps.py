"""Moves 1-6: atom swaps, permutations and moves into vacant space."""

import numpy as np
import pytest
from ase.build import bulk

from ase_fuse.moves import ALL_MOVES
from moves_helpers import (STRUCTURES, apply_checked, context, cu, periodic_distances,
                           same_sites, species_at_sites)

SEEDS = range(6)


def run(number, formula, seed, **kwargs):
    atoms = STRUCTURES[formula]() if formula in STRUCTURES else cu()
    return apply_checked(number, atoms, context(formula, **kwargs), seed)


@pytest.mark.parametrize("formula", sorted(STRUCTURES))
@pytest.mark.parametrize("seed", SEEDS)
def test_swap_two_changes_exactly_two_sites_of_different_species(formula, seed):
    atoms, new, origin = run(1, formula, seed)
    assert same_sites(atoms, new)
    old = np.array(atoms.get_chemical_symbols())
    now = np.array(species_at_sites(atoms, new))
    changed = np.flatnonzero(old != now)
    assert sorted(changed.tolist()) == sorted(origin["atoms"])
    assert len(changed) == 2 and old[changed[0]] != old[changed[1]]
    assert sorted(now[changed]) == sorted(old[changed])


def test_swap_moves_need_two_species_and_enough_atoms():
    ctx = context("Cu")
    for number in (1, 3, 4, 5, 6):
        reason = ALL_MOVES[number].applicable(cu(), ctx)
        assert isinstance(reason, str) and "element" in reason
        assert ALL_MOVES[number].apply(cu(), ctx, np.random.default_rng(0)) is None
    primitive = bulk("NaCl", "rocksalt", a=5.64)  # 2 atoms: no 2 < i < n
    assert "at least 4" in ALL_MOVES[3].applicable(primitive, context("NaCl"))
    assert ALL_MOVES[1].applicable(primitive, context("NaCl")) is None


@pytest.mark.parametrize("formula", ["NaCl", "TiO2", "SrTiO3", "Cu"])
@pytest.mark.parametrize("seed", SEEDS)
def test_move_to_vacancy_lands_far_from_every_atom(formula, seed):
    atoms, new, origin = run(2, formula, seed)
    k = origin["atom"]
    others = np.delete(np.arange(len(atoms)), k)
    assert np.allclose(new.positions[others], atoms.get_positions(wrap=True)[others])
    assert np.allclose(new.positions[k], origin["to"])
    # far from every atom of the input, itself (its old place) included ...
    assert periodic_distances(new.positions[k], atoms).min() > 1.0
    # ... and so from every other atom of the candidate
    rest = new[[i for i in range(len(new)) if i != k]]
    assert periodic_distances(new.positions[k], rest).min() > 1.0


def test_move_to_vacancy_respects_vacancy_distance_and_reports_none():
    atoms = cu()
    # the largest hole of fcc is the octahedral one, a/2 = 1.8075 A from its neighbours
    assert ALL_MOVES[2].applicable(atoms, context("Cu", vacancy_distance=1.7)) is None
    new = ALL_MOVES[2].apply(atoms, context("Cu", vacancy_distance=1.7),
                             np.random.default_rng(3))
    k = new.info["origin"]["atom"]
    assert periodic_distances(new.positions[k], atoms).min() > 1.7
    reason = ALL_MOVES[2].applicable(atoms, context("Cu", vacancy_distance=1.9))
    assert isinstance(reason, str) and "1.9" in reason


@pytest.mark.parametrize("formula", sorted(STRUCTURES))
@pytest.mark.parametrize("seed", SEEDS)
def test_cyclic_swap_permutes_i_atoms(formula, seed):
    atoms, new, origin = run(3, formula, seed)
    members = origin["atoms"]
    assert 2 < len(members) < len(atoms) and len(set(members)) == len(members)
    old = np.array(atoms.get_chemical_symbols())
    assert len(set(old[members])) >= 2
    assert same_sites(atoms, new)
    wrapped = atoms.get_positions(wrap=True)
    untouched = np.setdiff1d(np.arange(len(atoms)), members)
    assert np.allclose(new.positions[untouched], wrapped[untouched])
    # each member sits where the next member of the cycle was
    assert np.allclose(new.positions[members], wrapped[np.roll(members, -1)])
    now = np.array(species_at_sites(atoms, new))
    assert np.sum(now != old) >= 2


@pytest.mark.parametrize("formula", sorted(STRUCTURES))
@pytest.mark.parametrize("seed", SEEDS)
def test_cyclic_swap_with_vacancies(formula, seed):
    atoms, new, origin = run(4, formula, seed)
    members, moved = origin["atoms"], origin["to_vacancy"]
    assert 2 < len(members) < len(atoms)
    assert 1 <= len(moved) < len(members) and set(moved) <= set(members)
    wrapped = atoms.get_positions(wrap=True)
    untouched = np.setdiff1d(np.arange(len(atoms)), members)
    assert np.allclose(new.positions[untouched], wrapped[untouched])
    cycled = np.setdiff1d(members, moved)
    target = dict(zip(members, np.roll(members, -1)))
    for k in cycled:
        assert np.allclose(new.positions[k], wrapped[target[k]])
    d = periodic_distances(new.positions[moved], atoms)
    assert d.min() > 1.0
    if len(moved) > 1:
        between = periodic_distances(new.positions[moved], new[list(moved)])
        assert np.sort(between, axis=1)[:, 1].min() > 1.0


@pytest.mark.parametrize("formula", sorted(STRUCTURES))
@pytest.mark.parametrize("seed", SEEDS)
def test_permute_all(formula, seed):
    atoms, new, origin = run(5, formula, seed)
    perm = np.array(origin["permutation"])
    assert sorted(perm.tolist()) == list(range(len(atoms)))
    assert same_sites(atoms, new)
    assert np.allclose(new.positions, atoms.get_positions(wrap=True)[perm])
    old = np.array(atoms.get_chemical_symbols())
    assert np.any(np.array(species_at_sites(atoms, new)) != old)


@pytest.mark.parametrize("formula", sorted(STRUCTURES))
@pytest.mark.parametrize("seed", SEEDS)
def test_permute_all_with_vacancies(formula, seed):
    atoms, new, origin = run(6, formula, seed)
    perm = np.array(origin["permutation"])
    moved = np.array(origin["to_vacancy"], dtype=int)
    assert 1 <= len(moved) <= len(atoms) // 2
    rest = np.setdiff1d(np.arange(len(atoms)), moved)
    assert np.allclose(new.positions[rest], atoms.get_positions(wrap=True)[perm][rest])
    assert periodic_distances(new.positions[moved], atoms).min() > 1.0
