"""Structures relaxed per second: batched CHGNet or SevenNet (torch-sim) vs the one-at-a-time ASE loop.

FUSE random structures of SrTiO3 and Ca3Ti2O7 (<= ``--max-atoms`` atoms) are relaxed
with CHGNet to ``--fmax`` or ``--steps`` steps (cell included), once with
``TieredRelaxer([chgnet_tier()])`` (ASE FIRE + FrechetCellFilter, one structure at a
time) and once with ``BatchedRelaxer`` per batch size.  Both run the same FIRE, so
they take the same steps; the table gives wall time, structures per second, the
speed-up over the ASE loop and the largest energy difference (meV/atom) between the
two paths over structures both converged (unconverged ones stop at different points
of chaotic trajectories once float32 round-off differs, e.g. on a GPU).  The row with ``--n`` structures is the
initial population of that size, batched vs serial.

``--workers W`` adds the same rows run through a Dask ``LocalCluster`` of W worker
processes (``threads`` torch threads each) the way ``ase-fuse run --workers`` does:
``relax_structures`` sends the ASE loop one structure per task and a batched
relaxer chunks of structures, so each worker batches.  Speed-ups stay relative to
the in-process ASE loop of the same run.

``--model sevennet`` runs the same rows with SevenNet-0: the loop through
``sevennet_tier(optimizer="FIRE")`` (sevenn's ASE calculator), the batches through
torch-sim's own ``SevenNetModel``.  ``--serial-n K`` relaxes only the first K
structures in the loop (a GPU loop of 200 does not fit one device call); speed-ups
are then structures per second against structures per second.

Pins torch to ``--threads`` (1) threads; run with ``OMP_NUM_THREADS=1``.  Needs only
this repo, torch-sim-atomistic and chgnet (and sevenn 0.12.1 for ``--model sevennet``).
JSON goes to ``--out``.

    OMP_NUM_THREADS=1 python benchmarks/batched.py --quick --out batched.json
    OMP_NUM_THREADS=1 python benchmarks/batched.py --n 16 --out batched.json
    python benchmarks/batched.py --device cuda --n 200 --out batched_gpu.json
    OMP_NUM_THREADS=1 python benchmarks/batched.py --model sevennet --n 200 --max-atoms 12 \
        --steps 30 --batch-sizes 8,32 --out batched_200_cpu_sevennet.json
"""

import argparse
import json
import platform
import sys
import time

import numpy as np

FORMULAS = ("SrTiO3", "Ca3Ti2O7")
MODELS = ("chgnet", "sevennet")


def loop_tier(model, fmax, steps, device):
    """The one-at-a-time ASE stage of ``model``, with FIRE as the batched path."""
    if model == "sevennet":
        from ase_fuse.calculators.sevennet import sevennet_tier
        return sevennet_tier(fmax=fmax, steps=steps, optimizer="FIRE", device=device)
    from ase_fuse.calculators.chgnet import chgnet_tier
    return chgnet_tier(fmax=fmax, steps=steps, optimizer="FIRE", device=device)


def warm_up(model, device, atoms):
    """Load both paths' models and run each once (not timed)."""
    from ase_fuse.calculators.batched import BatchedRelaxer
    from ase_fuse.calculators.tiers import TieredRelaxer
    TieredRelaxer([loop_tier(model, 0.05, 2, device)]).relax(atoms)
    BatchedRelaxer(model, steps=2, device=device).relax(atoms)


def make_structures(n, max_atoms, seed):
    from ase_fuse.generators import get
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        formula = FORMULAS[k % len(FORMULAS)]
        out.append(get("fuse")(formula, max_atoms=max_atoms, rng=rng).generate())
    return out


def summarise(results, wall, cpu):
    ok = [r for r in results if r.ok]
    return {"n": len(results), "wall_s": wall, "cpu_s": cpu,
            "energy_per_atom": [r.energy_per_atom for r in results],
            "converged_each": [bool(r.converged) for r in results], "per_s": len(results) / wall if wall > 0 else None,
            "relaxed": len(ok), "failed": len(results) - len(ok),
            "converged": sum(bool(r.converged) for r in ok),
            "steps": int(sum(r.steps for r in results))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="structures to relax")
    parser.add_argument("--model", choices=MODELS, default="chgnet",
                        help="chgnet, or sevennet (SevenNet-0)")
    parser.add_argument("--serial-n", type=int, default=None,
                        help="structures the ASE loop relaxes (the first K; default all)")
    parser.add_argument("--batch-sizes", default="1,2,4,8,16")
    parser.add_argument("--steps", type=int, default=100, help="FIRE step limit")
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--max-atoms", type=int, default=24)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-serial", action="store_true", help="skip the ASE loop")
    parser.add_argument("--stock", action="store_true",
                        help="also time the ASE loop with CHGNet's own evaluation "
                             "(two backward passes) as it was before chgnet_efs")
    parser.add_argument("--quick", action="store_true",
                        help="8 structures, batch sizes 1 and 8, 50 steps")
    parser.add_argument("--workers", type=int, default=0,
                        help="also run every row on a Dask LocalCluster of this many "
                             "worker processes")
    parser.add_argument("--out", default=None, help="JSON output file")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.batch_sizes, args.steps = min(args.n, 8), "1,8", min(args.steps, 50)
    sizes = [int(s) for s in args.batch_sizes.split(",") if s]

    if args.stock and args.model != "chgnet":
        parser.error("--stock is CHGNet's own evaluation: only with --model chgnet")
    import torch
    torch.set_num_threads(args.threads)
    from ase_fuse.calculators.batched import BatchedRelaxer
    from ase_fuse.calculators.tiers import TieredRelaxer

    structures = make_structures(args.n, args.max_atoms, args.seed)
    warm_up(args.model, args.device, structures[0])        # model load is not timed
    looped = structures[:args.serial_n] if args.serial_n else structures
    report = {"benchmark": "batched", "model": args.model, "n": args.n,
              "serial_n": len(looped), "steps": args.steps, "fmax": args.fmax,
              "max_atoms": args.max_atoms, "device": args.device, "threads": args.threads,
              "atoms": [len(a) for a in structures], "formulas": list(FORMULAS),
              "machine": platform.platform(), "python": sys.version.split()[0],
              "torch": torch.__version__, "runs": []}
    if args.device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(0)

    serial = None
    if not args.no_serial:
        relaxer = TieredRelaxer([loop_tier(args.model, args.fmax, args.steps, args.device)])
        t0, c0 = time.perf_counter(), time.process_time()
        serial = [relaxer.relax(a) for a in looped]
        row = {"mode": "ase-loop", "batch_size": 1,
               **summarise(serial, time.perf_counter() - t0, time.process_time() - c0)}
        report["runs"].append(row)
        print_row(row, None)
    if args.stock and serial is not None:
        from ase_fuse.calculators.chgnet import chgnet_calculator
        from ase_fuse.calculators.tiers import Tier
        stock = TieredRelaxer([Tier(lambda: chgnet_calculator(device=args.device,
                                                              fast=False),
                                    fmax=args.fmax, steps=args.steps, name="chgnet")])
        t0, c0 = time.perf_counter(), time.process_time()
        results = [stock.relax(a) for a in looped]
        row = {"mode": "ase-stock", "batch_size": 1,
               **summarise(results, time.perf_counter() - t0, time.process_time() - c0)}
        compare(row, report["runs"][0], results, serial)
        report["runs"].append(row)
        print_row(row, serial)
    for size in sizes:
        relaxer = BatchedRelaxer(args.model, fmax=args.fmax, steps=args.steps,
                                 batch_size=size, device=args.device)
        t0, c0 = time.perf_counter(), time.process_time()
        results = relaxer.relax_many(structures)
        row = {"mode": "batched", "batch_size": size,
               **summarise(results, time.perf_counter() - t0, time.process_time() - c0),
               "model_calls": relaxer.model_calls}
        if serial is not None:
            compare(row, report["runs"][0], results, serial)
        report["runs"].append(row)
        print_row(row, serial)
    if args.workers:
        run_on_workers(args, structures, report, serial, sizes)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=1)
    return report


def _warm_worker(threads, device, model="chgnet"):
    import torch
    torch.set_num_threads(threads)
    warm_up(model, device, make_structures(1, 12, 0)[0])
    return torch.get_num_threads()


def run_on_workers(args, structures, report, serial, sizes):
    """The loop and each batch size through ``relax_structures`` on a LocalCluster."""
    import distributed

    from ase_fuse.calculators.batched import BatchedRelaxer
    from ase_fuse.calculators.tiers import TieredRelaxer
    from ase_fuse.executors import relax_structures
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                  processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        threads = client.run(_warm_worker, args.threads, args.device, args.model)  # not timed
        report["worker_threads"] = sorted(threads.values())
        executor = client.get_executor()
        relaxers = [] if args.no_serial else [("ase-loop", 1, TieredRelaxer([loop_tier(
            args.model, args.fmax, args.steps, args.device)]))]
        relaxers += [("batched", size, BatchedRelaxer(args.model, fmax=args.fmax,
                                                      steps=args.steps, batch_size=size,
                                                      device=args.device))
                     for size in sizes]
        for mode, size, relaxer in relaxers:
            t0 = time.perf_counter()
            batch = structures[:args.serial_n] if mode == "ase-loop" and args.serial_n \
                else structures
            results = relax_structures(relaxer, batch, executor)
            wall = time.perf_counter() - t0
            row = {"mode": mode, "batch_size": size, "workers": args.workers,
                   **summarise(results, wall, None)}   # CPU time is spent in the workers
            if serial is not None:
                compare(row, report["runs"][0], results, serial)
            report["runs"].append(row)
            print_row(row, serial)


def compare(row, baseline, results, serial):
    """Speed-ups over the ASE-loop row (per structure: the loop may relax fewer) and the
    energy gap over structures both converged."""
    per = lambda r, key: r[key] / r.get("n", 1)  # noqa: E731
    row["speedup"] = per(baseline, "wall_s") / per(row, "wall_s")
    if row["cpu_s"]:
        row["cpu_speedup"] = per(baseline, "cpu_s") / per(row, "cpu_s")
    diffs = [abs(r.energy_per_atom - s.energy_per_atom) * 1000
             for r, s in zip(results, serial) if r.converged and s.converged]
    row["max_dE_meV_per_atom"] = max(diffs) if diffs else None


def print_row(row, serial):
    if row["mode"] == "ase-loop" and not row.get("workers"):
        print("speed-up: per structure, relative to the ase-loop row (ASE FIRE, one "
              "structure at a time; CHGNet through chgnet_efs, SevenNet through sevenn's "
              "calculator); ase-stock: the CHGNet loop with CHGNet's own evaluation")
        print(f"{'mode':<12} {'batch':>5} {'wall s':>8} {'cpu s':>8} {'struct/s':>9} "
              f"{'speed-up':>9} {'cpu x':>6} {'steps':>6} {'ok':>4} {'conv':>5} "
              f"{'max dE meV/at':>14}")
    speedup = f"{row.get('speedup', 1.0):9.2f}"
    cpu_x = (f"{row['cpu_speedup']:6.2f}" if "cpu_speedup" in row
             else f"{'-' if row['cpu_s'] is None else '1.00':>6}")
    d_e = row.get("max_dE_meV_per_atom")
    mode = row["mode"] + (f" x{row['workers']}" if row.get("workers") else "")
    cpu = f"{row['cpu_s']:8.1f}" if row["cpu_s"] is not None else f"{'-':>8}"
    print(f"{mode:<12} {row['batch_size']:>5} {row['wall_s']:8.1f} {cpu} "
          f"{row['per_s']:9.3f} {speedup} {cpu_x} {row['steps']:6d} {row['relaxed']:4d} "
          f"{row['converged']:5d} "
          f"{(f'{d_e:.3f}' if d_e is not None else '-'):>14}", flush=True)


if __name__ == "__main__":
    main()
