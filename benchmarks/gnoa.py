"""Benchmark the GN-OA generator: throughput and the optimiser's own overhead share.

For each formula and optimiser, one search of ``--evaluations`` points at
``--z`` formula units is timed.  Reported per run: evaluations/s, valid
structures/s, the share of the wall time the optimiser itself used (the rest is
decoding + constraint checks + the energy model), and the best predicted energy.

    python benchmarks/gnoa.py                       # proxy model, 1000 evaluations
    python benchmarks/gnoa.py --model chgnet --out gnoa_chgnet.json
    python benchmarks/gnoa.py --formulas NaCl --optimizers tpe tpe:hyperopt \
        --evaluations 5000 --model chgnet       # the TPE overhead check at 5000

An optimiser written ``tpe:hyperopt`` is TPE with hyperopt as its backend (``tpe``
alone is the batched numpy TPE).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # shared 2-core machine; before numpy loads

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402


def run_one(formula, z, optimizer, model, evaluations, seed, space_groups):
    from ase_fuse.generators.gnoa import GnoaGenerator
    name, _, backend = optimizer.partition(":")
    gen = GnoaGenerator(formula, max_atoms=max(z * 8, 8), formula_units=[z], model=model,
                        optimizer=name, evaluations=evaluations, seed=seed,
                        optimizer_options={"backend": backend} if backend else None,
                        space_groups=space_groups, progress=False)
    model_obj = gen._get_model()  # load the model outside the timing
    start = time.perf_counter()
    result = gen.search(z)
    wall = time.perf_counter() - start
    return {
        "formula": formula, "z": z, "optimizer": optimizer,
        "model": getattr(model_obj, "name", type(model_obj).__name__),
        "evaluations": len(result.losses), "valid": len(gen.pool),
        "wall_s": wall,
        "evaluations_per_s": len(result.losses) / wall,
        "valid_per_s": len(gen.pool) / wall,
        "optimizer_overhead_s": result.overhead_s,
        "optimizer_overhead_share": result.overhead_share,
        "best_energy_per_atom": min((a.info["predicted_energy"] for a in gen.pool),
                                    default=None),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formulas", nargs="+", default=["NaCl", "TiO2", "SrTiO3"])
    parser.add_argument("--z", type=int, default=2, help="formula units per cell")
    parser.add_argument("--optimizers", nargs="+", default=["tpe", "random", "pso"])
    parser.add_argument("--model", default="proxy", help="proxy (default) or chgnet")
    parser.add_argument("--evaluations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space-groups", default="2-230",
                        help="range a-b of space-group numbers")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.model == "chgnet":
        import torch
        torch.set_num_threads(1)
    low, high = (int(x) for x in args.space_groups.split("-"))
    rows = []
    header = (f"{'formula':8} {'z':>2} {'opt':12} {'model':6} {'evals':>6} {'valid':>6} "
              f"{'wall s':>8} {'eval/s':>8} {'valid/s':>8} {'opt share':>9} {'best eV/at':>10}")
    print(header)
    print("-" * len(header))
    for formula in args.formulas:
        for optimizer in args.optimizers:
            row = run_one(formula, args.z, optimizer, args.model, args.evaluations,
                          args.seed, range(low, high + 1))
            rows.append(row)
            best = row["best_energy_per_atom"]
            print(f"{formula:8} {args.z:>2} {optimizer:12} {row['model']:6} "
                  f"{row['evaluations']:>6} {row['valid']:>6} {row['wall_s']:>8.2f} "
                  f"{row['evaluations_per_s']:>8.1f} {row['valid_per_s']:>8.1f} "
                  f"{row['optimizer_overhead_share']:>9.1%} "
                  f"{best if best is None else round(best, 4):>10}", flush=True)
    if args.out:
        meta = {"python": platform.python_version(), "machine": platform.machine(),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "args": vars(args)}
        with open(args.out, "w") as fh:
            json.dump({"meta": meta, "results": rows}, fh, indent=2)
    return rows


if __name__ == "__main__":
    main()
