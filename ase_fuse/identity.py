"""Whether two structures are the same, and the distinct structures among many.

A comparator answers ``same(a, b)`` (``looks_like`` too, ase-ga's name).  They chain,
cheapest first (:class:`ChainedComparator`): reduced composition, energy per atom,
volume per atom, a distance fingerprint, and pymatgen's ``StructureMatcher`` as the
final judge (:data:`MATCHER_SETTINGS`).  StructureMatcher can match cells whose spglib
space groups differ at a given tolerance (a slightly distorted copy): the report
lists every space group seen among a structure's finds.

:class:`DistinctSet` keeps one representative per distinct structure, binned on energy
(or volume) so that a new structure is compared only with those in its bin and the
two beside it: the cost per structure is bounded by how crowded the landscape is
near its energy, not by the size of the run.
"""

import math
from abc import ABC, abstractmethod
from functools import cached_property

import numpy as np

#: ``ltol``/``stol``/``angle_tol`` are pymatgen's defaults; ``attempt_supercell`` lets
#: a cell match its supercell (the search compares cells of different formula units)
MATCHER_SETTINGS = {"ltol": 0.2, "stol": 0.3, "angle_tol": 5, "primitive_cell": True,
                    "scale": True, "attempt_supercell": True}

#: an input is "the same" as one already relaxed only when it is that structure to
#: within these (no rescaling, same cell size): its relaxation would repeat
INPUT_MATCHER_SETTINGS = {"ltol": 0.01, "stol": 0.01, "angle_tol": 0.1,
                          "primitive_cell": False, "scale": False,
                          "attempt_supercell": False}


def structure_matcher(**overrides):
    """A pymatgen ``StructureMatcher`` with :data:`MATCHER_SETTINGS` (``overrides`` on
    top; pymatgen is imported here, on first use)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    return StructureMatcher(**dict(MATCHER_SETTINGS, **overrides))


def _energy_of(atoms):
    """Energy per atom from a finished calculator or ``info['energy_per_atom']``."""
    calc = atoms.calc
    results = getattr(calc, "results", None) or {}
    if "energy" in results and len(atoms):
        return float(results["energy"]) / len(atoms)
    value = atoms.info.get("energy_per_atom")
    return float(value) if isinstance(value, (int, float)) else None


class Entry:
    """A structure being compared: ``atoms``, ``energy`` per atom (or None) and a
    ``label`` (a row id); its features are computed once, on first use."""

    def __init__(self, atoms, energy=None, label=None):
        self.atoms = atoms
        self.energy = None if energy is None else float(energy)
        self.label = label

    @cached_property
    def formula(self):
        """The reduced composition as sorted ``(symbol, count)`` pairs."""
        symbols, counts = np.unique(self.atoms.get_chemical_symbols(), return_counts=True)
        g = int(np.gcd.reduce(counts)) if len(counts) else 1
        return tuple((str(s), int(c) // g) for s, c in zip(symbols, counts))

    @cached_property
    def volume(self):
        """Volume per atom, A^3."""
        return float(abs(self.atoms.get_volume())) / max(len(self.atoms), 1)

    @cached_property
    def fingerprint(self):
        return distance_fingerprint(self.atoms)

    @cached_property
    def structure(self):
        from pymatgen.io.ase import AseAtomsAdaptor
        return AseAtomsAdaptor.get_structure(self.atoms.copy())  # a copy: no calculator


def as_entry(item, energy=None):
    """``item`` as an :class:`Entry` (an Atoms' energy read from its calculator)."""
    if isinstance(item, Entry):
        return item
    return Entry(item, _energy_of(item) if energy is None else energy)


def _pairs(atoms, cutoff):
    """``(i, j, distance)`` of each unordered pair within ``cutoff`` (periodic images
    included): the dense list of the proxy for small cells, ASE's binned one above."""
    from ase.neighborlist import neighbor_list

    from .calculators.neighbours import neighbour_pairs
    found = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, cutoff,
                            max_work=2_000_000)
    if found is not None:
        i, j, vectors = found
        return i, j, np.sqrt((vectors * vectors).sum(1))
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    keep = i <= j                      # ASE's list is full: each pair twice
    return i[keep], j[keep], d[keep]


def distance_fingerprint(atoms, rmax=3.0, bins=60, sigma=0.06):
    """A unit vector describing ``atoms``' interatomic distances.

    Per pair of elements, a Gaussian-smeared histogram of neighbour distances in units
    of ``(V/N)^(1/3)`` up to ``rmax`` of them, each distance weighted ``1/d^2`` and each
    histogram divided by the atoms of the first element: the same for a supercell, a
    permutation, an origin shift or a rotation, and for any volume.
    """
    n = len(atoms)
    scale = (abs(atoms.get_volume()) / max(n, 1)) ** (1.0 / 3.0)
    if n == 0 or not math.isfinite(scale) or scale <= 0:
        return np.zeros(0)
    i, j, d = _pairs(atoms, rmax * scale)
    d = d / scale
    numbers = atoms.numbers
    species = sorted(set(int(z) for z in numbers))
    grid = np.linspace(0.0, rmax, bins)
    zi, zj = numbers[i], numbers[j]
    low, high = np.minimum(zi, zj), np.maximum(zi, zj)
    # an unordered pair of one element is two ordered ones (i to j and j to i)
    weights = np.where(zi == zj, 2.0, 1.0) / np.maximum(d, 0.3) ** 2
    parts = []
    for a in species:
        count = int(np.sum(numbers == a))
        for b in species:
            if b < a:
                continue
            sel = (low == a) & (high == b)
            hist = np.exp(-0.5 * ((grid[:, None] - d[sel][None, :]) / sigma) ** 2) \
                @ weights[sel]
            parts.append(hist / count)
    vector = np.concatenate(parts) if parts else np.zeros(0)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


class Comparator(ABC):
    """Decides whether two structures are the same (``same`` / ``looks_like``)."""

    name = "comparator"

    def same(self, a, b):
        """True if ``a`` and ``b`` (Atoms or :class:`Entry`) are the same structure."""
        return bool(self.compare(as_entry(a), as_entry(b)))

    looks_like = same

    @abstractmethod
    def compare(self, a, b):
        """``same`` on two :class:`Entry` objects."""

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class CompositionComparator(Comparator):
    """The same elements in the same ratio (any number of formula units)."""
    name = "composition"

    def compare(self, a, b):
        return a.formula == b.formula


class SizeComparator(Comparator):
    """The same number of atoms (for inputs: a supercell relaxes differently)."""
    name = "size"

    def compare(self, a, b):
        return len(a.atoms) == len(b.atoms)


class EnergyComparator(Comparator):
    """Energies per atom within ``tol`` eV/atom (a structure without one passes)."""
    name = "energy"

    def __init__(self, tol=0.01):
        self.tol = float(tol)

    def compare(self, a, b):
        if a.energy is None or b.energy is None:
            return True
        return abs(a.energy - b.energy) <= self.tol


class VolumeComparator(Comparator):
    """Volumes per atom within ``rtol`` of the larger."""
    name = "volume"

    def __init__(self, rtol=0.1):
        self.rtol = float(rtol)

    def compare(self, a, b):
        return abs(a.volume - b.volume) <= self.rtol * max(a.volume, b.volume)


class FingerprintComparator(Comparator):
    """Cosine distance of the :func:`distance_fingerprint` vectors at most ``tol``."""
    name = "fingerprint"

    def __init__(self, tol=0.05):
        self.tol = float(tol)

    def compare(self, a, b):
        fa, fb = a.fingerprint, b.fingerprint
        if fa.shape != fb.shape or not fa.size:
            return False
        return 1.0 - float(fa @ fb) <= self.tol


class MatcherComparator(Comparator):
    """pymatgen ``StructureMatcher.fit`` (:data:`MATCHER_SETTINGS`, or ``settings``)."""
    name = "structure_matcher"

    def __init__(self, **settings):
        self.settings = dict(MATCHER_SETTINGS, **settings)
        self._matcher = None

    def compare(self, a, b):
        if self._matcher is None:
            self._matcher = structure_matcher(**self.settings)
        try:
            return bool(self._matcher.fit(a.structure, b.structure))
        except (ValueError, RuntimeError, ArithmeticError, np.linalg.LinAlgError):
            return False  # pymatgen could not compare them: keep both

    def __repr__(self):
        return f"MatcherComparator({self.settings!r})"


class ChainedComparator(Comparator):
    """All of ``comparators`` agree, tried in order (put the cheapest first); counts
    how often each one was asked in ``calls``."""
    name = "chain"

    def __init__(self, *comparators):
        self.comparators = list(comparators)
        self.calls = {c.name: 0 for c in self.comparators}

    def compare(self, a, b):
        for comparator in self.comparators:
            self.calls[comparator.name] = self.calls.get(comparator.name, 0) + 1
            if not comparator.compare(a, b):
                return False
        return True

    def __repr__(self):
        return f"ChainedComparator({', '.join(map(repr, self.comparators))})"


def default_comparator(energy_tol=0.01, volume_rtol=0.1, fingerprint_tol=0.05,
                       **matcher_settings):
    """Relaxed structures: composition, energy, volume, fingerprint, StructureMatcher."""
    return ChainedComparator(CompositionComparator(), EnergyComparator(energy_tol),
                             VolumeComparator(volume_rtol),
                             FingerprintComparator(fingerprint_tol),
                             MatcherComparator(**matcher_settings))


def input_comparator():
    """Unrelaxed inputs: the same cell size and the same structure to within
    :data:`INPUT_MATCHER_SETTINGS` (their relaxations would be the same)."""
    return ChainedComparator(SizeComparator(), CompositionComparator(),
                             VolumeComparator(1e-3), FingerprintComparator(1e-3),
                             MatcherComparator(**INPUT_MATCHER_SETTINGS))


class Group:
    """One distinct structure: its first find (``entry``, ``label``), how many times
    it was found (``count``) and the labels of the later finds (``members``)."""

    def __init__(self, entry, count=1):
        self.entry = entry
        self.count = int(count)
        self.members = []

    @property
    def label(self):
        return self.entry.label

    def __repr__(self):
        return f"Group(label={self.label!r}, energy={self.entry.energy}, count={self.count})"


class DistinctSet:
    """Distinct structures, each compared only with those near it.

    ``coordinate`` is what the bins are cut on: ``"energy"`` (per atom; bins of
    ``width`` eV/atom; a structure without an energy goes in one extra bin) or
    ``"volume"`` (log volume per atom; bins of relative ``width``).  A structure is
    compared with the groups in its bin and the two neighbouring ones (nearest in
    energy first; oldest first on volume bins) until one matches; ``comparisons``
    counts the pairs compared.
    """

    def __init__(self, comparator=None, coordinate="energy", width=0.01):
        if coordinate not in ("energy", "volume"):
            raise ValueError(f"coordinate must be 'energy' or 'volume', got {coordinate!r}")
        self.comparator = comparator if comparator is not None else default_comparator()
        self.coordinate = coordinate
        self.width = float(width)
        self.groups = []
        self._bins = {}
        self._by_label = {}
        self._order = {}
        self.comparisons = 0

    def __len__(self):
        return len(self.groups)

    def __iter__(self):
        return iter(self.groups)

    def _bin(self, entry):
        if self.coordinate == "energy":
            if entry.energy is None or not math.isfinite(entry.energy):
                return None
            return math.floor(entry.energy / self.width)
        return math.floor(math.log(max(entry.volume, 1e-12)) / self.width)

    def _nearby(self, entry):
        k = self._bin(entry)
        keys = [None] if k is None else [k, k - 1, k + 1]
        out = []
        for key in keys:
            out.extend(self._bins.get((entry.formula, key), ()))
        if entry.energy is None or self.coordinate != "energy":
            return sorted(out, key=lambda g: self._order[id(g)])
        # nearest energy first: the likeliest match, so the fewest comparisons
        return sorted(out, key=lambda g: (abs(g.entry.energy - entry.energy),
                                          self._order[id(g)]))

    def find(self, item, energy=None):
        """The :class:`Group` that ``item`` belongs to, or None."""
        entry = as_entry(item, energy)
        for group in self._nearby(entry):
            self.comparisons += 1
            if self.comparator.compare(entry, group.entry):
                return group
        return None

    def add(self, item, energy=None, label=None):
        """Count ``item`` in; returns ``(group, new)``: its group, and whether it is
        the first of its structure (then ``group.entry`` is it)."""
        entry = as_entry(item, energy)
        if label is not None:
            entry.label = label
        group = self.find(entry)
        if group is not None:
            group.count += 1
            group.members.append(entry.label)
            return group, False
        return self.add_group(entry), True

    def add_group(self, entry, count=1):
        """Add ``entry`` as a new distinct structure without comparing (a restart
        rebuilding from stored labels); returns its group."""
        group = Group(entry, count)
        self._order[id(group)] = len(self.groups)
        self.groups.append(group)
        self._bins.setdefault((entry.formula, self._bin(entry)), []).append(group)
        if entry.label is not None:
            self._by_label[entry.label] = group
        return group

    def group_of(self, label):
        """The group whose first find is ``label`` (or None)."""
        return self._by_label.get(label)
