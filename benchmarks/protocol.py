"""The relaxation protocol: which optimiser, tolerance and step cap reach the same
minima in fewer ML steps?

For each race reference (``race_refs.py``), ``--n`` starts of the search's default
generator (seeded, at the race's cell size limit ``max(2n, n+4)``) are pre-relaxed
once with the default stack's proxy tier (bounded, as in a search), then each proxy
result is relaxed by every protocol's CHGNet stage(s) in turn:

``fire``         FIRE, fmax 0.05, 2000 steps (today's default)
``fire2``        ASE's FIRE2, same tolerance
``bfgs``         BFGS, same tolerance
``lbfgs``        LBFGS, same tolerance
``coarse``       FIRE to fmax 0.15, at most 300 steps (a search would tighten only the
                 candidates near its best; the hit rate shows whether a loose minimum is
                 already recognisable)
``coarse+fine``  ``coarse`` then FIRE to 0.05 from there (its steps are the sum)
``fire+lbfgs``   FIRE to 0.15 then LBFGS to 0.05

(ASE's PreconLBFGS was tried too: behind ``FrechetCellFilter`` it stopped at step 0,
higher than FIRE on 9 of 9 ZnS starts, so it is not offered.)  All with ``FrechetCellFilter``, one torch thread.  Per reference and protocol: ML
steps (mean, p90), wall time per structure, hits (``race.HitCheck``: a structure
match or 2 meV/atom below the CHGNet-relaxed reference), and how often the protocol
ends more than 5 meV/atom above / below ``fire`` on the same start (a different
basin).  Ratios are measured in one run, on one machine, at one time.

    python benchmarks/protocol.py --only zns srtio3 rutile nacl --n 12 --out protocol
    python benchmarks/protocol.py --quick          # CI: proxy as the ML stage, NaCl
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
import race  # noqa: E402
import race_refs  # noqa: E402
from race_report import percentile90  # noqa: E402

#: name -> the ML stages, each (optimizer, fmax, steps)
PROTOCOLS = {
    "fire": [("FIRE", 0.05, 2000)],
    "fire2": [("FIRE2", 0.05, 2000)],
    "bfgs": [("BFGS", 0.05, 2000)],
    "lbfgs": [("LBFGS", 0.05, 2000)],
    "coarse": [("FIRE", 0.15, 300)],
    "coarse+fine": [("FIRE", 0.15, 300), ("FIRE", 0.05, 2000)],
    "fire+lbfgs": [("FIRE", 0.15, 300), ("LBFGS", 0.05, 2000)],
}
BASELINE = "fire"
SAME_BASIN = 0.005  # eV/atom


def ml_relaxer(stages, quick, composition):
    """A TieredRelaxer of the protocol's stages (CHGNet, or the proxy when quick)."""
    from ase_fuse.calculators import Tier, TieredRelaxer
    from ase_fuse.calculators.stacks import proxy_tier
    tiers = []
    for k, (optimizer, fmax, steps) in enumerate(stages):
        if quick:
            base = proxy_tier(composition)
            tiers.append(Tier(base._calc or base._factory, fmax=fmax, steps=steps,
                              optimizer=optimizer, name=f"ml{k}"))
        else:
            from ase_fuse.calculators.chgnet import chgnet_tier
            tiers.append(chgnet_tier(fmax=fmax, steps=steps, optimizer=optimizer,
                                     name=f"ml{k}"))
    return TieredRelaxer(tiers)


def starts(formula, max_atoms, n, seed):
    """The first ``n`` starts a search with the default generator relaxes (GN-OA's
    ranked pool on the proxy; FUSE structures where its package is missing)."""
    from ase_fuse.composition import Composition
    from ase_fuse.config import OPTIONS
    from ase_fuse.search_setup import initial_structures
    default = next(o.default for o in OPTIONS if o.name == "generator")
    rng = np.random.default_rng(seed)
    population, _ = initial_structures(Composition(formula), n, default, {}, None,
                                       max_atoms, rng)
    return population[:n]


def run_reference(key, args):
    from ase_fuse.calculators import TieredRelaxer
    from ase_fuse.calculators.stacks import proxy_tier
    atoms, info = race_refs.load(key, args.references)
    ref = race.reference_energy(key, atoms, info, "proxy" if args.quick else "chgnet",
                                args.out_folder)
    check = race.checker_for(atoms, ref)
    proxy = TieredRelaxer([proxy_tier(info["formula"])])
    relaxers = {name: ml_relaxer(PROTOCOLS[name], args.quick, info["formula"])
                for name in args.protocols}
    rows = []
    for k, start in enumerate(starts(info["formula"], info["max_atoms"], args.n, args.seed)):
        pre = proxy.relax(start)
        begin = pre.atoms if not pre.failed and pre.atoms is not None else start
        for name, relaxer in relaxers.items():
            t0 = time.perf_counter()
            try:
                result = relaxer.relax(begin.copy())
            except Exception as err:  # noqa: BLE001 - one protocol's crash is a row
                rows.append({"key": key, "protocol": name, "start": k, "failed":
                             f"{type(err).__name__}: {err}"[:200], "ml_steps": None,
                             "wall_s": time.perf_counter() - t0, "energy_per_atom": None,
                             "hit": None, "natoms": len(begin)})
                continue
            wall = time.perf_counter() - t0
            e = None if result.failed else float(result.energy_per_atom)
            hit = None if e is None else check.kind(result.atoms, e)
            rows.append({"key": key, "protocol": name, "start": k, "natoms": len(begin),
                         "ml_steps": int(sum(t.steps for t in result.tiers)),
                         "wall_s": wall, "energy_per_atom": e, "hit": hit,
                         "failed": result.failed,
                         "reference_energy_per_atom": ref.get("energy_per_atom")})
            print(f"{key:9s} {name:12s} {k:3d} {len(begin):3d} atoms "
                  f"E={e if e is not None else float('nan'):9.4f} "
                  f"steps={rows[-1]['ml_steps']:5d} {wall:6.2f} s {hit or ''}"
                  + (f" failed: {result.failed[:60]}" if result.failed else ""), flush=True)
    return rows


def summarize(rows):
    base = {(r["key"], r["start"]): r["energy_per_atom"] for r in rows
            if r["protocol"] == BASELINE}
    out = {}
    for r in rows:
        s = out.setdefault(r["key"], {}).setdefault(r["protocol"], {
            "n": 0, "failed": 0, "hits": 0, "steps": [], "walls": [], "higher": 0,
            "lower": 0, "compared": 0})
        s["n"] += 1
        s["walls"].append(r["wall_s"])        # a failed relaxation costs its time too
        if r["failed"]:
            s["failed"] += 1
            continue
        s["hits"] += r["hit"] is not None
        s["steps"].append(r["ml_steps"])
        b = base.get((r["key"], r["start"]))
        if b is not None:
            s["compared"] += 1
            s["higher"] += r["energy_per_atom"] > b + SAME_BASIN
            s["lower"] += r["energy_per_atom"] < b - SAME_BASIN
    for per in out.values():
        fire = per.get(BASELINE)
        for s in per.values():
            steps, walls = s.pop("steps"), s.pop("walls")
            s["ml_steps_mean"] = common.mean(steps)
            s["ml_steps_p90"] = percentile90(steps)
            s["wall_s_mean"] = common.mean(walls)
            s["wall_s_total"] = float(sum(walls))
        if fire and fire["wall_s_total"]:
            for s in per.values():
                s["time_ratio"] = s["wall_s_total"] / fire["wall_s_total"]
    totals = {}
    for per in out.values():
        for name, s in per.items():
            t = totals.setdefault(name, {"wall_s_total": 0.0, "hits": 0, "n": 0,
                                         "higher": 0, "lower": 0})
            for k in t:
                t[k] += s[k]
    if BASELINE in totals and totals[BASELINE]["wall_s_total"]:
        for t in totals.values():
            t["time_ratio"] = t["wall_s_total"] / totals[BASELINE]["wall_s_total"]
    return {"references": out, "totals": totals}


def print_table(summary):
    headers = ["reference", "protocol", "n", "hits", "failed", "ML steps mean", "p90",
               "s/structure", "time vs fire", "higher", "lower"]
    rows = [[key, name, s["n"], s["hits"], s["failed"], common.fmt(s["ml_steps_mean"], 1),
             common.fmt(s["ml_steps_p90"], 0), common.fmt(s["wall_s_mean"], 2),
             common.fmt(s.get("time_ratio"), 2), s["higher"], s["lower"]]
            for key, per in summary["references"].items() for name, s in per.items()]
    rows += [["all", name, t["n"], t["hits"], "", "", "", "",
              common.fmt(t.get("time_ratio"), 2), t["higher"], t["lower"]]
             for name, t in summary["totals"].items()]
    print(common.markdown_table(headers, rows))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", metavar="KEY")
    p.add_argument("--n", type=int, default=None, help="starts per reference")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--protocols", nargs="+", choices=list(PROTOCOLS))
    p.add_argument("--references", default=str(race_refs.DEFAULT_FOLDER))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="protocol_out", help="folder or .json file")
    args = p.parse_args(argv)
    common.fill_defaults(args, {"only": [race_refs.QUICK] if args.quick else
                                ["zns", "srtio3", "rutile", "nacl"],
                                "n": 2 if args.quick else 12,
                                "protocols": ["fire", "lbfgs"] if args.quick
                                else list(PROTOCOLS)})
    if BASELINE not in args.protocols:
        args.protocols.insert(0, BASELINE)
    args.out_folder, path = common.json_target(args.out, "protocol.json")
    if not args.quick:
        import torch
        torch.set_num_threads(1)
    common.limit_threads()
    rows = []
    for key in args.only:
        rows += run_reference(key, args)
    summary = summarize(rows)
    print_table(summary)
    settings = {k: v for k, v in vars(args).items() if k != "out_folder"}
    common.write_json(path, "protocol.py", settings, rows, summary, argv=argv)
    print(f"wrote {path}")
    return summary


if __name__ == "__main__":
    main()
