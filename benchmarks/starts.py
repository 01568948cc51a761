"""Starting structures: which generator's starts reach the ground state, at what cost?

For each race reference (``race_refs.py``), ``--n`` starts from each generator
(``fuse``: FUSE's sub-module structures; ``symmetric``: PyXtal random symmetric
structures, as the random-search peer draws them; ``search``: the search's own
default start, GN-OA's proxy-ranked pool with the ``random_share="auto"`` random
starts, in the order the search relaxes them), seeded, at the race's cell size
limit ``max(2n, n+4)``, each relaxed with every stack of ``--stacks`` (default the
search's default), the same start for each, so that the stacks compare on equal
work: which one reaches the reference more often per second.  Reported per reference and generator: hits (a structure matching
the reference, or 2 meV/atom below the reference relaxed with the same final tier:
the race's rule, ``race.HitCheck``), ML steps per structure (mean, 90th percentile),
wall time per structure and failures.  This is the population phase of a search
without the hopping: the lever "starting structures" of the race issue.

    python benchmarks/starts.py --only nacl si srtio3 rutile --n 8 --out starts
    python benchmarks/starts.py --only zns cu2o --generators symmetric search \
        --stacks proxy+chgnet chgnet --n 30 --out starts_stacks
    python benchmarks/starts.py --quick          # CI: proxy only, one reference
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import race  # noqa: E402
import race_refs  # noqa: E402
from race_report import percentile90  # noqa: E402

GENERATORS = ("fuse", "symmetric", "search")



def make_starts(generator, formula, max_atoms, n, seed):
    from ase_fuse.composition import Composition
    from ase_fuse.generators import get
    rng = np.random.default_rng(seed)
    if generator == "search":  # the search's own start: its default generator and options
        from ase_fuse.config import DEFAULTS
        from ase_fuse.search_setup import initial_structures
        population, pool = initial_structures(
            Composition(formula), n, DEFAULTS["generator"], DEFAULTS["generator_options"],
            None, max_atoms, rng)
        return (population + pool)[:n]
    return get(generator)(Composition(formula), max_atoms=max_atoms, rng=rng).generate_many(n)


def run_reference(key, args):
    """Per-structure rows for every generator on reference ``key``."""
    from ase_fuse.calculators.stacks import build_stack
    atoms, info = race_refs.load(key, args.references)
    final = "proxy" if args.quick else "chgnet"
    ref = race.reference_energy(key, atoms, info, final, args.out_folder)
    check = race.checker_for(atoms, ref)
    relaxers = {stack: build_stack(stack, info["formula"]) for stack in args.stacks}
    rows = []
    for generator in args.generators:
        t0 = time.perf_counter()
        structures = make_starts(generator, info["formula"], info["max_atoms"], args.n,
                                 args.seed)
        made = time.perf_counter() - t0
        for k, start in enumerate(structures):
            for stack, relaxer in relaxers.items():
                rows.append(relax_row(key, info, generator, stack, relaxer, k, start, check,
                                      ref, made / max(1, len(structures))))
    return rows


def relax_row(key, info, generator, stack, relaxer, k, start, check, ref, generation_s):
    """One start relaxed by one stack: cost, energy and whether it hit."""
    t0 = time.perf_counter()
    result = relaxer.relax(start)
    wall = time.perf_counter() - t0
    ml = sum(t.steps for t in result.tiers if t.name != "proxy")
    hit = None if result.failed else check.kind(result.atoms, result.energy_per_atom)
    e = result.energy_per_atom
    print(f"{key:9s} {generator:10s} {stack:14s} {k:3d} {len(start):3d} atoms "
          f"E={e if e is not None else float('nan'):9.4f} ml_steps={ml:5d} "
          f"{wall:6.1f} s {hit or ''}"
          + (f" failed: {result.failed[:60]}" if result.failed else ""), flush=True)
    return {"key": key, "formula": info["formula"], "generator": generator,
            "stack": stack, "start": k, "atoms": len(start), "wall_s": wall,
            "generation_s": generation_s, "ml_steps": ml, "failed": result.failed,
            "energy_per_atom": e, "hit": hit,
            "reference_energy_per_atom": ref.get("energy_per_atom")}


def summarize(rows):
    out = {}
    for r in rows:
        label = f'{r["generator"]} / {r.get("stack", "-")}'
        s = out.setdefault(r["key"], {}).setdefault(label, {
            "n": 0, "failed": 0, "hits": 0, "ml_steps": [], "wall_s": [], "best": None,
            "reference": r["reference_energy_per_atom"]})
        s["n"] += 1
        s["wall_s"].append(r["wall_s"] + r["generation_s"])
        s["relax_s"] = s.get("relax_s", 0.0) + r["wall_s"]
        if r["failed"]:
            s["failed"] += 1
            continue
        s["hits"] += r["hit"] is not None
        s["ml_steps"].append(r["ml_steps"])
        s["best"] = r["energy_per_atom"] if s["best"] is None else \
            min(s["best"], r["energy_per_atom"])
    for per in out.values():
        for s in per.values():
            steps, walls = s.pop("ml_steps"), s.pop("wall_s")
            s["ml_steps_mean"] = common.mean(steps)
            s["ml_steps_p90"] = percentile90(steps)
            s["wall_s_mean"] = common.mean(walls)
            s["hits_per_100s"] = 100.0 * s["hits"] / s["relax_s"] if s["relax_s"] else None
    return out


def print_table(summary):
    headers = ["reference", "generator / stack", "n", "hits", "failed", "ML steps mean",
               "p90", "s/structure", "hits per 100 s", "best (eV/atom)",
               "reference (eV/atom)"]
    rows = [[key, gen, s["n"], s["hits"], s["failed"], common.fmt(s["ml_steps_mean"], 1),
             common.fmt(s["ml_steps_p90"], 0), common.fmt(s["wall_s_mean"], 2),
             common.fmt(s["hits_per_100s"], 2),
             common.fmt(s["best"], 4), common.fmt(s["reference"], 4)]
            for key, per in summary.items() for gen, s in per.items()]
    print(common.markdown_table(headers, rows))


def main(argv=None):
    from ase_fuse.config import DEFAULTS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", metavar="KEY")
    p.add_argument("--n", type=int, default=None, help="starts per generator")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--generators", nargs="+", default=list(GENERATORS))
    p.add_argument("--stacks", nargs="+", default=None,
                   help="relaxation stacks, each relaxing every start (default: the "
                   "search's)")
    p.add_argument("--references", default=str(race_refs.DEFAULT_FOLDER))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="starts_out", help="folder or .json file")
    args = p.parse_args(argv)
    common.fill_defaults(args, {"only": [race_refs.QUICK] if args.quick else
                                ["nacl", "si", "srtio3", "rutile"],
                                "n": 2 if args.quick else 8,
                                "stacks": ["proxy"] if args.quick else [DEFAULTS["calculator"]]})
    args.out_folder, path = common.json_target(args.out, "starts.json")
    if not args.quick:
        import torch
        torch.set_num_threads(1)
    common.limit_threads()
    rows = []
    for key in args.only:
        rows += run_reference(key, args)
    summary = summarize(rows)
    print_table(summary)
    settings = {k: v for k, v in vars(args).items() if k != "out_folder"}
    common.write_json(path, "starts.py", settings, rows, summary, argv=argv)
    print(f"wrote {path}")
    return summary


if __name__ == "__main__":
    main()
