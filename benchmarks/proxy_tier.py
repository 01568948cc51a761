"""Does the proxy pre-relaxation pay?  Per composition, on the search's own starts.

For each composition, ``--n`` FUSE starting structures (the generator the search
uses, seeded) and, where asked, rattled copies of a known structure are relaxed by
CHGNet alone and by each proxy variant followed by the same CHGNet tier:

=================  ===================================================================
chgnet             CHGNet only (FIRE + FrechetCellFilter, fmax 0.05, 2000 steps)
proxy              the proxy tier as it was the default until this benchmark: cell
                   and positions, no bound
proxy-fixed-cell   proxy relaxes positions only; the cell is left to CHGNet
proxy-bounded      proxy (cell and positions), its result discarded when the volume
                   changes by more than ``--bound`` (default 0.25); CHGNet then starts
                   from the input, as without a proxy
=================  ===================================================================

Reported per composition and variant: CHGNet steps per structure (mean), wall time
per structure (all tiers), the share of structures whose final energy differs from
CHGNet-alone's by more than 5 meV/atom ("other basin"; split into lower / higher),
and failures.  The question the issue asks: does the proxy change which ML minimum a
structure ends in more often than it saves ML steps?  One torch thread, one process.

    python benchmarks/proxy_tier.py --compositions Si SrTiO3 NaCl TiO2 --n 8
    python benchmarks/proxy_tier.py --quick        # CI: proxy stand-in for CHGNet
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

VARIANTS = ("chgnet", "proxy", "proxy-fixed-cell", "proxy-bounded")
RATTLED = {"Si": ("diamond", 5.43)}  # ase.build.bulk name, lattice constant (A)
OTHER_BASIN = 0.005  # eV/atom


def _final_tier(quick):
    from ase_fuse.calculators.stacks import proxy_tier
    if quick:  # CI: the proxy stands in for CHGNet (same code path, no torch)
        return lambda composition: proxy_tier(composition, fmax=0.05, steps=300,
                                              name="final")
    from ase_fuse.calculators.chgnet import chgnet_tier
    return lambda composition: chgnet_tier()


def relaxer(variant, composition, bound, quick=False):
    """The TieredRelaxer of ``variant`` for ``composition``."""
    from ase_fuse.calculators.stacks import proxy_tier
    from ase_fuse.calculators.tiers import TieredRelaxer
    final = _final_tier(quick)(composition)
    if variant == "chgnet":
        return TieredRelaxer([final])
    if variant == "proxy":
        return TieredRelaxer([proxy_tier(composition, max_volume_change=None), final])
    if variant == "proxy-fixed-cell":
        return TieredRelaxer([proxy_tier(composition, relax_cell=False,
                                         max_volume_change=None), final])
    if variant == "proxy-bounded":
        return TieredRelaxer([proxy_tier(composition, max_volume_change=bound), final])
    raise ValueError(variant)


def starts(composition, n, max_atoms, seed):
    """``n`` FUSE starts, plus rattled copies of a known structure for RATTLED ones."""
    from ase.build import bulk

    from ase_fuse.composition import Composition
    from ase_fuse.generators import get
    rng = np.random.default_rng(seed)
    comp = Composition(composition)
    out = [(f"fuse{k}", a) for k, a in enumerate(
        get("fuse")(comp, max_atoms=max_atoms, rng=rng).generate_many(n))]
    if composition in RATTLED:
        name, a = RATTLED[composition]
        for k in range(max(1, n // 4)):
            atoms = bulk(composition, name, a=a, cubic=True)
            atoms.rattle(0.1, seed=int(rng.integers(2 ** 31)))
            out.append((f"rattled{k}", atoms))
    return out


def run_one(composition, args):
    """All variants on the same starts of ``composition``: per-structure rows."""
    from ase_fuse.composition import Composition
    max_atoms = args.max_atoms or common.max_atoms_for(Composition(composition), 10)
    structures = starts(composition, args.n, max_atoms, args.seed)
    rows = []
    for variant in args.variants:
        relax = relaxer(variant, composition, args.bound, args.quick)
        for label, atoms in structures:
            t0 = time.perf_counter()
            result = relax.relax(atoms)
            wall = time.perf_counter() - t0
            final = result.tiers[-1] if result.tiers else None
            notes = [getattr(t, "note", None) for t in result.tiers]
            rows.append({"composition": composition, "variant": variant, "start": label,
                         "atoms": len(atoms), "wall_s": wall,
                         "energy_per_atom": result.energy_per_atom,
                         "failed": result.failed,
                         "ml_steps": final.steps if final is not None
                         and final.name != "proxy" else 0,
                         "proxy_discarded": any(n for n in notes if n),
                         "volume_ratio": (result.atoms.get_volume() / atoms.get_volume())
                         if result.atoms is not None else None})
            print(f"{composition:8s} {variant:17s} {label:9s} "
                  f"E={result.energy_per_atom if result.energy_per_atom else float('nan'):9.4f}"
                  f" ml_steps={rows[-1]['ml_steps']:5d} {wall:6.1f} s"
                  + (f" failed: {result.failed}" if result.failed else ""), flush=True)
    return rows


def summarize(rows):
    """Per composition and variant: ML steps, time, other-basin shares vs chgnet."""
    table = {}
    alone = {(r["composition"], r["start"]): r["energy_per_atom"] for r in rows
             if r["variant"] == "chgnet"}
    for r in rows:
        key = (r["composition"], r["variant"])
        t = table.setdefault(key, {"n": 0, "failed": 0, "ml_steps": [], "wall_s": [],
                                   "lower": 0, "higher": 0, "compared": 0,
                                   "discarded": 0, "best": None})
        t["n"] += 1
        t["wall_s"].append(r["wall_s"])
        t["discarded"] += bool(r["proxy_discarded"])
        if r["failed"]:
            t["failed"] += 1
            continue
        t["ml_steps"].append(r["ml_steps"])
        e = r["energy_per_atom"]
        t["best"] = e if t["best"] is None else min(t["best"], e)
        ref = alone.get((r["composition"], r["start"]))
        if ref is not None and r["variant"] != "chgnet":
            t["compared"] += 1
            t["lower"] += e < ref - OTHER_BASIN
            t["higher"] += e > ref + OTHER_BASIN
    out = {}
    for (comp, variant), t in table.items():
        out.setdefault(comp, {})[variant] = {
            "structures": t["n"], "failed": t["failed"],
            "ml_steps_mean": common.mean(t["ml_steps"]),
            "wall_s_mean": common.mean(t["wall_s"]),
            "other_basin_lower": t["lower"], "other_basin_higher": t["higher"],
            "compared": t["compared"], "proxy_discarded": t["discarded"],
            "best_energy_per_atom": t["best"]}
    return out


def print_table(summary):
    headers = ["composition", "variant", "n", "failed", "ML steps", "s/structure",
               "other basin (lower/higher)", "proxy discarded", "best (eV/atom)"]
    rows = []
    for comp, variants in summary.items():
        for variant, s in variants.items():
            rows.append([comp, variant, s["structures"], s["failed"],
                         common.fmt(s["ml_steps_mean"], 1), common.fmt(s["wall_s_mean"], 2),
                         "-" if variant == "chgnet" else
                         f"{s['other_basin_lower']}/{s['other_basin_higher']} of "
                         f"{s['compared']}", s["proxy_discarded"],
                         common.fmt(s["best_energy_per_atom"], 4)])
    print(common.markdown_table(headers, rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compositions", nargs="+", default=None)
    parser.add_argument("--n", type=int, default=None, help="FUSE starts per composition")
    parser.add_argument("--max-atoms", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bound", type=float, default=0.25,
                        help="proxy-bounded: largest relative volume change kept")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--quick", action="store_true", help="CI: tiny, proxy stand-in")
    parser.add_argument("--out", default=None, help="folder or .json file")
    args = parser.parse_args(argv)
    common.fill_defaults(args, {"compositions": ["NaCl"] if args.quick else
                                ["Si", "SrTiO3", "NaCl", "TiO2"],
                                "n": 2 if args.quick else 8})
    if not args.quick:
        import torch
        torch.set_num_threads(1)
    common.limit_threads()
    rows = []
    for composition in args.compositions:
        rows += run_one(composition, args)
    summary = summarize(rows)
    print_table(summary)
    if args.out:
        _, path = common.json_target(args.out, "proxy_tier.json")
        common.write_json(path, "proxy_tier.py", vars(args), rows, summary, argv=argv)
        print(f"wrote {path}")
    return summary


if __name__ == "__main__":
    main()
