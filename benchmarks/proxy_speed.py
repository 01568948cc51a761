"""Timing of the proxy tier: energy+forces(+stress) per call and one full relaxation.

    OMP_NUM_THREADS=1 python benchmarks/proxy_speed.py --out proxy_speed.json

Cells are random MgO arrangements at a realistic density (the default radius-based
potential, with and without a DSF Coulomb part on +2/-2 charges).  Each timing is
the median over ``--repeats`` calls on slightly rattled copies, so no cached result
is reused.
"""

import argparse
import json
import os
import platform
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.filters import FrechetCellFilter  # noqa: E402
from ase.optimize import FIRE  # noqa: E402

from ase_fuse.calculators.proxy import ProxyPotential  # noqa: E402
from ase_fuse.composition import Composition  # noqa: E402


def random_cell(n, rng, density=1.6):
    """``n`` atoms of MgO at ``density`` times the volume of their spheres."""
    comp = Composition("MgO")
    volume = density * comp.sphere_volume(n // 2)
    return Atoms(comp.symbols(n // 2), scaled_positions=rng.random((n, 3)),
                 cell=np.full(3, volume ** (1 / 3)), pbc=True)


def time_calls(atoms, calc, repeats, rng, stress=True):
    times = []
    for _ in range(repeats):
        work = atoms.copy()
        work.rattle(0.01, rng=rng)
        work.calc = calc
        start = time.perf_counter()
        work.get_potential_energy()
        work.get_forces()
        if stress:
            work.get_stress()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    plain = ProxyPotential.for_composition("MgO")
    ionic = ProxyPotential(plain.terms, charges={"Mg": 2.0, "O": -2.0})
    rows = []
    for n in (10, 50, 100):
        atoms = random_cell(n, rng)
        for label, calc in (("default", plain), ("default+coulomb", ionic)):
            ef = time_calls(atoms, calc, args.repeats, rng, stress=False)
            efs = time_calls(atoms, calc, args.repeats, rng, stress=True)
            rows.append({"atoms": n, "potential": label, "energy_forces_ms": 1e3 * ef,
                         "energy_forces_stress_ms": 1e3 * efs})
    relax_atoms = random_cell(50, rng, density=3.0)
    relax_atoms.calc = plain
    volume0 = relax_atoms.get_volume()
    start = time.perf_counter()
    with warnings.catch_warnings():  # scipy's logm accuracy notes from the cell filter
        warnings.simplefilter("ignore", RuntimeWarning)
        opt = FIRE(FrechetCellFilter(relax_atoms), logfile=None)
        opt.run(fmax=0.05, steps=2000)
    relax = {"atoms": 50, "potential": "default", "seconds": time.perf_counter() - start,
             "steps": opt.nsteps, "fmax": 0.05,
             "volume_ratio": relax_atoms.get_volume() / volume0}

    print(f"{'atoms':>5}  {'potential':<16} {'E+F ms':>8} {'E+F+S ms':>9}")
    for row in rows:
        print(f"{row['atoms']:>5}  {row['potential']:<16} {row['energy_forces_ms']:>8.3f} "
              f"{row['energy_forces_stress_ms']:>9.3f}")
    print(f"relaxation of a random 50-atom cell (FIRE + FrechetCellFilter, fmax 0.05): "
          f"{relax['seconds']:.2f} s, {relax['steps']} steps")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"python": platform.python_version(), "machine": platform.machine(),
                       "calls": rows, "relaxation": relax}, handle, indent=2)


if __name__ == "__main__":
    main()
