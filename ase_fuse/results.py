"""The distinct low-energy structures of a run (or of several seeds' runs).

``distinct(db, n=10, window=None)`` is what ``ase-fuse report`` prints: one entry per
distinct structure (``ase_fuse.identity``), lowest first, with its space group, size,
volume, density, when it was first found and how often.  ``write_top`` writes them as
files to take to DFT or to a diffractometer.
"""

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .identity import MATCHER_SETTINGS, DistinctSet, default_comparator
from .records import row_enthalpy
from .run_identity import SYMPREC, RunIdentity
from .symmetry import space_group

#: finds of a structure whose space groups are checked against its lowest copy's
MEMBERS_CHECKED = 20

#: amu / A^3 in g / cm^3
AMU_PER_A3 = 1.66053907


@dataclass
class Polymorph:
    """One distinct structure: the lowest-energy copy found (``atoms``) and the
    first find (``step``, ``time`` s after the run's first row was written)."""
    rank: int
    energy_per_atom: float
    delta_mev: float
    spacegroup: str
    spacegroup_number: int
    also_seen_as: list
    formula: str
    formula_units: int
    natoms: int
    volume_per_atom: float
    density: float
    step: int
    time: float
    times_found: int
    row_id: int
    db: str
    atoms: object = field(repr=False, default=None)
    files: list = field(default_factory=list)
    #: what the ranking and ``delta_mev`` use: (E + PV) / N at ``pressure`` GPa
    #: (the energy per atom at zero pressure)
    enthalpy_per_atom: float = None
    pressure: float = 0.0

    def __post_init__(self):
        if self.enthalpy_per_atom is None:
            self.enthalpy_per_atom = self.energy_per_atom

    def todict(self):
        out = asdict(self)
        out.pop("atoms")
        return out


def walker_dbs(folder):
    """``{seed: db path}`` of a ``--walkers`` run folder (``seed<S>/fuse.db``)."""
    out = {}
    for db in Path(folder).glob("seed*/fuse.db"):
        name = db.parent.name[4:]
        if name.isdigit():
            out[int(name)] = db
    return dict(sorted(out.items()))


def _run_dbs(source):
    """The db paths of ``source``: a db file, a run folder, a ``--walkers`` folder, a
    RunRecords, or a list of those."""
    from .records import RunRecords
    if isinstance(source, (list, tuple)):
        return [db for item in source for db in _run_dbs(item)]
    if isinstance(source, RunRecords):
        return [Path(source.path)]
    path = Path(source)
    if path.is_dir():
        walkers = walker_dbs(path)
        return list(walkers.values()) if walkers else [path / "fuse.db"]
    return [path]


def _usable(row):
    energy = row.get("energy_per_atom")
    step = row.get("step")
    return (isinstance(step, int) and not isinstance(step, bool)
            and isinstance(energy, (int, float)) and not isinstance(energy, bool)
            and math.isfinite(energy) and row.get("natoms", 0) > 0)


def _decodes(row):
    """False for a row whose stored arrays or data do not decode (a damaged db): it
    is left out of the list, the others are still shown."""
    try:
        row.toatoms()
        row.get("data")
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
        return False
    return True


def _start_time(rows):
    """Wall clock (s since the epoch) when the db's first row was written."""
    from ase.db.core import T2000, YEAR
    times = [r.ctime for r in rows if isinstance(getattr(r, "ctime", None), float)]
    return min(times) * YEAR + T2000 if times else None


def _groups(db):
    """``(groups, relaxed rows by id, start)`` of one db."""
    import sqlite3

    from .records import RunRecords
    if not Path(db).exists():
        raise InputError(f"no such file {db}", field="db")
    try:
        rows = [r for r in RunRecords(db).rows(status="relaxed")
                if _usable(r) and _decodes(r)]
        identity = RunIdentity.from_rows(rows)
    except (sqlite3.Error, ValueError, KeyError, TypeError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"cannot read the rows of {db}: {err}", field="db") from None
    return list(identity.distinct), {r.id: r for r in rows}, _start_time(rows)


def distinct(source, n=10, window=None, symprec=SYMPREC):
    """The ``n`` (None: all) lowest distinct structures of ``source`` (a db, a run
    folder, a ``--walkers`` folder: one list over every seed), only those within
    ``window`` meV/atom of the lowest if given, as :class:`Polymorph` s."""
    dbs = _run_dbs(source)
    found = []      # per distinct structure of each db: (group, rows of its finds, db, start)
    for db in dbs:
        groups, rows, start = _groups(db)
        for group in groups:
            finds = [rows[i] for i in [group.label] + group.members if i in rows]
            if finds:
                found.append((group, finds, db, start))
    clusters = _unite(found) if len(dbs) > 1 else \
        [[(finds, db, start)] for _, finds, db, start in found]
    polymorphs = [_polymorph(parts, symprec) for parts in clusters]
    polymorphs.sort(key=lambda p: (p.enthalpy_per_atom, p.step))
    if polymorphs:
        best = polymorphs[0].enthalpy_per_atom
        for rank, p in enumerate(polymorphs, 1):
            p.rank, p.delta_mev = rank, 1000.0 * (p.enthalpy_per_atom - best)
    if window is not None:
        polymorphs = [p for p in polymorphs if p.delta_mev <= float(window) + 1e-9]
    return polymorphs if n is None else polymorphs[:int(n)]


def _unite(found):
    """Join the structures of several dbs that are the same: lists of
    ``(rows, db, start)``, one list per distinct structure."""
    united = DistinctSet(default_comparator())
    clusters = []
    # each db's structure enters as its lowest find, the cell its polymorph shows: two
    # shown polymorphs were then compared as shown (a group's first find can be judged
    # apart from another db's structure while its lowest find is judged the same)
    lowest = [min(finds, key=lambda r: (row_enthalpy(r), r.id)) for _, finds, _, _ in found]
    order = sorted(range(len(found)), key=lambda k: (row_enthalpy(lowest[k]), k))
    for k in order:
        _, finds, db, start = found[k]
        cluster, new = united.add(lowest[k].toatoms(), row_enthalpy(lowest[k]),
                                  label=len(clusters))
        if new:
            clusters.append([])
        clusters[cluster.label].append((finds, db, start))
    return clusters


def _polymorph(parts, symprec):
    """A :class:`Polymorph` from the finds ``[(rows, db, start), ...]`` of one structure."""
    rows = [(row, db, start) for finds, db, start in parts for row in finds]
    lowest, db, _ = min(rows, key=lambda r: (row_enthalpy(r[0]), r[0].id))

    def when(item):
        row, _, start = item
        finished = row.get("finished_at")
        return (finished - start) if isinstance(finished, (int, float)) and start else math.inf

    first = min(rows, key=lambda r: (when(r), r[0].step, r[0].id))
    atoms = lowest.toatoms()
    symbol, number = space_group(atoms, symprec=symprec)
    seen = sorted({space_group(r.toatoms(), symprec=symprec)[1]
                   for r, _, _ in rows[:MEMBERS_CHECKED]} - {number, 0})
    symbols, counts = np.unique(atoms.get_chemical_symbols(), return_counts=True)
    units = int(np.gcd.reduce(counts))
    volume = abs(atoms.get_volume())
    t = when(first)
    return Polymorph(
        rank=0, energy_per_atom=float(lowest.energy_per_atom), delta_mev=0.0,
        spacegroup=symbol or "P1?", spacegroup_number=number, also_seen_as=seen,
        formula=atoms.get_chemical_formula(empirical=True), formula_units=units,
        natoms=len(atoms), volume_per_atom=volume / len(atoms),
        density=float(atoms.get_masses().sum()) / volume * AMU_PER_A3 if volume else 0.0,
        step=int(first[0].step), time=None if math.isinf(t) else float(t),
        times_found=len(rows), row_id=int(lowest.id), db=str(db), atoms=atoms,
        enthalpy_per_atom=row_enthalpy(lowest), pressure=float(lowest.get("pressure", 0.0)))


def conventional_cell(atoms, symprec=SYMPREC):
    """spglib's standardised conventional cell of ``atoms`` (``atoms`` itself if
    spglib finds no symmetry)."""
    import spglib
    from ase import Atoms

    from .symmetry import SpglibError, spglib_cell
    try:
        cell = spglib.standardize_cell(spglib_cell(atoms), to_primitive=False,
                                       symprec=symprec)
    except SpglibError:
        cell = None
    if cell is None:
        return atoms.copy()
    lattice, positions, numbers = cell
    return Atoms(numbers=numbers, cell=lattice, scaled_positions=positions, pbc=True)


def file_stem(p):
    """``01_Fm-3m_-3.6678``: rank, space group (``/`` as ``-``), eV/atom (the
    enthalpy per atom of a run at pressure)."""
    symbol = re.sub(r"[^A-Za-z0-9_\-]", "-", p.spacegroup)
    return f"{p.rank:02d}_{symbol}_{p.enthalpy_per_atom:.4f}"


def write_top(polymorphs, folder, symprec=SYMPREC):
    """Write each polymorph as ``folder/<stem>.cif`` (symmetrised conventional cell)
    and ``<stem>.extxyz`` (the relaxed P1 cell, with its energy); files of an earlier
    report there are replaced.  Returns the files written."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("[0-9][0-9]_*"):
        if old.suffix in (".cif", ".extxyz"):
            old.unlink()
    written = []
    for p in polymorphs:
        stem = file_stem(p)           # "...-8.1412": not a suffix to replace
        cif, extxyz = folder / f"{stem}.cif", folder / f"{stem}.extxyz"
        write(cif, conventional_cell(p.atoms, symprec))
        relaxed = p.atoms.copy()
        relaxed.calc = SinglePointCalculator(relaxed, energy=p.energy_per_atom * len(relaxed))
        relaxed.info.update(spacegroup=p.spacegroup, times_found=p.times_found)
        write(extxyz, relaxed)
        p.files = [str(cif), str(extxyz)]
        written.extend(p.files)
    return written


def settings_line(symprec=SYMPREC):
    m = MATCHER_SETTINGS
    return (f"distinct by pymatgen StructureMatcher (ltol {m['ltol']}, stol {m['stol']}, "
            f"angle_tol {m['angle_tol']}); space groups by spglib, symprec {symprec} A")
