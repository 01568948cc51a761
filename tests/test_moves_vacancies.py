"""Vacant-space search used by moves 2, 4 and 6."""

import numpy as np
import pytest
from ase import Atoms

from ase_fuse.moves.vacancies import (distance_to_atoms, grid_points, pick_vacant,
                                      vacant_points)
from moves_helpers import cu, nacl, periodic_distances


def triclinic():
    return Atoms("Si3O", scaled_positions=[[0, 0, 0], [0.3, 0.1, 0.6], [0.7, 0.8, 0.2],
                                           [0.5, 0.5, 0.9]],
                 cell=[[4.1, 0, 0], [1.7, 3.6, 0], [-0.9, 1.2, 3.3]], pbc=True)


@pytest.mark.parametrize("make", [nacl, cu, triclinic])
def test_distances_match_brute_force_minimum_image(make):
    atoms = make()
    points = grid_points(atoms.cell.array, 0.7)
    fast = distance_to_atoms(points, atoms, reach=10.0)
    slow = periodic_distances(points, atoms).min(axis=1)
    assert np.allclose(fast, slow)


@pytest.mark.parametrize("make", [nacl, triclinic])
def test_vacant_points_are_exactly_the_far_grid_points(make):
    atoms = make()
    d = 1.2
    points = grid_points(atoms.cell.array, 0.5)
    vacant = vacant_points(atoms, d, spacing=0.5)
    nearest = periodic_distances(points, atoms).min(axis=1)
    assert len(vacant) == np.sum(nearest > d) > 0
    assert periodic_distances(vacant, atoms).min() > d


def test_fcc_holes():
    atoms = cu()
    a = 3.615
    # octahedral holes are a/2 from their neighbours, tetrahedral ones a*sqrt(3)/4
    assert len(vacant_points(atoms, 0.5 * a - 0.05)) > 0
    assert len(vacant_points(atoms, 0.5 * a + 0.05)) == 0
    between = vacant_points(atoms, np.sqrt(3) / 4 * a + 0.05)
    frac = atoms.cell.scaled_positions(between) % 1.0
    # every such point is close to an octahedral hole (1/2,0,0)-type or (1/2,1/2,1/2)
    octa = np.array([[.5, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5]])
    diff = frac[:, None, :] - octa[None, :, :]
    diff -= np.round(diff)
    assert np.all(np.linalg.norm(diff @ atoms.cell.array, axis=2).min(axis=1) < 0.3)


def test_pick_vacant_points_are_mutually_separated_and_seeded():
    atoms = nacl()
    picked = pick_vacant(atoms, 1.0, 3, np.random.default_rng(5))
    assert picked.shape == (3, 3)
    assert periodic_distances(picked, atoms).min() > 1.0
    markers = Atoms("X3", positions=picked, cell=atoms.cell, pbc=True)
    between = periodic_distances(picked, markers)
    assert np.sort(between, axis=1)[:, 1].min() > 1.0
    assert np.allclose(picked, pick_vacant(atoms, 1.0, 3, np.random.default_rng(5)))
    assert pick_vacant(atoms, 3.0, 1, np.random.default_rng(0)) is None
