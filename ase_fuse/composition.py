"""Compositions: formula parsing, formula units, radii and the sub-module edge Ip."""

import math
import re
from collections import Counter
from functools import reduce

import numpy as np
from ase.data import atomic_numbers

from .errors import CompositionError
from .radii import atomic_radius, ionic_radius

MAX_ATOMS = 100_000  # a cell size beyond any search; stops absurd inputs early
_TOKEN = re.compile(r"([A-Z][a-z]?)|(\d+(?:\.\d+)?)|(\()|(\))|(\s+)|(.)")


def _whole(value):
    """``value`` as an int when it is a finite whole number (not a bool), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                       np.floating)):
        return None
    if not math.isfinite(value) or value != int(value):
        return None
    return int(value)


def parse_formula(formula):
    """Parse ``formula`` (brackets allowed) into an ordered ``{symbol: count}``.

    >>> parse_formula("Pb5(AsO4)3Cl")
    {'Pb': 5, 'As': 3, 'O': 12, 'Cl': 1}
    """
    if not isinstance(formula, str) or not formula.strip():
        raise CompositionError("empty formula", field="formula")
    stack = [[]]  # list of (symbol, count) groups
    last = None  # what a following number multiplies: ("el", idx) or ("group", items)
    for match in _TOKEN.finditer(formula):
        symbol, number, opening, closing, space, other = match.groups()
        if space:
            continue
        if other:
            raise CompositionError(
                f"unexpected character {other!r} in {formula!r}", field="formula")
        if symbol:
            if symbol not in atomic_numbers or symbol == "X":
                raise CompositionError(
                    f"unknown element {symbol!r} in {formula!r}", field="formula")
            stack[-1].append([symbol, 1])
            last = ("el", stack[-1][-1])
        elif number:
            value = float(number)
            if last is None:
                raise CompositionError(
                    f"number {number} without an element in {formula!r}", field="formula")
            if value != int(value):
                raise CompositionError(
                    f"fractional count {number} in {formula!r}; give whole numbers",
                    field="formula")
            if int(value) <= 0:
                raise CompositionError(
                    f"count {number} in {formula!r} must be positive", field="formula")
            if last[0] == "el":
                last[1][1] *= int(value)
            else:
                for item in last[1]:
                    item[1] *= int(value)
            last = None
        elif opening:
            stack.append([])
            last = None
        elif closing:
            if len(stack) == 1:
                raise CompositionError(f"unbalanced ')' in {formula!r}", field="formula")
            group = stack.pop()
            if not group:
                raise CompositionError(f"empty brackets in {formula!r}", field="formula")
            stack[-1].extend(group)
            last = ("group", group)
    if len(stack) != 1:
        raise CompositionError(f"unbalanced '(' in {formula!r}", field="formula")
    counts = {}
    for symbol, count in stack[0]:
        counts[symbol] = counts.get(symbol, 0) + count
    if not counts:
        raise CompositionError(f"no elements in {formula!r}", field="formula")
    return counts


class Composition:
    """A composition to search: counts per formula unit, radii and sub-module size.

    Parameters
    ----------
    formula : str or dict
        ``"Ca3Ti2O7"``, ``"Pb5(AsO4)3Cl"`` or ``{"Ca": 3, "Ti": 2, "O": 7}``.
        Counts are reduced by their greatest common divisor to give the formula unit.
    oxidation_states : dict, optional
        ``{"Ca": 2, "Ti": 4, "O": -2}``.  When given, Shannon ionic radii are used and
        ``Ip = 2 (mean R_cation + mean R_anion)``; otherwise VESTA atomic radii and
        ``Ip = 4 x mean atomic radius`` (means over the atoms of a formula unit).
    """

    def __init__(self, formula, oxidation_states=None):
        if isinstance(formula, Composition):
            oxidation_states = oxidation_states or formula.oxidation_states
            formula = formula.counts
        if isinstance(formula, dict):
            counts = {}
            for symbol, count in formula.items():
                if symbol not in atomic_numbers or symbol == "X":
                    raise CompositionError(f"unknown element {symbol!r}", field="formula")
                if _whole(count) is None or int(count) <= 0:
                    raise CompositionError(
                        f"count of {symbol} must be a positive whole number, got {count!r}",
                        field="formula")
                counts[symbol] = int(count)
            if not counts:
                raise CompositionError("empty formula", field="formula")
        else:
            counts = parse_formula(formula)
        divisor = reduce(math.gcd, counts.values())
        self.counts = {el: n // divisor for el, n in counts.items()}
        self.oxidation_states = self._check_oxidation_states(oxidation_states)
        self.radii = self._radii()

    # -- construction helpers -------------------------------------------------
    def _check_oxidation_states(self, states):
        if states is None or (isinstance(states, dict) and not states):
            return None
        if not isinstance(states, dict):
            raise CompositionError(f"give a mapping element -> state, got {states!r}",
                                   field="oxidation_states")
        states = dict(states)
        missing = [el for el in self.counts if el not in states]
        extra = [el for el in states if el not in self.counts]
        if missing:
            raise CompositionError(
                f"no oxidation state for {', '.join(missing)}", field="oxidation_states")
        if extra:
            raise CompositionError(
                f"{', '.join(extra)} not in {self.formula}", field="oxidation_states")
        for el, state in states.items():
            if _whole(state) is None:
                raise CompositionError(
                    f"oxidation state of {el} must be a whole number", field="oxidation_states")
        charge = sum(int(states[el]) * n for el, n in self.counts.items())
        if charge != 0:
            raise CompositionError(
                f"{self.formula} is not charge neutral with these states (charge {charge:+d})",
                field="oxidation_states")
        if not any(states[el] > 0 for el in self.counts) or \
                not any(states[el] < 0 for el in self.counts):
            raise CompositionError(
                "need at least one cation and one anion", field="oxidation_states")
        return {el: int(states[el]) for el in self.counts}

    def _radii(self):
        if self.oxidation_states is None:
            return {el: atomic_radius(el) for el in self.counts}
        radii = {}
        for el, state in self.oxidation_states.items():
            try:
                radii[el] = ionic_radius(el, state)
            except KeyError as err:
                raise CompositionError(str(err.args[0]), field="oxidation_states") from None
        return radii

    # -- basic facts ------------------------------------------------------------
    @property
    def formula(self):
        """Formula of one formula unit, in the order the elements were given."""
        return "".join(el + (str(n) if n > 1 else "") for el, n in self.counts.items())

    @property
    def elements(self):
        return list(self.counts)

    @property
    def is_element(self):
        return len(self.counts) == 1

    @property
    def atoms_per_formula_unit(self):
        return sum(self.counts.values())

    def __repr__(self):
        ox = f", oxidation_states={self.oxidation_states}" if self.oxidation_states else ""
        return f"Composition({self.formula!r}{ox})"

    def __eq__(self, other):
        return isinstance(other, Composition) and self.counts == other.counts \
            and self.oxidation_states == other.oxidation_states

    def __hash__(self):
        return hash(tuple(self.counts.items()))

    def symbols(self, formula_units=1):
        """Chemical symbols of ``formula_units`` formula units, grouped by element."""
        return [el for el, n in self.counts.items() for _ in range(n * formula_units)]

    def formula_units(self, max_atoms):
        """Numbers of formula units z with ``z * atoms_per_formula_unit <= max_atoms``."""
        if _whole(max_atoms) is None or max_atoms < 1:
            raise CompositionError(
                f"must be a positive whole number, got {max_atoms!r}", field="max_atoms")
        if max_atoms > MAX_ATOMS:
            raise CompositionError(f"{max_atoms} is above the limit of {MAX_ATOMS} atoms",
                                   field="max_atoms")
        top = int(max_atoms) // self.atoms_per_formula_unit
        if top < 1:
            raise CompositionError(
                f"{max_atoms} is smaller than one formula unit of {self.formula} "
                f"({self.atoms_per_formula_unit} atoms)", field="max_atoms")
        return list(range(1, top + 1))

    def formula_units_of(self, atoms):
        """Number of whole formula units in ``atoms``, or None if it is not this composition."""
        found = Counter(atoms.get_chemical_symbols())
        if set(found) != set(self.counts):
            return None
        ratios = {found[el] / n for el, n in self.counts.items()}
        if len(ratios) != 1:
            return None
        z = ratios.pop()
        return int(z) if z == int(z) else None

    # -- sizes ------------------------------------------------------------------
    def mean_radius(self):
        return sum(self.radii[el] * n for el, n in self.counts.items()) \
            / self.atoms_per_formula_unit

    @property
    def ip(self):
        """Sub-module edge length Ip (Angstrom)."""
        if self.oxidation_states is None:
            return 4.0 * self.mean_radius()
        cations = [(self.radii[el], n) for el, n in self.counts.items()
                   if self.oxidation_states[el] > 0]
        anions = [(self.radii[el], n) for el, n in self.counts.items()
                  if self.oxidation_states[el] < 0]

        def mean(pairs):
            return sum(r * n for r, n in pairs) / sum(n for _, n in pairs)

        return 2.0 * (mean(cations) + mean(anions))

    @property
    def submodule_shape(self):
        """Sub-module size ``[Ip, Ip, Ip/2]`` in Angstrom."""
        ip = self.ip
        return np.array([ip, ip, ip / 2.0])

    def sphere_volume(self, formula_units=1):
        """Sum of the atoms' sphere volumes (A^3) for ``formula_units``."""
        return formula_units * sum(
            4.0 / 3.0 * math.pi * self.radii[el] ** 3 * n for el, n in self.counts.items())
