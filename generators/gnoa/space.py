"""The GN-OA search space for one number of formula units z.

A point is a dict of plain numbers:

``sg``
    space-group number (a choice among :attr:`SearchSpace.space_groups`);
``wyckoff``
    in [0, 1): picks combination ``floor(wyckoff * n)`` of the ``n`` Wyckoff
    combinations of that group that fit the element counts (their number differs per
    group, so a fraction keeps the dimension fixed);
``a, b, c``
    in [0, 1]: cell shape, each edge ``shape_range ** (2u - 1)`` before scaling;
``volume``
    in [0, 1]: cell volume, log-uniform over the volume window times the sum of
    atomic sphere volumes (an addition to GN-OA's raw lattice lengths: it keeps
    almost every point inside the volume constraint);
``alpha, beta, gamma``
    in [0, 1]: angles in ``angle_range`` where the crystal system leaves them free;
``x0 ... x{3N-1}``
    in [0, 1): free Wyckoff coordinates, consumed in site order.

:meth:`SearchSpace.decode` maps a point deterministically to an ASE ``Atoms`` or to
``None`` when a hard constraint fails (shortest contacts, volume window, vacuum
slab, symmetry not the chosen group).  Wyckoff combinations are enumerated lazily,
general positions first, and capped per group (a full enumeration for P-1 with
40 atoms takes minutes).
"""

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from ase import Atoms

from ase_fuse.checks import Limits, check_structure
from ase_fuse.composition import Composition
from ase_fuse.errors import InputError

from .wyckoff import lattice_system, wyckoff_sites

TRICLINIC = (1, 2)


@dataclass(frozen=True)
class Dimension:
    """One axis of the search space: ``kind`` is ``"choice"`` (``options``) or ``"uniform"`` on [0, 1]."""
    name: str
    kind: str = "uniform"
    options: tuple = field(default=())

    def from_unit(self, u):
        """Value of this dimension at the unit-interval coordinate ``u``."""
        if self.kind == "choice":
            n = len(self.options)
            return self.options[min(int(u * n), n - 1)]
        return float(min(max(u, 0.0), 1.0))


def _wyckoff_sites(number):
    """``[(index, multiplicity, has_freedom)]`` of a group's Wyckoff positions."""
    return [(site.index, site.multiplicity, site.dof > 0) for site in wyckoff_sites(number)]


#: most ``fill`` calls spent on one group and composition: past it the group yields
#: what it found so far (a count, so the same on any machine)
MAX_WYCKOFF_NODES = 200_000


def _fillable(sites):
    """``can(pos, n)``: whether ``n`` atoms fit on ``sites[pos:]`` (a free site any
    number of times, a fixed one at most once), ignoring sites other elements took:
    a bound that prunes a branch that cannot be completed."""
    @lru_cache(maxsize=None)
    def can(pos, n):
        if n == 0:
            return True
        if pos == len(sites):
            return False
        _, mult, free = sites[pos]
        if mult <= n and can(pos if free else pos + 1, n - mult):
            return True
        return can(pos + 1, n)
    return can


def iter_wyckoff_combinations(number, counts):
    """Lazily yield Wyckoff combinations for ``counts`` (atoms per element) in group ``number``.

    Each combination is a tuple, per element, of Wyckoff indices (0 = general
    position).  A position without free parameters is used at most once overall.
    General (high multiplicity) positions are tried first, so the first few
    combinations are the least constrained ones.  A branch that cannot be completed
    is pruned (:func:`_fillable`), and a group stops after
    :data:`MAX_WYCKOFF_NODES` steps (Pccm took a minute to prove 6+6+21 atoms do
    not fit before the pruning).
    """
    sites = _wyckoff_sites(number)
    can = _fillable(tuple(sites))
    nodes = [0]
    if not all(can(0, n) for n in counts):
        return

    def fill(remaining, start, used):
        # choices for one element: a multiset of sites (non-decreasing index)
        nodes[0] += 1
        if remaining == 0:
            yield ()
            return
        if nodes[0] > MAX_WYCKOFF_NODES or not can(start, remaining):
            return
        for pos in range(start, len(sites)):
            index, mult, free = sites[pos]
            if mult > remaining or (not free and index in used):
                continue
            next_start = pos if free else pos + 1
            for rest in fill(remaining - mult, next_start,
                             used | {index} if not free else used):
                yield (index,) + rest

    def per_element(k, used):
        if k == len(counts):
            yield ()
            return
        for choice in fill(counts[k], 0, used):
            fixed = {i for i in choice if not sites[i][2]}
            for rest in per_element(k + 1, used | fixed):
                yield (choice,) + rest

    yield from per_element(0, frozenset())


class SearchSpace:
    """Space groups, Wyckoff combinations, lattice and coordinates for ``z`` formula units.

    Parameters
    ----------
    composition : Composition or str
    formula_units : int
        z, the number of formula units in the cell.
    space_groups : iterable of int, optional
        Groups to search (default 2-230; ``triclinic_only`` gives P1 and P-1).
    limits : ase_fuse.checks.Limits, optional
        Hard constraints; its ``volume_window`` also bounds the ``volume`` dimension.
    max_combinations : int
        Cap on the Wyckoff combinations kept per group.
    max_vacuum : float
        Largest allowed empty layer (A, between atomic spheres) along any lattice plane.
    check_symmetry : bool
        Reject a structure whose spglib group (symprec) is not the chosen one.
    """

    def __init__(self, composition, formula_units, space_groups=None, triclinic_only=False,
                 limits=None, max_combinations=64, shape_range=2.0,
                 angle_range=(60.0, 120.0), max_vacuum=3.0, check_symmetry=True,
                 symprec=1e-3):
        self.composition = Composition(composition)
        if formula_units != int(formula_units) or formula_units < 1:
            raise InputError(f"must be a positive whole number, got {formula_units}",
                             field="formula_units")
        self.z = int(formula_units)
        self.limits = limits or Limits()
        if max_combinations < 1:
            raise InputError("must be at least 1", field="max_combinations")
        self.max_combinations = int(max_combinations)
        self.shape_range = float(shape_range)
        self.angle_range = tuple(angle_range)
        self.max_vacuum = float(max_vacuum)
        self.check_symmetry = check_symmetry
        self.symprec = symprec
        self.elements = self.composition.elements
        self.counts = tuple(n * self.z for n in self.composition.counts.values())
        self.natoms = sum(self.counts)
        self._combinations = {}
        requested = _requested_groups(space_groups, triclinic_only)
        self.space_groups = tuple(sg for sg in requested if self.combinations(sg))
        if not self.space_groups:
            raise InputError(
                f"no space group in the range fits {self.composition.formula} with z={self.z}",
                field="space_groups")
        self.dimensions = (
            [Dimension("sg", "choice", self.space_groups), Dimension("wyckoff"),
             Dimension("a"), Dimension("b"), Dimension("c"), Dimension("volume"),
             Dimension("alpha"), Dimension("beta"), Dimension("gamma")]
            + [Dimension(f"x{i}") for i in range(3 * self.natoms)])

    # -- Wyckoff combinations ----------------------------------------------------------
    def combinations(self, sg):
        """Wyckoff combinations kept for group ``sg`` (computed on first use, capped)."""
        if sg not in self._combinations:
            found = []
            for combo in iter_wyckoff_combinations(sg, self.counts):
                found.append(combo)
                if len(found) >= self.max_combinations:
                    break
            self._combinations[sg] = found
        return self._combinations[sg]

    # -- sampling ------------------------------------------------------------------------
    def sample(self, rng):
        """A uniformly random point."""
        return {d.name: d.from_unit(rng.random()) for d in self.dimensions}

    def from_unit_vector(self, u):
        """The point at unit-cube coordinates ``u`` (one per dimension)."""
        return {d.name: d.from_unit(x) for d, x in zip(self.dimensions, u)}

    # -- decoding ------------------------------------------------------------------------
    def decode(self, point):
        """The structure at ``point``, or ``None`` when it breaks a hard constraint."""
        return self.explain(point)[0]

    def explain(self, point):
        """``(atoms, None)`` for a valid point, ``(None, reason)`` otherwise."""
        sg = int(point["sg"])
        combos = self.combinations(sg)
        if not combos:
            return None, f"no Wyckoff combination in group {sg}"
        combo = combos[min(int(float(point["wyckoff"]) * len(combos)), len(combos) - 1)]
        cell = self._cell(sg, point)
        if cell is None:
            return None, "degenerate cell angles"
        frac, symbols = self._positions(sg, combo, point)
        atoms = Atoms(symbols=symbols, scaled_positions=frac, cell=cell, pbc=True)
        reason = check_structure(atoms, self.composition, self.limits)
        if reason:
            return None, reason
        gap = vacuum_thickness(atoms, self.composition.radii)
        if gap > self.max_vacuum:
            return None, f"vacuum layer {gap:.2f} A"
        atoms.info["spacegroup"] = sg
        atoms.info["wyckoff"] = " ".join(
            f"{el}:" + ",".join(wyckoff_sites(sg)[i].label for i in sites)
            for el, sites in zip(self.elements, combo))
        if self.check_symmetry:
            found = spacegroup_number(atoms, self.symprec)
            if found != sg:
                return None, f"symmetry is {found}, not {sg}"
        return atoms, None

    def _cell(self, sg, point):
        system = lattice_system(sg)
        r = self.shape_range
        a, b, c = (r ** (2.0 * float(point[k]) - 1.0) for k in ("a", "b", "c"))
        lo, hi = self.angle_range
        alpha, beta, gamma = (lo + (hi - lo) * float(point[k]) for k in ("alpha", "beta", "gamma"))
        if system == "triclinic":
            pass
        elif system == "monoclinic":
            alpha = gamma = 90.0
        elif system == "orthorhombic":
            alpha = beta = gamma = 90.0
        elif system == "tetragonal":
            b, alpha, beta, gamma = a, 90.0, 90.0, 90.0
        elif system in ("hexagonal", "trigonal"):
            b, alpha, beta, gamma = a, 90.0, 90.0, 120.0
        else:  # cubic
            b = c = a
            alpha = beta = gamma = 90.0
        cosines = np.cos(np.radians([alpha, beta, gamma]))
        metric = 1 - (cosines ** 2).sum() + 2 * cosines.prod()
        if metric < 0.05:  # nearly flat or impossible angle triple
            return None
        from ase.geometry import cellpar_to_cell
        cell = cellpar_to_cell([a, b, c, alpha, beta, gamma])
        low, high = self.limits.volume_window
        # stay just inside the window so round-off never fails the volume check
        low, high = low * 1.001, high * 0.999
        volume = self.composition.sphere_volume(self.z) * low * (high / low) ** float(point["volume"])
        return cell * (volume / abs(np.linalg.det(cell))) ** (1.0 / 3.0)

    def _positions(self, sg, combo, point):
        group = wyckoff_sites(sg)
        coords = iter(float(point[f"x{i}"]) for i in range(3 * self.natoms))
        frac, symbols = [], []
        for element, sites in zip(self.elements, combo):
            for index in sites:
                site = group[index]
                orbit = site.orbit([next(coords) for _ in range(site.dof)]) % 1.0
                frac.extend(orbit)
                symbols.extend([element] * len(orbit))
        return np.array(frac), symbols


def _requested_groups(space_groups, triclinic_only):
    if triclinic_only:
        if space_groups is not None:
            raise InputError("give either space_groups or triclinic_only", field="space_groups")
        return TRICLINIC
    if space_groups is None:
        return tuple(range(2, 231))
    groups = tuple(dict.fromkeys(int(sg) for sg in space_groups))
    if not groups:
        raise InputError("empty space-group range", field="space_groups")
    bad = [sg for sg in groups if not 1 <= sg <= 230]
    if bad:
        raise InputError(f"space groups must be 1-230, got {bad[0]}", field="space_groups")
    return groups


def spacegroup_number(atoms, symprec=1e-3):
    """International number spglib finds for ``atoms`` (None if it finds none)."""
    import warnings

    import spglib

    from ase_fuse.symmetry import SpglibError
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():  # spglib 2.5+ warns about its old error handling
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
        except SpglibError:
            return None
    return None if dataset is None else int(dataset.number)


def vacuum_thickness(atoms, radii):
    """Thickest empty layer (A) between atomic spheres along any of the three lattice planes.

    Along each reciprocal direction the atoms' fractional coordinates are sorted on
    the periodic circle; the largest gap times the interplanar spacing, less the
    largest atomic diameter, is the empty slab.
    """
    frac = atoms.get_scaled_positions() % 1.0
    reciprocal = atoms.cell.reciprocal()
    diameter = 2.0 * max(radii[s] for s in set(atoms.get_chemical_symbols()))
    worst = -math.inf
    for axis in range(3):
        spacing = 1.0 / np.linalg.norm(reciprocal[axis])
        x = np.sort(frac[:, axis])
        gaps = np.diff(np.concatenate([x, [x[0] + 1.0]]))
        worst = max(worst, gaps.max() * spacing - diameter)
    return worst
