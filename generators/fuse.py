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
from ase_fuse.generators.base import StructureGenerator, formula_unit_list, make_rng
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
#: Plans kept by a generator, in (na, nb) pairs of their grid tables (~40 bytes each).
PLAN_CACHE_PAIRS = 2_000_000


def _sub_module_range(n_atoms, site_fill):
    """``(n_min, n_max)``: numbers of sub-modules whose sites hold ``n_atoms`` at a fill
    within ``site_fill``."""
    low, high = site_fill
    n_min = math.ceil(n_atoms / (SITES_PER_SUBMODULE * high) - 1e-9)
    n_max = math.floor(n_atoms / (SITES_PER_SUBMODULE * low) + 1e-9)
    return max(n_min, 1), n_max


def has_grid(n_atoms, site_fill=(0.5, 1.0)):
    """Whether any grid holds ``n_atoms`` at a fill in ``site_fill`` (without listing
    grids: a triclinic grid (s, 1, 1) exists for every number of sub-modules s)."""
    n_min, n_max = _sub_module_range(n_atoms, site_fill)
    return n_min <= n_max


class _GridTable:
    """Grids with ``n_min <= na * nb * nc <= n_max``, by lattice type, never listed.

    A grid is a pair (na, nb) and an nc in a contiguous range, less at most two values
    a lattice type excludes (nc = 2 na, nc = 2 nb), so the table holds one row per
    pair: its nc range and, per type, a cumulative count.  The k-th grid of a type (in
    the order (na, nb, nc) ascending) is found by bisection.  Memory and time grow
    with the number of pairs (about n_max ln n_max), not with the number of grids.
    """

    def __init__(self, n_min, n_max):
        n_min = max(int(n_min), 1)
        n_max = int(n_max)
        if n_max < n_min:
            na = nb = np.zeros(0, dtype=np.int64)
        else:
            first = np.arange(1, n_max + 1, dtype=np.int64)
            widths = n_max // first
            na = np.repeat(first, widths)
            starts = np.cumsum(widths) - widths
            nb = np.arange(len(na), dtype=np.int64) - np.repeat(starts, widths) + 1
        area = na * nb
        lo = np.maximum(1, -(-n_min // np.maximum(area, 1)))
        hi = n_max // np.maximum(area, 1)
        keep = lo <= hi
        self.na, self.nb, self.lo, self.hi = na[keep], nb[keep], lo[keep], hi[keep]
        self._types = {}

    def _type(self, name):
        """``(rows, first nc, excluded nc per row (n, 2; 0 = none), cumulative counts)``."""
        name = "triclinic" if name == "monoclinic" else name  # both take every grid
        if name in self._types:
            return self._types[name]
        na, nb, lo, hi = self.na, self.nb, self.lo, self.hi
        if name == "triclinic":
            ends = np.cumsum(hi - lo + 1)
            entry = (np.arange(len(na)), lo, np.zeros((len(na), 2), dtype=np.int64), ends)
            self._types[name] = entry
            return entry
        square = na == nb
        if name in ("hexagonal", "cubic", "tetragonal"):
            rows = np.flatnonzero(square)
            lo2, hi2, excl = lo[rows], hi[rows], np.zeros((len(rows), 2), dtype=np.int64)
            if name == "cubic":
                lo2 = np.maximum(lo2, 2 * na[rows])
                hi2 = np.minimum(hi2, 2 * na[rows])
            elif name == "tetragonal":
                excl[:, 0] = 2 * na[rows]
        elif name == "orthorhombic":
            rows = np.flatnonzero(~square)
            lo2, hi2 = lo[rows], hi[rows]
            a, b = 2 * na[rows], 2 * nb[rows]
            excl = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)
        else:
            raise InputError(f"unknown lattice type {name!r}", field="lattice_type")
        inside = (excl >= lo2[:, None]) & (excl <= hi2[:, None]) & (excl > 0)
        counts = np.maximum(hi2 - lo2 + 1, 0) - inside.sum(axis=1)
        keep = counts > 0
        entry = (rows[keep], lo2[keep], np.where(inside, excl, 0)[keep],
                 np.cumsum(counts[keep]))
        self._types[name] = entry
        return entry

    def count(self, name):
        ends = self._type(name)[3]
        return int(ends[-1]) if len(ends) else 0

    def grid(self, name, k):
        """The ``k``-th grid (0-based) of lattice type ``name``."""
        rows, lo, excl, ends = self._type(name)
        if not 0 <= k < self.count(name):
            raise IndexError(k)
        p = int(np.searchsorted(ends, k, side="right"))
        nc = int(lo[p]) + k - (int(ends[p - 1]) if p else 0)
        for value in excl[p]:  # ascending; 0 means none
            if 0 < value <= nc:
                nc += 1
        row = rows[p]
        return (int(self.na[row]), int(self.nb[row]), nc)

    def grids(self, name):
        return _Grids(self, name)

    def plan(self):
        """``{lattice type: grids}`` of the types that have any grid."""
        out = {name: self.grids(name) for name in LATTICE_TYPES}
        return {name: grids for name, grids in out.items() if len(grids)}

    @property
    def size(self):
        return len(self.na)


class _Grids:
    """The grids of one lattice type as a read-only sequence (``len``, ``[k]``)."""

    def __init__(self, table, name):
        self._table, self._name = table, name
        self._len = table.count(name)

    def __len__(self):
        return self._len

    def __getitem__(self, k):
        k = int(k)
        if k < 0:
            k += self._len
        return self._table.grid(self._name, k)

    def __iter__(self):
        return (self[k] for k in range(self._len))

    def __eq__(self, other):
        return list(self) == list(other)

    def __repr__(self):
        return f"<{self._len} {self._name} grids>"


def grid_table(n_atoms, site_fill=(0.5, 1.0)):
    """``{lattice type: grids}`` as :func:`lattice_grids`, each a lazy sequence."""
    return _GridTable(*_sub_module_range(n_atoms, site_fill)).plan()


def lattice_grids(n_atoms, site_fill=(0.5, 1.0)):
    """``{lattice type: [grids]}`` whose sites hold ``n_atoms`` at a fill in ``site_fill``.

    A grid of ``s`` sub-modules has ``4 s`` sites; it qualifies when
    ``low <= n_atoms / (4 s) <= high``.  Types with no grid are left out.  The lists
    are built from :func:`grid_table`, which the generator uses without listing them.
    """
    return {name: list(grids) for name, grids in grid_table(n_atoms, site_fill).items()}


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


class NoGridError(InputError, GenerationError):
    """No grid of sub-modules holds the cell asked for: bad input (exit 2 in the CLI),
    and a :class:`GenerationError` to code that catches those."""


def _reason_kind(reason):
    return re.sub(r"-?\d+(\.\d+)?", "#", reason)


class FuseGenerator(StructureGenerator):
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
        self.rng = make_rng(rng, seed)
        self.formula_units = None if formula_units is None else \
            formula_unit_list(formula_units, composition, self.max_atoms)
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
        self._plans = {}  # z -> ({lattice type: grids}, table size), oldest first
        self.candidates_drawn = 0  # all candidates so far, accepted or not

    def __repr__(self):
        return (f"FuseGenerator({self.composition.formula!r}, max_atoms={self.max_atoms}, "
                f"formula_units={self.formula_units})")

    # -- planning ---------------------------------------------------------------------
    def plan(self, z):
        """``{lattice type: grids}`` available for ``z`` formula units (each a sequence
        of ``(na, nb, nc)``, built lazily).  Recent plans are kept, up to
        :data:`PLAN_CACHE_PAIRS` pairs in all."""
        plan, pairs = self._plans.pop(z, (None, 0))
        if plan is None:
            n_atoms = z * self.composition.atoms_per_formula_unit
            table = _GridTable(*_sub_module_range(n_atoms, self.site_fill))
            plan, pairs = table.plan(), table.size
        self._plans[z] = (plan, pairs)  # dicts keep order: most recent last
        while len(self._plans) > 1 and \
                sum(size for _, size in self._plans.values()) > PLAN_CACHE_PAIRS:
            del self._plans[next(iter(self._plans))]
        return plan

    def _choices(self, formula_units):
        if formula_units is None:
            zs = self.formula_units or self._all_formula_units
        else:
            zs = formula_unit_list(formula_units, self.composition, self.max_atoms)
        per_unit = self.composition.atoms_per_formula_unit
        usable = [z for z in zs if has_grid(z * per_unit, self.site_fill)]
        if not usable:
            raise NoGridError(
                f"no sub-module grid holds {zs} formula units of "
                f"{self.composition.formula} at a site fill in {self.site_fill}; "
                f"allow more atoms (max_atoms) or a wider site_fill",
                field="max_atoms" if formula_units is None and self.formula_units is None
                else "formula_units")
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
