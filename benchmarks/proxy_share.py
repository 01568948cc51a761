"""What the proxy tier costs inside a race, and what a per-composition switch could win.

Reads the ase-fuse run databases a race left (``RACE/runs/<ref>_s<seed>/ase-fuse/
fuse.db``, any number of race folders) and, per run, from the tier records of every
relaxation that went through the proxy and the ML tier:

- ``discarded``: the fraction whose proxy geometry the volume bound threw away (the
  ML tier then started from the input, so that proxy time bought nothing);
- ``proxy share``: the proxy's part of the relaxation wall time;
- ``wasted``: the part spent on proxy results that were then discarded: the most a
  switch that turned the proxy off for this composition could save, if the kept
  results saved no ML steps at all;
- ML steps after a kept proxy result and after a discarded one (observational: a kept
  result is often a hop's small perturbation, which needs few steps anyway).

Nothing is run; the numbers come from the db, so this can be read any time after a
race::

    python benchmarks/proxy_share.py /tmp/race_gA /tmp/race_gB --out proxy_share.json
"""

import argparse
import sys
from pathlib import Path

import numpy as np

import common


def share_of(db_path):
    """The numbers above for one run's db, or None when no relaxation had two tiers."""
    import ase.db
    kept_steps, discarded_steps = [], []
    proxy_s = ml_s = wasted_s = 0.0
    with ase.db.connect(str(db_path)) as con:
        for row in con.select():
            tiers = (row.get("data") or {}).get("tiers") or []
            if len(tiers) < 2:
                continue
            proxy, ml = tiers[0], tiers[-1]
            spent = float(proxy.get("wall_time") or 0.0)
            proxy_s += spent
            ml_s += float(ml.get("wall_time") or 0.0)
            if "discarded" in (proxy.get("note") or ""):
                wasted_s += spent
                discarded_steps.append(int(ml.get("steps") or 0))
            else:
                kept_steps.append(int(ml.get("steps") or 0))
    n = len(kept_steps) + len(discarded_steps)
    if not n or proxy_s + ml_s <= 0:
        return None
    total = proxy_s + ml_s
    return {"relaxations": n, "discarded": len(discarded_steps) / n,
            "proxy_share": proxy_s / total, "wasted_share": wasted_s / total,
            "ml_steps_after_kept": common.mean(kept_steps),
            "ml_steps_after_discarded": common.mean(discarded_steps)}


def runs_in(folders):
    for folder in folders:
        for db in sorted(Path(folder).glob("runs/*/ase-fuse/fuse.db")):
            yield db.parent.parent.name, db


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("races", nargs="+", help="race output folders (with runs/)")
    p.add_argument("--out", default=None, help="JSON file to write")
    args = p.parse_args(argv)
    rows = []
    for name, db in runs_in(args.races):
        numbers = share_of(db)
        if numbers is not None:
            rows.append(dict(run=name, **numbers))
    if not rows:
        print("no ase-fuse run with a proxy tier under " + ", ".join(args.races),
              file=sys.stderr)
        return 2
    table = [[r["run"], r["relaxations"], f"{r['discarded']:.0%}",
              f"{r['proxy_share']:.1%}", f"{r['wasted_share']:.1%}",
              common.fmt(r["ml_steps_after_kept"], 0),
              common.fmt(r["ml_steps_after_discarded"], 0)] for r in rows]
    print(common.markdown_table(["run", "relaxations", "proxy discarded", "proxy share",
                                 "wasted", "ML steps, kept", "ML steps, discarded"], table))
    if args.out:
        common.write_json(args.out, "proxy_share.py", vars(args), [],
                          summary={"runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
