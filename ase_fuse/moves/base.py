"""Basin-hopping moves: the move interface and its context (the weighted selector is
in :mod:`.selector`, the 14 moves in :mod:`.catalogue`).

Modelled on ase_ga's ``OffspringCreator`` / ``OperationSelector``: a move is a small
object with a ``number`` (FUSE's 1-14), a ``name``, an applicability test that gives a
reason instead of a boolean, and an ``apply`` that takes a ``numpy.random.Generator``
and returns a NEW ``Atoms`` whose ``info["origin"]`` records where it came from.
The input structure is never modified.
"""

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from ase_fuse.checks import Limits
from ase_fuse.composition import Composition
from ase_fuse.jsonsafe import plain

N_MOVES = 14


@dataclass
class MoveContext:
    """What a move needs besides the structure.

    composition: the composition searched (candidates keep whole formula units of it).
    max_atoms: largest cell allowed (moves 11, 12 and 14 respect it).
    limits: validity thresholds used by :meth:`MoveSelector.propose`.
    vacancy_distance: a vacant point is further than this (A) from every atom.
    generator: any object with ``.generate(formula_units=None) -> Atoms`` (moves 13, 14).
    pool: unused structures (e.g. from an ML generator); moves 13/14 pop from it.
    """
    composition: Composition
    max_atoms: int
    limits: Limits = field(default_factory=Limits)
    vacancy_distance: float = 1.0
    generator: object = None
    pool: list = field(default_factory=list)

    def check_limits(self):
        """The context's limits with ``max_atoms`` filled in."""
        if self.limits.max_atoms is None or self.limits.max_atoms > self.max_atoms:
            return dataclasses.replace(self.limits, max_atoms=self.max_atoms)
        return self.limits


def jsonable(value):
    """``value`` with numpy scalars/arrays turned into plain Python (for ``info``)."""
    return plain(value)


def fresh_atoms(symbols, cell, pbc=True, positions=None, scaled_positions=None):
    """A new ``Atoms`` (no calculator, no inherited info), positions wrapped into the cell."""
    atoms = Atoms(list(symbols), cell=np.array(cell, dtype=float), pbc=pbc)
    if scaled_positions is not None:
        frac = np.asarray(scaled_positions, dtype=float).reshape(len(atoms), 3)
    else:
        frac = atoms.cell.scaled_positions(np.asarray(positions, dtype=float))
    frac = frac % 1.0
    frac[frac >= 1.0 - 1e-12] = 0.0
    atoms.set_scaled_positions(frac)
    return atoms


class Move:
    """One basin-hopping move.  Subclasses set ``number``/``name`` and implement
    :meth:`_reason` (why it cannot apply, or None) and :meth:`_apply`."""

    number = 0
    name = "move"

    def __repr__(self):
        return f"<Move {self.number}: {self.name}>"

    def never_applies(self, composition):
        """A short reason when the move can apply to no structure of ``composition``
        (checked against the move weights before a search starts), else None."""
        return None

    def applicable(self, atoms, context):
        """None if the move can apply to ``atoms``, else a short reason."""
        if context.composition.formula_units_of(atoms) is None:
            return f"{atoms.get_chemical_formula()} is not whole units of " \
                   f"{context.composition.formula}"
        return self._reason(atoms, context)

    def apply(self, atoms, context, rng):
        """A new candidate made from ``atoms`` (left untouched), or None if it could not."""
        if self.applicable(atoms, context) is not None:
            return None
        result = self._apply(atoms, context, rng)
        if result is None:
            return None
        candidate, details = result
        origin = {"move": self.number, "name": self.name}
        origin.update(jsonable(details))
        candidate.info["origin"] = origin
        return candidate

    # -- to implement ----------------------------------------------------------
    def _reason(self, atoms, context):
        return None

    def _apply(self, atoms, context, rng):
        """Return ``(new_atoms, details_dict)`` or None."""
        raise NotImplementedError
