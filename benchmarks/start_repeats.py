"""How many of a race's relaxed starts land where an earlier start already had.

Reads the ase-fuse run databases a race left (``RACE/runs/<ref>_s<seed>/ase-fuse/
fuse.db``, any number of race folders) and, for the initial population's relaxed rows
(``step`` 0), in the order they were written, groups them by ``origin`` (``gnoa``,
``symmetric``, ...).  A start is a **repeat** when its relaxed energy per atom is within
``--tol`` (default 1 meV/atom) of an earlier relaxed start of the population: an energy
test, not a structure match, so it can count two different structures of one energy as
one (rare at 1 meV/atom among a few dozen starts).  Per origin it reports the starts
relaxed, the repeats (of the same origin, and of any origin) and the share of the
population's ML steps (the last tier's ``steps``) that went into repeats.

The race's GN-OA starts are made distinct before relaxation (``distinct_first``); this
shows how often they relax into one minimum all the same.  Nothing is run::

    python benchmarks/start_repeats.py /tmp/race_s45 /tmp/race_s4L --out start_repeats.json
"""

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import common


def starts_of(db_path):
    """``[(origin, energy_per_atom, ml_steps)]`` of the population's relaxed rows."""
    import ase.db
    out = []
    with ase.db.connect(str(db_path)) as con:
        for row in con.select(sort="id"):
            if row.get("step") != 0 or row.get("status") != "relaxed":
                continue
            if row.get("energy") is None:
                continue
            tiers = (row.get("data") or {}).get("tiers") or []
            steps = int(tiers[-1].get("steps") or 0) if tiers else 0
            out.append((str(row.get("origin") or "?"), float(row.energy) / row.natoms,
                        steps))
    return out


def repeats(starts, tol=1e-3):
    """Per origin: ``starts``, ``same_origin`` and ``any_origin`` repeats, ``steps`` and
    ``repeat_steps`` (ML steps of the repeats of any origin)."""
    counts = defaultdict(lambda: dict(starts=0, same_origin=0, any_origin=0, steps=0,
                                      repeat_steps=0))
    seen = []
    for origin, energy, steps in starts:
        c = counts[origin]
        c["starts"] += 1
        c["steps"] += steps
        if any(abs(energy - e) <= tol and o == origin for o, e in seen):
            c["same_origin"] += 1
        if any(abs(energy - e) <= tol for _, e in seen):
            c["any_origin"] += 1
            c["repeat_steps"] += steps
        seen.append((origin, energy))
    return dict(counts)


def runs_in(folders):
    for folder in folders:
        for db in sorted(Path(folder).glob("runs/*/ase-fuse/fuse.db")):
            yield db.parent.parent.name, db


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("races", nargs="+", help="race output folders (with runs/)")
    p.add_argument("--tol", type=float, default=1e-3, help="eV/atom (default 0.001)")
    p.add_argument("--out", default=None, help="JSON file to write")
    args = p.parse_args(argv)
    if not args.tol > 0:
        print(f"--tol must be positive, got {args.tol}", file=sys.stderr)
        return 2
    runs, total = [], defaultdict(lambda: defaultdict(int))
    for name, db in runs_in(args.races):
        per_origin = repeats(starts_of(db), args.tol)
        if per_origin:
            runs.append({"run": name, "origins": per_origin})
        for origin, c in per_origin.items():
            for key, value in c.items():
                total[origin][key] += value
    if not runs:
        print("no ase-fuse run with relaxed starts under " + ", ".join(args.races),
              file=sys.stderr)
        return 2
    table = [[origin, c["starts"], c["same_origin"], c["any_origin"],
              f"{c['any_origin'] / c['starts']:.0%}",
              f"{c['repeat_steps'] / c['steps']:.0%}" if c["steps"] else "-"]
             for origin, c in sorted(total.items())]
    print(f"{len(runs)} runs")
    print(common.markdown_table(["origin", "starts relaxed", "repeats, same origin",
                                 "repeats, any origin", "repeat share",
                                 "ML steps on repeats"], table))
    if args.out:
        common.write_json(args.out, "start_repeats.py", vars(args), [],
                          summary={"total": {o: dict(c) for o, c in total.items()},
                                   "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
