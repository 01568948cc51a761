"""FUSE moves 7-10: rearranging sub-modules and modules.

Every move decomposes the CURRENT (relaxed) structure afresh with
:func:`ase_fuse.submodules.decompose`, so no stale grid is ever used.  Atoms keep
their order; only their sub-module index (and for move 10 their local position)
changes, and the result is reassembled wrapped into the cell.
"""

import itertools

import numpy as np

from ase_fuse.submodules import SITES, decompose

from .base import Move

_DECIMALS = 3  # local positions equal to this many decimals count as the same content


def _grid(atoms, context):
    return decompose(atoms, context.composition).wrapped()


def _keys_by(grid, labels, n_groups, extra=None):
    """Content key of each of ``n_groups`` groups; atoms carry group ``labels``."""
    local = np.round(grid.local, _DECIMALS) % 1.0
    local = np.round(local, _DECIMALS)
    if extra is not None:
        local = np.hstack([extra, local])
    rows = [[] for _ in range(n_groups)]
    for atom, label in enumerate(labels):
        rows[label].append((grid.symbols[atom], *local[atom].tolist()))
    return [tuple(sorted(row)) for row in rows]


def _differing_pairs(keys):
    return [(a, b) for a, b in itertools.combinations(range(len(keys)), 2)
            if keys[a] != keys[b]]


def _assembled(grid):
    """The grid as Atoms, fractional coordinates wrapped into [0, 1) the way
    :func:`decompose` reads them (a boundary atom stays in its sub-module)."""
    atoms = grid.assemble()
    frac = atoms.cell.scaled_positions(atoms.positions)
    frac -= np.floor(frac + 1e-9)
    atoms.set_scaled_positions(np.clip(frac, 0.0, None))
    return atoms


class SwapSubmodules(Move):
    """Move 7: exchange the contents of two sub-modules that differ."""
    number = 7
    name = "swap_submodules"

    def _pairs(self, grid):
        keys = _keys_by(grid, grid.flat_index(), grid.n_submodules)
        return _differing_pairs(keys)

    def _reason(self, atoms, context):
        grid = _grid(atoms, context)
        if grid.n_submodules < 2:
            return f"only one sub-module (grid {grid.grid})"
        if not self._pairs(grid):
            return "all sub-modules have the same content"
        return None

    def _apply(self, atoms, context, rng):
        grid = _grid(atoms, context)
        pairs = self._pairs(grid)
        a, b = pairs[int(rng.integers(len(pairs)))]
        flat = grid.flat_index()
        new_flat = flat.copy()
        new_flat[flat == a] = b
        new_flat[flat == b] = a
        new = grid.copy()
        new.index = np.stack(np.unravel_index(new_flat, grid.grid), axis=1)
        ija = np.unravel_index(a, grid.grid)
        ijb = np.unravel_index(b, grid.grid)
        return _assembled(new), {"submodules": [list(ija), list(ijb)], "grid": grid.grid}


class SwapModules(Move):
    """Move 8: exchange two modules (layers of sub-modules along c)."""
    number = 8
    name = "swap_modules"

    def _pairs(self, grid):
        keys = _keys_by(grid, grid.index[:, 2], grid.n_modules, extra=grid.index[:, :2])
        return _differing_pairs(keys)

    def _reason(self, atoms, context):
        grid = _grid(atoms, context)
        if grid.n_modules < 2:
            return f"only one module (grid {grid.grid})"
        if not self._pairs(grid):
            return "all modules have the same content"
        return None

    def _apply(self, atoms, context, rng):
        grid = _grid(atoms, context)
        pairs = self._pairs(grid)
        a, b = pairs[int(rng.integers(len(pairs)))]
        layer = grid.index[:, 2]
        new = grid.copy()
        new.index[layer == a, 2] = b
        new.index[layer == b, 2] = a
        return _assembled(new), {"modules": [a, b], "grid": grid.grid}


def _factorisations(total):
    """All ordered triples of positive ints whose product is ``total``."""
    triples = []
    for na in range(1, total + 1):
        if total % na:
            continue
        rest = total // na
        for nb in range(1, rest + 1):
            if rest % nb == 0:
                triples.append((na, nb, rest // nb))
    return triples


class Reshape(Move):
    """Move 9: the same sub-modules, in their order, laid out on a new grid shape.

    The new cell is the new grid times the sub-module lattice vectors (angles kept).
    """
    number = 9
    name = "reshape"

    def _shapes(self, grid):
        return [g for g in _factorisations(grid.n_submodules) if g != grid.grid]

    def _reason(self, atoms, context):
        grid = _grid(atoms, context)
        if not self._shapes(grid):
            return f"grid {grid.grid} has no other factorisation"
        return None

    def _apply(self, atoms, context, rng):
        grid = _grid(atoms, context)
        shapes = self._shapes(grid)
        shape = shapes[int(rng.integers(len(shapes)))]
        vectors = grid.submodule_cell
        cell = vectors * np.array(shape, dtype=float)[:, None]
        new = grid.with_cell(cell, grid=shape)
        new.index = np.stack(np.unravel_index(grid.flat_index(), shape), axis=1)
        return _assembled(new), {"old_grid": grid.grid, "new_grid": shape}


class SiteMutation(Move):
    """Move 10: the atoms of a sub-module with fewer than 5 atoms go onto FUSE's
    sub-module sites (:data:`ase_fuse.submodules.SITES`), randomly assigned."""
    number = 10
    name = "site_mutation"

    def _candidates(self, grid):
        counts = grid.occupancy().ravel()
        return np.flatnonzero((counts > 0) & (counts <= len(SITES)))

    def _reason(self, atoms, context):
        grid = _grid(atoms, context)
        if len(self._candidates(grid)) == 0:
            return f"no sub-module with 1 to {len(SITES)} atoms"
        return None

    def _apply(self, atoms, context, rng):
        grid = _grid(atoms, context)
        flat = int(rng.choice(self._candidates(grid)))
        members = np.flatnonzero(grid.flat_index() == flat)
        new = grid.copy()
        for _ in range(10):
            sites = rng.permutation(len(SITES))[:len(members)]
            new.local[members] = SITES[sites]
            if not np.allclose(new.local[members], grid.local[members], atol=1e-6):
                break
        else:
            return None  # the atoms already sit on these sites
        return _assembled(new), {"submodule": list(np.unravel_index(flat, grid.grid)),
                                 "atoms": members, "sites": sites, "grid": grid.grid}
