"""Which relaxed structures of a run are the same, kept as the driver writes them.

Every relaxed row gets key-value pairs an ``ase db`` user can query:

``distinct``      1 for the first find of a structure, 0 for a later one;
``duplicate_of``  (later finds) the row id of the first find;
``times_found``   (first finds) how many relaxed rows are that structure, so far;
``spacegroup``    (first finds) spglib's number at ``symprec`` :data:`SYMPREC`;
``reused_from``   (rows not relaxed) the row whose equal input was relaxed already;

and its input structure in ``data['input']`` (``data['input_indexed']``: whether it
joined the inputs looked up before a relaxation), so that a restart rebuilds the same
lists from the db without comparing again (``RunIdentity.from_rows``).
"""

import numpy as np
from ase import Atoms

from .identity import DistinctSet, Entry, as_entry, default_comparator, input_comparator
from .symmetry import space_group

#: spglib tolerance of the ``spacegroup`` column and of the report (A)
SYMPREC = 0.1

#: what labelling may raise on a strange cell: the result is kept, without labels
LABEL_ERRORS = (ValueError, RuntimeError, ArithmeticError, np.linalg.LinAlgError)


def input_data(atoms):
    """The arrays of an input structure, as stored in ``data['input']``."""
    return {"numbers": np.asarray(atoms.numbers), "cell": np.asarray(atoms.cell.array),
            "positions": np.asarray(atoms.positions), "pbc": np.asarray(atoms.pbc)}


def input_atoms(data):
    """The input structure of ``data['input']`` (or None if there is none)."""
    inp = (data or {}).get("input")
    if not isinstance(inp, dict) or "numbers" not in inp:
        return None
    try:
        return Atoms(numbers=inp["numbers"], cell=inp["cell"], positions=inp["positions"],
                     pbc=inp.get("pbc", True))
    except (ValueError, TypeError, KeyError):
        return None


def _energy(row):
    value = row.get("enthalpy_per_atom", row.get("energy_per_atom"))
    if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and np.isfinite(value):
        return float(value)
    return None


class RunIdentity:
    """The run's distinct relaxed structures and the inputs already relaxed."""

    def __init__(self):
        self.distinct = DistinctSet(default_comparator())
        self.inputs = DistinctSet(input_comparator(), coordinate="volume", width=1e-3)
        self._group_of_row = {}

    @classmethod
    def from_rows(cls, rows):
        """Rebuild from relaxed rows: their stored labels first (first finds, in the
        order they were recorded, then the later finds of each), then rows written
        before there were labels, compared afresh in row order."""
        self = cls()
        structures = {}
        for row in rows:
            try:
                structures[row.id] = row.toatoms()
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
        rows = [r for r in rows if r.id in structures]

        def recorded(row):
            when = row.get("finished_at")
            return (when if isinstance(when, (int, float)) else float("inf"), row.id)

        firsts = sorted((r for r in rows if r.get("distinct") == 1), key=recorded)
        for row in firsts:
            group = self.distinct.add_group(Entry(structures[row.id], _energy(row), row.id))
            self._group_of_row[row.id] = group
        later = []
        for row in sorted(rows, key=lambda r: r.id):
            if row.id in self._group_of_row:
                continue
            group = self._group_of_row.get(row.get("duplicate_of"))
            if group is None or row.get("distinct") != 0:
                later.append(row)
                continue
            group.count += 1               # counted from the rows, not times_found
            group.members.append(row.id)
            self._group_of_row[row.id] = group
        for row in later:                  # no (usable) labels: compare
            try:
                group, _ = self.distinct.add(structures[row.id], _energy(row), row.id)
            except LABEL_ERRORS:
                continue
            self._group_of_row[row.id] = group
        # inputs in the order they were recorded, as the live run indexed them: a
        # candidate two of them match takes the older (DistinctSet's volume bins), and
        # the population's tail is recorded after later steps' rows (higher ids)
        for row in sorted(rows, key=recorded):
            try:                           # a damaged blob: the row's input is unknown
                data = row.get("data") or {}
            except (ValueError, TypeError, KeyError):
                data = {}
            inp = input_atoms(data) if data.get("input_indexed", True) else None
            if inp is not None and row.get("reused_from") is None:
                self.inputs.add_group(Entry(inp, None, row.id))
        return self

    def label(self, row_id, atoms, energy, inp=None):
        """Count relaxed ``atoms`` (row ``row_id``, relaxed from ``inp``) in.

        Returns ``(kv, update, indexed)``: this row's key-value pairs, ``(row id,
        kv)`` of the first find whose ``times_found`` rose (or None), and whether
        ``inp`` joined the inputs (not when one equal to it is there already)."""
        group, new = self.distinct.add(atoms, energy, row_id)
        self._group_of_row[row_id] = group
        indexed = False
        if inp is not None:        # an input equal to one indexed already is not kept
            entry = Entry(inp, None, row_id)
            if self.inputs.find(entry) is None:
                self.inputs.add_group(entry)
                indexed = True
        if new:  # spglib only for first finds: ~30 ms a call, as much as the rest
            _, number = space_group(atoms, symprec=SYMPREC)
            kv = {"spacegroup": int(number), "distinct": 1, "times_found": 1}
            return kv, None, indexed
        return ({"distinct": 0, "duplicate_of": group.label},
                (group.label, {"times_found": group.count}), indexed)

    def label_reused(self, row_id, source_id, atoms):
        """Labels for row ``row_id``, whose result is row ``source_id``'s (no
        comparison: the structure is that row's)."""
        group = self._group_of_row.get(source_id)
        if group is None:  # the source had no labels: compare as a new find
            return self.label(row_id, atoms, as_entry(atoms).energy)
        group.count += 1
        group.members.append(row_id)
        self._group_of_row[row_id] = group
        return ({"distinct": 0, "duplicate_of": group.label},
                (group.label, {"times_found": group.count}), False)

    def relaxed_input(self, candidate):
        """The row id of an already relaxed input equal to ``candidate``, or None."""
        group = self.inputs.find(Entry(candidate))
        return None if group is None else group.label
