"""Structure identity (issue 17): the cost per comparison, and what labelling every
relaxed structure adds to a search.

1. **Per comparison**: each link of the default chain (``ase_fuse.identity``) timed on
   pairs built from published cells (rock salt 2 and 16 atoms, rutile 6, anatase 12,
   alpha-Mn 58), with the structures' features computed afresh (first comparison)
   and cached (later comparisons).
2. **A proxy run** of ``--steps`` steps (NaCl, at most 8 atoms, the ``proxy`` stack, one
   thread): the run's wall time, the time spent labelling and looking up inputs
   (``RunRecords.identity_time``), distinct structures, and the relaxations saved by
   re-using an equal input's result.
3. **CHGNet runs replayed** (``--replay DB ...``, e.g. the race's ase-fuse dbs): every
   relaxed row labelled again in the order it was recorded; the labelling time
   against the rows' own relaxation time.

    OMP_NUM_THREADS=1 python benchmarks/identity.py --steps 10000 --out identity.json \\
        --replay race/p1/runs/*/ase-fuse/fuse.db
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def fixtures():
    from ase.build import bulk
    from ase.spacegroup import crystal
    rutile = crystal(["Ti", "O"], [(0, 0, 0), (0.3048, 0.3048, 0)], spacegroup=136,
                     cellpar=[4.594, 4.594, 2.959, 90, 90, 90])
    anatase = crystal(["Ti", "O"], [(0, 0, 0), (0, 0, 0.2081)], spacegroup=141,
                      cellpar=[3.785, 3.785, 9.514, 90, 90, 90])
    alpha_mn = crystal(["Mn"] * 4, [(0, 0, 0), (0.3179,) * 3, (0.3571, 0.3571, 0.0347),
                                    (0.0896, 0.0896, 0.2819)], spacegroup=217,
                       cellpar=[8.911] * 3 + [90] * 3)
    nacl = bulk("NaCl", "rocksalt", a=5.64)
    return {"rock salt 2": nacl, "rock salt 16": nacl.repeat((2, 2, 2)),
            "rutile 6": rutile, "anatase 12": anatase, "alpha-Mn 58": alpha_mn}


def pair_costs(repeats=5):
    """Seconds per comparison of each link, features fresh and cached."""
    from ase_fuse.identity import Entry, default_comparator
    rows = []
    for name, atoms in fixtures().items():
        copy = atoms.copy()
        copy.rattle(0.01, seed=1)
        for link in default_comparator().comparators:
            fresh = cached = 0.0
            for _ in range(repeats):
                a, b = Entry(atoms, -3.0), Entry(copy, -3.001)
                start = time.perf_counter()
                same = link.compare(a, b)
                fresh += time.perf_counter() - start
                start = time.perf_counter()
                link.compare(a, b)
                cached += time.perf_counter() - start
            rows.append({"structure": name, "atoms": len(atoms), "link": link.name,
                         "fresh_ms": 1e3 * fresh / repeats,
                         "cached_ms": 1e3 * cached / repeats, "same": bool(same)})
    return rows


def proxy_run(steps, directory, composition="NaCl", max_atoms=8, seed=0):
    from ase_fuse import FuseBasinHopping
    from ase_fuse.records import RunRecords
    start = time.perf_counter()
    opt = FuseBasinHopping(composition, relaxer="proxy", max_atoms=max_atoms,
                           initial_population=4, seed=seed, rmax=10 * steps + 10,
                           directory=directory, logfile=None)
    opt.run(steps=steps)
    wall = time.perf_counter() - start
    identity_time = opt.records.identity_time
    opt.close()
    rows = RunRecords(Path(directory) / "fuse.db").rows(status="relaxed")
    reused = [r for r in rows if r.get("reused_from")]
    relaxed = [r for r in rows if not r.get("reused_from")]
    mean_relax = sum(r.get("relax_time", 0.0) for r in relaxed) / max(len(relaxed), 1)
    return {"composition": composition, "max_atoms": max_atoms, "steps": steps,
            "relaxed_rows": len(rows), "wall_s": wall, "identity_s": identity_time,
            "identity_share": identity_time / max(wall - identity_time, 1e-9),
            "distinct": sum(1 for r in rows if r.get("distinct") == 1),
            "reused": len(reused), "reused_share": len(reused) / max(len(rows), 1),
            "relax_s_saved": mean_relax * len(reused),
            "relax_s_total": sum(r.get("relax_time", 0.0) for r in relaxed)}


def replay(db):
    """Label a finished run's relaxed rows again, in the order they were recorded."""
    from ase_fuse.records import RunRecords
    from ase_fuse.run_identity import RunIdentity
    rows = [r for r in RunRecords(db).rows(status="relaxed")
            if isinstance(r.get("energy_per_atom"), float)]
    rows.sort(key=lambda r: (r.get("finished_at") or 0.0, r.id))
    identity = RunIdentity()
    start = time.perf_counter()
    for row in rows:
        identity.label(row.id, row.toatoms(), row.energy_per_atom)
    spent = time.perf_counter() - start
    relax = sum(r.get("relax_time", 0.0) or 0.0 for r in rows)
    return {"db": str(db), "relaxed_rows": len(rows), "distinct": len(identity.distinct),
            "identity_s": spent, "relax_s": relax,
            "identity_share": spent / relax if relax else None,
            "comparisons": identity.distinct.comparisons,
            "matcher_calls": identity.distinct.comparator.calls.get("structure_matcher")}


def table(result):
    lines = ["| structure | atoms | link | ms, features fresh | ms, cached |", "|---|---|---|---|---|"]
    for r in result["pairs"]:
        lines.append(f"| {r['structure']} | {r['atoms']} | {r['link']} | "
                     f"{r['fresh_ms']:.3f} | {r['cached_ms']:.3f} |")
    run = result.get("proxy")
    if run:
        lines += ["", "| proxy run | steps | relaxed rows | wall s | identity s | share | "
                  "distinct | reused (share) |", "|---|---|---|---|---|---|---|---|",
                  f"| {run['composition']} <= {run['max_atoms']} atoms | {run['steps']} | "
                  f"{run['relaxed_rows']} | {run['wall_s']:.1f} | {run['identity_s']:.1f} | "
                  f"{100 * run['identity_share']:.1f}% | {run['distinct']} | "
                  f"{run['reused']} ({100 * run['reused_share']:.1f}%) |"]
    if result.get("replay"):
        lines += ["", "| replayed db | relaxed rows | distinct | identity s | relaxation s |"
                  " share | StructureMatcher calls |", "|---|---|---|---|---|---|---|"]
        for r in result["replay"]:
            share = "-" if r["identity_share"] is None else f"{100 * r['identity_share']:.2f}%"
            lines.append(f"| {r['db']} | {r['relaxed_rows']} | {r['distinct']} | "
                         f"{r['identity_s']:.2f} | {r['relax_s']:.1f} | {share} | "
                         f"{r['matcher_calls']} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10000, help="proxy run steps (0: none)")
    parser.add_argument("--replay", nargs="*", default=[], help="finished run dbs to relabel")
    parser.add_argument("--quick", action="store_true", help="100 proxy steps, 1 repeat")
    parser.add_argument("--out", default=None, help="JSON file")
    args = parser.parse_args(argv)
    common.limit_threads()
    steps = 100 if args.quick else args.steps
    result = {"pairs": pair_costs(1 if args.quick else 5), "replay": [],
              "meta": common.run_metadata("identity.py", argv)}
    if steps:
        with tempfile.TemporaryDirectory() as tmp:
            result["proxy"] = proxy_run(steps, Path(tmp) / "run")
    result["replay"] = [replay(db) for db in args.replay]
    print(table(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=common.json_default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
