"""How long before the first result: ``ase-fuse run`` against the race's random search.

On the smallest race references the random search's first or second structure is
often a hit, so the seconds before ase-fuse's first relaxation decide the race there.
For each reference and seed this script measures, on this machine:

first result    seconds from process start to the first finished relaxation, for
                ``ase-fuse run`` (defaults, the race's ``--max-atoms`` and ``--seed``)
                and for ``airss.py``: both started together, each pinned to its own
                core, as in ``race.py``, and stopped after ``--budget`` seconds.
phases          the same start, one phase at a time in one process on one core, the
                other core idle: imports (ase_fuse, torch), GN-OA (its search spaces
                and optimisation over every z), seeding (proxy re-rank, distinct
                structures, random symmetric starts), CHGNet model load, and the first
                relaxation of the population with the default stack.
space tables    the Wyckoff tables a GN-OA search space screens before its first
                evaluation (groups 2-230), each way in a fresh process after importing
                PyXtal: PyXtal ``Group`` objects (before commit 2b675d1) and the light
                positions of ``generators/gnoa/wyckoff.py`` (today).

    python benchmarks/startup.py --only nacl mnal zns si srtio3 --seeds 0 1 --out startup

Prints one table and writes ``OUT/startup.json`` (the schema of ``common.py``).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH = Path(__file__).resolve().parent
PHASES = ("imports", "gnoa", "seeding", "model", "first_relaxation")


# -- children: one fresh process each ---------------------------------------------------
def child_phases(formula, max_atoms, seed):
    """Time the default start's phases in this process; returns a dict of seconds."""
    started = time.time()
    import numpy as np
    import torch

    import ase_fuse.cli  # noqa: F401  (what ``ase-fuse run`` imports first)
    torch.set_num_threads(1)
    out = {"imports": time.time() - started}
    from ase_fuse.calculators.chgnet import load_chgnet_model
    from ase_fuse.calculators.stacks import build_stack
    from ase_fuse.composition import Composition
    from ase_fuse.config import DEFAULTS
    from ase_fuse.generators import get
    from ase_fuse.generators.gnoa.seeding import seed_population, split_seeding_options
    from ase_fuse.search_setup import search_options
    composition, rng = Composition(formula), np.random.default_rng(seed)
    name = DEFAULTS["generator"]
    cls = get(name)
    options, seeding = split_seeding_options(search_options(cls, {}))
    mark = time.time()
    pool = cls(composition, max_atoms=max_atoms, rng=rng, progress=False,
               **options).ranked_pool()
    out["gnoa"], mark = time.time() - mark, time.time()
    population, _ = seed_population(list(pool), composition, DEFAULTS["initial_population"],
                                    max_atoms, rng, **seeding)
    out["seeding"], mark = time.time() - mark, time.time()
    load_chgnet_model()
    out["model"], mark = time.time() - mark, time.time()
    result = build_stack(DEFAULTS["calculator"], composition).relax(population[0])
    out["first_relaxation"] = time.time() - mark
    out["first_failed"] = bool(result.failed)
    out["total"] = time.time() - started
    return out


def child_space(way):
    """Seconds to build the Wyckoff tables of groups 2-230 one ``way`` (PyXtal
    imported first, not timed)."""
    import hashlib

    import pyxtal.symmetry
    from ase_fuse.generators.gnoa.wyckoff import wyckoff_sites
    mark = time.time()
    if way == "pyxtal":
        table = [[(wp.multiplicity, int(wp.get_dof())) for wp in pyxtal.symmetry.Group(n)]
                 for n in range(2, 231)]
    else:
        table = [[(site.multiplicity, site.dof) for site in wyckoff_sites(n)]
                 for n in range(2, 231)]
    seconds = time.time() - mark
    digest = hashlib.sha256(json.dumps(table).encode()).hexdigest()[:16]
    return {"seconds": seconds, "positions": sum(map(len, table)), "digest": digest}


def run_child(argv, core):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True,
                         text=True, env=env, timeout=900,
                         preexec_fn=partial(os.sched_setaffinity, 0, {core}))
    if out.returncode:
        raise RuntimeError(f"child {argv} failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the pair ---------------------------------------------------------------------------
def first_results(info, seed, budget, folder, cores):
    """Seconds to the first finished relaxation of each contestant, started together."""
    import race
    args = argparse.Namespace(calculator="chgnet", variant=None)
    entries = race.commands(info, seed, budget, folder, args, time_limit_ok=True)
    race.race(entries, budget, cores, kill_after=budget + 30)
    out = {}
    for name, _, path in entries:
        started = json.loads((path / "run.json").read_text())["started_at"]
        reader = race.airss_rows if name == "airss" else race.fuse_rows
        rows = [r for r in reader(path, started) if not r.get("reused")]
        out[name] = rows[0]["t"] if rows else None
        out[f"{name}_relaxed_in_budget"] = sum(1 for r in rows if r["t"] <= budget)
    return out


def measure(keys, seeds, budget, out, cores):
    sys.path.insert(0, str(BENCH))
    import race_refs
    records = []
    for key in keys:
        info = race_refs.load(key)[1]
        for seed in seeds:
            pair = first_results(info, seed, budget, Path(out) / "runs" / f"{key}_s{seed}",
                                 cores)
            phases = run_child(["phases", info["formula"], str(info["max_atoms"]),
                                str(seed)], cores[0])
            records.append({"reference": key, "formula": info["formula"], "seed": seed,
                            "max_atoms": info["max_atoms"], "first_result_s": pair,
                            "phases_s": phases})
            print(row_text(records[-1]), flush=True)
    space = {way: [run_child(["space", way], cores[0]) for _ in range(3)]
             for way in ("pyxtal", "light")}
    if len({r["digest"] for runs in space.values() for r in runs}) != 1:
        raise RuntimeError("the two ways built different Wyckoff tables")
    return records, {way: [r["seconds"] for r in runs] for way, runs in space.items()}


def row_text(r):
    p, f = r["phases_s"], r["first_result_s"]

    def s(x):
        return "-" if x is None else f"{x:.2f}"
    return (f"| {r['reference']} | {r['seed']} | {s(f.get('ase-fuse'))} | {s(f.get('airss'))} | "
            + " | ".join(s(p[k]) for k in PHASES) + f" | {s(p['total'])} |")


HEADER = ("| reference | seed | ase-fuse first result, s | random first result, s | "
          + " | ".join(PHASES) + " | phases total |\n|" + "---|" * (len(PHASES) + 5))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=["nacl", "mnal", "zns", "si", "srtio3"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--budget", type=float, default=25.0,
                        help="seconds each contestant runs (default 25)")
    parser.add_argument("--out", default="startup")
    parser.add_argument("--cores", nargs=2, type=int, default=None)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        result = (child_phases(rest[0], int(rest[1]), int(rest[2])) if kind == "phases"
                  else child_space(rest[0]))
        print(json.dumps(result))
        return 0
    sys.path.insert(0, str(BENCH))
    import common
    cores = args.cores or sorted(os.sched_getaffinity(0))[:2]
    if len(cores) < 2:
        raise SystemExit("startup.py needs two cores (the pair runs side by side)")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    print(HEADER, flush=True)
    records, space = measure(args.only, args.seeds, args.budget, args.out, cores)
    median = {way: sorted(v)[1] for way, v in space.items()}
    ratio = median["pyxtal"] / median["light"]
    print(f"\nWyckoff tables of groups 2-230 (median of 3 fresh processes): PyXtal Group "
          f"{median['pyxtal']:.2f} s, light {median['light']:.2f} s, {ratio:.1f}x")
    summary = {"space_tables_s": space, "space_tables_median_s": median,
               "space_tables_ratio": ratio}
    common.write_json(Path(args.out) / "startup.json", "startup.py",
                      {"budget_s": args.budget, "seeds": args.seeds, "only": args.only,
                       "cores": cores}, records, summary, argv=argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
