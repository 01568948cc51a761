"""ML tiers side by side: CHGNet, SevenNet-0 and SevenNet-l3i5 on polymorph orderings
known from experiment, and their cost per atom on one CPU thread.

``accuracy``: each structure of each pair (experimental ground state first) is relaxed
by each model with the search's own ML stage (``chgnet_tier`` / ``sevennet_tier``:
BFGS + Frechet cell filter, cell and positions, fmax 0.05 eV/A, ``--steps`` at most);
the table gives E(second) - E(first) in meV/atom (positive: the order is right) beside
the DFT values cited in ``PAIRS``, and how many orderings each model gets right.

``cost``: per model, a single point and one relaxation step (BFGS + Frechet filter) in
ms per atom on one torch thread, over a few cells of 8-29 atoms (model loading and
the first call are not timed).  The machine must be otherwise idle for these numbers.

The batched rows (200 candidates, loop vs torch-sim, CHGNet and SevenNet) are
``benchmarks/batched.py --model chgnet|sevennet``.

    OMP_NUM_THREADS=1 python benchmarks/ml_tiers.py accuracy --out benchmarks/measured/ml_tiers
    OMP_NUM_THREADS=1 python benchmarks/ml_tiers.py cost --out benchmarks/measured/ml_tiers
    OMP_NUM_THREADS=1 python benchmarks/ml_tiers.py cost --repeats 2 --steps 3 --quick   # smoke

All structures are built here with ``ase.spacegroup.crystal`` from the published
lattice constants and Wyckoff positions cited beside each builder; those also in
``../shared/data/references/classic/`` (stishovite, wurtzite, alpha- and beta-Mn,
Pnma CaTiO3) match those files (pymatgen StructureMatcher, default tolerances).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (sets OMP_NUM_THREADS=1 before numpy's BLAS starts)

MODELS = {"chgnet": None, "sevennet-0": "SevenNet-0", "sevennet-l3i5": "SevenNet-l3i5"}


# -- structures -------------------------------------------------------------------------
def _crystal(symbols, basis, spacegroup, cellpar, **kw):
    from ase.spacegroup import crystal
    return crystal(symbols, basis=basis, spacegroup=spacegroup, cellpar=cellpar, **kw)


def rutile():      # Howard, Sabine, Dickson, Acta Cryst. B47, 462 (1991) (tests/conftest.py)
    return _crystal(["Ti", "O"], [(0, 0, 0), (0.3048, 0.3048, 0)], 136,
                    [4.594, 4.594, 2.959, 90, 90, 90])


def anatase():     # Horn, Schwerdtfeger, Meagher, Z. Kristallogr. 136, 273 (1972)
    return _crystal(["Ti", "O"], [(0, 0, 0), (0, 0, 0.2081)], 141,
                    [3.785, 3.785, 9.514, 90, 90, 90], primitive_cell=True)


def quartz():      # Levien, Prewitt, Weidner, Am. Mineral. 65, 920 (1980) (tests/conftest.py)
    return _crystal(["Si", "O"], [(0.4697, 0, 1 / 3), (0.4135, 0.2669, 1 / 3 - 0.1191)], 152,
                    [4.913, 4.913, 5.405, 90, 90, 120])


def stishovite():  # Ross, Shu, Hazen, Gasparik, Am. Mineral. 75, 739 (1990)
    return _crystal(["Si", "O"], [(0, 0, 0), (0.3062, 0.3062, 0)], 136,
                    [4.1773, 4.1773, 2.6655, 90, 90, 90])


def zincblende():  # a = 5.4093 A (Skinner, Am. Mineral. 46, 1399 (1961))
    from ase.build import bulk
    return bulk("ZnS", "zincblende", a=5.4093)


def wurtzite():    # Kisi & Elcombe, Acta Cryst. C45, 1867 (1989)
    return _crystal(["Zn", "S"], [(1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, 0.3748)], 186,
                    [3.8227, 3.8227, 6.2607, 90, 90, 120])


def graphite():    # Trucano & Chen, Nature 258, 136 (1975): AB stacking
    return _crystal(["C", "C"], [(0, 0, 0.25), (1 / 3, 2 / 3, 0.25)], 194,
                    [2.464, 2.464, 6.711, 90, 90, 120])


def diamond():     # a = 3.567 A
    from ase.build import bulk
    return bulk("C", "diamond", a=3.567)


def catio3_pnma():  # Sasaki, Prewitt, Bass, Liebermann, Acta Cryst. C43, 1668 (1987),
    # given in Pbnm; here in Pnma: (x, y, z)_Pnma = (y, z, x)_Pbnm, (a, b, c) likewise
    return _crystal(["Ca", "Ti", "O", "O"],
                    [(0.0350, 0.25, 0.9934), (0, 0, 0.5), (0.4842, 0.25, 0.0710),
                     (0.2888, 0.0371, 0.7108)], 62, [5.4423, 7.6401, 5.3796, 90, 90, 90])


def catio3_cubic():  # ideal perovskite, a = 3.895 A (the high-temperature cubic phase)
    return _crystal(["Ti", "Ca", "O"], [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0, 0)], 221,
                    [3.895] * 3 + [90] * 3)


def alpha_mn():    # Lawson et al., J. Appl. Phys. 76, 7049 (1994); 29-atom primitive cell
    return _crystal(["Mn"] * 4, [(0, 0, 0), (0.31787, 0.31787, 0.31787),
                                 (0.35706, 0.35706, 0.03457), (0.08958, 0.08958, 0.28194)],
                    217, [8.9125] * 3 + [90] * 3, primitive_cell=True)


def beta_mn():     # Shoemaker et al., Acta Cryst. B34, 3573 (1978)
    return _crystal(["Mn", "Mn"], [(0.0636, 0.0636, 0.0636), (0.125, 0.2022, 0.4522)], 213,
                    [6.315] * 3 + [90] * 3)


def rocksalt():    # NaCl B1, a = 5.64 A
    from ase.build import bulk
    return bulk("NaCl", "rocksalt", a=5.64)


def cscl_type():   # NaCl in the B2 (CsCl) structure, a = 3.36 A (start; relaxed here)
    from ase.build import bulk
    return bulk("NaCl", "cesiumchloride", a=3.36)


def alpha_sn():    # grey tin, diamond structure, a = 6.489 A
    from ase.build import bulk
    return bulk("Sn", "diamond", a=6.489)


def beta_sn():     # white tin, A5, I4_1/amd, Sn 4a; a = 5.8318, c = 3.1819 A
    return _crystal(["Sn"], [(0, 0, 0)], 141, [5.8318, 5.8318, 3.1819, 90, 90, 90],
                    primitive_cell=True)


def zro2_monoclinic():  # baddeleyite: Howard, Hill, Reichert, Acta Cryst. B44, 116 (1988)
    return _crystal(["Zr", "O", "O"], [(0.2754, 0.0395, 0.2083), (0.0700, 0.3317, 0.3447),
                                       (0.4496, 0.7569, 0.4792)], 14,
                    [5.1505, 5.2116, 5.3173, 90, 99.23, 90])


def zro2_tetragonal():  # Teufer, Acta Cryst. 15, 1187 (1962), 1250 C; origin choice 2
    return _crystal(["Zr", "O"], [(0.75, 0.25, 0.75), (0.25, 0.25, 0.4565)], 137,
                    [3.64, 3.64, 5.27, 90, 90, 90], setting=2)


#: (system, ground state, its builder, the other polymorph, its builder, DFT reference:
#: E(other) - E(ground) in meV/atom where a citable value was found, and its source)
PAIRS = [
    ("TiO2", "rutile", rutile, "anatase", anatase,
     None, "PBE orders them wrongly (anatase lower); MP mp-2657: rutile 37 above the "
           "TiO2 hull (materialsproject.org)"),
    ("SiO2", "alpha-quartz", quartz, "stishovite", stishovite, None, "not looked up"),
    ("ZnS", "zincblende", zincblende, "wurtzite", wurtzite,
     3.0, "LDA, about 3: Yeh, Lu, Froyen, Zunger, PRB 46, 10086 (1992)"),
    ("C", "graphite", graphite, "diamond", diamond,
     None, "PBE binds graphite's layers by ~1 meV/atom only (VASP wiki, graphite "
           "binding); no vdW in the models' PBE data"),
    ("CaTiO3", "Pnma", catio3_pnma, "cubic", catio3_cubic, None, "not looked up"),
    ("Mn", "alpha", alpha_mn, "beta", beta_mn,
     58.0, "MP: beta-Mn mp-542909 58 above the hull, alpha-Mn mp-35 on it (GGA, "
           "spin-polarised; via the Magnetic Materials Database listing of MP)"),
    ("NaCl", "B1", rocksalt, "B2", cscl_type, None, "not looked up"),
    ("Sn", "alpha", alpha_sn, "beta", beta_sn, None, "not looked up (0 K ground state "
                                                    "alpha, 13 C transition)"),
    ("ZrO2", "monoclinic", zro2_monoclinic, "tetragonal", zro2_tetragonal,
     None, "not looked up"),
]


# -- models -----------------------------------------------------------------------------------
def tier_for(model, fmax=0.05, steps=1000):
    """The search's ML stage for ``model`` (a key of MODELS)."""
    if model == "chgnet":
        from ase_fuse.calculators.chgnet import chgnet_tier
        return chgnet_tier(fmax=fmax, steps=steps)
    from ase_fuse.calculators.sevennet import sevennet_tier
    return sevennet_tier(model=MODELS[model], fmax=fmax, steps=steps)


def calculator_for(model):
    if model == "chgnet":
        from ase_fuse.calculators.chgnet import chgnet_calculator
        return chgnet_calculator()
    from ase_fuse.calculators.sevennet import sevennet_calculator
    return sevennet_calculator(MODELS[model])


def spacegroup(atoms, symprec=0.1):
    import spglib
    return spglib.get_spacegroup((atoms.cell[:], atoms.get_scaled_positions(),
                                  atoms.numbers), symprec=symprec)


# -- accuracy -----------------------------------------------------------------------------------
def relax_pair(model, pair, steps):
    from ase_fuse.calculators.tiers import TieredRelaxer
    system, first, build_first, second, build_second, ref, source = pair
    relaxer = TieredRelaxer([tier_for(model, steps=steps)])
    out = {"model": model, "system": system, "ground": first, "other": second,
           "dft_meV_per_atom": ref, "dft_source": source}
    for label, build in (("ground", build_first), ("other", build_second)):
        atoms = build()
        t0 = time.perf_counter()
        result = relaxer.relax(atoms)
        out[label + "_result"] = {
            "atoms": len(atoms), "energy_per_atom": result.energy_per_atom,
            "converged": result.converged, "failed": result.failed,
            "steps": result.steps, "wall_s": time.perf_counter() - t0,
            "volume_per_atom": result.atoms.get_volume() / len(atoms) if result.ok else None,
            "spacegroup_start": spacegroup(atoms),
            "spacegroup_end": spacegroup(result.atoms) if result.ok else None}
    e1 = out["ground_result"]["energy_per_atom"]
    e2 = out["other_result"]["energy_per_atom"]
    out["dE_meV_per_atom"] = None if e1 is None or e2 is None else (e2 - e1) * 1000
    out["right"] = None if out["dE_meV_per_atom"] is None else out["dE_meV_per_atom"] > 0
    return out


def accuracy(args):
    records = []
    for pair in PAIRS:
        if args.systems and pair[0] not in args.systems:
            continue
        for model in args.models:
            record = relax_pair(model, pair, args.steps)
            records.append(record)
            g, o = record["ground_result"], record["other_result"]
            print(f"{pair[0]:<7} {model:<14} dE {common.fmt(record['dE_meV_per_atom'], 1):>8} "
                  f"meV/atom  steps {g['steps']}/{o['steps']}  conv {g['converged']}/"
                  f"{o['converged']}  sg {g['spacegroup_end']} | {o['spacegroup_end']}",
                  flush=True)
    summary = {"right": {m: sum(bool(r["right"]) for r in records if r["model"] == m)
                         for m in args.models},
               "pairs": len({r["system"] for r in records})}
    headers = ["system", "ground state < other"] + \
        [f"{m} (meV/atom)" for m in args.models] + ["DFT (meV/atom)", "DFT source"]
    rows = []
    for pair in PAIRS:
        mine = {r["model"]: r for r in records if r["system"] == pair[0]}
        if not mine:
            continue
        cells = []
        for model in args.models:
            r = mine[model]
            mark = "" if r["right"] is None else (" ok" if r["right"] else " WRONG")
            cells.append(common.fmt(r["dE_meV_per_atom"], 1) + mark)
        rows.append([pair[0], f"{pair[1]} < {pair[3]}", *cells,
                     "-" if pair[5] is None else f"{pair[5]:g}", pair[6]])
    rows.append(["right", "", *[f"{summary['right'][m]}/{summary['pairs']}"
                                for m in args.models], "", ""])
    table = common.markdown_table(headers, rows)
    print(table)
    summary["table"] = table
    return records, summary


# -- cost ----------------------------------------------------------------------------------------
def _cubic_si():
    from ase.build import bulk
    return bulk("Si", "diamond", a=5.43, cubic=True)


def _nacl8():
    from ase.build import bulk
    return bulk("NaCl", "rocksalt", a=5.64, cubic=True)


def anatase_12():
    return _crystal(["Ti", "O"], [(0, 0, 0), (0, 0, 0.2081)], 141,
                    [3.785, 3.785, 9.514, 90, 90, 90])


COST_CELLS = {"Si8": _cubic_si, "NaCl8": _nacl8, "TiO2-12": anatase_12,
              "CaTiO3-20": catio3_pnma, "Mn-29": alpha_mn}


def time_model(model, cells, repeats, steps, rng):
    from ase.optimize import BFGS

    from ase_fuse.calculators.tiers import CachedFrechetCellFilter
    calc = calculator_for(model)
    out = []
    for name, build in cells.items():
        atoms = build()
        atoms.rattle(0.02, rng=rng)
        atoms.calc = calc
        atoms.get_potential_energy()                      # first call: not timed
        single = []
        for _ in range(repeats):
            calc.reset()
            t0 = time.perf_counter()
            atoms.get_potential_energy()
            atoms.get_forces()
            atoms.get_stress()
            single.append(time.perf_counter() - t0)
        work = atoms.copy()
        work.calc = calc
        optimizer = BFGS(CachedFrechetCellFilter(work), logfile=None)
        t0 = time.perf_counter()
        optimizer.run(fmax=1e-6, steps=steps)
        per_step = (time.perf_counter() - t0) / max(optimizer.nsteps, 1)
        sp = statistics.median(single)
        out.append({"model": model, "cell": name, "atoms": len(atoms),
                    "single_point_ms": sp * 1e3, "single_point_ms_per_atom": sp * 1e3 / len(atoms),
                    "relax_step_ms": per_step * 1e3,
                    "relax_step_ms_per_atom": per_step * 1e3 / len(atoms),
                    "steps_timed": int(optimizer.nsteps)})
        print(f"{model:<14} {name:<10} {len(atoms):>3} atoms  single point "
              f"{sp * 1e3:8.1f} ms  step {per_step * 1e3:8.1f} ms", flush=True)
    return out


def cost(args):
    import torch
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    cells = dict(list(COST_CELLS.items())[:2]) if args.quick else COST_CELLS
    records = []
    for model in args.models:
        records += time_model(model, cells, args.repeats, args.steps, rng)
    headers = ["model", "single point ms/atom", "relaxation step ms/atom",
               "vs CHGNet (step)"]
    means = {m: (statistics.mean(r["single_point_ms_per_atom"] for r in records
                                 if r["model"] == m),
                 statistics.mean(r["relax_step_ms_per_atom"] for r in records
                                 if r["model"] == m)) for m in args.models}
    base = means.get("chgnet", (None, None))[1]
    rows = [[m, means[m][0], means[m][1], None if not base else means[m][1] / base]
            for m in args.models]
    table = common.markdown_table(headers, rows)
    print(table)
    return records, {"mean_ms_per_atom": means, "table": table,
                     "torch_threads": torch.get_num_threads()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["accuracy", "cost"])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--systems", default=None,
                        help="accuracy: comma-separated systems (default: all pairs)")
    parser.add_argument("--steps", type=int, default=None,
                        help="accuracy: relaxation step limit (1000); cost: BFGS steps "
                             "timed per cell (20)")
    parser.add_argument("--repeats", type=int, default=10, help="cost: single points timed")
    parser.add_argument("--quick", action="store_true", help="cost: two cells only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder (or .json file) for the JSON")
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    unknown = set(args.models) - set(MODELS)
    if unknown:
        parser.error(f"unknown model(s) {', '.join(sorted(unknown))}")
    args.systems = [s for s in (args.systems or "").split(",") if s]
    if args.steps is None:
        args.steps = 1000 if args.part == "accuracy" else 20
    common.limit_threads()
    import torch
    torch.set_num_threads(1)
    records, summary = accuracy(args) if args.part == "accuracy" else cost(args)
    if args.out:
        _, path = common.json_target(args.out, f"{args.part}.json")
        settings = {k: v for k, v in vars(args).items() if k != "out"}
        common.write_json(path, "ml_tiers.py", settings, records, summary, argv=argv)
        print(f"JSON: {path}")
    return records, summary


if __name__ == "__main__":
    main()
