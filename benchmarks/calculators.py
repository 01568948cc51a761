"""Cost of the calculator tiers per atom, and how much a proxy pre-relaxation saves CHGNet.

For FUSE random structures of a few compositions (rattled known crystals when the
``fuse`` generator is unavailable) this measures

* single-point time per atom: proxy, CHGNet (one at a time and batched), and
  tblite / GPAW (cheap preset) when importable (on the smallest structure only;
  GPAW only up to ``--gpaw-max-atoms``);
* relaxation: proxy alone, CHGNet from the raw random structure, and CHGNet after
  a proxy pre-relaxation (steps, time, energy, failures).

Prints a table and writes JSON with ``--out``.  torch runs on one thread; run with
``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1`` so numpy/scipy do too.  The default
(3 compositions x 2 structures, <= 20 atoms, 200 CHGNet steps) takes a few minutes.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/calculators.py --out b.json
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

FORMULAS = ("Ca3Ti2O7", "CoAs2", "Li4OBrCl")


def structures_for(formula, n, max_atoms, seed):
    """``n`` FUSE random structures, or rattled known crystals as a fallback."""
    try:
        from ase_fuse.generators import registry
        generator = registry.get("fuse")(formula, max_atoms=max_atoms,
                                         rng=np.random.default_rng(seed))
        return generator.generate_many(n), "fuse"
    except Exception as err:  # generator missing or failing: fall back, say so
        print(f"# fuse generator unavailable for {formula} ({err}); using rattled "
              "known crystals", file=sys.stderr)
    from ase.build import bulk
    rng = np.random.default_rng(seed)
    known = [bulk("NaCl", "rocksalt", a=5.64, cubic=True),
             bulk("Si", "diamond", a=5.431, cubic=True)]
    out = []
    for k in range(n):
        atoms = known[k % len(known)].copy()
        atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
        out.append(atoms)
    return out, "rattled-known"


def time_single_points(calc_factory, structures, repeat=1, warm_up=True):
    """Seconds per atom for single points (energy+forces+stress) over ``structures``."""
    if warm_up:  # model load, first graph
        atoms0 = structures[0].copy()
        atoms0.calc = calc_factory()
        atoms0.get_forces()
    total_t, total_n = 0.0, 0
    for _ in range(repeat):
        for atoms in structures:
            atoms = atoms.copy()
            atoms.calc = calc_factory()  # fresh: no cached results or wavefunctions
            t0 = time.perf_counter()
            atoms.get_potential_energy()
            atoms.get_forces()
            try:
                atoms.get_stress()
            except Exception:  # a calculator without stress: time what it has
                pass
            total_t += time.perf_counter() - t0
            total_n += len(atoms)
    return total_t / total_n


def optional_calculators():
    """``{name: factory}`` for tblite and GPAW when they are importable."""
    extra = {}
    try:
        from tblite.ase import TBLite
        extra["tblite-GFN2"] = lambda: TBLite(method="GFN2-xTB", verbosity=0)
    except ImportError:
        pass
    try:
        import gpaw  # noqa: F401
        from ase_fuse.calculators.gpaw import gpaw_calculator
        extra["gpaw-cheap"] = lambda: gpaw_calculator("cheap")
    except ImportError:
        pass
    return extra


def relax_record(result):
    return {"failed": result.failed, "energy_per_atom": result.energy_per_atom,
            "tiers": [{"name": r.name, "steps": r.steps, "converged": r.converged,
                       "wall_time": r.wall_time, "fmax": r.fmax, "failed": r.failed,
                       "energy_per_atom": r.energy_per_atom} for r in result.tiers]}


def bench_formula(formula, args, extra):
    from ase_fuse.calculators.chgnet import chgnet_calculator, chgnet_single_points
    from ase_fuse.calculators.chgnet import chgnet_tier
    from ase_fuse.calculators.proxy import ProxyPotential
    from ase_fuse.calculators.stacks import proxy_tier
    from ase_fuse.calculators.tiers import TieredRelaxer
    from ase_fuse.composition import Composition

    comp = Composition(formula)
    structures, source = structures_for(formula, args.n, args.max_atoms, args.seed)
    row = {"formula": formula, "source": source,
           "n_atoms": [len(a) for a in structures], "single_point_s_per_atom": {}}
    sp = row["single_point_s_per_atom"]
    sp["proxy"] = time_single_points(lambda: ProxyPotential.for_composition(comp),
                                     structures, repeat=3)
    sp["chgnet"] = time_single_points(chgnet_calculator, structures)
    t0 = time.perf_counter()
    chgnet_single_points(structures, batch_size=16)
    sp["chgnet-batched"] = (time.perf_counter() - t0) / sum(len(a) for a in structures)
    smallest = min(structures, key=len)
    for name, factory in extra.items():
        if name.startswith("gpaw") and len(smallest) > args.gpaw_max_atoms:
            sp[name] = None
            continue
        try:  # DFT/xTB: time the smallest structure only
            sp[name] = time_single_points(factory, [smallest], warm_up=False)
        except Exception as err:  # record, do not abort the benchmark
            sp[name] = f"failed: {type(err).__name__}: {err}"

    proxy_only = TieredRelaxer([proxy_tier(comp)])
    raw_chgnet = TieredRelaxer([chgnet_tier(steps=args.chgnet_steps)])
    chained = TieredRelaxer([proxy_tier(comp), chgnet_tier(steps=args.chgnet_steps)])
    row["relax"] = []
    for atoms in structures:
        row["relax"].append({
            "n_atoms": len(atoms),
            "proxy": relax_record(proxy_only.relax(atoms)),
            "chgnet_from_raw": relax_record(raw_chgnet.relax(atoms)),
            "chgnet_after_proxy": relax_record(chained.relax(atoms)),
        })
    return row


def summarise(rows):
    lines = ["single point, ms per atom"]
    names = sorted({k for row in rows for k in row["single_point_s_per_atom"]})
    lines.append(f"{'formula':<10}" + "".join(f"{n:>16}" for n in names))
    for row in rows:
        cells = []
        for n in names:
            value = row["single_point_s_per_atom"].get(n)
            cells.append(f"{1e3 * value:16.3f}" if isinstance(value, float) else
                         f"{'-' if value is None else 'failed':>16}")
        lines.append(f"{row['formula']:<10}" + "".join(cells))
    lines.append("")
    lines.append("relaxation (per structure): steps / seconds / eV per atom")
    lines.append(f"{'formula':<10}{'atoms':>6}{'proxy':>22}{'CHGNet raw':>26}"
                 f"{'proxy -> CHGNet':>30}")

    def fmt(rec, tier=-1):
        if rec["failed"] and not rec["tiers"][tier:]:
            return "failed"
        t = rec["tiers"][tier] if tier < len(rec["tiers"]) else rec["tiers"][-1]
        if t["failed"]:
            return "failed: " + t["failed"][:14]
        e = rec["energy_per_atom"]
        return f"{t['steps']:>4} {t['wall_time']:6.1f}s {e:8.3f}"

    for row in rows:
        for rel in row["relax"]:
            chain = rel["chgnet_after_proxy"]
            chain_txt = fmt(chain) if chain["failed"] is None else "failed"
            if chain["failed"] is None:
                p = chain["tiers"][0]
                chain_txt = f"{p['steps']}+{fmt(chain)}"
            lines.append(f"{row['formula']:<10}{rel['n_atoms']:>6}"
                         f"{fmt(rel['proxy']):>22}{fmt(rel['chgnet_from_raw']):>26}"
                         f"{chain_txt:>30}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formulas", nargs="+", default=list(FORMULAS))
    parser.add_argument("--n", type=int, default=2, help="structures per formula")
    parser.add_argument("--max-atoms", type=int, default=20)
    parser.add_argument("--chgnet-steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpaw-max-atoms", type=int, default=10,
                        help="skip GPAW single points for larger structures")
    parser.add_argument("--out", help="write results as JSON here")
    args = parser.parse_args(argv)

    import torch
    torch.set_num_threads(1)
    extra = optional_calculators()
    t0 = time.perf_counter()
    rows = [bench_formula(formula, args, extra) for formula in args.formulas]
    report = {"args": vars(args), "python": platform.python_version(),
              "machine": platform.machine(), "torch_threads": torch.get_num_threads(),
              "total_s": time.perf_counter() - t0, "results": rows}
    print(summarise(rows))
    print(f"\ntotal {report['total_s']:.0f} s")
    if args.out:
        with open(args.out, "w") as fd:
            json.dump(report, fd, indent=1, default=float)
    return report


if __name__ == "__main__":
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("# tip: run with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 for one-thread "
              "timings", file=sys.stderr)
    main()
