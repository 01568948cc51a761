"""Shared helpers of the search benchmarks (fuse2.py, recovery.py, peers.py).

JSON file written by every script (schema ``ase-fuse-benchmark/1``)::

    {"schema": "ase-fuse-benchmark/1",
     "meta": {"date", "host", "machine", "processor", "cpus", "python",
              "commit", "omp_num_threads", "script", "argv"},
     "settings": {...script options...},
     "records": [ one per (composition, method, seed) ],
     "summary": {...script-specific tables...}}

One record::

    composition, method, seed          what ran
    evaluations                        structures relaxed successfully
    attempted, failed                  relaxations started / failed (budget cuts excluded)
    steps                              search steps (basin-hopping steps, GA children, ...)
    wall_s, budget_s, generation_s     search wall time, its budget, ML generation time
    time_per_structure_s               relaxation wall time / attempted
    cut_relaxations, cut_relax_s       relaxations cut by the budget's end, time they used
                                       (a lower bound on time per structure when
                                       nothing finished)
    time_per_structure_by_tier_s       {tier name: mean wall time per structure}
    best_energy_per_atom, best_formula lowest final-tier energy found (eV/atom)
    matched                            success (see each script), or null if undefined
    evaluations_to_match, time_to_match_s, steps_to_match
    curve                              [[evaluation, seconds, best energy so far], ...]
    error                              null, or why the run produced nothing

Budgets are wall-clock: a :class:`BudgetRelaxer` refuses to start a relaxation
once the budget is spent (such refusals are not counted) and passes the time left
to the relaxer as its per-structure ``time_limit``.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # shared 2-core machine; before numpy loads

import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from ase_fuse.jsonsafe import json_default  # noqa: E402

SCHEMA = "ase-fuse-benchmark/1"
RECORD_KEYS = ("composition", "method", "seed", "evaluations", "attempted", "failed",
               "steps", "wall_s", "budget_s", "generation_s", "time_per_structure_s",
               "time_per_structure_by_tier_s", "cut_relaxations", "cut_relax_s",
               "best_energy_per_atom", "best_formula",
               "matched", "evaluations_to_match", "time_to_match_s", "steps_to_match",
               "curve", "error")
BUDGET_REASON = "budget: wall-clock budget spent"
REPO = Path(__file__).resolve().parents[1]


def fill_defaults(args, defaults):
    """Set each ``args`` attribute that is still None to its default; returns args."""
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def max_atoms_for(composition, max_atoms):
    """``--max-atoms``, raised to one formula unit where a formula is bigger."""
    from ase_fuse.composition import Composition
    return max(max_atoms, Composition(composition).atoms_per_formula_unit)


def json_target(out, name):
    """``--out``: a folder (JSON inside it as ``name``) or a ``.json`` file (the tables,
    plots and run folders then go to the folder of the same name without ``.json``)."""
    out = Path(out)
    if out.suffix == ".json":
        return str(out.with_suffix("")), str(out)
    return str(out), str(out / name)


def limit_threads(torch_too=True):
    """One thread for BLAS and torch (several jobs share 2 cores)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    if torch_too and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def add_fan_out_options(parser):
    """``--workers`` / ``--scheduler``: the runs of a benchmark over Dask."""
    parser.add_argument("--workers", type=int, default=0,
                        help="run on a local Dask cluster of this many worker processes "
                             "(one run each at a time: give each a core)")
    parser.add_argument("--scheduler", default=None,
                        help="run on the Dask cluster at this address (tcp://...; the "
                             "workers need this repo on their PYTHONPATH)")


def call_in_worker(bench_dir, module, function, *args):
    """``module.function(*args)`` for a benchmark file, in a worker process."""
    import importlib
    if bench_dir not in sys.path:
        sys.path.insert(0, bench_dir)
    limit_threads()
    return getattr(importlib.import_module(module), function)(*args)


def fan_out(module, function, calls, workers=0, scheduler=None, local=None,
            on_result=None):
    """Results of ``module.function(*call)`` for every call, in the calls' order.

    Runs in this process (with ``local(*call)`` when given, e.g. to share a cache)
    unless ``workers`` or ``scheduler`` is set; then each call is one task on a Dask
    cluster (``ase_fuse.runs.run_executor``, as ``ase-fuse run --workers``).
    ``on_result(index, result, seconds)`` runs in this process as each arrives
    (seconds: since that call started here, or since the fan-out began on Dask).
    """
    import concurrent.futures as cf
    import importlib
    calls = [tuple(call) for call in calls]
    results = [None] * len(calls)
    if not (workers or scheduler):
        fn = local or getattr(importlib.import_module(module), function)
        for index, call in enumerate(calls):
            start = time.perf_counter()
            results[index] = fn(*call)
            if on_result is not None:
                on_result(index, results[index], time.perf_counter() - start)
        return results
    from ase_fuse.runs import run_executor
    bench_dir = str(Path(__file__).resolve().parent)
    # worker processes start with this on their path: they import these files
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [bench_dir] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    with run_executor(workers, scheduler) as executor:
        start = time.perf_counter()
        futures = {executor.submit(call_in_worker, bench_dir, module, function, *call): k
                   for k, call in enumerate(calls)}
        for future in cf.as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            if on_result is not None:
                on_result(index, results[index], time.perf_counter() - start)
    return results


_STARTED = {}


def run_metadata(script, argv=None):
    """Date, host, commit ... as of the script's start: the first call is kept, so a
    long run's JSON names the code it ran, not the commit at its end (also dirty)."""
    if script in _STARTED:
        return dict(_STARTED[script])
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        if commit and dirty:
            commit += "+uncommitted"
    except (OSError, subprocess.SubprocessError):
        commit = None
    _STARTED[script] = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(), "machine": platform.machine(),
            "processor": platform.processor() or None, "cpus": os.cpu_count(),
            "python": platform.python_version(), "commit": commit,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "script": script,
            "argv": list(sys.argv[1:] if argv is None else argv)}
    return dict(_STARTED[script])


def write_json(path, script, settings, records, summary=None, argv=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"schema": SCHEMA, "meta": run_metadata(script, argv), "settings": settings,
               "records": records, "summary": summary or {}}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=json_default))
    tmp.replace(path)
    return payload


def validate_record(record):
    """Missing schema keys of one record (empty list: valid)."""
    return [key for key in RECORD_KEYS if key not in record]


# -- relaxation under a wall-clock budget -----------------------------------------
class BudgetRelaxer:
    """Wraps a relaxer: traces every result and refuses work once the budget is spent.

    ``on_result(atoms, result)`` may return True to mark a match (recovery checks).
    """

    def __init__(self, relaxer, budget_s, on_result=None):
        self.relaxer = relaxer
        self.budget_s = float(budget_s)
        self.on_result = on_result
        self.trace = []
        self.t0 = None
        self.step = 0

    def start(self):
        self.t0 = time.perf_counter()
        return self

    @property
    def elapsed(self):
        return 0.0 if self.t0 is None else time.perf_counter() - self.t0

    @property
    def expired(self):
        return self.t0 is not None and self.elapsed >= self.budget_s

    def relax(self, atoms):
        from ase_fuse.calculators import RelaxResult
        if self.t0 is None:
            self.start()
        if self.expired:
            spare = atoms.copy()
            spare.calc = None
            return RelaxResult(atoms=spare, failed=BUDGET_REASON)
        if hasattr(self.relaxer, "time_limit"):
            self.relaxer.time_limit = max(self.budget_s - self.elapsed, 1.0)
        result = self.relaxer.relax(atoms)
        if result.failed and "time" in result.failed and self.expired:
            result.failed = BUDGET_REASON  # cut by the budget's end: not a failure
        entry = {"t": self.elapsed, "step": self.step, "n": len(atoms),
                 "energy": None if result.failed else float(result.energy_per_atom),
                 "failed": result.failed,
                 "formula": result.atoms.get_chemical_formula() if result.atoms is not None
                 else None,
                 "tiers": [(r.name, float(r.wall_time)) for r in result.tiers],
                 "matched": False}
        if not result.failed and self.on_result is not None:
            entry["matched"] = bool(self.on_result(result.atoms, result))
        self.trace.append(entry)
        return result


def summarize(trace, budget_s, wall_s, steps=0, generation_s=0.0):
    """The numeric part of a record from a :class:`BudgetRelaxer` trace."""
    attempted = [e for e in trace if e["failed"] != BUDGET_REASON]
    cut = [sum(w for _, w in e["tiers"]) for e in trace
           if e["failed"] == BUDGET_REASON and e["tiers"]]
    ok = [e for e in attempted if e["failed"] is None]
    relax_wall = sum(w for e in attempted for _, w in e["tiers"])
    by_tier = {}
    for e in attempted:
        for name, wall in e["tiers"]:
            by_tier.setdefault(name, []).append(wall)
    curve, best, best_entry = [], None, None
    first_match = None
    for count, e in enumerate(ok, start=1):
        if best is None or e["energy"] < best:
            best, best_entry = e["energy"], e
        curve.append([count, round(e["t"], 3), best])
        if e["matched"] and first_match is None:
            first_match = (count, e["t"], e["step"])
    return {"evaluations": len(ok), "attempted": len(attempted),
            "failed": len(attempted) - len(ok), "steps": int(steps),
            "wall_s": float(wall_s), "budget_s": float(budget_s),
            "generation_s": float(generation_s),
            "time_per_structure_s": relax_wall / len(attempted) if attempted else None,
            "time_per_structure_by_tier_s": {k: sum(v) / len(attempted)
                                             for k, v in by_tier.items()},
            "cut_relaxations": len(cut), "cut_relax_s": float(sum(cut)),
            "best_energy_per_atom": best,
            "best_formula": best_entry["formula"] if best_entry else None,
            "evaluations_to_match": first_match[0] if first_match else None,
            "time_to_match_s": first_match[1] if first_match else None,
            "steps_to_match": first_match[2] if first_match else None,
            "curve": curve}


def make_record(composition, method, seed, numbers, matched=None, error=None, **extra):
    record = {"composition": composition, "method": method, "seed": seed}
    record.update(numbers)
    record["matched"] = matched
    record["error"] = error
    record.update(extra)
    return record


# -- stacks ------------------------------------------------------------------------
FINALS = ("chgnet", "gpaw", "vasp", "proxy", "emt")


def tiers_for(kind, composition, quick=False):
    """The tiers of one stage: ``proxy``, ``chgnet``, ``chgnet-pre``, ``gpaw``, ``vasp``, ``emt``.

    ``chgnet-pre`` is the loose CHGNet pre-relaxation (fmax 0.2 eV/A, 300 steps) used
    before a final tier; ``chgnet`` is the paper's CHGNet stage (0.05 eV/A, 2000 steps;
    500 with ``quick``).
    """
    from ase_fuse.calculators.stacks import build_stack
    if kind == "proxy":
        return build_stack("proxy", composition).tiers
    if kind == "chgnet":
        return build_stack("chgnet", chgnet={"steps": 500 if quick else 2000}).tiers
    if kind == "chgnet-pre":
        return build_stack("chgnet", chgnet={"fmax": 0.2, "steps": 300,
                                             "name": "chgnet-pre"}).tiers
    if kind == "emt":
        return build_stack("emt", emt={"fmax": 0.05, "steps": 300}).tiers
    if kind == "gpaw":
        from ase_fuse.calculators.gpaw import gpaw_tier
        return [gpaw_tier()]
    if kind == "vasp":
        from ase_fuse.calculators.vasp import vasp_tiers
        return vasp_tiers()
    raise ValueError(f"unknown stage {kind!r}")


def relaxer_for(stages, composition, quick=False):
    """A TieredRelaxer through ``stages`` (e.g. ``["proxy", "chgnet"]``)."""
    from ase_fuse.calculators import TieredRelaxer
    tiers = [tier for kind in stages for tier in tiers_for(kind, composition, quick)]
    if any(kind.startswith("chgnet") for kind in stages):
        import torch
        torch.set_num_threads(1)
    return TieredRelaxer(tiers)


# -- structures --------------------------------------------------------------------
def matcher():
    from ase_fuse.identity import structure_matcher
    return structure_matcher()


def structure_match(atoms, reference, sm=None):
    """True if ``atoms`` and ``reference`` (Atoms) are the same structure (pymatgen)."""
    from pymatgen.io.ase import AseAtomsAdaptor
    sm = sm or matcher()
    try:
        return bool(sm.fit(AseAtomsAdaptor.get_structure(atoms),
                           AseAtomsAdaptor.get_structure(reference)))
    except (ValueError, RuntimeError):
        return False


def gnoa_structures(composition, max_atoms, n, seed, model="proxy", evaluations=100,
                    formula_units=None):
    """``(population, pool, seconds)`` from GN-OA (lowest predicted energy first)."""
    from ase_fuse.generators.gnoa import GnoaGenerator
    start = time.perf_counter()
    gen = GnoaGenerator(composition, max_atoms=max_atoms, seed=seed, model=model,
                        evaluations=evaluations, progress=False,
                        formula_units=formula_units)
    population = gen.generate_many(n)
    pool = [a.copy() for a in gen.pool[n:]]
    return population, pool, time.perf_counter() - start


def run_basin_hopping(composition, relaxer, budget_s, seed, max_atoms, initial_population,
                      directory, structures=None, pool=None, on_result=None,
                      generation_s=0.0):
    """FuseBasinHopping until the budget is spent; returns ``(numbers, opt, budget)``."""
    from ase_fuse import FuseBasinHopping
    from ase_fuse.errors import GenerationError
    budget = BudgetRelaxer(relaxer, budget_s, on_result=on_result)
    # generator="fuse": the paper's experiments (fgen ...) start from FUSE's generator,
    # whatever the search's default is
    opt = FuseBasinHopping(composition, relaxer=budget, max_atoms=max_atoms,
                           initial_population=initial_population, structures=structures,
                           pool=pool, seed=seed, directory=directory, logfile=None,
                           generator="fuse")
    budget.start()
    error = None
    try:
        for _ in opt.irun(steps=10 ** 9):
            budget.step = opt.nsteps + 1  # the step whose relaxations come next
            if budget.expired:
                break
    except GenerationError as err:
        error = str(err)
    numbers = summarize(budget.trace, budget_s, budget.elapsed, steps=opt.nsteps,
                        generation_s=generation_s)
    return numbers, opt, budget, error


def lowest_rows(opt, n=5):
    """Atoms of the ``n`` lowest-energy distinct structures of a search: relaxed rows
    labelled ``distinct`` (a repeat of an earlier structure, or a re-used input's
    copy, would otherwise fill the top with one structure; rows of a db written
    before the labels all count)."""
    rows = [row for row in opt.records.relaxed_sorted() if row.get("distinct", 1)]
    return [opt.records.atoms(row.id) for row in rows[:n]]


# -- tables and plots --------------------------------------------------------------
def fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def plot_curves(series, path, xlabel, ylabel="best energy (eV/atom)", title=None,
                xindex=0):
    """One line per label: ``series[label] = [[x0, x1, y], ...]``; x taken at ``xindex``.

    Labels ``"<method> s<seed>"`` share a colour per method and a line style per seed,
    with one legend entry per method, so three seeds of six methods stay readable.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = [label.rsplit(" s", 1) if " s" in label else [label, ""] for label in series]
    methods = list(dict.fromkeys(g[0] for g in groups))
    seeds = list(dict.fromkeys(g[1] for g in groups))
    colours = plt.get_cmap("tab10").colors
    styles = ["-", "--", ":", "-."]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    labelled = set()
    for (method, seed), points in zip(groups, series.values()):
        if not points:
            continue
        ax.step([p[xindex] for p in points], [p[-1] for p in points], where="post",
                marker="o", markersize=3, color=colours[methods.index(method) % 10],
                linestyle=styles[seeds.index(seed) % len(styles)],
                label=None if method in labelled else method)
        labelled.add(method)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title + (" (line style: seed)" if len(seeds) > 1 else ""))
    if labelled:
        ax.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None
