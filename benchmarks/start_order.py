"""Which order should the search relax its GN-OA starts in?  Measured offline.

The race showed ase-fuse's first hit late on small cells (ZnS 14 s against 5 s) where
its first starts were high-coordination structures the proxy ranks first: ZnS's first
start relaxed to CsCl-type ZnS, zincblende came 14th.  For each race reference this
script builds the search's default start the way a search does (GN-OA on the proxy,
``--k`` distinct structures in proxy order, seeded), relaxes every one with the default
stack (one torch thread), and then scores orderings of the ``--n`` a population holds:

- ``proxy``: the search's order today (the first ``n`` by proxy energy);
- ``ml``: the best ``n`` of the ``k`` by CHGNet single-point energy per atom (its
  cost, timed here, is added to the time to the first hit);
- ``sg``: the proxy's first ``n``, one per space group first (then the rest), a
  diversity order that costs nothing.

Per ordering: the position of the first start that relaxes to a hit (the race's
test: a StructureMatcher match, or 2 meV/atom below the reference relaxed with
CHGNet), and the relaxation time spent up to and including it.  Hops interleave
with the population in a real search, so this is the population's share of the
first hit only, but it is the same for every ordering.

    python benchmarks/start_order.py --only zns si rutile cu2o --out start_order
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import common
import race
import race_refs

ORDERS = ("proxy", "ml", "sg")


def candidates(formula, max_atoms, k, seed):
    """The search's default start, ``k`` structures in its own (proxy) order."""
    from ase_fuse.composition import Composition
    from ase_fuse.config import OPTIONS
    from ase_fuse.search_setup import initial_structures
    default = next(o.default for o in OPTIONS if o.name == "generator")
    population, _ = initial_structures(Composition(formula), k, default, {}, None,
                                       max_atoms, np.random.default_rng(seed))
    return population[:k]


def orders(structures, ml_energies, n):
    """``{name: [indices into structures]}``, each of length at most ``n``."""
    proxy = list(range(min(n, len(structures))))
    finite = [i for i in range(len(structures)) if np.isfinite(ml_energies[i])]
    ml = sorted(finite, key=lambda i: (ml_energies[i], i))[:n]
    seen, first, rest = set(), [], []
    for i in proxy:
        group = int(structures[i].info.get("spacegroup", 0) or 0)
        (rest if group in seen else first).append(i)
        seen.add(group)
    return {"proxy": proxy, "ml": ml, "sg": first + rest}


def first_hit(order, rows, extra_s=0.0):
    """``(position, seconds)`` of the first hit in ``order`` (1-based), or (None, None)."""
    spent = extra_s
    for position, i in enumerate(order, 1):
        spent += rows[i]["wall_s"]
        if rows[i]["hit"]:
            return position, spent
    return None, None


def run_reference(key, args):
    from ase_fuse.calculators.stacks import build_stack
    atoms, info = race_refs.load(key, args.references)
    calculator = "proxy" if args.quick else "chgnet"
    ref = race.reference_energy(key, atoms, info, calculator, args.out)
    check = race.checker_for(atoms, ref)
    t0 = time.perf_counter()
    starts = candidates(info["formula"], info["max_atoms"], args.k, args.seed)
    start_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if args.quick:
        from ase_fuse.calculators import ProxyPotential
        from ase_fuse.generators.gnoa.models import CalculatorModel
        energies = CalculatorModel(ProxyPotential.for_composition(info["formula"])) \
            .predict(starts)
    else:
        from ase_fuse.calculators.chgnet import chgnet_single_points
        energies = chgnet_single_points(starts)
    ml_s = time.perf_counter() - t0
    relaxer = build_stack("proxy" if args.quick else "proxy+chgnet", info["formula"])
    rows = []
    for i, start in enumerate(starts):
        t0 = time.perf_counter()
        result = relaxer.relax(start)
        wall = time.perf_counter() - t0
        e = None if result.failed else float(result.energy_per_atom)
        hit = None if e is None else check.kind(result.atoms, e)
        rows.append({"key": key, "start": i, "natoms": len(start), "wall_s": wall,
                     "energy_per_atom": e, "hit": hit, "failed": result.failed,
                     "spacegroup": int(start.info.get("spacegroup", 0) or 0),
                     "ml_single_point": float(energies[i])})
        print(f"{key:9s} {i:3d} {len(start):3d} atoms sg {rows[-1]['spacegroup']:3d} "
              f"E={e if e is not None else float('nan'):9.4f} {wall:6.2f} s {hit or ''}",
              flush=True)
    found = {}
    for name, order in orders(starts, np.asarray(energies, dtype=float), args.n).items():
        position, seconds = first_hit(order, rows, ml_s if name == "ml" else 0.0)
        found[name] = {"position": position, "seconds": seconds,
                       "hits": sum(bool(rows[i]["hit"]) for i in order)}
    return rows, {"key": key, "nprim": info["nprim"], "start_s": start_s, "ml_s": ml_s,
                  "candidates": len(starts), **found}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", default=race_refs.KEYS, metavar="KEY")
    p.add_argument("--n", type=int, default=25, help="population size (the search's)")
    p.add_argument("--k", type=int, default=50, help="candidates the ml order picks from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench_start_order")
    p.add_argument("--references", default=str(race_refs.DEFAULT_FOLDER))
    p.add_argument("--quick", action="store_true",
                   help="the proxy everywhere (tests): NaCl, k 6, n 3")
    args = p.parse_args(argv)
    if args.quick:
        args.only, args.k, args.n = ["nacl"], 6, 3
    common.limit_threads()
    if not args.quick:
        import torch
        torch.set_num_threads(1)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    rows, summary = [], []
    for key in args.only:
        mine, line = run_reference(key, args)
        rows += mine
        summary.append(line)
    table = [[s["key"], s["nprim"], f"{s['ml_s']:.1f}"]
             + [f"{s[o]['position'] or '-'} / {common.fmt(s[o]['seconds'], 1)}"
                for o in ORDERS] for s in summary]
    print(common.markdown_table(["reference", "prim sites", "ml scoring s"]
                                + [f"{o}: first hit at / s" for o in ORDERS], table))
    medians = {}
    for o in ORDERS:
        both = [s for s in summary if s["proxy"]["seconds"] and s[o]["seconds"]]
        if both:
            medians[o] = statistics.median(s[o]["seconds"] / s["proxy"]["seconds"]
                                           for s in both)
    print("median time to the first hit against proxy order: "
          + ", ".join(f"{o} {v:.2f}" for o, v in medians.items()))
    common.write_json(Path(args.out) / "start_order.json", "start_order.py", vars(args),
                      [], summary={"references": summary, "rows": rows,
                                   "median_ratio_to_proxy": medians})
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
