"""Basin-hopping moves: the move interface, its context and the weighted selector.

Modelled on ase_ga's ``OffspringCreator`` / ``OperationSelector``: a move is a small
object with a ``number`` (FUSE's 1-14), a ``name``, an applicability test that gives a
reason instead of a boolean, and an ``apply`` that takes a ``numpy.random.Generator``
and returns a NEW ``Atoms`` whose ``info["origin"]`` records where it came from.
The input structure is never modified.
"""

import dataclasses
import math
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
from ase import Atoms

from ase_fuse.checks import Limits, check_structure
from ase_fuse.composition import Composition
from ase_fuse.errors import GenerationError, InputError

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
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


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


def _weights_from(weights, numbers):
    """Validated weight array aligned with ``numbers``."""
    def bad(message):
        return InputError(message, field="move_weights")

    if weights is None:
        values = [1.0] * len(numbers)
    elif isinstance(weights, dict):
        unknown = [k for k in weights if k not in numbers]
        if unknown:
            raise bad(f"unknown move number(s) {unknown}; moves are {sorted(numbers)}")
        values = [weights.get(n, 0.0) for n in numbers]
    else:
        try:
            values = list(weights)
        except TypeError:
            raise bad("give a dict {move number: weight} or a list of "
                      f"{len(numbers)} weights") from None
        if len(values) != len(numbers):
            raise bad(f"expected {len(numbers)} weights, got {len(values)}")
    checked = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (Real, np.number)):
            raise bad(f"weight {value!r} is not a number")
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            raise bad(f"weight {value} is not finite")
        if value < 0:
            raise bad(f"weight {value} is negative")
        checked.append(value)
    if sum(checked) <= 0:
        raise bad("all weights are zero")
    return np.array(checked)


class MoveSelector:
    """Draw moves by weight and return the first valid candidate.

    weights: None (all equal), ``{number: weight}`` (missing moves get 0) or a sequence
    with one weight per move in number order.  moves: ``{number: Move}`` (default
    :data:`ase_fuse.moves.ALL_MOVES`).
    """

    def __init__(self, weights=None, moves=None):
        if moves is None:
            from ase_fuse.moves import ALL_MOVES
            moves = ALL_MOVES
        self.moves = dict(sorted(moves.items()))
        self.numbers = list(self.moves)
        self.weights = _weights_from(weights, self.numbers)

    def draw(self, rng, exclude=()):
        """One move drawn by weight, skipping numbers in ``exclude``; None if none left."""
        weights = self.weights.copy()
        for k, number in enumerate(self.numbers):
            if number in exclude:
                weights[k] = 0.0
        total = weights.sum()
        if total <= 0:
            return None
        k = rng.choice(len(weights), p=weights / total)
        return self.moves[self.numbers[k]]

    def propose(self, atoms, context, rng, max_tries=50):
        """``(candidate, move)``: a valid candidate from a move drawn by weight.

        A move that is not applicable is skipped (and not drawn again in this call);
        one whose ``apply`` gives None or an invalid structure is counted as a failed
        try.  Raises :class:`GenerationError` after ``max_tries`` failed tries.
        """
        if isinstance(max_tries, bool) or not isinstance(max_tries, (int, np.integer)) \
                or max_tries < 1:
            raise InputError(f"must be a positive whole number, got {max_tries!r}",
                             field="max_tries")
        limits = context.check_limits()
        inapplicable = {}
        failures = []
        for _ in range(max_tries):
            move = self.draw(rng, exclude=inapplicable)
            if move is None:
                break
            reason = move.applicable(atoms, context)
            if reason is not None:
                inapplicable[move.number] = reason
                continue
            candidate = move.apply(atoms, context, rng)
            if candidate is None:
                failures.append(f"move {move.number}: could not apply")
                continue
            reason = check_structure(candidate, context.composition, limits)
            if reason is not None:
                failures.append(f"move {move.number}: {reason}")
                continue
            return candidate, move
        why = "; ".join(f"move {n}: {r}" for n, r in sorted(inapplicable.items()))
        last = "; ".join(failures[-3:])
        raise GenerationError(
            f"no valid move candidate after {max_tries} tries"
            + (f" (not applicable: {why})" if why else "")
            + (f" (last failures: {last})" if last else ""))
