"""Shared structures and comparisons for the tests of ase_fuse.moves (not a test module).

Structures are built from published lattice constants: rock-salt NaCl a = 5.64 A,
fcc Cu a = 3.615 A, rutile TiO2 a = 4.594 A, c = 2.959 A, x(O) = 0.3049, cubic
perovskite SrTiO3 a = 3.905 A.
"""

import json

import numpy as np
from ase.build import bulk
from ase.geometry import get_distances
from ase.spacegroup import crystal

from ase_fuse.composition import Composition
from ase_fuse.moves import MoveContext


def nacl():
    return bulk("NaCl", "rocksalt", a=5.64, cubic=True)


def cu():
    return bulk("Cu", "fcc", a=3.615, cubic=True)


def rutile():
    return crystal(["Ti", "O"], basis=[(0, 0, 0), (0.3049, 0.3049, 0)], spacegroup=136,
                   cellpar=[4.594, 4.594, 2.959, 90, 90, 90])


def srtio3_2x1x1():
    return crystal(["Sr", "Ti", "O"], basis=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)],
                   spacegroup=221, cellpar=[3.905] * 3 + [90] * 3).repeat((2, 1, 1))


STRUCTURES = {"NaCl": nacl, "TiO2": rutile, "SrTiO3": srtio3_2x1x1}


def context(formula, max_atoms=40, **kwargs):
    return MoveContext(Composition(formula), max_atoms=max_atoms, **kwargs)


def snapshot(atoms):
    """Everything a move must leave untouched."""
    return (atoms.get_chemical_symbols(), atoms.positions.copy(), atoms.cell.array.copy(),
            json.dumps(atoms.info, sort_keys=True, default=str))


def assert_untouched(atoms, before):
    symbols, positions, cell, info = before
    assert atoms.get_chemical_symbols() == symbols
    assert np.array_equal(atoms.positions, positions)
    assert np.array_equal(atoms.cell.array, cell)
    assert json.dumps(atoms.info, sort_keys=True, default=str) == info


def periodic_distances(points, atoms):
    """Minimum-image distances (len(points), len(atoms)), brute force via ASE."""
    _, d = get_distances(np.atleast_2d(points), atoms.positions, cell=atoms.cell,
                         pbc=atoms.pbc)
    return d


def species_at_sites(reference, atoms, tol=1e-6):
    """Species that ``atoms`` has on each site of ``reference`` (None where empty)."""
    d = periodic_distances(reference.positions, atoms)
    symbols = atoms.get_chemical_symbols()
    out = []
    for row in d:
        k = int(np.argmin(row))
        out.append(symbols[k] if row[k] < tol else None)
    return out


def same_sites(a, b, tol=1e-6):
    """True when every position of ``a`` has an atom of ``b`` on it and vice versa."""
    return bool(np.all(periodic_distances(a.positions, b).min(axis=1) < tol)
                and np.all(periodic_distances(b.positions, a).min(axis=1) < tol))


def counts(atoms):
    symbols, n = np.unique(atoms.get_chemical_symbols(), return_counts=True)
    return dict(zip(symbols.tolist(), n.tolist()))


def same_candidate(a, b):
    return (a.get_chemical_symbols() == b.get_chemical_symbols()
            and np.allclose(a.positions, b.positions)
            and np.allclose(a.cell.array, b.cell.array)
            and a.info["origin"] == b.info["origin"])


def apply_checked(number, atoms, ctx, seed):
    """Apply move ``number`` to ``atoms`` with the checks every move test shares: it
    applies, leaves its input untouched, keeps the composition, records its
    provenance (JSON-safe) and gives the same candidate for the same seed.  Returns
    ``(atoms, new, origin)``."""
    from ase_fuse.moves import ALL_MOVES

    before = snapshot(atoms)
    move = ALL_MOVES[number]
    assert move.applicable(atoms, ctx) is None
    new = move.apply(atoms, ctx, np.random.default_rng(seed))
    assert new is not None and new is not atoms
    assert_untouched(atoms, before)
    assert counts(new) == counts(atoms)
    assert new.info["origin"]["move"] == number
    assert new.info["origin"]["name"] == move.name
    json.dumps(new.info["origin"])
    assert same_candidate(new, move.apply(atoms, ctx, np.random.default_rng(seed)))
    return atoms, new, new.info["origin"]
