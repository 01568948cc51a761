"""Phase fields: one search per composition, formation energies and the convex hull.

A user exploring Cu-Au or Li-Sn-S-Cl hands over the field, not forty searches:

- :func:`field_compositions` lists what to search: compositions given by name, a grid
  between end members (``end_members=["Li2S", "SnS2"], step="1/4"``), and every
  element of the field (the hull's end points) unless its energy is given in
  ``references``;
- :func:`run_field` runs one :class:`~ase_fuse.FuseBasinHopping` search per
  composition, each in its own folder ``FIELD/<formula>/`` (over any executor: one
  composition per worker), restartable: a finished composition is not searched
  again, an unfinished one continues, a composition added later runs alone;
- :func:`hull` puts each composition's best energy per atom on pymatgen's
  ``PhaseDiagram``: formation energy per atom and energy above the hull (eV/atom);
  a field searched at a pressure (``pressure=`` GPa, every search at the same one)
  puts the enthalpy per atom ``(E + PV) / N`` there instead (``enthalpy_per_atom``,
  with ``pressure`` in each record): formation enthalpy and enthalpy above the hull;
- ``FIELD/field.json`` holds one record per composition (``composition``,
  ``energy_per_atom``, ``formation_energy_per_atom``, ``e_above_hull``,
  ``spacegroup``, ``status``, ...), enough to rebuild the hull without rerunning.

A search that fails (its generator cannot make the composition, every relaxation
failed) is a record with ``status="failed"`` and its reason; the others go on.
"""

import json
import math
import re
import time
from pathlib import Path

from .composition import Composition
from .errors import GenerationError, InputError
from .field_compositions import (  # noqa: F401  (what to search: public here too)
    MAX_ELEMENT_GRID, _formula, check_references, element_compositions,
    field_compositions, grid_compositions, states_for)

FIELD_FILE = "field.json"
STABLE_TOL = 1e-6   # eV/atom: on the hull


def folder_of(directory, formula):
    """``directory/<formula>``: one search per composition."""
    if not re.fullmatch(r"[A-Za-z0-9]+", formula):
        raise InputError(f"cannot name a folder after {formula!r}", field="compositions")
    return Path(directory) / formula


# -- running ----------------------------------------------------------------------------
def search_one(config):
    """One composition's search (module level, so that executors can pickle it):
    restarts its folder's run when there is one, runs what is left of ``steps``, and
    returns its record.  A search that cannot be made or fails is a record too."""
    from .basinhopping import FuseBasinHopping
    config = dict(config)
    formula, steps = config.pop("composition"), int(config.pop("steps"))
    time_limit = config.pop("time_limit", None)
    deadline = config.pop("deadline", None)       # the field's budget: wall clock
    folder = Path(config["directory"])
    if deadline is not None:
        left = deadline - time.time()
        if left <= 0:                             # not started: a restart runs it
            return _not_started(formula, folder)
        time_limit = left if time_limit is None else min(time_limit, left)
    config.setdefault("logfile", str(folder / "fuse.log"))
    stages = config.pop("stack_options", None)
    if stages and isinstance(config.get("relaxer"), str):     # a named stack's options
        from .calculators.stacks import build_stack, stage_options
        name = config["relaxer"]
        config["relaxer"] = build_stack(name, Composition(formula, config.get(
            "oxidation_states")), **stage_options(stages))
        config["relaxer"].stack_name = name          # stored: a restart checks them
        config["relaxer"].stack_options = stage_options(stages)
    record = {"composition": formula, "folder": str(folder), "steps": 0,
              "energy_per_atom": None, "status": "failed", "reason": None}
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with FuseBasinHopping(formula, restart=True, **config) as opt:
            converged = opt.run(steps=max(0, steps - opt.nsteps), time_limit=time_limit)
            record["steps"] = int(opt.nsteps)
            if opt.best_energy is None:
                record["reason"] = "no structure relaxed " + (
                    "before the time limit" if opt.nsteps < steps else "")
                record["status"] = "stopped" if opt.nsteps < steps else "failed"
                return record
            record["enthalpy_per_atom"] = float(opt.best_energy)   # what it compared
            record["energy_per_atom"] = float(opt.best_energy) if not opt.pressure \
                else float(opt.best_atoms.get_potential_energy()) / len(opt.best_atoms)
            record["pressure"] = float(opt.pressure)
            record["status"] = "converged" if converged else \
                "done" if opt.nsteps >= steps else "stopped"
    except GenerationError as err:
        record["reason"] = str(err)
        return record
    record.update(_best_structure(folder))
    return record


def _not_started(formula, folder):
    """The record of a composition the field's budget left no time for (what an
    earlier run of it holds, from its summary, is kept)."""
    record = {"composition": formula, "folder": str(folder), "steps": 0,
              "energy_per_atom": None, "status": "stopped",
              "reason": "the field's budget was spent before it started"}
    try:
        summary = json.loads((Path(folder) / "summary.json").read_text())
    except (OSError, ValueError):
        return record
    if isinstance(summary, dict) and summary.get("best_energy_per_atom") is not None:
        record.update(steps=int(summary.get("steps") or 0),
                      energy_per_atom=summary["best_energy_per_atom"],
                      enthalpy_per_atom=summary.get("best_enthalpy_per_atom",
                                                    summary["best_energy_per_atom"]),
                      pressure=summary.get("pressure_GPa", 0.0))
    return record


def _finished(record, steps):
    """A composition a restarted field need not search again: its run reached
    ``steps`` or converged."""
    return isinstance(record, dict) and (record.get("status") == "converged" or (
        record.get("status") == "done" and int(record.get("steps") or 0) >= int(steps)))


def _check_same_stack(folder, relaxer, pressure=0.0):
    """A finished composition is read back, not rerun: refuse a restart that names
    another calculator stack, or another pressure, than the one its run stored."""
    from .run_settings import stored_settings
    settings = stored_settings(Path(folder) / "fuse.db") or {}
    stored = settings.get("calculator")
    if isinstance(relaxer, str) and isinstance(stored, str) and stored != relaxer:
        raise InputError(f"restart: {Path(folder).name} was searched with {stored}, "
                         f"given {relaxer}", field="calculator")
    was = float(settings.get("pressure", 0.0) or 0.0)
    if was != float(pressure or 0.0):
        raise InputError(f"restart: {Path(folder).name} was searched at {was:g} GPa, "
                         f"given {float(pressure or 0.0):g} GPa", field="pressure")


def _best_structure(folder):
    """Space group, atoms and volume of the run's lowest distinct structure."""
    from .results import distinct
    try:
        best = distinct(folder, n=1)
    except InputError:
        return {}
    if not best:
        return {}
    p = best[0]
    return {"spacegroup": p.spacegroup, "spacegroup_number": p.spacegroup_number,
            "natoms": p.natoms, "volume_per_atom": p.volume_per_atom}


def run_field(compositions, directory, *, steps=100, executor=None, restart=False,
              references=None, time_limit=None, budget=None, on_record=None,
              **options):
    """Search each of ``compositions`` (formulas, see :func:`field_compositions`) in
    ``directory/<formula>/`` with the :class:`~ase_fuse.FuseBasinHopping` keyword
    ``options`` (``relaxer=``, ``max_atoms=``, ``seed=``, ...), ``steps`` each;
    returns the records with the hull's numbers (:func:`hull`) and writes
    ``directory/field.json`` after every composition (a killed field keeps them).

    ``restart``: continue a field (finished compositions are read back, unfinished
    ones continue, new ones start); without it a folder already holding runs is
    refused.  ``executor``: any ``concurrent.futures`` executor (one composition per
    task).  ``time_limit``: seconds per composition; ``budget``: seconds for the whole
    field, from this call (a composition starts with what is left, at most
    ``time_limit``; one with none left is a ``stopped`` record that a restart runs).
    ``on_record(record)`` is called
    as each composition finishes.
    """
    from .executors import check_executor
    directory = Path(directory)
    references = check_references(references)
    formulas = [_formula(c) for c in compositions]
    for bad in ("composition", "directory", "restart", "logfile", "db"):
        if bad in options:
            raise InputError("set per composition by run_field", field=bad)
    held = [f for f in formulas if (folder_of(directory, f) / "fuse.db").exists()]
    if held and not restart:
        raise InputError(f"{directory} already holds runs ({', '.join(held)}); continue "
                         "with --restart (restart=True) or choose another folder",
                         field="output")
    directory.mkdir(parents=True, exist_ok=True)
    previous = {r["composition"]: r for r in load_field(directory)} if restart else {}
    states = options.pop("oxidation_states", None)
    if budget is not None and (isinstance(budget, bool) or not isinstance(
            budget, (int, float)) or not budget > 0):
        raise InputError(f"must be positive seconds, got {budget!r}", field="budget")
    deadline = None if budget is None else time.time() + float(budget)
    configs = [dict(options, composition=f, steps=steps, time_limit=time_limit,
                    deadline=deadline,
                    oxidation_states=states_for(f, states),
                    directory=str(folder_of(directory, f))) for f in formulas]
    finished = [f for f in formulas if _finished(previous.get(f), steps)]
    for f in finished:
        _check_same_stack(folder_of(directory, f), options.get("relaxer"),
                          options.get("pressure", 0.0))
    configs = [c for c in configs if c["composition"] not in finished]
    executor = check_executor(executor)
    records = dict(previous)
    settings = {"steps": int(steps), "references": references,
                "pressure": float(options.get("pressure", 0.0) or 0.0)}

    def finish(record):
        records[record["composition"]] = record
        write_field(directory, [records[f] for f in formulas if f in records] +
                    [r for k, r in records.items() if k not in formulas],
                    references, settings)
        if on_record is not None:
            on_record(record)

    if executor is None:
        for config in configs:
            finish(search_one(config))
    else:
        futures = [executor.submit(search_one, config) for config in configs]
        for future in futures:
            finish(future.result())
    ordered = [records[f] for f in formulas] + \
        [r for k, r in records.items() if k not in formulas]
    return write_field(directory, ordered, references, settings)


# -- the hull ----------------------------------------------------------------------------
def hull_energy(record):
    """What a record puts on the hull: its enthalpy per atom (its energy per atom at
    zero pressure and in fields written before pressure was recorded)."""
    value = record.get("enthalpy_per_atom")
    return record.get("energy_per_atom") if value is None else value


def hull(records, references=None):
    """``(records, problem)``: each record with ``formation_energy_per_atom``,
    ``e_above_hull`` (eV/atom, pymatgen's) and ``stable``, from its
    ``energy_per_atom``; ``problem`` is None, or why there is no hull (an element of
    the field without an energy)."""
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition as PmgComposition
    references = check_references(references)
    records = [dict(r) for r in records]
    entries = {}
    for r in records:
        for key in ("formation_energy_per_atom", "e_above_hull", "stable"):
            r[key] = None
        e = hull_energy(r)
        if isinstance(e, (int, float)) and math.isfinite(e):
            comp = PmgComposition(r["composition"])
            entries[r["composition"]] = PDEntry(comp, e * comp.num_atoms,
                                                name=r["composition"])
    extra = [PDEntry(PmgComposition(el), e, name=f"{el} (reference)")
             for el, e in references.items()]
    elements = sorted({el for r in records for el in Composition(r["composition"]).counts})
    missing = [el for el in elements if el not in references and not any(
        Composition(k).counts == {el: 1} for k in entries)]
    if missing:
        return records, f"no energy for {', '.join(missing)}: the hull needs every " \
                        "element of the field (searched, or given as a reference)"
    if not entries:
        return records, "no composition has an energy"
    diagram = PhaseDiagram(list(entries.values()) + extra)
    for r in records:
        entry = entries.get(r["composition"])
        if entry is None:
            continue
        r["formation_energy_per_atom"] = float(diagram.get_form_energy_per_atom(entry))
        r["e_above_hull"] = float(diagram.get_e_above_hull(entry))
        r["stable"] = r["e_above_hull"] <= STABLE_TOL
    return records, None


def tie_lines(records, references=None):
    """The hull's edges as pairs of formulas (element symbols for references)."""
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition as PmgComposition
    entries = []
    for r in records:
        if r.get("stable"):
            comp = PmgComposition(r["composition"])
            entries.append(PDEntry(comp, hull_energy(r) * comp.num_atoms,
                                   name=r["composition"]))
    for el, e in check_references(references).items():
        entries.append(PDEntry(PmgComposition(el), e, name=el))
    try:
        diagram = PhaseDiagram(entries)
    except ValueError:                   # too few points for a hull
        return []
    lines = set()
    for facet in diagram.facets:
        names = [diagram.qhull_entries[k].name for k in facet]
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if a != b:
                    lines.add(tuple(sorted((a, b))))
    return sorted(lines)


def write_field(directory, records, references=None, settings=None):
    """``directory/field.json`` (written whole, then moved into place); returns the
    records with the hull's numbers."""
    records, problem = hull(records, references)
    payload = {"records": records, "references": check_references(references),
               "hull_problem": problem, "settings": settings or {}}
    path = Path(directory) / FIELD_FILE
    tmp = path.with_suffix(".json.tmp")
    from .jsonsafe import plain
    tmp.write_text(json.dumps(plain(payload), indent=1))
    tmp.replace(path)
    return records


def load_field(directory):
    """The records of ``directory/field.json`` ([] when there is none)."""
    path = Path(directory) / FIELD_FILE
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        records = data["records"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"cannot read {path}: {err}", field="output") from None
    return [r for r in records if isinstance(r, dict) and "composition" in r]


def elements_of(records):
    """The field's elements, in order of first appearance."""
    out = []
    for r in records:
        for el in Composition(r["composition"]).elements:
            if el not in out:
                out.append(el)
    return out


def table(records, problem=None):
    """A plain-text table of the field, most stable first."""
    rows = sorted(records, key=lambda r: (r.get("e_above_hull") is None,
                                          r.get("e_above_hull") or 0.0, r["composition"]))
    pressure = next((r["pressure"] for r in records if r.get("pressure")), 0.0)
    e, ef, eh = (("H (eV/atom)", "Hf (eV/atom)", "H_hull (meV/atom)") if pressure else
                 ("E (eV/atom)", "Ef (eV/atom)", "E_hull (meV/atom)"))
    lines = [f"{'composition':<14} {e:>12} {ef:>13} "
             f"{eh:>18} {'space group':<14} {'steps':>6}  status"]

    def num(value, scale=1.0, digits=4):
        return "-" if value is None else f"{value * scale:.{digits}f}"

    for r in rows:
        sg = r.get("spacegroup") or "-"
        if r.get("spacegroup_number"):
            sg = f"{sg} ({r['spacegroup_number']})"
        mark = " *" if r.get("stable") else ""
        lines.append(f"{r['composition']:<14} {num(hull_energy(r)):>12} "
                     f"{num(r.get('formation_energy_per_atom')):>13} "
                     f"{num(r.get('e_above_hull'), 1000.0, 1):>18} {sg:<14} "
                     f"{r.get('steps', 0):>6}  {r.get('status', '-')}{mark}"
                     + (f" ({r['reason']})" if r.get("reason") else ""))
    lines.append("* on the hull" + (f" at {pressure:g} GPa (enthalpy H = E + PV)"
                                    if pressure else "")
                 + (f"; no hull: {problem}" if problem else ""))
    return "\n".join(lines)
