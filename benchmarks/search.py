"""Search benchmark: do seeded FUSE searches find known structures, and how fast?

For each composition (default SrTiO3, TiO2, NaCl, SiO2, Al2O3) and seed, runs
``FuseBasinHopping`` with a named calculator stack and reports:

- whether one of the best few relaxed structures of the run's db (``--top``) matches
  a known polymorph of the formula (pymatgen ``StructureMatcher``, default
  tolerances; every reference of the formula in the folder counts);
- the step (0 = initial population) and wall time at which the first such matching
  structure was relaxed;
- the fraction of wall time spent outside the calculator: ``1 - (time inside
  relaxer.relax) / (run wall time)``; the goal is under 5% with CHGNet.

References are read from a folder with ``MANIFEST.tsv`` (columns file, formula,
reduced_formula, nsites, spacegroup); nothing is copied.  ``max_atoms`` is
``ceil(factor * n)`` with n the primitive-cell size of the formula's lowest-nsites
reference (at least n).

    python benchmarks/search.py --references ../shared/data/references/classic/ --quick
    python benchmarks/search.py --references DIR --compositions SrTiO3,NaCl \\
        --calculator proxy+chgnet --seeds 0 --steps 30 --out search.json

Prints a markdown table and writes JSON.  Sets one thread (OMP_NUM_THREADS=1 and
torch) so that it can share a small machine.
"""

import argparse
import csv
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_COMPOSITIONS = ("SrTiO3", "TiO2", "NaCl", "SiO2", "Al2O3")


class TimedRelaxer:
    """Wraps a relaxer and adds up the wall time spent in ``relax``."""

    def __init__(self, relaxer):
        self.relaxer = relaxer
        self.seconds = 0.0
        self.calls = 0

    def relax(self, atoms):
        start = time.perf_counter()
        try:
            return self.relaxer.relax(atoms)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def read_references(folder, compositions):
    """``{reduced formula: [(file, Structure, nsites_primitive), ...]}`` sorted by nsites."""
    from pymatgen.core import Structure

    folder = Path(folder)
    manifest = folder / "MANIFEST.tsv"
    if not manifest.exists():
        sys.exit(f"error: --references: no MANIFEST.tsv in {folder}")
    wanted = {_reduced(c): c for c in compositions}
    found = {c: [] for c in compositions}
    with manifest.open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            key = _reduced(row["reduced_formula"])
            if key in wanted:
                structure = Structure.from_file(str(folder / row["file"]))
                found[wanted[key]].append((row["file"], structure, int(row["nsites"])))
    missing = [c for c, refs in found.items() if not refs]
    if missing:
        sys.exit(f"error: --references: no reference for {', '.join(missing)} in {manifest}")
    for refs in found.values():
        refs.sort(key=lambda item: item[2])
    return found


def _reduced(formula):
    from pymatgen.core import Composition
    return Composition(formula).reduced_formula


def max_atoms_for(references, factor):
    """``(max_atoms, n_primitive)`` from the lowest-nsites reference."""
    n = len(references[0][1].get_primitive_structure())
    return max(n, math.ceil(factor * n)), n


def match_best(db_path, references, top):
    """Match the ``top`` lowest-energy relaxed rows; returns a list of matches."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    from ase_fuse.records import RunRecords

    rows = [r for r in RunRecords(db_path).rows() if r.status == "relaxed"]
    rows.sort(key=lambda r: r.energy_per_atom)
    matcher = StructureMatcher()
    matches = []
    for rank, row in enumerate(rows[:top]):
        structure = AseAtomsAdaptor.get_structure(row.toatoms())
        for name, reference, _ in references:
            if matcher.fit(structure, reference):
                matches.append({"rank": rank, "step": int(row.step), "row": int(row.id),
                                "reference": name,
                                "energy_per_atom": float(row.energy_per_atom)})
                break
    return matches


def run_one(formula, references, seed, args, workdir):
    from ase_fuse import FuseBasinHopping
    from ase_fuse.calculators.stacks import build_stack

    max_atoms, _ = max_atoms_for(references, args.max_atoms_factor)
    relaxer = TimedRelaxer(build_stack(args.calculator, formula))
    directory = Path(workdir) / f"{formula}_seed{seed}"
    start = time.perf_counter()
    step_times = {}
    opt = FuseBasinHopping(formula, relaxer=relaxer, max_atoms=max_atoms,
                           initial_population=args.initial_population, seed=seed,
                           directory=directory, logfile=None)
    opt.attach(lambda: step_times.setdefault(opt.nsteps, time.perf_counter() - start),
               interval=1)
    opt.run(steps=args.steps)
    wall = time.perf_counter() - start
    matches = match_best(opt.records.path, references, args.top)
    first = min(matches, key=lambda m: m["step"]) if matches else None
    return {"seed": seed, "max_atoms": max_atoms, "steps": opt.nsteps,
            "matched": bool(matches), "matches": matches,
            "first_match_step": first["step"] if first else None,
            "first_match_reference": first["reference"] if first else None,
            "time_to_first_match_s": step_times.get(first["step"]) if first else None,
            "wall_s": wall, "relax_s": relaxer.seconds, "relax_calls": relaxer.calls,
            "outside_fraction": 1.0 - relaxer.seconds / wall if wall > 0 else None,
            "best_energy_per_atom": opt.best_energy,
            "evaluated": opt.records.count(status="relaxed"),
            "failed": opt.records.count(status="failed")}


def summarise(formula, runs):
    hits = [r for r in runs if r["matched"]]
    median = (lambda xs: statistics.median(xs) if xs else None)
    wall = sum(r["wall_s"] for r in runs)
    relax = sum(r["relax_s"] for r in runs)
    return {"composition": formula, "max_atoms": runs[0]["max_atoms"],
            "runs": len(runs), "matched": len(hits),
            "references_matched": sorted({r["first_match_reference"] for r in hits}),
            "median_steps_to_match": median([r["first_match_step"] for r in hits]),
            "median_time_to_match_s": median([r["time_to_first_match_s"] for r in hits]),
            "wall_s": wall, "outside_fraction": 1.0 - relax / wall if wall else None,
            "best_energy_per_atom": min(r["best_energy_per_atom"] for r in runs)}


def table(summaries):
    lines = ["| composition | max atoms | matched runs | steps to 1st match (median) | "
             "s to 1st match (median) | wall s | outside calculator | best E (eV/atom) "
             "| matched reference |",
             "|---|---|---|---|---|---|---|---|---|"]
    fmt = (lambda x, f: "-" if x is None else format(x, f))
    for s in summaries:
        lines.append(f"| {s['composition']} | {s['max_atoms']} | {s['matched']}/{s['runs']} | "
                     f"{fmt(s['median_steps_to_match'], 'g')} | "
                     f"{fmt(s['median_time_to_match_s'], '.1f')} | {s['wall_s']:.1f} | "
                     f"{fmt(s['outside_fraction'] and 100 * s['outside_fraction'], '.1f')}% | "
                     f"{s['best_energy_per_atom']:.4f} | "
                     f"{', '.join(s['references_matched']) or '-'} |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--references", required=True,
                        help="folder with MANIFEST.tsv and the reference CIF files")
    parser.add_argument("--compositions", default=",".join(DEFAULT_COMPOSITIONS))
    parser.add_argument("--calculator", default="proxy+chgnet", help="named stack")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--steps", type=int, default=50, help="basin-hopping steps")
    parser.add_argument("--initial-population", type=int, default=8)
    parser.add_argument("--max-atoms-factor", type=float, default=2.0,
                        help="max_atoms = factor x primitive size of the smallest reference")
    parser.add_argument("--top", type=int, default=5,
                        help="lowest-energy structures of each run to match")
    parser.add_argument("--quick", action="store_true",
                        help="tiny run: NaCl and TiO2, seed 0, 5 steps, proxy")
    parser.add_argument("--workdir", default=None, help="keep run folders here")
    parser.add_argument("--out", default="search_results.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.compositions, args.seeds, args.steps = "NaCl,TiO2", "0", 5
        args.initial_population, args.calculator = 4, "proxy"
    try:
        args.seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds: need comma-separated integers, got {args.seeds!r}")
    args.compositions = [c.strip() for c in args.compositions.split(",") if c.strip()]
    return args


def main(argv=None):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = parse_args(argv)
    if "chgnet" in args.calculator:
        import torch
        torch.set_num_threads(1)
    references = read_references(args.references, args.compositions)
    summaries, results = [], {}
    with tempfile.TemporaryDirectory(prefix="ase-fuse-bench-") as tmp:
        workdir = args.workdir or tmp
        for formula in args.compositions:
            runs = []
            for seed in args.seeds:
                run = run_one(formula, references[formula], seed, args, workdir)
                print(f"# {formula} seed {seed}: matched={run['matched']} "
                      f"step={run['first_match_step']} wall={run['wall_s']:.1f} s "
                      f"outside={100 * run['outside_fraction']:.1f}%", flush=True)
                runs.append(run)
            summaries.append(summarise(formula, runs))
            results[formula] = {"references": [name for name, _, _ in references[formula]],
                                "runs": runs, "summary": summaries[-1]}
    settings = {k: v for k, v in vars(args).items()}
    Path(args.out).write_text(json.dumps({"settings": settings, "results": results},
                                         indent=1, default=str))
    print(table(summaries))
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
