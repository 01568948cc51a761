"""Recovery of known crystals: seeded FUSE searches on each reference's composition.

Takes a folder of reference CIFs (with an optional MANIFEST.tsv whose ``file``
column lists them, e.g. ``../shared/data/references/classic/``).  For each
reference: composition = its reduced formula, max atoms = its primitive cell size
times ``--factor``; ``--seeds`` FuseBasinHopping searches (FUSE generator,
``--stack`` relaxation, ``--budget`` wall-clock seconds each).  Success for a seed =
pymatgen StructureMatcher (ltol 0.2, stol 0.3, angle 5, scaled volumes) matches any
of the ``--top`` (5) lowest structures by final energy.  Every relaxed structure is
also matched as it is made, which gives the steps, evaluations and wall time to the
first match.  The reference itself is relaxed with the same stack: its energy
(``summary.reference_energy``) shows whether the stack's minimum is the known
structure at all.

JSON: the schema of ``benchmarks/common.py``; ``method`` = ``fuse``,
``composition`` = reduced formula, ``extra`` = {reference, max_atoms, nprim,
matched_rank}.  ``summary``: {reference: {seeds_matched, seeds, reference_energy,
success_curve: [[evaluations, seconds, fraction matched], ...]}}.  PNG:
fraction of seeds matched vs evaluations.

    python benchmarks/recovery.py ../shared/data/references/classic --select NaCl TiO2 SrTiO3
    python benchmarks/recovery.py DIR --quick --stack emt --out bench_recovery
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

STACKS = {"proxy+chgnet": ["proxy", "chgnet"], "chgnet": ["chgnet"], "proxy": ["proxy"],
          "emt": ["emt"]}


def list_references(folder):
    """CIF paths of a folder, in MANIFEST.tsv order when there is one."""
    folder = Path(folder)
    manifest = folder / "MANIFEST.tsv"
    if manifest.exists():
        with open(manifest) as fh:
            names = [row["file"] for row in csv.DictReader(fh, delimiter="\t")]
        return [folder / n for n in names if (folder / n).exists()]
    return sorted(folder.glob("*.cif"))


def load_reference(path):
    """``(atoms, reduced formula, primitive size)``."""
    import spglib
    from ase.io import read
    from ase_fuse.composition import Composition
    atoms = read(path)
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    prim = spglib.standardize_cell(cell, to_primitive=True, symprec=1e-3)
    nprim = len(prim[2]) if prim is not None else len(atoms)
    from pymatgen.core import Composition as PmgComposition
    formula = PmgComposition(atoms.get_chemical_formula()).reduced_formula
    Composition(formula)  # fails early on anything ase-fuse cannot parse
    return atoms, formula, nprim


def selected(paths, names):
    if not names:
        return paths
    wanted = [n.lower() for n in names]
    out = []
    for path in paths:
        stem = path.stem.lower()
        if any(stem.startswith(w) or stem.split("_")[0] == w for w in wanted):
            out.append(path)
    return out


def run_reference(path, args):
    atoms, formula, nprim = load_reference(path)
    max_atoms = max(int(round(nprim * args.factor)), nprim)
    stages = STACKS[args.stack]
    sm = common.matcher()
    ref_energy = None
    if not args.no_reference_energy:
        result = common.relaxer_for(stages, formula, args.quick).relax(atoms)
        ref_energy = None if result.failed else float(result.energy_per_atom)
    records = []
    for seed in args.seeds:
        relaxer = common.relaxer_for(stages, formula, args.quick)
        directory = Path(args.out) / "runs" / f"{path.stem}_s{seed}"
        if (directory / "fuse.db").exists():
            (directory / "fuse.db").unlink()

        def on_result(relaxed, result):
            return common.structure_match(relaxed, atoms, sm)

        numbers, opt, _, error = common.run_basin_hopping(
            formula, relaxer, args.budget, seed, max_atoms, args.initial_population,
            directory, on_result=on_result)
        rank = None
        if opt.best_id is not None:
            for i, low in enumerate(common.lowest_rows(opt, args.top)):
                if common.structure_match(low, atoms, sm):
                    rank = i + 1
                    break
        records.append(common.make_record(
            formula, "fuse", seed, numbers, matched=rank is not None, error=error,
            extra={"reference": path.name, "max_atoms": max_atoms, "nprim": nprim,
                   "matched_rank": rank, "stack": args.stack}))
        rec = records[-1]
        print(f"{path.stem:45.45} seed {seed}: {'MATCH' if rank else 'no match':8} "
              f"rank {rank}, {rec['evaluations']} evaluated, first match at evaluation "
              f"{rec['evaluations_to_match']} ({common.fmt(rec['time_to_match_s'], 1)} s), "
              f"best {common.fmt(rec['best_energy_per_atom'], 4)} "
              f"(reference {common.fmt(ref_energy, 4)})", flush=True)
    return records, ref_energy


def success_curve(records):
    """[[evaluations, seconds, fraction of seeds matched]] over the seeds' first matches."""
    n = len(records)
    hits = sorted((r["evaluations_to_match"], r["time_to_match_s"]) for r in records
                  if r["matched"] and r["evaluations_to_match"] is not None)
    curve = [[0, 0.0, 0.0]]
    for k, (ev, t) in enumerate(hits, start=1):
        curve.append([ev, t, k / n])
    last = max((r["evaluations"] for r in records), default=0)
    curve.append([max(last, curve[-1][0]), None, curve[-1][2]])
    return curve


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", help="folder of reference CIFs (MANIFEST.tsv optional)")
    p.add_argument("--select", nargs="+", help="names (file-name start or formula)")
    p.add_argument("--seeds", nargs="+", type=int)
    p.add_argument("--budget", type=float, help="seconds per search (default 120; quick 15)")
    p.add_argument("--factor", type=float, default=2.0,
                   help="max atoms = primitive size x factor")
    p.add_argument("--initial-population", type=int)
    p.add_argument("--stack", default="proxy+chgnet", choices=list(STACKS))
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--no-reference-energy", action="store_true")
    p.add_argument("--quick", action="store_true")
    common.add_fan_out_options(p)
    p.add_argument("--out", default="bench_recovery", help="folder, or a .json file (tables, "
                   "plots and runs then go to the folder of that name)")
    args = p.parse_args(argv)
    args.out, args.json_out = common.json_target(args.out, "recovery.json")
    defaults = {"seeds": [0] if args.quick else [0, 1, 2],
                "budget": 15.0 if args.quick else 120.0,
                "initial_population": 4 if args.quick else 10}
    return common.fill_defaults(args, defaults)


def main(argv=None):
    args = parse_args(argv)
    common.limit_threads()
    common.run_metadata("recovery.py", argv)  # commit and date as of the start
    paths = selected(list_references(args.folder), args.select)
    if not paths:
        raise SystemExit(f"no reference CIFs selected in {args.folder}")
    records, summary, rows, curves = [], {}, [], {}
    # one task per reference (its seeds run in turn) when --workers/--scheduler is set
    results = common.fan_out("recovery", "run_reference", [(path, args) for path in paths],
                             args.workers, args.scheduler, local=run_reference)
    for path, (recs, ref_energy) in zip(paths, results):
        records += recs
        curve = success_curve(recs)
        curves[path.stem] = [c for c in curve]
        matched = sum(1 for r in recs if r["matched"])
        summary[path.name] = {"seeds_matched": matched, "seeds": len(recs),
                              "reference_energy": ref_energy, "success_curve": curve}
        hits = [r for r in recs if r["matched"]]
        rows.append([path.stem, recs[0]["composition"], recs[0]["extra"]["nprim"],
                     recs[0]["extra"]["max_atoms"], f"{matched}/{len(recs)}",
                     common.mean([r["evaluations_to_match"] for r in hits]),
                     common.mean([r["steps_to_match"] for r in hits]),
                     common.mean([r["time_to_match_s"] for r in hits]),
                     common.mean([r["evaluations"] for r in recs]),
                     min((r["best_energy_per_atom"] for r in recs
                          if r["best_energy_per_atom"] is not None), default=None),
                     ref_energy])
    text = common.markdown_table(
        ["reference", "formula", "prim atoms", "max atoms", "matched", "evals to match",
         "steps to match", "s to match", "evals", "best E", "reference E"], rows)
    print()
    print(text)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "recovery.md").write_text(text + "\n")
    summary["plot"] = common.plot_curves(curves, Path(args.out) / "recovery_success.png",
                                         "structures evaluated",
                                         ylabel="fraction of seeds matched")
    common.write_json(args.json_out, "recovery.py",
                      {k: v for k, v in vars(args).items()}, records, summary, argv)
    return records, summary


if __name__ == "__main__":
    main()
