"""AIRSS-style random search, one process: the race's second contestant.

    python benchmarks/airss.py FORMULA --max-atoms N --seed S --time-limit T -o FOLDER

Draws random symmetric structures with PyXtal (space group 2-230 and the number of
formula units, up to ``--max-atoms``, drawn with a numpy Generator seeded by
``--seed``) and relaxes each with CHGNet: FIRE with a Frechet cell filter, fmax
0.05 eV/A, at most 300 steps, through ``ase_fuse.calculators.TieredRelaxer`` (the
guards ``ase-fuse run`` uses: collapsed or exploded cells, atoms too close, isolated
atoms, NaN or huge forces, the time limit).  ``--calculator proxy`` relaxes with
ase-fuse's proxy pair potential instead (tests).

Writes ``FOLDER/airss.jsonl`` as it goes, one JSON line per finished relaxation, so
a killed run keeps everything: ``i``, ``t`` (seconds since this process started,
imports and model load included), ``finished_at`` (unix time), ``space_group``,
``z``, ``natoms``, ``energy_per_atom`` (None when failed), ``ml_steps`` (optimiser
steps of the non-proxy tiers), ``steps``, ``tiers`` (name, steps, wall_time,
converged, failed), ``failed`` (None or the reason) and ``extxyz`` (the relaxed
structure, or the last good geometry of a failed one).  ``airss_meta.json`` (written
at the start) holds the settings, ``airss_done.json`` (at a clean end) the counts.
No relaxation starts after the time limit; the one running is cut at it.
"""

import time

STARTED = time.time()  # the process's clock starts before the imports

import os  # noqa: E402

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

FMAX, STEPS = 0.05, 300


def elapsed():
    return time.time() - STARTED


def make_relaxer(formula, calculator="chgnet", threads=1):
    """The relaxer of every structure: one CHGNet tier (or the proxy, for tests)."""
    from ase_fuse.calculators import TieredRelaxer
    from ase_fuse.calculators.stacks import build_stack
    if calculator == "proxy":
        return build_stack("proxy", formula)
    import torch
    if threads:
        torch.set_num_threads(threads)
    from ase_fuse.calculators.chgnet import chgnet_tier
    return TieredRelaxer([chgnet_tier(fmax=FMAX, steps=STEPS, optimizer="FIRE")])


def species_counts(composition, z):
    return ([str(el) for el in composition.elements],
            [int(composition.counts[el]) * z for el in composition.elements])


def random_structure(composition, z_values, rng):
    """``(atoms, space group, z)`` from pyxtal, or ``(None, group, z)`` when the draw
    cannot be placed (Wyckoff-incompatible counts, too crowded)."""
    from pyxtal import pyxtal
    z = int(rng.choice(z_values))
    group = int(rng.integers(2, 231))
    species, counts = species_counts(composition, z)
    crystal = pyxtal()
    try:
        crystal.from_random(3, group, species, counts,
                            random_state=int(rng.integers(2 ** 31)))
    except Exception:  # pyxtal raises many kinds for counts its Wyckoff sets cannot hold
        return None, group, z
    if not crystal.valid:
        return None, group, z
    return crystal.to_ase(), group, z


def as_extxyz(atoms):
    from ase.io import write
    plain = atoms.copy()
    plain.calc = None
    buffer = io.StringIO()
    write(buffer, plain, format="extxyz")
    return buffer.getvalue()


def ml_steps(tiers):
    return int(sum(t.get("steps", 0) or 0 for t in tiers if t.get("name") != "proxy"))


def tier_dicts(result):
    return [{"name": r.name, "steps": int(r.steps), "wall_time": float(r.wall_time),
             "converged": bool(r.converged), "failed": r.failed} for r in result.tiers]


def run(formula, max_atoms, seed, time_limit, folder, calculator="chgnet", threads=1):
    """The search; returns the counts also written to ``airss_done.json``."""
    from ase_fuse.composition import Composition
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    composition = Composition(formula)
    z_values = composition.formula_units(max_atoms)
    rng = np.random.default_rng(seed)
    meta = {"formula": formula, "max_atoms": max_atoms, "seed": seed,
            "time_limit": time_limit, "calculator": calculator, "threads": threads,
            "fmax": FMAX, "steps": STEPS, "optimizer": "FIRE", "cell_filter": "frechet",
            "formula_units": z_values, "started_at": STARTED, "pid": os.getpid()}
    (folder / "airss_meta.json").write_text(json.dumps(meta, indent=1))
    relaxer = make_relaxer(formula, calculator, threads)
    drawn = unplaced = relaxed = failed = 0
    with open(folder / "airss.jsonl", "a") as out:
        while elapsed() < time_limit:
            drawn += 1
            atoms, group, z = random_structure(composition, z_values, rng)
            if atoms is None or len(atoms) > max_atoms:
                unplaced += 1
                continue
            relaxer.time_limit = max(time_limit - elapsed(), 1.0)
            result = relaxer.relax(atoms)
            tiers = tier_dicts(result)
            line = {"i": relaxed + failed, "t": round(elapsed(), 3),
                    "finished_at": time.time(), "space_group": group, "z": z,
                    "natoms": len(atoms),
                    "energy_per_atom": None if result.failed
                    else float(result.energy_per_atom),
                    "ml_steps": ml_steps(tiers), "steps": int(sum(t["steps"] for t in tiers)),
                    "tiers": tiers, "failed": result.failed,
                    "extxyz": as_extxyz(result.atoms if result.atoms is not None else atoms)}
            out.write(json.dumps(line) + "\n")
            out.flush()
            if result.failed:
                failed += 1
            else:
                relaxed += 1
    done = {"drawn": drawn, "unplaced": unplaced, "relaxed": relaxed, "failed": failed,
            "wall_s": elapsed()}
    (folder / "airss_done.json").write_text(json.dumps(done, indent=1))
    return done


def read_lines(path):
    """The rows of an ``airss.jsonl`` (a half-written last line, from a kill, skipped)."""
    rows = []
    path = Path(path)
    if not path.exists():
        return rows
    for text in path.read_text().splitlines():
        try:
            rows.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return rows


def structure_of(row):
    from ase.io import read
    return read(io.StringIO(row["extxyz"]), format="extxyz")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("formula")
    p.add_argument("--max-atoms", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, required=True,
                   help="seconds from this process's start")
    p.add_argument("-o", "--output", required=True, help="folder for airss.jsonl")
    p.add_argument("--calculator", choices=["chgnet", "proxy"], default="chgnet")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    done = run(args.formula, args.max_atoms, args.seed, args.time_limit, args.output,
               args.calculator, args.threads)
    print(json.dumps(done))


if __name__ == "__main__":
    main()
