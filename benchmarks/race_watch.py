"""Stop a race's pair once both contestants hold a hit (``race.py --stop-on-hits``).

The goal's number is the ratio of the median times to first hit, and at two seeds its
bootstrap interval is wide (``race_report.median_ratio_interval``): more seeds are
what narrows it.  When both contestants have hit, the rest of a 600 s run changes
neither the hit count nor a time to first hit, so stopping there buys seeds.  It
does cut what the run goes on to relax: structures relaxed and ML steps per structure
of such a run cover the time up to the stop only (``run.json``: ``stopped_on_hits``).

:class:`HitWatch` reads each contestant's finished rows while it runs (the same
readers the analysis uses) and checks only the new ones, and of those only the ones
within ``window`` eV/atom of the reference energy (a structure match relaxed by the
same calculator lies there); the analysis afterwards still checks every row, so a
hit the watch skips only makes the pair run longer.
"""

import sqlite3


class HitWatch:
    """``readers``: ``{contestant: rows(folder, started)}``; ``check``: the race's
    ``HitCheck``; rows are dicts with ``t``, ``ok``, ``energy`` and ``atoms`` (a
    callable), as ``race.fuse_rows`` and ``race.airss_rows`` give them."""

    def __init__(self, readers, check, budget, reference_energy=None, window=0.15,
                 every=5.0):
        self.readers = dict(readers)
        self.check = check
        self.budget = float(budget)
        self.reference_energy = reference_energy
        self.window = float(window)
        self.every = float(every)
        self.seen = {}     # contestant -> finish times of the rows already checked
        self.hits = {}     # contestant -> seconds from its start to its first hit

    def worth_checking(self, row):
        if not row.get("ok") or row["t"] > self.budget:
            return False
        if self.reference_energy is None or row.get("energy") is None:
            return True
        return row["energy"] <= self.reference_energy + self.window

    def update(self, name, folder, started):
        """Check ``name``'s rows finished since the last call; True once it has hit."""
        if name in self.hits:
            return True
        try:
            rows = [r for r in self.readers[name](folder, started) if not r.get("reused")]
        except (sqlite3.OperationalError, OSError):  # the db is being written: next time
            return False
        seen = self.seen.setdefault(name, set())
        for row in rows:
            if row["t"] in seen:
                continue
            seen.add(row["t"])
            if self.worth_checking(row) and self.check.kind(row["atoms"](), row["energy"]):
                self.hits[name] = row["t"]
                return True
        return False

    def all_hit(self, running):
        """``running``: the race's entries (``name``, ``folder``, ``started_at``)."""
        return all([self.update(r["name"], r["folder"], r["started_at"]) for r in running])
