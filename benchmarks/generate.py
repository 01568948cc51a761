"""Structures per second of the FUSE generator on the eleven FUSE2 test compositions.

    python benchmarks/generate.py --n 200 --seed 0 --out results.json

Single-threaded (OMP_NUM_THREADS=1).  For each composition it times ``n`` accepted
structures of at most ``--max-atoms`` atoms and reports the acceptance rate of the
validity checks, the mean cell size and the lattice types drawn.
"""

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter

COMPOSITIONS = ["Ca3Ti2O7", "CoAs2", "Cu7S4", "Mn", "Pb5As3O12Cl", "Si6Al6B3Fe3NaO30F",
                "WCl2", "YWB4", "Li2Sn2S3Cl4", "Li3Si3O5Cl5", "Li4OBrCl"]


def bench(formula, n, seed, max_atoms):
    from ase_fuse.generators.fuse import FuseGenerator

    gen = FuseGenerator(formula, max_atoms=max_atoms, seed=seed)
    start = time.perf_counter()
    structures = gen.generate_many(n)
    elapsed = time.perf_counter() - start
    return {
        "composition": formula,
        "n": n,
        "seconds": elapsed,
        "structures_per_second": n / elapsed,
        "acceptance": n / gen.candidates_drawn,
        "mean_atoms": sum(len(a) for a in structures) / n,
        "ip": float(gen.composition.ip),
        "lattice_types": dict(Counter(a.info["lattice_type"] for a in structures)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="structures per composition")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-atoms", type=int, default=50)
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = "1"  # before numpy is imported by the generator

    rows = [bench(f, args.n, args.seed, args.max_atoms) for f in COMPOSITIONS]
    print(f"{'composition':<20} {'Ip/A':>5} {'atoms':>6} {'accept':>7} {'struct/s':>9}")
    for r in rows:
        print(f"{r['composition']:<20} {r['ip']:5.2f} {r['mean_atoms']:6.1f} "
              f"{r['acceptance']:7.2f} {r['structures_per_second']:9.1f}")
    total = sum(r["n"] for r in rows) / sum(r["seconds"] for r in rows)
    print(f"{'all':<20} {'':>5} {'':>6} {'':>7} {total:9.1f}")
    if args.out:
        import ase
        import numpy

        meta = {"python": platform.python_version(), "numpy": numpy.__version__,
                "ase": ase.__version__, "machine": platform.machine(),
                "n": args.n, "seed": args.seed, "max_atoms": args.max_atoms}
        with open(args.out, "w") as handle:
            json.dump({"meta": meta, "results": rows}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
