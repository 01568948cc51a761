"""FUSE random structure generator: atoms on the sites of a grid of sub-modules.

The original FUSE method (Collins et al., Faraday Discuss. 2024), written cleanly.
A crystal is a grid of ``na x nb x nc`` sub-modules of size ``Ip x Ip x Ip/2``
(:attr:`ase_fuse.composition.Composition.submodule_shape`); each sub-module has the
four sites :data:`ase_fuse.submodules.SITES`, and empty sites are vacancies.  One
structure is made by choosing

1. a number of formula units ``z`` (all that fit in ``max_atoms``, or the user's list),
2. a lattice type and a grid with enough sites for the ``z`` formula units, filled to a
   fraction within ``site_fill`` (so there are some vacancies),
3. cell angles for that lattice type,
4. a stacking of the layers of sub-modules (the *modules*) along c,
5. which sites hold atoms, and which atom goes on which site,

all with the generator's ``numpy.random.Generator``; candidates that fail
:func:`ase_fuse.checks.check_structure` are drawn again, at most ``max_tries`` times.

Lattice types and their grids
-----------------------------
==============  ===========================  =====================================
type            grid (na, nb, nc)             angles (alpha, beta, gamma)
==============  ===========================  =====================================
cubic           (n, n, 2n): a = b = c         90, 90, 90
tetragonal      (n, n, m), m != 2n: a = b     90, 90, 90
hexagonal       (n, n, m): a = b              90, 90, 120
orthorhombic    a, b, c all different         90, 90, 90
monoclinic      any                           90, beta, 90; beta in 60..150, != 90
triclinic       any                           from 60..150, at most one of them 90
==============  ===========================  =====================================

Stacking
--------
Within a module the sites form a square net (a triangular one when gamma = 120) of
spacing ``Ip/2``.  Shifting a layer by half a sub-module, as the original code did,
maps that net onto itself, so here the shifted layers sit over the *hollows* of the
net: for gamma = 90 alternate layers are shifted by (1/4, 1/4) of a sub-module (half a
site spacing: ABAB stacking); for gamma = 120 each layer takes one of the three
close-packing positions A (0, 0), B (1/6, 1/3), C (1/3, 1/6) (in sub-module fractions),
never the same as the layer below it (periodically).  Shifted sites stay inside their
sub-module, so ``decompose(atoms, grid=atoms.info["submodule_grid"])`` gives back each
atom's sub-module, and its local position is a site plus its layer's shift.

Generator protocol
------------------
Every ase-fuse generator, this one and any plugin registered under the entry-point
group ``ase_fuse.generators``, follows the same protocol::

    gen = Generator(composition, max_atoms=50, rng=numpy.random.default_rng(1), ...)
    atoms = gen.generate(formula_units=None)        # one valid ase.Atoms
    batch = gen.generate_many(n, formula_units=None)  # list of n of them
    for atoms in gen: ...                           # endless

``composition`` is a formula string or :class:`~ase_fuse.composition.Composition`;
``rng`` is the only source of randomness (same seed, same structures); bad input
raises :class:`~ase_fuse.errors.InputError`; a generator that cannot make a valid
structure raises :class:`~ase_fuse.errors.GenerationError`.  Every structure has exact
composition (whole formula units), at most ``max_atoms`` atoms, and
``atoms.info["origin"]`` naming the generator.
"""

import dataclasses
import math
import re
from collections import Counter
from itertools import count

import numpy as np
from ase.geometry import cellpar_to_cell

from ase_fuse.checks import Limits, check_structure
from ase_fuse.composition import Composition
from ase_fuse.errors import GenerationError, InputError
from ase_fuse.submodules import SITES, SubmoduleGrid

LATTICE_TYPES = ("cubic", "tetragonal", "hexagonal", "orthorhombic", "monoclinic",
                 "triclinic")
#: Angles (degrees) the oblique lattices draw from.
TRICLINIC_ANGLES = (60.0, 75.0, 90.0, 105.0, 120.0, 150.0)
MONOCLINIC_BETAS = (60.0, 75.0, 105.0, 120.0, 150.0)
#: In-plane layer shifts (fractions of a sub-module along a, b) for gamma = 90 (A, B)
#: and gamma = 120 (A, B, C).
SQUARE_SHIFTS = np.array([[0.0, 0.0], [0.25, 0.25]])
HEXAGONAL_SHIFTS = np.array([[0.0, 0.0], [1.0 / 6.0, 1.0 / 3.0], [1.0 / 3.0, 1.0 / 6.0]])
#: Smallest allowed volume / (a b c) of a cell; flatter angle sets are drawn again.
MIN_CELL_SHAPE = 0.35
SITES_PER_SUBMODULE = len(SITES)


def _grids_with(n_min, n_max):
    """All grids (na, nb, nc) with ``n_min <= na * nb * nc <= n_max``."""
    grids = []
    for na in range(1, n_max + 1):
        for nb in range(1, n_max // na + 1):
            for nc in range(1, n_max // (na * nb) + 1):
                if na * nb * nc >= n_min:
                    grids.append((na, nb, nc))
    return grids


def _lattice_of(grid):
    """Lattice types a grid can take (cell lengths a = na Ip, b = nb Ip, c = nc Ip/2)."""
    na, nb, nc = grid
    types = ["hexagonal"] if na == nb else []
    if na == nb and nc == 2 * na:
        types.append("cubic")
    if na == nb and nc != 2 * na:
        types.append("tetragonal")
    if na != nb and nc != 2 * na and nc != 2 * nb:
        types.append("orthorhombic")
    types += ["monoclinic", "triclinic"]
    return types


def lattice_grids(n_atoms, site_fill=(0.5, 1.0)):
    """``{lattice type: [grids]}`` whose sites hold ``n_atoms`` at a fill in ``site_fill``.

    A grid of ``s`` sub-modules has ``4 s`` sites; it qualifies when
    ``low <= n_atoms / (4 s) <= high``.  Types with no grid are left out.
    """
    low, high = site_fill
    n_min = math.ceil(n_atoms / (SITES_PER_SUBMODULE * high) - 1e-9)
    n_max = math.floor(n_atoms / (SITES_PER_SUBMODULE * low) + 1e-9)
    table = {name: [] for name in LATTICE_TYPES}
    for grid in _grids_with(max(n_min, 1), n_max):
        for name in _lattice_of(grid):
            table[name].append(grid)
    return {name: grids for name, grids in table.items() if grids}


def cell_shape_factor(alpha, beta, gamma):
    """``volume / (a b c)`` of a cell with these angles (degrees); <= 0 if impossible."""
    ca, cb, cg = (math.cos(math.radians(x)) for x in (alpha, beta, gamma))
    value = 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg
    return math.sqrt(value) if value > 0 else 0.0


def draw_angles(lattice_type, rng):
    """Cell angles (alpha, beta, gamma) in degrees for ``lattice_type``."""
    if lattice_type in ("cubic", "tetragonal", "orthorhombic"):
        return (90.0, 90.0, 90.0)
    if lattice_type == "hexagonal":
        return (90.0, 90.0, 120.0)
    if lattice_type == "monoclinic":
        return (90.0, float(rng.choice(MONOCLINIC_BETAS)), 90.0)
    if lattice_type != "triclinic":
        raise InputError(f"unknown lattice type {lattice_type!r}", field="lattice_type")
    while True:
        alpha, beta = (float(x) for x in rng.choice(TRICLINIC_ANGLES, size=2))
        gamma = float(rng.choice((90.0, 120.0)))
        if (alpha, beta, gamma).count(90.0) >= 2:
            continue  # that is a monoclinic or orthorhombic cell
        if cell_shape_factor(alpha, beta, gamma) >= MIN_CELL_SHAPE:
            return (alpha, beta, gamma)


def draw_stacking(n_layers, gamma, rng):
    """Index of each layer's in-plane shift: ABAB for gamma = 90, A/B/C for 120."""
    if n_layers == 1:
        return [0]
    if gamma != 120.0:
        return [k % 2 for k in range(n_layers)]
    stacking = [0]
    for k in range(1, n_layers):
        banned = {stacking[-1]}
        if k == n_layers - 1:
            banned.add(stacking[0])  # the last layer also sits under the first
        options = [s for s in range(3) if s not in banned]
        stacking.append(int(rng.choice(options)))
    return stacking


def _as_formula_units(value, composition, max_atoms, field="formula_units"):
    """A validated sorted list of formula-unit counts from an int or iterable of ints."""
    values = [value] if np.isscalar(value) else list(value)
    if not values:
        raise InputError("give at least one number of formula units", field=field)
    result = set()
    for z in values:
        if isinstance(z, bool) or not isinstance(z, (int, float, np.integer, np.floating)) \
                or not float(z).is_integer() or z < 1:
            raise InputError(f"must be positive whole numbers, got {z!r}", field=field)
        z = int(z)
        n = z * composition.atoms_per_formula_unit
        if n > max_atoms:
            raise InputError(f"{z} formula units of {composition.formula} is {n} atoms, "
                             f"more than max_atoms={max_atoms}", field=field)
        result.add(z)
    return sorted(result)


def _reason_kind(reason):
    return re.sub(r"-?\d+(\.\d+)?", "#", reason)


class FuseGenerator:
    """FUSE random structures: atoms on sub-module sites of a random lattice.

    Parameters
    ----------
    composition : str or Composition
        What to generate, e.g. ``"Ca3Ti2O7"``.
    max_atoms : int
        Largest number of atoms in a cell.
    rng : numpy.random.Generator, optional
        Source of all random choices.  ``seed`` makes one instead; with neither a fresh
        unseeded generator is used.
    formula_units : int or list of int, optional
        Numbers of formula units to choose from (default: all that fit in ``max_atoms``).
    limits : ase_fuse.checks.Limits, optional
        Acceptance thresholds (its ``max_atoms`` defaults to ``max_atoms``).
    max_tries : int
        Candidates drawn per structure before :class:`GenerationError`.
    site_fill : (float, float)
        Allowed fraction of occupied sites in a grid (the rest are vacancies).
    """

    name = "fuse"

    def __init__(self, composition, max_atoms=50, rng=None, seed=None, formula_units=None,
                 limits=None, max_tries=500, site_fill=(0.5, 1.0)):
        if isinstance(composition, (str, dict)):
            composition = Composition(composition)
        if not isinstance(composition, Composition):
            raise InputError(f"expected a formula or Composition, got {composition!r}",
                             field="composition")
        self.composition = composition
        self._all_formula_units = composition.formula_units(max_atoms)  # validates
        self.max_atoms = int(max_atoms)
        if rng is not None and seed is not None:
            raise InputError("give rng or seed, not both", field="seed")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise InputError(f"must be a numpy.random.Generator, got {type(rng).__name__}",
                             field="rng")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise InputError(f"must be a whole number >= 0, got {seed!r}", field="seed")
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.formula_units = None if formula_units is None else \
            _as_formula_units(formula_units, composition, self.max_atoms)
        limits = limits if limits is not None else Limits()
        if not isinstance(limits, Limits):
            raise InputError(f"must be ase_fuse.checks.Limits, got {limits!r}", field="limits")
        if limits.max_atoms is None:
            limits = dataclasses.replace(limits, max_atoms=self.max_atoms)
        self.limits = limits
        if isinstance(max_tries, bool) or not isinstance(max_tries, (int, np.integer)) \
                or max_tries < 1:
            raise InputError(f"must be a positive whole number, got {max_tries!r}",
                             field="max_tries")
        self.max_tries = int(max_tries)
        try:
            low, high = (float(x) for x in site_fill)
        except (TypeError, ValueError):
            raise InputError(f"need two numbers (low, high), got {site_fill!r}",
                             field="site_fill") from None
        if not 0.0 < low <= high <= 1.0:
            raise InputError(f"need 0 < low <= high <= 1, got {site_fill!r}",
                             field="site_fill")
        self.site_fill = (float(low), float(high))
        self._plans = {}  # z -> {lattice type: grids}
        self.candidates_drawn = 0  # all candidates so far, accepted or not

    def __repr__(self):
        return (f"FuseGenerator({self.composition.formula!r}, max_atoms={self.max_atoms}, "
                f"formula_units={self.formula_units})")

    # -- planning ---------------------------------------------------------------------
    def plan(self, z):
        """``{lattice type: [grids]}`` available for ``z`` formula units."""
        if z not in self._plans:
            n_atoms = z * self.composition.atoms_per_formula_unit
            self._plans[z] = lattice_grids(n_atoms, self.site_fill)
        return self._plans[z]

    def _choices(self, formula_units):
        if formula_units is None:
            zs = self.formula_units or self._all_formula_units
        else:
            zs = _as_formula_units(formula_units, self.composition, self.max_atoms)
        usable = [z for z in zs if self.plan(z)]
        if not usable:
            raise GenerationError(
                f"no sub-module grid holds {zs} formula units of "
                f"{self.composition.formula} at a site fill in {self.site_fill}; "
                f"allow more atoms (max_atoms) or a wider site_fill")
        return usable

    # -- drawing one candidate --------------------------------------------------------
    def draw(self, formula_units=None):
        """One candidate as ``(SubmoduleGrid, info)``, not yet checked."""
        rng = self.rng
        z = int(rng.choice(self._choices(formula_units)))
        plan = self.plan(z)
        lattice_type = str(rng.choice(sorted(plan)))
        grids = plan[lattice_type]
        grid = grids[int(rng.integers(len(grids)))]
        angles = draw_angles(lattice_type, rng)
        ip = float(self.composition.ip)
        lengths = (grid[0] * ip, grid[1] * ip, grid[2] * ip / 2.0)
        cell = cellpar_to_cell(list(lengths) + list(angles))
        stacking = draw_stacking(grid[2], angles[2], rng)
        shifts = (HEXAGONAL_SHIFTS if angles[2] == 120.0 else SQUARE_SHIFTS)[stacking]

        symbols = self.composition.symbols(z)
        n_sub = grid[0] * grid[1] * grid[2]
        sites = rng.choice(n_sub * SITES_PER_SUBMODULE, size=len(symbols), replace=False)
        flat, site = np.divmod(sites, SITES_PER_SUBMODULE)
        index = np.stack(np.unravel_index(flat, grid), axis=1)
        local = SITES[site].copy()
        local[:, :2] += shifts[index[:, 2]]
        sub = SubmoduleGrid(cell, grid, symbols, index, local)
        info = {
            "origin": self.name,
            "formula_units": z,
            "lattice_type": lattice_type,
            "stacking": "".join("ABC"[s] for s in stacking),
            "submodule_ip": ip,
            "site_fill": len(symbols) / (n_sub * SITES_PER_SUBMODULE),
        }
        return sub, info

    # -- protocol -----------------------------------------------------------------------
    def generate(self, formula_units=None):
        """One valid structure (``ase.Atoms``); see the module docstring for ``info``."""
        self._choices(formula_units)  # fail fast on impossible or bad input
        rejected = Counter()
        last = None
        for _ in range(self.max_tries):
            sub, info = self.draw(formula_units)
            self.candidates_drawn += 1
            atoms = sub.assemble(info)
            reason = check_structure(atoms, self.composition, self.limits)
            if reason is None:
                return atoms
            rejected[_reason_kind(reason)] += 1
            last = reason
        common = rejected.most_common(1)[0][0]
        raise GenerationError(
            f"no valid FUSE structure of {self.composition.formula} in {self.max_tries} "
            f"tries (most common rejection: {common!r}; last: {last!r}); "
            f"loosen the limits or raise max_tries")

    def generate_many(self, n, formula_units=None):
        """A list of ``n`` valid structures."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"must be a positive whole number, got {n!r}", field="n")
        return [self.generate(formula_units) for _ in range(int(n))]

    def __iter__(self):
        for _ in count():
            yield self.generate()
