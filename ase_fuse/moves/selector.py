"""The weighted move selector: draw moves by weight, return the first valid candidate
(ase_ga's ``OperationSelector``, with reasons for what cannot apply)."""

import math
from numbers import Real

import numpy as np

from ase_fuse.checks import check_structure, limits_for_parent
from ase_fuse.errors import GenerationError, InputError

from .catalogue import ALL_MOVES


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
            moves = ALL_MOVES
        self.moves = dict(sorted(moves.items()))
        self.numbers = list(self.moves)
        self.weights = _weights_from(weights, self.numbers)
        #: multiplies ``weights`` in every draw (learned weights, ``adaptive.py``);
        #: ``weights`` stay the user's, as stored with the run
        self.factors = np.ones(len(self.numbers))

    def check_composition(self, composition):
        """Refuse weights whose every weighted move can apply to no structure of
        ``composition`` (e.g. only swaps for an element): one line naming them."""
        weighted = [n for n, w in zip(self.numbers, self.weights) if w > 0]
        reasons = {n: self.moves[n].never_applies(composition) for n in weighted}
        if weighted and all(reasons.values()):
            why = "; ".join(f"move {n}: {r}" for n, r in reasons.items())
            raise InputError(f"no weighted move can apply to {composition.formula} "
                             f"({why}); give weight to other moves", field="move_weights")

    def draw(self, rng, exclude=(), only=None):
        """One move drawn by weight, skipping numbers in ``exclude``; None if none left.

        ``only``: draw among these numbers alone, by weight, or evenly among them when
        none of them has weight (the search's fallback to new structures)."""
        weights = self.weights * self.factors
        if only is not None:
            keep = np.array([number in only for number in self.numbers])
            weights = np.where(keep, weights, 0.0)
            if weights.sum() <= 0:
                weights = keep.astype(float)
        for k, number in enumerate(self.numbers):
            if number in exclude:
                weights[k] = 0.0
        total = weights.sum()
        if total <= 0:
            return None
        k = rng.choice(len(weights), p=weights / total)
        return self.moves[self.numbers[k]]

    def propose(self, atoms, context, rng, max_tries=50, only=None):
        """``(candidate, move)``: a valid candidate from a move drawn by weight.

        A move that is not applicable is skipped (and not drawn again in this call);
        one whose ``apply`` gives None or an invalid structure is counted as a failed
        try.  Candidates are checked against the context's limits widened to hold
        ``atoms``' own volume (:func:`~ase_fuse.checks.limits_for_parent`).  ``only``
        restricts the draw to those move numbers (see :meth:`draw`).  Raises
        :class:`GenerationError` after ``max_tries`` failed tries.
        """
        if isinstance(max_tries, bool) or not isinstance(max_tries, (int, np.integer)) \
                or max_tries < 1:
            raise InputError(f"must be a positive whole number, got {max_tries!r}",
                             field="max_tries")
        limits = limits_for_parent(context.check_limits(), atoms, context.composition)
        inapplicable = {}
        failures = []
        for _ in range(max_tries):
            move = self.draw(rng, exclude=inapplicable, only=only)
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
