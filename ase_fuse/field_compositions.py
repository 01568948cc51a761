"""What a phase field searches: compositions by name, grids between end members, the
field's elements, and the given element energies (the hull's fixed end points).

Split from :mod:`ase_fuse.field` (which re-exports every name here), so that module
keeps to running the searches and building the hull.
"""

import math
from fractions import Fraction
from itertools import product

from .composition import Composition
from .errors import InputError


# -- what to search -------------------------------------------------------------------
def _formula(value, field="compositions"):
    if not isinstance(value, (str, dict, Composition)):
        raise InputError(f"expected a formula, got {value!r}", field=field)
    return Composition(value).formula


def _step(step):
    """``"1/4"``, ``0.25`` or ``4`` -> the grid's denominator (4)."""
    try:
        value = Fraction(str(step).strip())
    except (ValueError, ZeroDivisionError):
        raise InputError(f"expected a fraction like 1/4, got {step!r}", field="step") \
            from None
    if value > 1:                     # "4": four divisions
        value = 1 / value
    if value <= 0 or value.numerator != 1 or value.denominator > 24:
        raise InputError(f"must be 1/N with N from 1 to 24, got {step!r}", field="step")
    return value.denominator


def grid_compositions(end_members, step):
    """Every composition ``sum(n_i * end_member_i)`` with ``n_i >= 0`` whole and
    ``sum(n_i) = N`` for ``step = 1/N``, reduced, in grid order, without repeats."""
    from pymatgen.core import Composition as PmgComposition   # its formula order
    if isinstance(end_members, (str, dict)) or not hasattr(end_members, "__iter__"):
        raise InputError(f"expected a list of formulas, got {end_members!r}",
                         field="end_members")
    members = [Composition(_formula(m, "end_members")) for m in end_members]
    if len(members) < 2:
        raise InputError("give at least two end members", field="end_members")
    n = _step(step)
    out = []
    for weights in product(range(n + 1), repeat=len(members)):
        if sum(weights) != n:
            continue
        counts = {}
        for w, member in zip(weights, members):
            for el, c in member.counts.items():
                counts[el] = counts.get(el, 0) + w * c
        formula = PmgComposition({el: c for el, c in counts.items() if c}).reduced_formula
        if formula not in out:
            out.append(formula)
    return out


#: the most compositions ``element_compositions`` hands to one field
MAX_ELEMENT_GRID = 60


def element_compositions(elements, max_atoms, oxidation_states=None,
                         limit=MAX_ELEMENT_GRID):
    """Every compound of ``elements`` (two of them or more) whose reduced formula has
    at most ``max_atoms`` atoms, fewest elements and atoms first; with
    ``oxidation_states`` (one whole number per element) only the charge-neutral ones
    with a cation and an anion.  More than ``limit`` is refused in one line (a field
    of hundreds of searches is not meant): give oxidation states or fewer atoms."""
    from math import gcd

    from pymatgen.core import Composition as PmgComposition   # its formula order
    if isinstance(elements, (str, dict)) or not hasattr(elements, "__iter__"):
        raise InputError(f"expected a list of elements, got {elements!r}", field="elements")
    elements = list(dict.fromkeys(elements))
    for el in elements:
        if not isinstance(el, str) or _formula(el, "elements") != el \
                or not Composition(el).is_element:
            raise InputError(f"{el!r} is not an element", field="elements")
    if len(elements) < 2:
        raise InputError("give at least two elements", field="elements")
    if isinstance(max_atoms, bool) or not isinstance(max_atoms, int) or max_atoms < 2:
        raise InputError(f"must be a whole number >= 2 for --elements, got {max_atoms!r}",
                         field="max_atoms")
    charges = None
    if oxidation_states:
        missing = [el for el in elements if el not in oxidation_states]
        if missing:
            raise InputError(f"no oxidation state for {', '.join(missing)}",
                             field="oxidation_states")
        charges = [oxidation_states[el] for el in elements]
    found = []
    for counts in product(range(max_atoms + 1), repeat=len(elements)):
        present = [c for c in counts if c]
        if len(present) < 2 or sum(counts) > max_atoms or gcd(*present) != 1:
            continue
        if charges is not None:
            signs = {q > 0 for c, q in zip(counts, charges) if c and q}
            if sum(c * q for c, q in zip(counts, charges)) != 0 or signs != {True, False}:
                continue
        formula = PmgComposition({el: c for el, c in zip(elements, counts) if c})
        found.append((len(present), sum(counts), formula.reduced_formula))
    if len(found) > limit:
        how = "" if charges is not None else "give oxidation states (charge-neutral " \
            "compositions only) or "
        raise InputError(f"{len(found)} compositions of {'-'.join(elements)} up to "
                         f"{max_atoms} atoms: too many for one field (at most {limit}); "
                         f"{how}a smaller --max-atoms", field="elements")
    if not found:
        raise InputError(f"no {'charge-neutral ' if charges else ''}composition of "
                         f"{'-'.join(elements)} up to {max_atoms} atoms", field="elements")
    return [formula for _, _, formula in sorted(found)]


def field_compositions(compositions=(), end_members=None, step=None, references=None,
                       elements=None, max_atoms=None, oxidation_states=None):
    """The formulas to search: ``compositions``, the ``end_members`` grid, the
    compounds of ``elements`` up to ``max_atoms`` (charge-neutral with
    ``oxidation_states``: :func:`element_compositions`), then each element of the
    field that ``references`` does not give, without repeats (two formulas of the
    same reduced composition are one)."""
    if isinstance(compositions, (str, dict)):
        compositions = [compositions]
    wanted = [_formula(c) for c in compositions or ()]
    if elements:
        wanted += element_compositions(elements, max_atoms, oxidation_states)
    if end_members:
        if step is None:
            raise InputError("give --step with --end-members (e.g. 1/4)", field="step")
        wanted += grid_compositions(end_members, step)
    elif step is not None:
        raise InputError("--step needs --end-members", field="step")
    if not wanted:
        raise InputError("give the compositions of the field (or end members and a step, "
                         "or elements)", field="compositions")
    references = check_references(references)
    seen, out = set(), []
    for formula in wanted:
        key = tuple(sorted(Composition(formula).counts.items()))
        if key not in seen:
            seen.add(key)
            out.append(formula)
    elements = []
    for formula in out:
        for el in Composition(formula).elements:
            if el not in elements:
                elements.append(el)
    for el in elements:               # the hull's end points
        if el not in references and ((el, 1),) not in seen:
            out.append(el)
    return out


def check_references(references):
    """``{element: energy per atom (eV)}``: the hull's end points, given, not searched."""
    if references is None:
        return {}
    if not isinstance(references, dict):
        raise InputError(f"expected ELEMENT=ENERGY pairs, got {references!r}",
                         field="references")
    out = {}
    for el, energy in references.items():
        if _formula(el, "references") != el or not Composition(el).is_element:
            raise InputError(f"{el!r} is not an element", field="references")
        try:
            value = float(energy)
        except (TypeError, ValueError):
            raise InputError(f"energy of {el} must be a number, got {energy!r}",
                             field="references") from None
        if not math.isfinite(value):
            raise InputError(f"energy of {el} must be finite, got {energy!r}",
                             field="references")
        out[el] = value
    return out


def states_for(formula, states):
    """The field's oxidation states restricted to ``formula``'s elements (None for an
    element: it has no cation and anion); a composition they do not make neutral is
    an error naming it."""
    if not states:
        return None
    comp = Composition(formula)
    if comp.is_element:
        return None
    mine = {el: states[el] for el in comp.elements if el in states}
    try:
        Composition(formula, mine)
    except InputError as err:
        raise InputError(f"{formula}: {err}", field="oxidation_states") from None
    return mine
