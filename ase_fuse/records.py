"""The run database: one ase.db (SQLite) row per candidate, plus the search state.

Rows carry status flags as in ``ase_ga``'s ``DataConnection``:

``queued``   made and about to be relaxed (unrelaxed structure stored);
``relaxed``  relaxed: structure with a ``SinglePointCalculator``, ``energy_per_atom``;
``failed``   the relaxation failed; ``reason`` says why;
``invalid``  rejected before any energy call; ``reason`` says why.

Each candidate has a key ``(step, slot)``: step 0 is the initial population (slot =
its index), step s >= 1 a basin-hopping step.  The search state (current and best
rows, temperature, counters, random state) lives in the db's metadata and is written
in the same transaction as the step's row, so a killed run restarts from the db, not
from a pickle.  Only the driver writes.
"""

import collections
import contextlib
import json
import math
import os
import time

import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db import connect

from .jsonsafe import plain, public_fields

STATUSES = ("queued", "relaxed", "failed", "invalid")


def _plain(value):
    """JSON-safe copy of ``value`` (numpy to Python, objects as their public fields)."""
    return plain(value, objects=public_fields)


def _clean_info(atoms):
    """A copy of ``atoms`` whose info survives ase.db (JSON) untouched by numpy."""
    new = atoms.copy()
    new.calc = atoms.calc
    new.info = {}
    return new


SQLITE_HEADER = b"SQLite format 3\x00"


def db_file_problem(path):
    """Why the existing file ``path`` is not a readable ase.db database, or ``None``.

    Only reads: ase.db itself would write its tables into an empty or foreign SQLite
    file.  Checks the SQLite header, the file's integrity (a truncated copy fails),
    ase.db's ``systems`` table and its metadata.
    """
    import sqlite3
    try:
        if os.path.isdir(path):
            return f"{path} is a folder, not a database file"
        with open(path, "rb") as fd:
            head = fd.read(len(SQLITE_HEADER))
    except OSError as err:
        return f"cannot read {path}: {err.strerror}"
    if not head:
        return f"{path} is empty, not an ase.db database"
    if head != SQLITE_HEADER:
        return f"{path} is not an ase.db (SQLite) database"
    try:
        con = sqlite3.connect(path, timeout=20)
        # a damaged file's names and sqlite's report on them need not be UTF-8
        con.text_factory = lambda data: data.decode("utf-8", "replace")
        try:
            check = con.execute("PRAGMA quick_check").fetchone()
            tables = {row[0] for row in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            metadata = con.execute("SELECT value FROM information WHERE "
                                   "name='metadata'").fetchall() \
                if "information" in tables else []
        finally:
            con.close()
    except (sqlite3.Error, UnicodeDecodeError) as err:
        return f"{path} is damaged or truncated ({err})"
    if not check or check[0] != "ok":
        first = " ".join(str(check and check[0]).split())   # sqlite's report: many lines
        return f"{path} is damaged or truncated (integrity check: {first[:200]})"
    if "systems" not in tables:
        return f"{path} is an SQLite file but not an ase.db database (no 'systems' table)"
    try:
        if metadata and not isinstance(json.loads(metadata[0][0]), dict):
            raise ValueError("not a mapping")
    except (TypeError, ValueError) as err:
        return f"{path} has unreadable metadata ({err})"
    return None


class RunRecords:
    """Read and write a search's ase.db.

    Parameters
    ----------
    path : str or Path
        The SQLite file.
    """

    def __init__(self, path):
        self.path = str(path)
        if not os.path.exists(self.path):
            self._create()
        else:  # someone else's file, or a damaged one: refuse before ase.db writes to it
            problem = db_file_problem(self.path)
            if problem:
                from .errors import InputError
                raise InputError(problem, field="db")
        # SQLite locks by itself; an ase lock file would outlive a SIGKILLed writer
        self.db = connect(self.path, type="db", append=True, use_lock_file=False)
        self._depth = 0
        # (step, slot) -> row id and row id -> status, read once, then kept in step
        # with this process's writes (the driver is the db's only writer): a lookup
        # or a count per step must not scan a db that grows for weeks
        self._ids = None
        self._status = None
        self._counts = None
        self._identity = None   # ase_fuse.run_identity.RunIdentity, built on first use
        self.identity_time = 0.0  # s spent labelling and looking up inputs (benchmarks)

    @contextlib.contextmanager
    def session(self):
        """One SQLite connection and one transaction for the enclosed db work.

        Re-entrant: inner sessions join the outer one.  Outside a session ase.db
        opens a fresh connection per call and leaves it to the garbage collector,
        which grew a long run's memory by ~13 kB per step; inside one the memory
        stays flat (``benchmarks/long_run.py``).
        """
        if self._depth:
            self._depth += 1
            try:
                yield self.db
            finally:
                self._depth -= 1
            return
        with self.db:
            self._depth = 1
            try:
                yield self.db
            except BaseException:
                # rolled back: re-read
                self._ids = self._status = self._counts = self._identity = None
                raise
            finally:
                self._depth = 0

    def _index(self):
        if self._ids is None:
            ids, status = {}, {}
            with self.session():
                for row in self.db.select(columns=["id", "key_value_pairs"]):
                    ids[(row.get("step"), row.get("slot"))] = row.id
                    status[row.id] = row.get("status")
            self._ids, self._status = ids, status
            self._counts = collections.Counter(status.values())
        return self._ids, self._status

    def _set_status(self, row_id, status):
        statuses = self._index()[1]
        old = statuses.get(row_id)
        if old is not None:
            self._counts[old] -= 1
        statuses[row_id] = status
        self._counts[status] += 1

    def _remember(self, row_id, step, slot, status):
        self._index()[0][(step, slot)] = row_id
        self._set_status(row_id, status)

    def _create(self):
        """Create the db's tables under a temporary name, then rename it into place.

        ase.db builds its tables over several statements; a run killed among them
        would leave a file that exists but has no tables.  The rename is atomic.
        """
        tmp = f"{self.path}.{os.getpid()}.new"
        if os.path.exists(tmp):
            os.remove(tmp)
        fresh = connect(tmp, type="db", use_lock_file=False)
        fresh.metadata = {}
        os.replace(tmp, self.path)

    # -- state ------------------------------------------------------------------
    def load_state(self):
        """The saved search state, or ``None`` for a new run."""
        if not os.path.exists(self.path):
            return None
        with self.session():
            return self.db.metadata.get("search_state")

    def settings(self):
        with self.session():
            return self.db.metadata.get("settings")

    def save_settings(self, settings):
        with self.session():
            md = self.db.metadata
            md["settings"] = _plain(settings)
            self.db.metadata = md

    # -- candidates ---------------------------------------------------------------
    def find(self, step, slot):
        """The row of candidate ``(step, slot)``, or ``None``."""
        row_id = self._index()[0].get((step, slot))
        if row_id is None:
            return None
        with self.session():
            return self.db.get(id=row_id)

    def add_queued(self, atoms, step, slot, **kv):
        """Write a candidate about to be relaxed; returns its row id."""
        origin = atoms.info.get("origin", "")
        kv.setdefault("origin", origin if isinstance(origin, str) else
                      str(origin.get("name", "")))
        with self.session():
            row_id = self.db.write(_clean_info(atoms), step=step, slot=slot,
                                   status="queued", data={"origin": _plain(origin)},
                                   **_kv(kv))
            self._remember(row_id, step, slot, "queued")
        return row_id

    def add_invalid(self, atoms, step, slot, reason, **kv):
        origin = atoms.info.get("origin", "")
        kv.setdefault("origin", origin if isinstance(origin, str) else
                      str(origin.get("name", "")))
        with self.session():
            row_id = self.db.write(_clean_info(atoms), step=step, slot=slot,
                                   status="invalid", reason=reason,
                                   data={"origin": _plain(origin)}, **_kv(kv))
            self._remember(row_id, step, slot, "invalid")
        return row_id

    def record_result(self, row_id, result):
        """Store a relaxation result (relaxed or failed) in row ``row_id``."""
        tiers = _plain(getattr(result, "tiers", []) or [])
        wall = sum(t.get("wall_time", 0.0) or 0.0 for t in tiers if isinstance(t, dict))
        finished = time.time()  # wall clock: when the result reached the db
        if result.failed:
            with self.session():
                self.db.update(row_id, status="failed", reason=str(result.failed)[:500],
                               relax_time=float(wall), finished_at=finished,
                               data={"tiers": tiers})
                self._set_status(row_id, "failed")
            return
        atoms = result.atoms
        if not isinstance(atoms.calc, SinglePointCalculator):
            raise TypeError("relaxed structures must carry a SinglePointCalculator")
        energy = float(result.energy_per_atom)
        enthalpy = result_enthalpy(result)
        pressure = getattr(result, "pressure", 0.0) or 0.0
        at_pressure = {} if not pressure else {
            "pressure": float(pressure), "volume": float(result.volume)}
        with self.session():
            inp = self.db.get(id=row_id).toatoms()     # the queued input
            labels, update, data = self._labels(row_id, atoms, enthalpy, inp)
            self.db.update(row_id, atoms=_clean_info(atoms), status="relaxed",
                           energy_per_atom=energy, enthalpy_per_atom=enthalpy,
                           **at_pressure, converged=bool(result.converged), relax_time=float(wall),
                           finished_at=finished, data=dict(data, tiers=tiers), **labels)
            if update is not None:
                self.db.update(update[0], **update[1])
            self._set_status(row_id, "relaxed")

    # -- identity (ase_fuse.run_identity) -------------------------------------------
    def identity(self):
        """The run's distinct structures and relaxed inputs (built once from the db)."""
        if self._identity is None:
            from .run_identity import RunIdentity
            started = time.perf_counter()
            self._identity = RunIdentity.from_rows(self.rows(status="relaxed"))
            self.identity_time += time.perf_counter() - started
        return self._identity

    def _labels(self, row_id, atoms, energy, inp, source=None):
        """``(kv, update, data)`` for a relaxed row; a structure the comparators
        cannot handle keeps its result, without labels, and says why in ``data``."""
        from .run_identity import LABEL_ERRORS, input_data
        data = {"input": input_data(inp)}
        identity = self.identity()
        started = time.perf_counter()
        try:
            if source is None:
                labels, update, indexed = identity.label(row_id, atoms, energy, inp)
            else:
                labels, update, indexed = identity.label_reused(row_id, source, atoms)
        except LABEL_ERRORS as err:
            return {}, None, dict(data, identity_error=str(err)[:300], input_indexed=False)
        finally:
            self.identity_time += time.perf_counter() - started
        return labels, update, dict(data, input_indexed=indexed)

    def relaxed_input_like(self, candidate):
        """The row id of a relaxed row whose input equals ``candidate`` (its
        relaxation would be repeated), or None."""
        from .run_identity import LABEL_ERRORS
        identity = self.identity()
        started = time.perf_counter()
        try:
            return identity.relaxed_input(candidate)
        except LABEL_ERRORS:
            return None
        finally:
            self.identity_time += time.perf_counter() - started

    def add_reused(self, candidate, step, slot, source, row_id=None, **kv):
        """Write candidate ``(step, slot)`` (or its queued row ``row_id``) as relaxed
        with row ``source``'s result, not relaxed again (``reused_from``); returns
        ``(row id, energy per atom)``."""
        origin = candidate.info.get("origin", "")
        kv.setdefault("origin", origin if isinstance(origin, str) else
                      str(origin.get("name", "")))
        with self.session():
            src = self.db.get(id=source)
            atoms = self.atoms(source)
            energy = row_enthalpy(src)
            at_pressure = {k: src[k] for k in ("pressure", "volume") if k in src}
            if row_id is None:
                row_id = self.db.write(_clean_info(atoms), step=step, slot=slot,
                                       status="queued", data={"origin": _plain(origin)},
                                       **_kv(kv))
            else:
                self.db.update(row_id, atoms=_clean_info(atoms))
            labels, update, data = self._labels(row_id, atoms, energy, candidate,
                                                source=source)
            self.db.update(row_id, status="relaxed",
                           energy_per_atom=float(src.energy_per_atom),
                           enthalpy_per_atom=energy, **at_pressure, converged=bool(src.get("converged", True)), relax_time=0.0,
                           finished_at=time.time(), reused_from=int(source),
                           data=dict(data, tiers=[]), **labels)
            if update is not None:
                self.db.update(update[0], **update[1])
            self._remember(row_id, step, slot, "relaxed")
        return row_id, energy

    def commit_step(self, row_id, state, **kv):
        """Mark a candidate's outcome and save the search state in one transaction."""
        with self.session():
            if row_id is not None:
                self.db.update(row_id, **_kv(kv))
            md = self.db.metadata
            md["search_state"] = _plain(state)
            self.db.metadata = md

    def atoms(self, row_id):
        with self.session():
            row = self.db.get(id=row_id)
        atoms = row.toatoms(add_additional_information=False)
        if row.get("energy") is not None:
            atoms.calc = SinglePointCalculator(
                atoms, energy=row.energy, forces=row.get("forces"), stress=row.get("stress"))
        atoms.info["row_id"] = row_id
        return atoms

    def step_facts(self, row_id):
        """``(ml_steps, new)`` of row ``row_id``: the optimiser steps of its non-proxy
        tiers (0: none recorded, or a re-used input's result) and whether it is a
        structure not found before in the run (its first find, not re-used)."""
        from .moves.adaptive import ml_steps
        with self.session():
            row = self.db.get(id=row_id)
        data = row.data if isinstance(row.get("data"), dict) else {}
        new = row.get("status") == "relaxed" and row.get("reused_from") is None \
            and row.get("distinct", 1) == 1
        return ml_steps(data.get("tiers")), bool(new)

    def rows(self, **selection):
        with self.session():
            return list(self.db.select(**selection))

    def relaxed_sorted(self):
        """Relaxed rows, lowest enthalpy per atom (:func:`row_enthalpy`) first."""
        rows = self.rows(status="relaxed")
        return sorted(rows, key=row_enthalpy)

    def count(self, **selection):
        """Rows matching ``selection``; ``count()`` and ``count(status=...)`` are
        answered from memory."""
        if not selection or set(selection) == {"status"}:
            statuses = self._index()[1]
            if not selection:
                return len(statuses)
            return self._counts[selection["status"]]
        with self.session():
            return self.db.count(**selection)

    def check_integrity(self):
        """Problems found in the db (empty list if none): duplicates, bad states."""
        problems = []
        seen = {}
        with self.session():
            all_rows = list(self.db.select())
        for row in all_rows:
            key = (row.get("step"), row.get("slot"))
            if key in seen:
                problems.append(f"rows {seen[key]} and {row.id} share candidate {key}")
            seen[key] = row.id
            if row.get("status") not in STATUSES:
                problems.append(f"row {row.id} has status {row.get('status')!r}")
            if row.get("status") == "relaxed" and not math.isfinite(
                    row.get("energy_per_atom", math.nan)):
                problems.append(f"row {row.id} relaxed without an energy")
        return problems


def result_enthalpy(result):
    """What a search compares for a relaxation result: its enthalpy per atom
    ``(E + PV) / N`` (the energy per atom at zero pressure, and for a relaxer whose
    results do not say)."""
    value = getattr(result, "enthalpy_per_atom", None)
    return float(result.energy_per_atom if value is None else value)


def row_enthalpy(row):
    """:func:`result_enthalpy` of a relaxed row (rows of runs from before pressure
    was recorded: their energy per atom)."""
    value = row.get("enthalpy_per_atom")
    return float(row.energy_per_atom if value is None else value)


def _kv(kv):
    """Drop ``None`` values; ase.db key-value pairs must be bool/int/float/str."""
    out = {}
    for key, value in kv.items():
        if value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
