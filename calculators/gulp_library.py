"""Read GULP library files (``.lib``) into :class:`ProxyPotential` parameters.

Understood sections: ``species`` (charges), ``buckingham``, ``morse``, ``lennard``.
Two-body lines read ``label1 [core|shel] label2 [core|shel] params [rmin] rmax
[fit flags]`` as in the GULP manual; labels such as ``O2`` map to their element.

* Species charges come from the core entries.  Shell entries are ignored (a note
  says so); pass ``shells="merge"`` to add a shell's charge to its core (the
  rigid-ion limit of a shell-model library).  Terms that act on shells are applied
  between the atoms themselves, again with a note.
* ``lennard [epsilon|zero] [m n]``: the default form is A/r^m - B/r^n.  With
  ``epsilon`` the parameters are (epsilon, sigma) and
  E = epsilon [n/(m-n) (sigma/r)^m - m/(m-n) (sigma/r)^n] (well depth epsilon at
  r = sigma); with ``zero``, E = epsilon c [(sigma/r)^m - (sigma/r)^n] with
  c = m/(m-n) (m/n)^(n/(m-n)) (4 for 12-6: E = 0 at r = sigma).
* ``morse`` lines may carry GULP's optional Coulomb-subtraction factor before the
  cut-offs; it is read and ignored with a note.
* Any other section (three-body, spring, keywords, ...) is skipped with a warning
  that names it.
"""

import os
import re
import warnings
from dataclasses import dataclass, field

from ase.data import atomic_numbers

from ase_fuse.errors import InputError

from .pair_terms import PairTerm

_LABEL = re.compile(r"^[A-Z][a-z]?([0-9_][A-Za-z0-9_]*)?$")
_TYPES = ("core", "shel", "shell", "bshe", "bcor")
_SECTIONS = {"spec": "species", "buck": "buckingham", "mors": "morse", "lenn": "lennard"}
_NPARAMS = {"buckingham": 3, "morse": 3, "lennard": 2}


@dataclass
class ProxyParameters:
    """What a library defines: pair terms, species charges and reading notes."""
    terms: list = field(default_factory=list)
    charges: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def _element(label, lineno):
    match = re.match(r"([A-Z][a-z]?)", label)
    if not match or match.group(1) not in atomic_numbers:
        raise InputError(f"line {lineno}: {label!r} is not an element label", field="library")
    return match.group(1)


def _is_number(token):
    try:
        float(token)
    except ValueError:
        return False
    return True


def _split_species(tokens, count, lineno):
    """Pop ``count`` (label, type) pairs off the front of ``tokens``."""
    found = []
    for _ in range(count):
        if not tokens or _is_number(tokens[0]):
            raise InputError(f"line {lineno}: expected {count} species", field="library")
        label = tokens.pop(0)
        kind = "core"
        if tokens and tokens[0].lower() in _TYPES:
            kind = tokens.pop(0).lower()[:4]
        found.append((_element(label, lineno), kind))
    return found


def _numbers(tokens, lineno):
    try:
        return [float(t) for t in tokens]
    except ValueError:
        raise InputError(f"line {lineno}: expected numbers, got {' '.join(tokens)!r}",
                         field="library") from None


def _cutoffs(extra, nfit, lineno, tokens):
    """(rmin, rmax) from the numbers after the parameters, dropping fit flags."""
    if len(extra) > 2 and len(extra) - nfit in (1, 2) and \
            all(t in ("0", "1") for t in tokens[-nfit:]):
        extra = extra[:-nfit]
    if len(extra) == 1:
        return 0.0, extra[0]
    if len(extra) == 2:
        return extra[0], extra[1]
    raise InputError(f"line {lineno}: cannot read cut-offs from {extra}", field="library")


def _lennard_params(options, values):
    m, n = 12.0, 6.0
    numbers = [float(o) for o in options if _is_number(o)]
    if len(numbers) == 2:
        m, n = numbers
    first, second = values
    if "epsilon" in options:
        eps, sigma = first, second
        return (eps * n / (m - n) * sigma ** m, eps * m / (m - n) * sigma ** n, m, n)
    if "zero" in options:
        eps, sigma = first, second
        c = m / (m - n) * (m / n) ** (n / (m - n))
        return (eps * c * sigma ** m, eps * c * sigma ** n, m, n)
    return (first, second, m, n)


def read_gulp_library(path_or_text, shells="ignore"):
    """Parse a GULP library (a path or the text itself) into :class:`ProxyParameters`."""
    if shells not in ("ignore", "merge"):
        raise InputError(f"use 'ignore' or 'merge', got {shells!r}", field="shells")
    text = path_or_text
    if isinstance(path_or_text, os.PathLike) or (
            isinstance(path_or_text, str) and "\n" not in path_or_text
            and os.path.exists(path_or_text)):
        with open(path_or_text) as handle:
            text = handle.read()
    params = ProxyParameters()
    shell_charges = {}
    section, options, skipped = None, [], []
    shell_terms = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#")[0].strip()
        if not line or line.startswith("!"):
            continue
        tokens = line.split()
        head = tokens[0].lower()
        if not _LABEL.match(tokens[0]):
            section = _SECTIONS.get(head[:4])
            options = [t.lower() for t in tokens[1:]]
            if section is None and head not in skipped:
                skipped.append(head)
                warnings.warn(f"GULP library: section {tokens[0]!r} (line {lineno}) "
                              "is not supported and was skipped", stacklevel=2)
            continue
        if section is None:
            continue
        if section == "species":
            (element, kind), = _split_species(tokens, 1, lineno)
            charge = _numbers(tokens[:1], lineno)[0]
            if kind == "core":
                params.charges[element] = charge
            else:
                shell_charges[element] = charge
            continue
        pair = _split_species(tokens, 2, lineno)
        shell_terms |= any(kind != "core" for _, kind in pair)
        values = _numbers(tokens, lineno)
        nparams = _NPARAMS[section]
        coulomb_factor = None
        if section == "morse" and len(values) in (6, 9):
            coulomb_factor = values.pop(3)
            tokens = tokens[:3] + tokens[4:]
        rmin, rmax = _cutoffs(values[nparams:], nparams, lineno, tokens)
        values = values[:nparams]
        if coulomb_factor:
            params.notes.append(f"line {lineno}: morse Coulomb subtraction "
                                f"{coulomb_factor} ignored")
        if section == "lennard":
            values = _lennard_params(options, values)
        form = section
        (a, _), (b, _) = pair
        params.terms.append(PairTerm(form, a, b, tuple(values), rmin=rmin, rmax=rmax))
    if shell_charges:
        if shells == "merge":
            for el, q in shell_charges.items():
                params.charges[el] = params.charges.get(el, 0.0) + q
            params.notes.append(f"shell charges {shell_charges} added to the cores")
        else:
            params.notes.append(f"shells {sorted(shell_charges)} ignored: core charges used")
    if shell_terms:
        params.notes.append("terms on shells are applied between the atoms")
    if skipped:
        params.notes.append(f"skipped sections: {', '.join(skipped)}")
    return params
