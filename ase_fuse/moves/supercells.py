"""FUSE moves 11-12: doubling or tripling the cell along one axis.

The first copy is the input cell; the new copies are the input repeated, shifted
along the other axes, or (move 11 only) inverted through the cell centre or mirrored
across the plane normal to the doubling axis.  The atoms of copy ``m`` follow those of
copy ``m - 1``, so ``candidate[m * n + i]`` comes from input atom ``i``.
"""

import numpy as np

from .base import Move, fresh_atoms


def _other_axes(axis, rng):
    """A random non-empty subset of the two axes other than ``axis``."""
    others = [a for a in range(3) if a != axis]
    choice = int(rng.integers(3))  # first, second or both
    return others if choice == 2 else [others[choice]]


def _stacked(atoms, axis, copies):
    """Supercell with the fractional coordinates ``copies`` (one (n, 3) array per copy)."""
    factor = len(copies)
    frac = np.vstack([(c % 1.0) + np.eye(3)[axis] * m for m, c in enumerate(copies)])
    frac[:, axis] /= factor
    cell = atoms.cell.array.copy()
    cell[axis] *= factor
    return fresh_atoms(atoms.get_chemical_symbols() * factor, cell, atoms.pbc,
                       scaled_positions=frac)


class _Multiply(Move):
    factor = 2

    def _reason(self, atoms, context):
        if len(atoms) * self.factor > context.max_atoms:
            return f"{len(atoms)} atoms x {self.factor} is more than " \
                   f"max_atoms={context.max_atoms}"
        return None


class DoubleCell(_Multiply):
    """Move 11: double along a random axis (repeat, shift by 1/2, invert or mirror)."""
    number = 11
    name = "double_cell"
    factor = 2
    variants = ("repeat", "shift", "invert", "mirror")

    def _apply(self, atoms, context, rng):
        axis = int(rng.integers(3))
        variant = self.variants[int(rng.integers(len(self.variants)))]
        frac = atoms.get_scaled_positions(wrap=True)
        second = frac.copy()
        details = {"axis": axis, "variant": variant}
        if variant == "shift":
            shifted = _other_axes(axis, rng)
            second[:, shifted] += 0.5
            details["shifted_axes"] = shifted
        elif variant == "invert":
            second = 1.0 - frac
        elif variant == "mirror":
            second[:, axis] = 1.0 - frac[:, axis]
        return _stacked(atoms, axis, [frac, second]), details


class TripleCell(_Multiply):
    """Move 12: triple along a random axis (repeat, or shift by 1/3 and 2/3)."""
    number = 12
    name = "triple_cell"
    factor = 3
    variants = ("repeat", "shift")

    def _apply(self, atoms, context, rng):
        axis = int(rng.integers(3))
        variant = self.variants[int(rng.integers(len(self.variants)))]
        frac = atoms.get_scaled_positions(wrap=True)
        copies = [frac, frac.copy(), frac.copy()]
        details = {"axis": axis, "variant": variant}
        if variant == "shift":
            shifted = _other_axes(axis, rng)
            copies[1][:, shifted] += 1.0 / 3.0
            copies[2][:, shifted] += 2.0 / 3.0
            details["shifted_axes"] = shifted
        return _stacked(atoms, axis, copies), details
