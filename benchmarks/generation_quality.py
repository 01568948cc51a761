"""Generation quality: GN-OA versus the FUSE random generator, relaxed with CHGNet.

For each composition:

* **GN-OA** (CHGNet energy model, batched numpy TPE, ``--evaluations`` per z) runs
  over the formula units allowed by ``--max-atoms``; measured: evaluations/s, valid
  structures/s, the optimiser's own share of the time.  Its ``--top`` distinct
  lowest predicted-energy structures (duplicates by size, space group, energy and
  volume dropped) are kept.
* **FUSE**: ``--top`` random structures of the same sizes from ``FuseGenerator``
  (structures/s measured too).
* Every kept structure is relaxed with the same CHGNet settings (FIRE + cell
  filter, ``--fmax``, ``--steps``), and so are the reference structures of the
  composition: the rows of ``--references``/MANIFEST.tsv with that reduced formula
  and, for the FUSE2 compositions, ``--probes``/<formula>/*.cif.  The reference
  energy is the lowest relaxed one; without any reference it is the lowest found by
  either generator (``ref`` column: ``found``).
* Reported: the fraction of each generator's top structures within ``--window``
  (50 meV/atom) of the reference, how many *distinct* structures (pymatgen
  ``StructureMatcher``) those are (GN-OA's top list can hold near-copies of one
  structure), and each one's best relaxed energy above the reference.

The FUSE2 paper's central claim is that ML-generated structures start the search
closer to the ground state than random ones; this measures that directly.

``--models megnet chgnet`` runs GN-OA once per energy model (columns ``gnoa-megnet``,
``gnoa-chgnet``; the models load once, outside the timing, on one thread each);
``--triclinic-only`` searches P1 and P-1 only and ``--no-fuse`` leaves FUSE out: the
paper's setting is ``--models megnet --triclinic-only --evaluations 5000``.  MEGNet
needs the ``[megnet]`` extra and ``ase-fuse models install megnet``
(``benchmarks/README.md``, "GN-OA at the paper's settings").

    python benchmarks/generation_quality.py --quick
    python benchmarks/generation_quality.py --compositions NaCl TiO2 SrTiO3 \\
        --evaluations 300 --top 10 --out quality.json
    python benchmarks/generation_quality.py --compositions CoAs2 WCl2 YWB4 \\
        --models megnet chgnet --triclinic-only --evaluations 5000 --no-fuse --max-atoms 6
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # shared 2-core machine; before numpy loads

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

CLASSIC = ["TiO2", "SrTiO3", "NaCl", "SiO2", "Al2O3"]
FUSE2 = ["Ca3Ti2O7", "CoAs2", "Cu7S4", "Mn", "Pb5As3O12Cl", "Si6Al6B3Fe3NaO30F", "WCl2",
         "YWB4", "Li2Sn2S3Cl4", "Li3Si3O5Cl5", "Li4OBrCl"]
QUICK = ["NaCl", "TiO2"]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def reference_files(formula, references, probes):
    """CIF paths of the known structures of ``formula`` (MANIFEST rows, probe CIFs)."""
    files = []
    manifest = Path(references) / "MANIFEST.tsv" if references else None
    if manifest is not None and manifest.is_file():
        with open(manifest) as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if _same_formula(row["reduced_formula"], formula):
                    files.append(Path(references) / row["file"])
    if probes:
        files += sorted((Path(probes) / formula).glob("*.cif"))
    return files


def _same_formula(a, b):
    from pymatgen.core import Composition as PmgComposition
    return PmgComposition(a).reduced_formula == PmgComposition(b).reduced_formula


def make_relaxer(fmax, steps):
    from ase_fuse.calculators import TieredRelaxer
    from ase_fuse.calculators.chgnet import chgnet_tier
    return TieredRelaxer([chgnet_tier(fmax=fmax, steps=steps)])


def relax_all(relaxer, structures, relaxed=None):
    """Relaxed energies per atom (``inf`` for a failure) and the wall time; the relaxed
    structures (None for a failure) are appended to ``relaxed`` if given."""
    start = time.perf_counter()
    energies = []
    for atoms in structures:
        result = relaxer.relax(atoms)
        energies.append(np.inf if result.failed else float(result.energy_per_atom))
        if relaxed is not None:
            relaxed.append(None if result.failed else result.atoms)
    return np.array(energies), time.perf_counter() - start


def distinct_count(structures):
    """How many different structures (pymatgen StructureMatcher) are in the list."""
    from pymatgen.io.ase import AseAtomsAdaptor

    from ase_fuse.identity import structure_matcher
    structures = [a for a in structures if a is not None]
    if not structures:
        return 0
    matcher = structure_matcher()
    groups = matcher.group_structures([AseAtomsAdaptor.get_structure(a)
                                       for a in structures])
    return len(groups)


_MODELS = {}


def energy_model(name):
    """The GN-OA energy model ``name``, loaded once per process (one thread) and timed."""
    if name not in _MODELS:
        from ase_fuse.generators.gnoa.models import MEGNetModel, make_model
        start = time.perf_counter()
        model = MEGNetModel(threads=1) if name == "megnet" else make_model(name, "H")
        _MODELS[name] = (model, time.perf_counter() - start)
    return _MODELS[name]


def run_gnoa(formula, max_atoms, evaluations, top, seed, distinct="structure", model="chgnet",
             triclinic_only=False):
    from ase_fuse.generators.gnoa import GnoaGenerator
    from ase_fuse.generators.gnoa.seeding import rank_for_search
    model_obj, load_s = energy_model(model)  # loaded outside the timing
    gen = GnoaGenerator(formula, max_atoms=max_atoms, model=model_obj, optimizer="tpe",
                        evaluations=evaluations, seed=seed, progress=False,
                        triclinic_only=triclinic_only)
    start = time.perf_counter()
    pool = gen.run()
    wall = time.perf_counter() - start
    total = sum(r.total_s for r in gen.results.values())
    overhead = sum(r.overhead_s for r in gen.results.values())
    n_eval = sum(len(r.losses) for r in gen.results.values())
    chosen, _ = rank_for_search(pool, gen.composition, top, rerank="none", pool_size=0,
                                distinct=distinct)
    return chosen, {"model": model, "model_load_s": load_s, "triclinic_only": triclinic_only,
                    "wall_s": wall, "evaluations": n_eval, "valid": len(pool),
                    "evaluations_per_s": n_eval / wall, "valid_per_s": len(pool) / wall,
                    "optimizer_share": overhead / total if total else 0.0,
                    "z_values": list(gen.z_values),
                    "best_predicted": min((a.info["predicted_energy"] for a in pool),
                                          default=None)}


def generator_names(args):
    """The columns: ``gnoa`` (CHGNet alone, as before) or ``gnoa-<model>``, then fuse."""
    names = ["gnoa"] if args.models == ["chgnet"] else [f"gnoa-{m}" for m in args.models]
    return names + ([] if args.no_fuse else ["fuse"])


def run_fuse(formula, max_atoms, top, seed, z_values):
    from ase_fuse.generators.fuse import FuseGenerator
    gen = FuseGenerator(formula, max_atoms=max_atoms, rng=np.random.default_rng(seed),
                        formula_units=z_values)
    start = time.perf_counter()
    made = gen.generate_many(top)
    wall = time.perf_counter() - start
    return made, {"wall_s": wall, "valid_per_s": len(made) / wall}


def measure(formula, args):
    from ase.io import read

    from ase_fuse.composition import Composition
    comp = Composition(formula)
    max_atoms = max(args.max_atoms, comp.atoms_per_formula_unit)
    relaxer = make_relaxer(args.fmax, args.steps)
    names = generator_names(args)
    row = {"composition": formula, "max_atoms": max_atoms, "generators": names}

    tops = {}
    for name, model in zip(names, args.models):
        tops[name], row[name] = run_gnoa(formula, max_atoms, args.evaluations, args.top,
                                         args.seed, args.distinct, model,
                                         args.triclinic_only)
    if "fuse" in names:
        tops["fuse"], row["fuse"] = run_fuse(formula, max_atoms, args.top, args.seed,
                                             row[names[0]]["z_values"])
    files = reference_files(formula, args.references, args.probes)
    refs = [read(str(f)) for f in files]
    refs = [a for a in refs if comp.formula_units_of(a) is not None]
    ref_e, ref_s = relax_all(relaxer, refs)
    row["reference_energies"] = {f.name: float(e) for f, e in zip(files, ref_e)}
    relaxed, found = {name: [] for name in names}, {}
    for name in names:
        found[name], row[name]["relax_s"] = relax_all(relaxer, tops[name], relaxed[name])

    if len(ref_e) and np.isfinite(ref_e).any():
        reference, source = float(ref_e.min()), "known"
        row["reference_file"] = files[int(np.argmin(ref_e))].name
    else:
        reference, source = float(min(e.min() for e in found.values())), "found"
        row["reference_file"] = None
    row.update(reference_energy_per_atom=reference, reference=source,
               references_relaxed=len(refs), reference_relax_s=ref_s)
    for name, energies in found.items():
        above = energies - reference
        inside = [a for a, d in zip(relaxed[name], above) if d <= args.window]
        row[name].update(
            distinct_within=distinct_count(inside),
            distinct_relaxed=distinct_count(relaxed[name]),
            top=len(energies), failed=int(np.sum(~np.isfinite(energies))),
            within=int(np.sum(above <= args.window)),
            fraction_within=float(np.mean(above <= args.window)) if len(above) else 0.0,
            best_above_meV=float(1000 * above.min()) if np.isfinite(above).any() else None,
            energies_per_atom=[float(e) if np.isfinite(e) else None for e in energies])
    return row


def overall(rows):
    names = rows[0].get("generators", ["gnoa", "fuse"]) if rows else []
    total = {name: sum(r[name]["within"] for r in rows)
             / max(sum(r[name]["top"] for r in rows), 1) for name in names}
    distinct = {name: sum(r[name]["distinct_within"] for r in rows) for name in names}
    return total, distinct


def write(path, args, rows):
    total, distinct = overall(rows)
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "args": vars(args),
            "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "w") as fh:
        json.dump({"meta": meta, "results": rows, "overall": total,
                   "distinct_within": distinct}, fh, indent=1)
    tmp.replace(path)
    return total, distinct


def print_row(row, header=False):
    """One line per generator of ``row`` (the header line when ``header``)."""
    if header:
        line = (f"{'formula':18} {'generator':12} {'ref':5} {'eval/s':>8} {'valid/s':>8} "
                f"{'opt share':>9} {'in':>7} {'best':>8} {'distinct in':>11}")
        print(line)
        print("-" * len(line))
        return
    for name in row.get("generators", ["gnoa", "fuse"]):
        g = row[name]
        evals = f"{g['evaluations_per_s']:.1f}" if "evaluations_per_s" in g else "-"
        share = f"{g['optimizer_share']:.1%}" if "optimizer_share" in g else "-"
        best = "-" if g["best_above_meV"] is None else f"{g['best_above_meV']:.1f}"
        print(f"{row['composition']:18} {name:12} {row['reference']:5} {evals:>8} "
              f"{g['valid_per_s']:>8.1f} {share:>9} {g['within']:>3}/{g['top']:<3} "
              f"{best:>8} {g['distinct_within']:>11}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compositions", nargs="+", default=None,
                        help="formulas (default: 5 classic + the 11 FUSE2 ones)")
    parser.add_argument("--evaluations", type=int, default=None,
                        help="GN-OA evaluations per z (default 1000; 100 with --quick)")
    parser.add_argument("--top", type=int, default=None,
                        help="structures per generator relaxed (default 25; 5 with --quick)")
    parser.add_argument("--max-atoms", type=int, default=None,
                        help="largest cell (default 16; 8 with --quick; at least one "
                        "formula unit)")
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=None,
                        help="CHGNet relaxation steps (default 500; 150 with --quick)")
    parser.add_argument("--window", type=float, default=0.05,
                        help="eV/atom above the reference counted as found (0.05)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--distinct", default="structure", choices=["structure", "fingerprint"],
                        help="how GN-OA's top list drops near-copies (as the search does)")
    parser.add_argument("--references", default=str(SHARED / "references" / "classic"))
    parser.add_argument("--probes", default=str(SHARED / "fuse2_paper" / "probe_structures"))
    parser.add_argument("--models", nargs="+", default=["chgnet"],
                        help="GN-OA energy models, one GN-OA run each (chgnet, megnet, proxy)")
    parser.add_argument("--triclinic-only", action="store_true",
                        help="GN-OA searches P1 and P-1 only (the paper's setting)")
    parser.add_argument("--no-fuse", action="store_true", help="leave the FUSE column out")
    parser.add_argument("--quick", action="store_true",
                        help="2 compositions, 100 evaluations, top-5, short relaxations")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    quick = args.quick
    args.compositions = args.compositions or (QUICK if quick else CLASSIC + FUSE2)
    args.evaluations = args.evaluations or (100 if quick else 1000)
    args.top = args.top or (5 if quick else 25)
    args.max_atoms = args.max_atoms or (8 if quick else 16)
    args.steps = args.steps or (150 if quick else 500)
    if "megnet" in args.models:  # tf-keras, chosen before TensorFlow is imported
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import warnings

    import torch
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")

    rows = []
    print(f"GN-OA ({', '.join(args.models)} model, numpy TPE, {args.evaluations} evaluations "
          f"per z{', P1/P-1 only' if args.triclinic_only else ''})"
          f"{'' if args.no_fuse else ' vs FUSE'}; "
          f"top {args.top} relaxed with CHGNet (fmax {args.fmax}, {args.steps} steps); "
          f"'in' = within {1000 * args.window:.0f} meV/atom of the reference; "
          f"best = lowest relaxed energy above it, meV/atom")
    print_row(None, header=True)
    started = time.perf_counter()
    for formula in args.compositions:
        row = measure(formula, args)
        rows.append(row)
        print_row(row)
        if args.out:  # after every composition: an interrupted run keeps its rows
            write(args.out, args, rows)
    total, distinct = write(args.out, args, rows) if args.out else overall(rows)
    print("overall fraction within the window: "
          + ", ".join(f"{name} {value:.1%}" for name, value in total.items())
          + "; distinct structures within it (StructureMatcher): "
          + ", ".join(f"{name} {value}" for name, value in distinct.items())
          + f"; {time.perf_counter() - started:.0f} s")
    return rows


if __name__ == "__main__":
    main()
