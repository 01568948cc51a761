"""Cost of one relaxation step outside the ML model: the cell filter's matrix functions
and the guarded calculator, with and without today's shortcuts.

The same seeded PyXtal starts (the race's random-search draws) are relaxed by the
search's CHGNet stage twice each, in turn: ``plain`` (scipy's ``logm`` and
``expm_frechet`` in ``FrechetCellFilter``, one guarded call per property) and
``fast`` (:mod:`ase_fuse.calculators.cellmath`, and the guarded calculator taking the
energy, forces and stress the model gave in one pass).  Reported per composition:
ML steps, ms per step, the speed-up, and the largest difference in final energy
(eV/atom) and step count between the two, which should be rounding only.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/step_cost.py --out step_cost.json
    python benchmarks/step_cost.py --quick          # CI: EMT on Cu, 2 starts
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

#: (formula, largest cell): small cells, where the step's overhead weighs most
DEFAULT_CASES = (("Si", 6), ("ZnS", 8), ("Cu2O", 12), ("SiO2", 18))


def starts_for(formula, max_atoms, n, seed):
    import airss
    from ase_fuse.composition import Composition
    composition = Composition(formula)
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        atoms, _, _ = airss.random_structure(composition,
                                             composition.formula_units(max_atoms), rng)
        if atoms is not None and len(atoms) <= max_atoms:
            out.append(atoms)
    return out


def quick_starts(n, seed):
    from ase.build import bulk
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.75, cubic=True)
        atoms.rattle(0.08, seed=seed + k)
        out.append(atoms)
    return out


def set_mode(fast):
    from ase_fuse.calculators.guards import GuardedCalculator
    from ase_fuse.calculators.tiers import CachedFrechetCellFilter
    CachedFrechetCellFilter.fast_math = fast
    GuardedCalculator.take_computed = fast


def relaxer_for(quick):
    from ase_fuse.calculators import Tier, TieredRelaxer
    if quick:
        from ase.calculators.emt import EMT
        return TieredRelaxer([Tier(EMT(), fmax=0.05, steps=300, optimizer="BFGS")])
    from ase_fuse.calculators.chgnet import chgnet_tier
    return TieredRelaxer([chgnet_tier()])


def run_case(formula, starts, relaxer):
    rows = []
    for k, atoms in enumerate(starts):
        for mode in (("plain", "fast") if k % 2 == 0 else ("fast", "plain")):
            set_mode(mode == "fast")
            t0 = time.perf_counter()
            result = relaxer.relax(atoms)
            wall = time.perf_counter() - t0
            rows.append({"formula": formula, "start": k, "mode": mode, "atoms": len(atoms),
                         "wall_s": wall, "steps": int(sum(t.steps for t in result.tiers)),
                         "failed": result.failed, "energy_per_atom": result.energy_per_atom})
    set_mode(True)
    return rows


def summarize(rows):
    out = {}
    for formula in dict.fromkeys(r["formula"] for r in rows):
        mine = [r for r in rows if r["formula"] == formula]
        per = {}
        for mode in ("plain", "fast"):
            rs = [r for r in mine if r["mode"] == mode]
            steps = sum(r["steps"] for r in rs)
            per[mode] = {"steps": steps, "wall_s": sum(r["wall_s"] for r in rs),
                         "ms_per_step": 1e3 * sum(r["wall_s"] for r in rs) / max(steps, 1)}
        pairs = {}
        for r in mine:
            pairs.setdefault(r["start"], {})[r["mode"]] = r
        both = [p for p in pairs.values() if not p["plain"]["failed"]
                and not p["fast"]["failed"]]
        out[formula] = {
            **{f"{m}_{k}": v for m, d in per.items() for k, v in d.items()},
            "speedup": per["plain"]["ms_per_step"] / per["fast"]["ms_per_step"]
            if per["fast"]["ms_per_step"] else None,
            "starts": len(pairs),
            "max_energy_difference": max((abs(p["plain"]["energy_per_atom"]
                                              - p["fast"]["energy_per_atom"]) for p in both),
                                         default=None),
            "starts_with_other_step_count": sum(p["plain"]["steps"] != p["fast"]["steps"]
                                                for p in pairs.values())}
    return out


def print_table(summary):
    headers = ["composition", "starts", "steps plain / fast", "ms/step plain",
               "ms/step fast", "speed-up", "max dE (eV/atom)", "other step count"]
    rows = [[f, s["starts"], f"{s['plain_steps']} / {s['fast_steps']}",
             common.fmt(s["plain_ms_per_step"], 2), common.fmt(s["fast_ms_per_step"], 2),
             common.fmt(s["speedup"], 2), common.fmt(s["max_energy_difference"], 6),
             s["starts_with_other_step_count"]] for f, s in summary.items()]
    print(common.markdown_table(headers, rows))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=None, help="starts per composition")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="step_cost_out", help="folder or .json file")
    args = p.parse_args(argv)
    common.fill_defaults(args, {"n": 2 if args.quick else 12})
    common.limit_threads(torch_too=not args.quick)
    if not args.quick:
        import torch
        torch.set_num_threads(1)
    _, path = common.json_target(args.out, "step_cost.json")
    relaxer = relaxer_for(args.quick)
    cases = [("Cu", 4)] if args.quick else list(DEFAULT_CASES)
    rows = []
    for formula, max_atoms in cases:
        starts = quick_starts(args.n, args.seed) if args.quick else \
            starts_for(formula, max_atoms, args.n, args.seed)
        relaxer.relax(starts[0])   # model load and first-call costs outside the timing
        rows += run_case(formula, starts, relaxer)
    summary = summarize(rows)
    print_table(summary)
    settings = dict(vars(args), cases=cases, stage="CHGNet, BFGS, FrechetCellFilter, "
                    "fmax 0.05" if not args.quick else "EMT, BFGS")
    common.write_json(path, "step_cost.py", settings, rows, summary, argv=argv)
    print(f"wrote {path}")
    return summary


if __name__ == "__main__":
    main()
