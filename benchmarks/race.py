"""The race: ``ase-fuse run`` against an AIRSS-style random search, same clock.

For each reference crystal (``race_refs.py``: at most 10 primitive sites) and seed,
two contestants start at the same time, each a process pinned to its own core
(``os.sched_setaffinity`` in the child, ``OMP_NUM_THREADS=1``, one torch thread), with
the same wall-clock budget from process start (imports and model load included):

ase-fuse   ``ase-fuse run FORMULA`` with its defaults; only ``--max-atoms max(2n, n+4)``
           (n: primitive sites of the reference), ``--seed``, ``--time-limit`` and
           ``-o`` set.  Safety net: killed at budget + 60 s (at the budget itself
           where the installed ``ase-fuse run`` has no ``--time-limit``).
airss      ``benchmarks/airss.py``: PyXtal random symmetric structures, each relaxed
           with CHGNet (FIRE, Frechet cell filter, fmax 0.05, <= 300 steps, ase-fuse's
           guards).  ``--variant NAME="ARGS"`` races a second ``ase-fuse run`` with
           those extra flags instead (the ablation of one lever).

Only results finished within the budget count (``finished_at`` in ``fuse.db``, the
JSON lines of ``airss.jsonl``); a relaxation cut by the time limit is not a failure
(``cut_relaxations``, as are results after the budget).  A hit, checked here after
the race from the stored structures: pymatgen ``StructureMatcher()`` with its
default tolerances (ltol 0.2, stol 0.3, angle_tol 5, primitive_cell, scale, no
supercell attempt) matches the reference or its CHGNet-relaxed form, or the energy is
at least 2 meV/atom below the reference relaxed with the same calculator (CHGNet,
fmax 0.05, <= 2000 steps; cached in ``OUT/references.json``).  ML steps: optimiser
steps of the non-proxy tiers, per counted relaxation (relaxed or failed).  Time to
first hit per reference: the mean over the seeds that hit.

Raw outputs stay under ``OUT/runs/<key>_s<seed>/<contestant>/`` (``run.json`` has the
start time, command, core and exit), so ``--analyse`` re-scores them without running.
JSON: the schema of ``benchmarks/common.py`` (``meta``: command, date, commit;
``settings.conditions``); one record per (reference, contestant, seed); ``summary``:
``references`` (per contestant: hits, runs, mean time to first hit, structures
relaxed, ML steps mean and p90), ``contestants`` (hits, runs, median time to first hit
over the references both found) and ``plot`` (fraction of runs with a hit vs time).

    python benchmarks/race.py --list                      # the references
    python benchmarks/race.py --quick --out race_quick
    python benchmarks/race.py --only nacl si --seeds 0 1 --budget 600 --out race/a
    python benchmarks/race.py --only nacl --variant chgnet-only="--calculator chgnet"
    python benchmarks/race.py --merge race/a/race.json race/b/race.json --out race/all
    python benchmarks/race.py --merge race/all/race.json --only si --seeds 0 --out race/si
    python benchmarks/race.py --only si zns --seeds 2 3 --stop-on-hits --out race/more
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads

import argparse  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import airss  # noqa: E402
import common  # noqa: E402
import race_refs  # noqa: E402
from race_report import percentile90, plot, summarize, table  # noqa: E402

from ase_fuse.identity import MATCHER_SETTINGS  # noqa: E402

FUSE = "ase-fuse"
ENERGY_MARGIN = 0.002  # eV/atom below the reference: a hit
GRACE = 60.0  # seconds past the budget before the safety-net kill
RESERVED = ("-o", "--output", "--seed", "--time-limit", "--max-atoms")
MATCHER = dict(MATCHER_SETTINGS, attempt_supercell=False)  # pymatgen's defaults, stated


# -- contestants -------------------------------------------------------------------
def fuse_command():
    exe = shutil.which("ase-fuse")
    if exe:
        return [exe]
    return [sys.executable, "-c", "import sys; from ase_fuse.cli import main; sys.exit(main())"]


def has_time_limit():
    """Whether the installed ``ase-fuse run`` takes ``--time-limit``."""
    out = subprocess.run(fuse_command() + ["run", "-h"], capture_output=True, text=True,
                         timeout=120)
    return "--time-limit" in out.stdout


def parse_variant(text):
    """``NAME=ARGS`` -> ``(name, [args])``; flags the race sets itself are refused."""
    name, sep, rest = (text or "").partition("=")
    if not sep or not name.strip():
        raise SystemExit(f"--variant wants NAME=ARGS, got {text!r}")
    extra = shlex.split(rest)
    clash = [a for a in extra if a.split("=")[0] in RESERVED]
    if clash:
        raise SystemExit(f"--variant: the race sets {', '.join(clash)} itself")
    if name.strip() == FUSE:
        raise SystemExit(f"--variant: {FUSE!r} names the default contestant")
    return name.strip(), extra


def commands(info, seed, budget, folder, args, time_limit_ok):
    """``[(contestant, argv, folder)]``: ase-fuse first, then AIRSS or the variant."""
    n = str(info["max_atoms"])
    cheap = ["--calculator", "proxy"] if args.calculator == "proxy" else []
    base = fuse_command() + ["run", info["formula"], "--max-atoms", n, "--seed", str(seed)]
    if time_limit_ok:
        base += ["--time-limit", f"{budget:g}s"]
    out = [(FUSE, base + cheap + ["-o", str(folder / FUSE)], folder / FUSE)]
    if args.variant:
        name, extra = args.variant
        out.append((name, base + cheap + extra + ["-o", str(folder / name)], folder / name))
    else:
        out.append(("airss", [sys.executable, str(BENCH / "airss.py"), info["formula"],
                              "--max-atoms", n, "--seed", str(seed), "--time-limit",
                              f"{budget:g}", "--calculator", args.calculator, "--threads",
                              "1", "-o", str(folder / "airss")], folder / "airss"))
    return out


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def race(entries, budget, cores, kill_after, watch=None):
    """Start every contestant at once, each pinned to its core; wait, killing any
    still running ``kill_after`` s after its start, or stopping all of them once
    ``watch`` (a :class:`race_watch.HitWatch`) sees a hit for each.  Writes
    ``run.json`` per folder."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    running = []
    for (name, argv, folder), core in zip(entries, cores):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        log = open(folder / "stdout.log", "w")
        started = time.time()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                preexec_fn=partial(os.sched_setaffinity, 0, {core}))
        running.append({"name": name, "argv": argv, "folder": folder, "core": core,
                        "started_at": started, "proc": proc, "log": log, "killed": False})
    stopped_on_hits, looked = False, time.time()
    while any(r["proc"].poll() is None for r in running):
        for r in running:
            if r["proc"].poll() is None and time.time() - r["started_at"] > kill_after:
                r["killed"] = True
                _stop(r["proc"])
        if watch is not None and time.time() - looked >= watch.every:
            looked = time.time()
            if watch.all_hit(running):
                stopped_on_hits = True
                for r in running:
                    if r["proc"].poll() is None:
                        _stop(r["proc"])
        time.sleep(0.5)
    for r in running:
        r["log"].close()
        meta = {"contestant": r["name"], "argv": r["argv"], "core": r["core"],
                "started_at": r["started_at"], "budget_s": budget,
                "wall_s": time.time() - r["started_at"], "exit_code": r["proc"].returncode,
                "killed": r["killed"], "kill_after_s": kill_after,
                "stopped_on_hits": stopped_on_hits}
        (r["folder"] / "run.json").write_text(json.dumps(meta, indent=1))


# -- results of one contestant -----------------------------------------------------
def fuse_rows(folder, started):
    """Finished relaxations of an ``ase-fuse run`` folder, as dicts, by time."""
    import ase.db
    path = Path(folder) / "fuse.db"
    rows = []
    if not path.exists():
        return rows
    db = ase.db.connect(str(path))
    for status in ("relaxed", "failed"):
        for row in db.select(status=status):
            if row.get("finished_at") is None:
                continue
            tiers = (row.data or {}).get("tiers", [])
            if row.get("reused_from") is not None:
                # an input relaxed before: its result taken, nothing relaxed (counted
                # apart, so that relaxations and ML steps per structure stay honest)
                rows.append({"t": float(row.finished_at) - started, "reused": True})
                continue
            rows.append({"t": float(row.finished_at) - started, "ok": status == "relaxed",
                         "energy": row.get("energy_per_atom"),
                         "ml_steps": airss.ml_steps(tiers),
                         "wall": sum(t.get("wall_time", 0.0) or 0.0 for t in tiers),
                         "tiers": tiers, "step": row.get("step"),
                         "atoms": partial(row.toatoms, add_additional_information=False),
                         "failed": row.get("reason")})
    return sorted(rows, key=lambda r: r["t"])


def airss_rows(folder, started):
    rows = []
    for line in airss.read_lines(Path(folder) / "airss.jsonl"):
        rows.append({"t": float(line["finished_at"]) - started, "ok": not line["failed"],
                     "energy": line["energy_per_atom"], "ml_steps": int(line["ml_steps"]),
                     "wall": sum(t["wall_time"] for t in line["tiers"]),
                     "tiers": line["tiers"], "step": line["i"],
                     "atoms": partial(airss.structure_of, line), "failed": line["failed"]})
    return sorted(rows, key=lambda r: r["t"])


class HitCheck:
    """Is a structure a hit for one reference?  ``kind(atoms, energy)`` returns
    ``"energy"``, ``"match"`` or None."""

    def __init__(self, references, energy_per_atom=None, margin=ENERGY_MARGIN):
        from pymatgen.analysis.structure_matcher import StructureMatcher
        from pymatgen.io.ase import AseAtomsAdaptor
        self.adaptor = AseAtomsAdaptor
        self.matcher = StructureMatcher(**MATCHER)
        self.references = [self.adaptor.get_structure(a) for a in references if a is not None]
        self.energy = energy_per_atom
        self.margin = margin

    def matches(self, atoms):
        structure = self.adaptor.get_structure(atoms)
        for reference in self.references:
            try:
                if self.matcher.fit(structure, reference):
                    return True
            except (ValueError, RuntimeError):  # pymatgen on degenerate lattices
                continue
        return False

    def kind(self, atoms, energy=None):
        if self.matches(atoms):
            return "match"
        if energy is not None and self.energy is not None \
                and energy <= self.energy - self.margin:
            return "energy"
        return None


def cut_by_clock(row):
    """A relaxation the contestant's own time limit cut (the budget's end): not a
    failure, not counted (``cut_relaxations``), as in ``common.BudgetRelaxer``."""
    return not row["ok"] and "time limit" in (row["failed"] or "")


def analyse(contestant, folder, info, seed, ref, check, budget):
    """One record (the schema of ``common.py`` plus the race's fields)."""
    meta_path = Path(folder) / "run.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    started = meta.get("started_at")
    error = None if started else "no run.json: the contestant did not run"
    reader = airss_rows if (Path(folder) / "airss_meta.json").exists() else fuse_rows
    rows = reader(folder, started) if started else []
    reused = sum(1 for r in rows if r.get("reused") and r["t"] <= budget)
    rows = [r for r in rows if not r.get("reused")]
    late = [r for r in rows if r["t"] > budget or cut_by_clock(r)]
    rows = [r for r in rows if r["t"] <= budget and not cut_by_clock(r)]
    ok = [r for r in rows if r["ok"]]
    curve, best, best_row, hit = [], None, None, None
    for count, r in enumerate(ok, start=1):
        if best is None or r["energy"] < best:
            best, best_row = r["energy"], r
        curve.append([count, round(r["t"], 3), best])
        if hit is None:
            kind = check.kind(r["atoms"](), r["energy"])
            if kind:
                hit = {"kind": kind, "t": r["t"], "evaluation": count, "step": r["step"]}
    by_tier = {}
    for r in rows:
        for t in r["tiers"]:
            by_tier.setdefault(t.get("name"), []).append(t.get("wall_time", 0.0) or 0.0)
    steps = [r["ml_steps"] for r in rows]
    if started and not rows and error is None:
        error = "nothing finished within the budget"
    numbers = {
        "evaluations": len(ok), "attempted": len(rows), "failed": len(rows) - len(ok),
        "steps": len(rows), "wall_s": meta.get("wall_s"), "budget_s": float(budget),
        "generation_s": 0.0,
        "time_per_structure_s": sum(r["wall"] for r in rows) / len(rows) if rows else None,
        "time_per_structure_by_tier_s": {k: sum(v) / len(rows) for k, v in by_tier.items()},
        "cut_relaxations": len(late), "cut_relax_s": float(sum(r["wall"] for r in late)),
        "best_energy_per_atom": best,
        "best_formula": best_row["atoms"]().get_chemical_formula() if best_row else None,
        "evaluations_to_match": hit["evaluation"] if hit else None,
        "time_to_match_s": hit["t"] if hit else None,
        "steps_to_match": hit["step"] if hit else None, "curve": curve}
    return common.make_record(
        info["formula"], contestant, seed, numbers, matched=hit is not None, error=error,
        reference=info["key"], nprim=info["nprim"], max_atoms=info["max_atoms"],
        reference_energy=ref.get("energy_per_atom"), hit=hit is not None,
        hit_kind=hit["kind"] if hit else None, time_to_hit_s=hit["t"] if hit else None,
        structures_relaxed=len(ok), reused=reused, ml_steps_mean=float(np.mean(steps)) if steps else None,
        ml_steps_p90=percentile90(steps), ml_steps=steps,
        run={k: meta.get(k) for k in ("argv", "core", "exit_code", "killed", "wall_s",
                                      "stopped_on_hits")},
        folder=str(folder))


# -- the reference's own energy ----------------------------------------------------
def reference_energy(key, atoms, info, calculator, out):
    """The reference relaxed once with the race's calculator, cached in
    ``OUT/references.json``: energy per atom, the relaxed structure (extxyz)."""
    path = Path(out) / "references.json"
    cache = json.loads(path.read_text()) if path.exists() else {}
    name = f"{key}:{calculator}"
    if name not in cache:
        from ase_fuse.calculators import TieredRelaxer
        from ase_fuse.calculators.stacks import build_stack
        if calculator == "proxy":
            relaxer = build_stack("proxy", info["formula"])
        else:
            common.limit_threads()
            import torch
            torch.set_num_threads(1)
            from ase_fuse.calculators.chgnet import chgnet_tier
            relaxer = TieredRelaxer([chgnet_tier(fmax=0.05, steps=2000, optimizer="FIRE")])
        result = relaxer.relax(atoms)
        cache[name] = {"key": key, "calculator": calculator, "formula": info["formula"],
                       "nprim": info["nprim"], "failed": result.failed,
                       "energy_per_atom": None if result.failed
                       else float(result.energy_per_atom),
                       "extxyz": None if result.failed else airss.as_extxyz(result.atoms)}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cache, indent=1))
    return cache[name]


def checker_for(atoms, ref):
    relaxed = airss.structure_of(ref) if ref.get("extxyz") else None
    return HitCheck([atoms, relaxed], ref.get("energy_per_atom"))


# -- command line ------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", metavar="KEY",
                   help=f"references (default all: {' '.join(race_refs.KEYS)})")
    p.add_argument("--seeds", nargs="+", type=int)
    p.add_argument("--budget", type=float, help="seconds per contestant from process "
                   "start (default 600; quick 20)")
    p.add_argument("--out", default="bench_race", help="folder (JSON, table, plot, runs/)")
    p.add_argument("--references", default=str(race_refs.DEFAULT_FOLDER),
                   help="folder holding classic/ and cspml_dev/ (read only)")
    p.add_argument("--variant", type=parse_variant, metavar="NAME=ARGS",
                   help="race a second ase-fuse run with these extra flags instead of AIRSS")
    p.add_argument("--calculator", choices=["chgnet", "proxy"],
                   help="chgnet: ase-fuse's default stack, AIRSS and the reference on "
                        "CHGNet; proxy: everything on the proxy (tests; quick's default)")
    p.add_argument("--cores", nargs=2, type=int, help="the two cores (default: the first "
                   "two this process may use)")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="join race.json pieces "
                   "(a later piece's run wins; --only and --seeds keep just those)")
    p.add_argument("--stop-on-hits", action="store_true",
                   help="stop a pair once both contestants have hit (hits and times to "
                   "first hit unchanged; structures relaxed then cover the time to the "
                   "stop): more seeds in the same hours")
    p.add_argument("--analyse", action="store_true",
                   help="re-score the runs already under --out, run nothing")
    p.add_argument("--list", action="store_true", help="print the reference table")
    p.add_argument("--quick", action="store_true",
                   help=f"CI: {race_refs.QUICK}, seed 0, 20 s, proxy calculator")
    args = p.parse_args(argv)
    args.seeds_given = args.seeds is not None  # --merge keeps every seed unless told
    quick = args.quick
    common.fill_defaults(args, {
        "only": [race_refs.QUICK] if quick else list(race_refs.KEYS),
        "seeds": [0] if quick else [0, 1], "budget": 20.0 if quick else 600.0,
        "calculator": "proxy" if quick else "chgnet"})
    unknown = [k for k in args.only if k not in race_refs.KEYS]
    if unknown:
        p.error(f"unknown reference(s) {', '.join(unknown)}; known: "
                f"{', '.join(race_refs.KEYS)}")
    if args.cores is None:
        mine = sorted(os.sched_getaffinity(0))
        args.cores = (mine * 2)[:2]
    return args


def conditions(args, time_limit_ok):
    return {"budget_s": args.budget, "cores": args.cores,
            "shared_core": args.cores[0] == args.cores[1],
            "pinning": "os.sched_setaffinity in each child, one core each",
            "omp_num_threads": 1, "torch_threads": 1, "calculator": args.calculator,
            "fuse_time_limit_flag": time_limit_ok,
            "kill_after_s": args.budget + (GRACE if time_limit_ok else 2.0),
            "max_atoms": "max(2n, n+4), n = primitive sites",
            "hit": f"StructureMatcher({MATCHER}) against the reference or its relaxed "
                   f"form, or energy <= reference - {ENERGY_MARGIN} eV/atom",
            "reference_relaxation": "CHGNet FIRE fmax 0.05, <= 2000 steps"
            if args.calculator == "chgnet" else "proxy stack",
            "airss": {"fmax": airss.FMAX, "steps": airss.STEPS, "optimizer": "FIRE",
                      "cell_filter": "FrechetCellFilter"},
            "second": {"variant": args.variant[0], "extra_args": args.variant[1]}
            if args.variant else "airss",
            "counted": "results with finished_at - process start <= budget",
            "stop_on_hits": bool(getattr(args, "stop_on_hits", False))}


def finish(args, records, settings, argv):
    out = Path(args.out)
    summary = summarize(records)
    text = table(records, summary)
    print()
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "race.md").write_text(text + "\n")
    summary["plot"] = plot(records, out / "race_hits.png", args.budget)
    common.write_json(out / "race.json", "race.py", settings, records, summary, argv)
    return records, summary


def merge(args, argv):
    records, files, budgets = {}, [], []
    for path in args.merge:
        payload = json.loads(Path(path).read_text())
        files.append({"file": str(path), "meta": payload["meta"],
                      "settings": payload["settings"]})
        for r in payload["records"]:
            if r["reference"] in args.only and (not args.seeds_given
                                                or r["seed"] in args.seeds):
                records[(r["reference"], r["method"], r["seed"])] = r  # a later piece wins
        budgets.append(payload["settings"]["conditions"]["budget_s"])
    args.budget = max(budgets)  # the plot's time axis
    kept = {"only": args.only, "seeds": args.seeds if args.seeds_given else "all"}
    settings = {"merged": files, "kept": kept,
                "conditions": files[-1]["settings"]["conditions"]}
    return finish(args, list(records.values()), settings, argv)


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        print(common.markdown_table(["key", "formula", "source", "prim sites", "max atoms",
                                     "kind"], race_refs.table_rows()))
        return None
    common.run_metadata("race.py", argv)  # commit and date as of the start
    if args.merge:
        return merge(args, argv)
    time_limit_ok = False if args.analyse else has_time_limit()
    kill_after = args.budget + (GRACE if time_limit_ok else 2.0)
    settings = {k: v for k, v in vars(args).items()}
    settings["conditions"] = conditions(args, time_limit_ok)
    settings["references_table"] = race_refs.table_rows()
    out = Path(args.out)
    records = []
    for key in args.only:
        atoms, info = race_refs.load(key, args.references)
        ref = reference_energy(key, atoms, info, args.calculator, out)
        check = checker_for(atoms, ref)
        for seed in args.seeds:
            folder = out / "runs" / f"{key}_s{seed}"
            entries = commands(info, seed, args.budget, folder, args, time_limit_ok)
            if not args.analyse:
                watch = None
                if args.stop_on_hits:
                    from race_watch import HitWatch
                    watch = HitWatch({name: airss_rows if name == "airss" else fuse_rows
                                      for name, _, _ in entries}, check, args.budget,
                                     ref.get("energy_per_atom"))
                race(entries, args.budget, args.cores, kill_after, watch)
            for name, _, where in entries:
                rec = analyse(name, where, info, seed, ref, check, args.budget)
                records.append(rec)
                print(f"{key:9} seed {seed} {name:12} {rec['structures_relaxed']:4d} relaxed, "
                      f"hit {rec['hit_kind'] or '-':6} at {common.fmt(rec['time_to_hit_s'], 1)}"
                      f" s, best {common.fmt(rec['best_energy_per_atom'], 4)} (reference "
                      f"{common.fmt(ref.get('energy_per_atom'), 4)})"
                      f"{' ' + rec['error'] if rec['error'] else ''}", flush=True)
            # a piece killed half way still leaves the races it finished
            common.write_json(out / "race.json", "race.py", settings, records,
                              summarize(records), argv)
    return finish(args, records, settings, argv)


if __name__ == "__main__":
    main()
