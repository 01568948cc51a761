"""Vacant space in a periodic cell: grid points far from every atom.

A point is *vacant* when it is further than ``distance`` from every atom, periodic
images included (an atom's own images count too, so nothing is excluded).  The
search is vectorised: the atoms and enough of their images to cover ``distance``
go into a k-d tree, and every grid point is queried at once.
"""

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree


def _plane_spacings(cell):
    """Distance between neighbouring lattice planes along each cell vector."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    cross = np.array([np.cross(cell[1], cell[2]), np.cross(cell[2], cell[0]),
                      np.cross(cell[0], cell[1])])
    return volume / np.linalg.norm(cross, axis=1)


def _image_tree(atoms, reach):
    """k-d tree of the wrapped atoms and all images that can lie within ``reach``."""
    cell = atoms.cell.array
    frac = atoms.get_scaled_positions(wrap=True)
    spacing = _plane_spacings(cell)
    # query points are wrapped too, so a fractional difference is within (-1, 1)
    # and an image further than 1 + reach/spacing cells away is out of reach.
    reps = np.ceil(1.0 + reach / spacing).astype(int)
    pbc = atoms.pbc
    ranges = [np.arange(-r, r + 1) if p else np.array([0]) for r, p in zip(reps, pbc)]
    shifts = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    images = (frac[None, :, :] + shifts[:, None, :]).reshape(-1, 3) @ cell
    return cKDTree(images)


def distance_to_atoms(points, atoms, reach):
    """Distance from each Cartesian point to its nearest atom (any image).

    Distances beyond ``reach`` come back as ``inf``.
    """
    points = np.atleast_2d(np.asarray(points, dtype=float))
    if len(atoms) == 0:
        return np.full(len(points), np.inf)
    wrapped = atoms.cell.scaled_positions(points) % 1.0 @ atoms.cell.array
    tree = _image_tree(atoms, reach)
    dist, _ = tree.query(wrapped, k=1, distance_upper_bound=reach + 1e-9)
    return dist


def grid_points(cell, spacing=0.5):
    """Cartesian points of a regular grid over the cell, about ``spacing`` A apart."""
    cell = np.asarray(cell, dtype=float)
    counts = np.maximum(1, np.ceil(np.linalg.norm(cell, axis=1) / spacing)).astype(int)
    axes = [np.arange(n) / n for n in counts]
    frac = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return frac @ cell


def vacant_points(atoms, distance, spacing=0.5):
    """Grid points (Cartesian, shape ``(m, 3)``) further than ``distance`` from every atom."""
    points = grid_points(atoms.cell.array, spacing)
    if len(atoms) == 0:
        return points
    dist = distance_to_atoms(points, atoms, distance)
    return points[dist > distance]


def pick_vacant(atoms, distance, count, rng, spacing=0.5):
    """``count`` vacant points, each also further than ``distance`` from the others.

    Drawn at random (``rng``) from :func:`vacant_points`; returns None if there are
    not enough mutually separated vacant points.
    """
    points = vacant_points(atoms, distance, spacing)
    if len(points) < count:
        return None
    chosen = []
    for _ in range(count):
        if len(points) == 0:
            return None
        point = points[rng.integers(len(points))]
        chosen.append(point)
        marker = Atoms("X", positions=[point], cell=atoms.cell, pbc=atoms.pbc)
        points = points[distance_to_atoms(points, marker, distance) > distance]
    return np.array(chosen)
