"""``ase-fuse report RUN``: the distinct lowest structures, their files, failures and
the db's integrity (one run, or every seed of a ``--walkers`` folder)."""

import json
import re
import sqlite3
import sys
import textwrap
from pathlib import Path

from .errors import InputError


def add_arguments(p):
    p.add_argument("db", help="run database (fuse.db), its run folder, or a --walkers "
                              "folder (one list over every seed)")
    p.add_argument("-n", "--number", type=_count, default=10,
                   help="distinct structures to list (default 10; 0: all)")
    p.add_argument("--window", type=_window, default=None, metavar="MEV",
                   help="only structures within MEV meV/atom of the lowest")
    p.add_argument("--json", action="store_true",
                   help="print the list as JSON (nothing else on stdout)")
    p.add_argument("--no-files", action="store_true",
                   help="do not write RUN/top/ (the listed structures as .cif and .extxyz)")
    p.add_argument("--failures", action="store_true", help="list every failure reason")


def _count(text):
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _window(text):
    import argparse
    import math
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of meV/atom, got {text!r}") \
            from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more meV/atom, got {text}")
    return value


def report_command(args):
    from .results import _run_dbs, distinct, settings_line, walker_dbs, write_top
    path = Path(args.db)
    if not path.exists():
        raise InputError(f"no such file {path}", field="db")
    walkers = walker_dbs(path) if path.is_dir() else {}
    dbs = _run_dbs(path)
    for db in dbs:
        if not Path(db).exists():
            raise InputError(f"no such file {db}", field="db")
    counts = {db: _summary(db) for db in dbs}      # reads and checks every db first
    polymorphs = distinct(dbs, n=args.number or None, window=args.window)
    folder = (path if path.is_dir() else path.parent) / "top"
    files_note = None
    if polymorphs and not args.no_files:
        try:
            write_top(polymorphs, folder)
            files_note = f"files: {folder}/ ({len(polymorphs)} .cif, conventional " \
                         "cell; .extxyz, relaxed P1 cell)"
        except OSError as err:
            print(f"ase-fuse: note: cannot write {folder}: {err.strerror or err}",
                  file=sys.stderr)
    worst = max((1 if summary["problems"] else 0) for summary in counts.values())
    if args.json:
        relaxed = sum(summary["counts"]["relaxed"] for summary in counts.values())
        print(json.dumps({"dbs": [str(db) for db in dbs], "relaxed": relaxed,
                          "settings": settings_line(),
                          "structures": [p.todict() for p in polymorphs]}, indent=1))
        return worst
    for seed, db in walkers.items():
        print(f"== seed {seed}: {db}")
        _print_summary(counts[db], args.failures)
    if walkers:
        print(f"== all {len(walkers)} seeds")
    _print_table(polymorphs, sum(s["counts"]["relaxed"] for s in counts.values()),
                 settings_line())
    if files_note:
        print(files_note)
    if not walkers:
        _print_summary(counts[dbs[0]], args.failures)
    return worst


def _summary(db):
    """Row counts, failure reasons and integrity problems of one db."""
    from .records import RunRecords
    try:
        rec = RunRecords(db)
        counts = {s: rec.count(status=s) for s in ("relaxed", "failed", "invalid", "queued")}
        bad = rec.rows(status="failed") + rec.rows(status="invalid")
        reused = sum(1 for r in rec.rows(status="relaxed") if r.get("reused_from"))
        problems = rec.check_integrity()
    except (sqlite3.Error, ValueError, KeyError, TypeError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"cannot read the rows of {db}: {err}", field="db") from None
    return {"counts": counts, "reasons": [str(r.get("reason", "?")) for r in bad],
            "problems": problems, "reused": reused}


def _print_table(polymorphs, relaxed, settings):
    print(f"distinct structures: {len(polymorphs)} listed of {relaxed} relaxed; {settings}")
    if not polymorphs:
        return
    pressure = polymorphs[0].pressure
    if pressure:
        print(f"at {pressure:g} GPa: ranked by enthalpy H = E + PV (H eV/atom, dH)")
    quantity, delta = ("H eV/atom", "dH meV/at") if pressure else ("E eV/atom", "dE meV/at")
    print(f"{'rank':>4} {quantity:>10} {delta:>9}  {'space group':<16}"
          f"{'Z':>3} {'atoms':>5} {'V/atom A3':>9} {'g/cm3':>6} {'step':>5} "
          f"{'time s':>8} {'found':>5}")
    for p in polymorphs:
        group = f"{p.spacegroup} ({p.spacegroup_number})"
        if p.also_seen_as:
            group += "*"
        when = "-" if p.time is None else f"{p.time:.1f}"
        print(f"{p.rank:>4} {p.enthalpy_per_atom:>10.4f} {p.delta_mev:>9.1f}  {group:<16}"
              f"{p.formula_units:>3} {p.natoms:>5} {p.volume_per_atom:>9.2f} "
              f"{p.density:>6.3f} {p.step:>5} {when:>8} {p.times_found:>5}")
    seen = [p for p in polymorphs if p.also_seen_as]
    if seen:
        print("  * its finds also had space groups " + "; ".join(
            f"rank {p.rank}: {', '.join(map(str, p.also_seen_as))}" for p in seen)
            + " (StructureMatcher matched them)")


def shorten(text, width=70):
    """``text`` cut to at most ``width`` characters at a word boundary, with "..."."""
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    cut = text[:width - 3]
    space = cut.rfind(" ")
    if space > width // 2:  # else one long word: cut inside it
        cut = cut[:space]
    return cut.rstrip(" ,;:(") + "..."


def _print_summary(summary, full=False):
    """A db's row counts, failure reasons (grouped; ``full``: each whole, wrapped)
    and integrity."""
    counts = summary["counts"]
    print("rows: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if summary["reused"]:
        print(f"reused: {summary['reused']} relaxed rows took the result of an equal "
              "input relaxed before (not relaxed again)")
    reasons = {}
    for reason in summary["reasons"]:
        key = re.sub(r"[-+]?\d[\d.e+-]*", "#", " ".join(reason.split()))
        key = key if full else shorten(key)
        reasons[key] = reasons.get(key, 0) + 1
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        if full:
            print(textwrap.fill(reason, width=88, initial_indent=f"  {n:5d} x ",
                                subsequent_indent=" " * 11, break_long_words=False,
                                break_on_hyphens=False))
        else:
            print(f"  {n:5d} x {reason}")
    problems = summary["problems"]
    print("integrity: " + ("ok" if not problems else "; ".join(problems)))
