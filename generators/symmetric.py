"""Random symmetric structures (AIRSS-style, placed by PyXtal) and a FUSE/symmetric mix.

:class:`SymmetricGenerator` draws a number of formula units ``z`` and a space group
(2-230, or the user's list) with the generator's ``numpy.random.Generator``, and lets
PyXtal place the atoms on Wyckoff positions of that group
(``pyxtal.from_random(3, group, species, counts, random_state=...)``, its seed drawn
from the same Generator, so the same seed gives the same structures).  A pair
``(z, group)`` whose Wyckoff multiplicities cannot hold the element counts is
remembered and never drawn again; any other failure (PyXtal cannot place the atoms,
or the structure fails :func:`ase_fuse.checks.check_structure`) is drawn again, at
most ``max_tries`` times per structure, then :class:`~ase_fuse.errors.GenerationError`.

:class:`MixedGenerator` (``generator="mix"``) takes a share ``fraction`` of its
structures from the symmetric generator and the rest from FUSE, interleaved evenly
(for ``fraction=0.5`` they alternate; which comes first is drawn from the Generator).

Both follow the generator protocol of :mod:`ase_fuse.generators.fuse`.  PyXtal (the
``[ml]`` extra) is imported on the first structure, never at module import.
"""

import contextlib
import dataclasses
import importlib.util
import io
import math
import re
import warnings
from collections import Counter
from itertools import count

import numpy as np
from ase import Atoms

from ase_fuse.checks import Limits, check_structure
from ase_fuse.composition import Composition
from ase_fuse.errors import GenerationError, InputError
from ase_fuse.generators.base import (StructureGenerator, formula_unit_list, make_rng,
                                       whole)

#: Space groups drawn from by default (P1 left out, as AIRSS-style searches do).
DEFAULT_SPACE_GROUPS = tuple(range(2, 231))
DEFAULT_MAX_TRIES = 200
_MISSING_PYXTAL = "needs pyxtal: pip install 'ase-fuse[ml]'"


@contextlib.contextmanager
def _quiet():
    """PyXtal prints and warns freely; keep the search's output clean."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _require_pyxtal():
    if importlib.util.find_spec("pyxtal") is None:
        raise InputError(f"the symmetric generator {_MISSING_PYXTAL}", field="generator")


def _load_pyxtal():
    """``(pyxtal class, its composition-incompatibility error)``, imported quietly."""
    try:
        with _quiet():
            from pyxtal import pyxtal
            from pyxtal.msg import Comp_CompatibilityError
    except ImportError as err:
        raise InputError(f"the symmetric generator {_MISSING_PYXTAL} ({err})",
                         field="generator") from None
    return pyxtal, Comp_CompatibilityError


def _as_composition(composition):
    if isinstance(composition, (str, dict)):
        composition = Composition(composition)
    if not isinstance(composition, Composition):
        raise InputError(f"expected a formula or Composition, got {composition!r}",
                         field="composition")
    return composition


def _limits(limits, max_atoms):
    limits = limits if limits is not None else Limits()
    if not isinstance(limits, Limits):
        raise InputError(f"must be ase_fuse.checks.Limits, got {limits!r}", field="limits")
    if limits.max_atoms is None:
        limits = dataclasses.replace(limits, max_atoms=max_atoms)
    return limits


def _space_groups(value):
    if value is None:
        return DEFAULT_SPACE_GROUPS
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise InputError(f"must be space-group numbers 1-230, got {value!r}",
                         field="space_groups")
    groups = []
    for g in value:
        g = whole(g, "space_groups")
        if g > 230:
            raise InputError(f"space groups are 1-230, got {g}", field="space_groups")
        if g not in groups:
            groups.append(g)
    if not groups:
        raise InputError("give at least one space group", field="space_groups")
    return tuple(groups)


def _reason_kind(reason):
    return re.sub(r"-?\d+(\.\d+)?", "#", reason)


def _check_count(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"must be a positive whole number, got {n!r}", field="n")
    return int(n)


class SymmetricGenerator(StructureGenerator):
    """Random symmetric structures: PyXtal atoms on Wyckoff sites of a random space group.

    Parameters
    ----------
    composition : str or Composition
    max_atoms : int
        Largest number of atoms in a (conventional) cell.
    rng : numpy.random.Generator, optional
        Source of all random choices (PyXtal's seeds included); ``seed`` makes one.
    space_groups : int or list of int, optional
        Groups to draw from (default 2-230).
    formula_units : int or list of int, optional
        Numbers of formula units to draw from (default: all that fit in ``max_atoms``).
    max_tries : int
        Draws per structure before :class:`GenerationError`.
    limits : ase_fuse.checks.Limits, optional
        Acceptance thresholds (its ``max_atoms`` defaults to ``max_atoms``).
    """

    name = "symmetric"

    def __init__(self, composition, max_atoms=50, rng=None, seed=None, space_groups=None,
                 formula_units=None, max_tries=DEFAULT_MAX_TRIES, limits=None):
        self.composition = _as_composition(composition)
        self._all_formula_units = self.composition.formula_units(max_atoms)  # validates
        self.max_atoms = int(max_atoms)
        self.rng = make_rng(rng, seed)
        self.space_groups = _space_groups(space_groups)
        self.formula_units = None if formula_units is None else \
            formula_unit_list(formula_units, self.composition, self.max_atoms)
        self.max_tries = whole(max_tries, "max_tries")
        self.limits = _limits(limits, self.max_atoms)
        _require_pyxtal()  # fail at set-up, before any search work; imported later
        self._incompatible = set()  # (z, group) pairs no Wyckoff combination can hold
        self.candidates_drawn = 0

    def __repr__(self):
        return (f"SymmetricGenerator({self.composition.formula!r}, "
                f"max_atoms={self.max_atoms}, formula_units={self.formula_units})")

    def _zs(self, formula_units):
        if formula_units is None:
            return self.formula_units or self._all_formula_units
        return formula_unit_list(formula_units, self.composition, self.max_atoms)

    def _species(self, z):
        elements = list(self.composition.elements)
        return [str(el) for el in elements], [int(self.composition.counts[el]) * z
                                              for el in elements]

    def _place(self, z, group, seed):
        """``(atoms, None)``, or ``(None, reason)`` when PyXtal cannot place the atoms."""
        pyxtal, incompatible = _load_pyxtal()
        species, counts = self._species(z)
        crystal = pyxtal()
        try:
            with _quiet():
                crystal.from_random(3, group, species, counts, random_state=seed)
                atoms = crystal.to_ase() if crystal.valid else None
        except incompatible:
            self._incompatible.add((z, group))
            return None, "Wyckoff positions cannot hold the counts"
        except Exception as err:  # pyxtal raises many kinds (RuntimeError, ValueError,
            # its own Error classes) when it cannot place atoms; each is one failed draw
            return None, f"pyxtal: {type(err).__name__}"
        if atoms is None:
            return None, "pyxtal: invalid structure"
        clean = Atoms(numbers=atoms.numbers, cell=atoms.cell.array,
                      scaled_positions=atoms.get_scaled_positions(wrap=True), pbc=True)
        return clean, None

    def generate(self, formula_units=None):
        """One valid structure; ``info["origin"]`` is ``{"name": "symmetric",
        "space_group": drawn group, "z": formula units}``."""
        zs = self._zs(formula_units)
        pairs = [(z, g) for z in zs for g in self.space_groups
                 if (z, g) not in self._incompatible]
        rejected = Counter()
        last = None
        for _ in range(self.max_tries):
            if not pairs:
                break
            z, group = pairs[int(self.rng.integers(len(pairs)))]
            seed = int(self.rng.integers(2 ** 31))
            self.candidates_drawn += 1
            atoms, reason = self._place(z, group, seed)
            if atoms is not None:
                reason = check_structure(atoms, self.composition, self.limits)
            if reason is None:
                atoms.info["origin"] = {"name": self.name, "space_group": group, "z": z}
                atoms.info["formula_units"] = z
                return atoms
            if (z, group) in self._incompatible:
                pairs.remove((z, group))
            rejected[_reason_kind(reason)] += 1
            last = reason
        where = f"space groups {_span(self.space_groups)} with z in {zs}"
        if not pairs:
            raise GenerationError(
                f"no symmetric structure of {self.composition.formula}: the Wyckoff "
                f"positions of {where} cannot hold its atom counts; allow more space "
                f"groups or formula units (max_atoms)")
        common = rejected.most_common(1)[0][0]
        raise GenerationError(
            f"no valid symmetric structure of {self.composition.formula} in "
            f"{self.max_tries} tries over {where} (most common rejection: {common!r}; "
            f"last: {last!r}); loosen the limits or raise max_tries")

    def generate_many(self, n, formula_units=None):
        """A list of ``n`` valid structures."""
        return [self.generate(formula_units) for _ in range(_check_count(n))]

    def __iter__(self):
        for _ in count():
            yield self.generate()


def _span(groups):
    groups = sorted(groups)
    if len(groups) > 3 and groups == list(range(groups[0], groups[-1] + 1)):
        return f"{groups[0]}-{groups[-1]}"
    return ", ".join(str(g) for g in groups)


class MixedGenerator(StructureGenerator):
    """A mix: random symmetric (PyXtal) and FUSE structures, interleaved evenly.

    Parameters
    ----------
    composition, max_atoms, rng, seed, formula_units, limits
        As :class:`SymmetricGenerator` (both parts share the one Generator).
    fraction : float
        Share of symmetric structures, 0-1 (default 0.5: they alternate with FUSE's).
    space_groups : int or list of int, optional
        Groups the symmetric part draws from (default 2-230).
    max_tries : int, optional
        Draws per structure of each part (default: each part's own).
    """

    name = "mix"

    def __init__(self, composition, max_atoms=50, rng=None, seed=None, fraction=0.5,
                 space_groups=None, formula_units=None, limits=None, max_tries=None):
        from .fuse import FuseGenerator

        self.composition = _as_composition(composition)
        self.composition.formula_units(max_atoms)  # validates
        self.max_atoms = int(max_atoms)
        self.rng = make_rng(rng, seed)
        if isinstance(fraction, bool) or not isinstance(
                fraction, (int, float, np.integer, np.floating)) \
                or not 0.0 <= float(fraction) <= 1.0:
            raise InputError(f"must be a number from 0 to 1, got {fraction!r}",
                             field="fraction")
        self.fraction = float(fraction)
        if self.fraction > 0 and importlib.util.find_spec("pyxtal") is None:
            # the search's default generator must work on a base install
            warnings.warn(f"generator mix {_MISSING_PYXTAL}; without it every structure "
                          "is a FUSE one", RuntimeWarning, stacklevel=2)
            self.fraction = 0.0
        common = {"max_atoms": self.max_atoms, "rng": self.rng,
                  "formula_units": formula_units, "limits": limits}
        if max_tries is not None:
            common["max_tries"] = max_tries
        self.fuse = FuseGenerator(self.composition, **common)
        self.symmetric = SymmetricGenerator(self.composition, space_groups=space_groups,
                                            **common) if self.fraction > 0 else None
        self._phase = float(self.rng.random())  # which kind comes first
        self._made = 0

    def __repr__(self):
        return (f"MixedGenerator({self.composition.formula!r}, max_atoms={self.max_atoms}, "
                f"fraction={self.fraction})")

    def next_is_symmetric(self):
        """Whether the next structure comes from the symmetric part: the k-th does when
        ``floor((k + 1) f + phase) > floor(k f + phase)``, so any ``n`` in a row hold
        ``n f`` symmetric ones, give or take one."""
        k, f = self._made, self.fraction
        return math.floor((k + 1) * f + self._phase) > math.floor(k * f + self._phase)

    def generate(self, formula_units=None):
        """One structure from the part whose turn it is."""
        part = self.symmetric if self.next_is_symmetric() else self.fuse
        atoms = part.generate(formula_units)
        self._made += 1
        return atoms

    def generate_many(self, n, formula_units=None):
        """A list of ``n`` valid structures."""
        return [self.generate(formula_units) for _ in range(_check_count(n))]

    def __iter__(self):
        for _ in count():
            yield self.generate()
