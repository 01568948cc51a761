"""Validity checks on candidate structures: they return a reason, not a boolean.

Each check gives ``None`` when the structure passes and a short human-readable
reason when it fails, so a rejected candidate's db row says why.  Distances use
a neighbour list (pymatgen's compiled one for fully periodic cells, ~20x faster
than ASE's on small cells; ASE's otherwise), so periodic images (including an
atom's own) count and any cell shape works.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
from ase.neighborlist import neighbor_list

_SHORT_SEARCH = 3.5  # A, first pass of nearest_neighbour_distances


def _pairs(atoms, cutoff):
    """``(i, j, d)`` for every pair closer than ``cutoff``, periodic images included
    (an atom with its own images too, never with itself), as ASE's ``neighbor_list``."""
    if atoms.pbc.all() and abs(atoms.cell.volume) > 1e-6:
        try:
            from pymatgen.optimization.neighbors import find_points_in_spheres
        except ImportError:  # pymatgen is a dependency, but keep ASE as the fallback
            find_points_in_spheres = None
        if find_points_in_spheres is not None:
            pos = np.ascontiguousarray(atoms.positions, dtype=float)
            i, j, images, d = find_points_in_spheres(
                pos, pos, float(cutoff), np.ones(3, dtype=np.int64),
                np.ascontiguousarray(atoms.cell.array, dtype=float), 1e-8)
            keep = (d < cutoff) & ~((i == j) & ~images.any(axis=1))
            return i[keep], j[keep], d[keep]
    return neighbor_list("ijd", atoms, cutoff)


@dataclass
class Limits:
    """Thresholds for :func:`check_structure`.

    min_distance_factor: two atoms closer than this fraction of the sum of their radii fail.
    isolated_cutoff: an atom whose nearest neighbour is further than this (A) fails.
    volume_window: allowed ratio of cell volume to the sum of atomic sphere volumes.
    max_atoms: largest allowed cell (None: no limit).
    """
    min_distance_factor: float = 0.5
    isolated_cutoff: float = 6.0
    volume_window: tuple = (0.5, 4.0)
    max_atoms: int = None


def shortest_contacts(atoms, radii, factor):
    """Pairs closer than ``factor * (r_i + r_j)``: ``(i, j, distance, limit)`` worst first."""
    if len(atoms) == 0:
        return []
    symbols = atoms.get_chemical_symbols()
    rmax = max(radii[s] for s in set(symbols))
    i, j, d = _pairs(atoms, 2 * rmax * factor + 1e-6)
    if len(i) == 0:
        return []
    r = np.array([radii[s] for s in symbols])
    limit = factor * (r[i] + r[j])
    bad = np.flatnonzero(d < limit)
    order = bad[np.argsort(d[bad] / limit[bad])]
    return [(int(i[k]), int(j[k]), float(d[k]), float(limit[k])) for k in order]


def nearest_neighbour_distances(atoms, cutoff):
    """Distance from each atom to its nearest neighbour (inf when none within ``cutoff``)."""
    nearest = np.full(len(atoms), np.inf)
    if len(atoms) == 0:
        return nearest
    # A short search is several times cheaper; the full cutoff only if it leaves an
    # atom without neighbours (same result: a nearest neighbour within it is exact).
    short = min(cutoff, _SHORT_SEARCH)
    i, _, d = _pairs(atoms, short)
    np.minimum.at(nearest, i, d)
    if short < cutoff and not np.all(np.isfinite(nearest)):
        nearest[:] = np.inf
        i, _, d = _pairs(atoms, cutoff)
        np.minimum.at(nearest, i, d)
    return nearest


def check_composition(atoms, composition):
    z = composition.formula_units_of(atoms)
    if z is None:
        return f"composition {atoms.get_chemical_formula()} is not whole units of " \
               f"{composition.formula}"
    return None


#: how far past the volume window a relaxed parent may widen it for its moves' candidates
#: (the window's own bounds divided / multiplied by this at most)
PARENT_WINDOW_CAP = 2.0
#: room left around a parent's own volume ratio when it widens the window
PARENT_WINDOW_SLACK = 1.25


def volume_ratio(atoms, composition):
    """Cell volume over the sum of the atoms' sphere volumes (None for a cell that is
    degenerate or not whole formula units)."""
    z = composition.formula_units_of(atoms)
    volume = abs(atoms.cell.volume)
    if z is None or not np.isfinite(volume) or volume < 1e-6:
        return None
    return volume / composition.sphere_volume(z)


def limits_for_parent(limits, parent, composition):
    """``limits`` for candidates a move makes from ``parent`` (a relaxed structure).

    The volume window bounds structures made from nothing; a relaxed structure's
    volume is the calculator's, and an open framework (alpha-quartz relaxes to ~4.6
    times its sphere volume) may lie past the window's top.  Every candidate made from
    it by a move that keeps the cell would then be refused and the search could not
    go on, so the window is widened to hold the parent's own ratio with
    :data:`PARENT_WINDOW_SLACK` of room, never past :data:`PARENT_WINDOW_CAP` times
    the window's bounds.  A parent inside the window leaves ``limits`` as they are.
    """
    ratio = volume_ratio(parent, composition) if parent is not None else None
    low, high = limits.volume_window
    if ratio is None or low <= ratio <= high:
        return limits
    wide = (round(max(min(low, ratio / PARENT_WINDOW_SLACK), low / PARENT_WINDOW_CAP), 3),
            round(min(max(high, ratio * PARENT_WINDOW_SLACK), high * PARENT_WINDOW_CAP), 3))
    return dataclasses.replace(limits, volume_window=wide)


def check_structure(atoms, composition, limits=None):
    """First reason ``atoms`` is not a valid candidate, or ``None``.

    Checks, in order: exact composition, size, cell volume window, minimum distance,
    isolated atoms.
    """
    limits = limits or Limits()
    reason = check_composition(atoms, composition)
    if reason:
        return reason
    n = len(atoms)
    if limits.max_atoms is not None and n > limits.max_atoms:
        return f"{n} atoms is more than max_atoms={limits.max_atoms}"
    volume = abs(atoms.cell.volume)
    if not np.isfinite(volume) or volume < 1e-6:
        return "degenerate cell"
    z = composition.formula_units_of(atoms)
    ratio = volume / composition.sphere_volume(z)
    low, high = limits.volume_window
    if not low <= ratio <= high:
        return f"volume ratio {ratio:.2f} outside [{low}, {high}]"
    contacts = shortest_contacts(atoms, composition.radii, limits.min_distance_factor)
    if contacts:
        i, j, d, limit = contacts[0]
        return f"atoms {i} and {j} at {d:.2f} A, closer than {limit:.2f} A"
    nearest = nearest_neighbour_distances(atoms, limits.isolated_cutoff)
    lonely = np.flatnonzero(~np.isfinite(nearest))
    if len(lonely):
        return f"atom {lonely[0]} isolated (no neighbour within {limits.isolated_cutoff} A)"
    return None
