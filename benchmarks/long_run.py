"""Long-run stability: memory and speed of a many-step search with the proxy potential.

Runs ``FuseBasinHopping`` (NaCl, at most 8 atoms, ``relaxer="proxy"``) for ``--steps``
basin-hopping steps (default 10,000) and records, every ``--every`` steps, the
resident memory now (``/proc/self/statm``), the peak so far
(``resource.getrusage``), the db size and the steps per second since the last
checkpoint.  Prints a table (RSS at 1k and 10k steps, growth after warm-up, steps
per second) and writes JSON with ``--out``.  ``rmax`` is set above ``--steps`` so the
run never stops early.  One thread: run with ``OMP_NUM_THREADS=1``.

    OMP_NUM_THREADS=1 python benchmarks/long_run.py --steps 10000 --out long_run.json
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mb():
    """Resident memory of this process now, in MB (Linux; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as fd:
            pages = int(fd.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


READER = ("import sys; from ase.db import connect; "
          "db = connect(sys.argv[1], type='db', use_lock_file=False); "
          "print(db.count(status='relaxed'))")


def read_from_other_process(db_path):
    """Query the running search's db from a second process: ``(relaxed rows, s)``,
    rows ``None`` if the query failed or waited more than 60 s."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", READER, str(db_path)],
                              capture_output=True, text=True, timeout=60)
        count = int(proc.stdout.strip()) if proc.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError):
        count = None
    return count, round(time.perf_counter() - start, 2)


def make_relaxer(composition, fixed_cell):
    """``"proxy"`` (the named stack), or a positions-only proxy relaxation (cheaper:
    no cell filter, whose matrix logarithms dominate a small proxy relaxation)."""
    if not fixed_cell:
        return "proxy"
    from ase_fuse.calculators.stacks import proxy_tier
    from ase_fuse.calculators.tiers import TieredRelaxer
    return TieredRelaxer([proxy_tier(composition, relax_cell=False, steps=200)])


def run(steps, every, directory, composition="NaCl", max_atoms=8, seed=0,
        initial_population=4, fixed_cell=False):
    """Run the search; returns the list of checkpoint dicts."""
    from ase_fuse import FuseBasinHopping

    relaxer = make_relaxer(composition, fixed_cell)
    opt = FuseBasinHopping(composition, relaxer=relaxer, max_atoms=max_atoms,
                           initial_population=initial_population, seed=seed,
                           rmax=10 * steps + 10, directory=directory, logfile=None)
    db_path = Path(directory) / "fuse.db"
    checkpoints = []
    t_start = last_t = time.perf_counter()
    last_step = 0

    def checkpoint():
        nonlocal last_t, last_step
        now = time.perf_counter()
        rate = (opt.nsteps - last_step) / (now - last_t) if opt.nsteps > last_step else None
        rows, read_s = read_from_other_process(db_path)
        checkpoints.append({"step": opt.nsteps, "elapsed_s": round(now - t_start, 2),
                            "rss_mb": round(rss_mb(), 1), "peak_rss_mb": round(peak_rss_mb(), 1),
                            "db_mb": round(db_path.stat().st_size / 2**20, 2),
                            "steps_per_s": None if rate is None else round(rate, 2),
                            "reader_rows": rows, "reader_s": read_s})
        last_t, last_step = time.perf_counter(), opt.nsteps
        print(f"# step {opt.nsteps:6d}  rss {checkpoints[-1]['rss_mb']:7.1f} MB  "
              f"db {checkpoints[-1]['db_mb']:6.2f} MB  "
              f"{checkpoints[-1]['steps_per_s'] or 0:6.1f} steps/s  "
              f"second process read {rows} relaxed rows in {read_s} s", file=sys.stderr, flush=True)

    for _ in opt.irun(steps=steps):
        if opt.nsteps % every == 0:
            checkpoint()
    if not checkpoints or checkpoints[-1]["step"] != opt.nsteps:
        checkpoint()
    opt.close()
    return checkpoints, opt


def at_step(checkpoints, step):
    """The first checkpoint at or after ``step`` (None if the run was shorter)."""
    for point in checkpoints:
        if point["step"] >= step:
            return point
    return None


def summarise(checkpoints, total_s, warm_up):
    first = at_step(checkpoints, warm_up) or checkpoints[0]
    last = checkpoints[-1]
    moving = [c for c in checkpoints if c["step"] > 0]
    return {
        "steps": last["step"],
        "rss_mb_at_1k": (at_step(checkpoints, 1000) or {}).get("rss_mb"),
        "rss_mb_at_10k": (at_step(checkpoints, 10000) or {}).get("rss_mb"),
        "peak_rss_mb": last["peak_rss_mb"],
        "rss_growth_after_warm_up_mb": round(last["rss_mb"] - first["rss_mb"], 1),
        "warm_up_step": first["step"],
        "db_mb": last["db_mb"],
        "steps_per_s": round(last["step"] / max(total_s, 1e-9), 2),
        "steps_per_s_first_interval": moving[0]["steps_per_s"] if moving else None,
        "steps_per_s_last_interval": moving[-1]["steps_per_s"] if moving else None,
        "reader_ok": all(c["reader_rows"] is not None for c in checkpoints),
        "reader_max_s": max(c["reader_s"] for c in checkpoints),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--every", type=int, default=None,
                        help="checkpoint interval (default steps/20, at least 1)")
    parser.add_argument("--warm-up", type=int, default=None,
                        help="growth is measured from this step (default steps/10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixed-cell", action="store_true",
                        help="relax positions only with the proxy (a cheaper step)")
    parser.add_argument("--directory", default=None, help="run folder (default: a temp dir)")
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    every = args.every or max(1, args.steps // 20)
    warm_up = args.warm_up if args.warm_up is not None else max(1, args.steps // 10)
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.directory or tmp
        t0 = time.perf_counter()
        checkpoints, opt = run(args.steps, every, directory, seed=args.seed,
                               fixed_cell=args.fixed_cell)
        total = time.perf_counter() - t0
        summary = summarise(checkpoints, total, warm_up)
        summary["failed"] = opt.records.count(status="failed")
        summary["relaxed"] = opt.records.count(status="relaxed")
    mode = "proxy, positions only" if args.fixed_cell else "proxy"
    print(f"long run: NaCl, max 8 atoms, {mode}, seed {args.seed}, {summary['steps']} steps "
          f"in {total:.0f} s")
    print(f"{'steps':>7} {'RSS (MB)':>9} {'peak (MB)':>10} {'db (MB)':>8} {'steps/s':>8}")
    for c in checkpoints:
        print(f"{c['step']:7d} {c['rss_mb']:9.1f} {c['peak_rss_mb']:10.1f} {c['db_mb']:8.2f} "
              f"{c['steps_per_s'] if c['steps_per_s'] is not None else '-':>8}")
    print(f"RSS at 1k steps {summary['rss_mb_at_1k']} MB, at 10k {summary['rss_mb_at_10k']} MB; "
          f"growth after step {summary['warm_up_step']}: {summary['rss_growth_after_warm_up_mb']} MB; "
          f"{summary['steps_per_s']} steps/s overall; a second process read the db at "
          f"every checkpoint: {summary['reader_ok']} (slowest {summary['reader_max_s']} s)")
    if args.out:
        result = {"summary": summary, "checkpoints": checkpoints,
                  "relaxer": mode,
                  "machine": {"python": platform.python_version(),
                              "processor": platform.machine(),
                              "cpus": os.cpu_count(),
                              "omp_threads": os.environ.get("OMP_NUM_THREADS")}}
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
