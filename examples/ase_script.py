"""FUSE basin hopping dropped into an ordinary ASE script.

Any ASE calculator works; here EMT on silver, so it runs in seconds anywhere:
    python examples/ase_script.py
"""
from ase.calculators.emt import EMT
from ase.visualize.plot import plot_atoms  # noqa: F401  (any ASE tool works on the result)

from ase_fuse import FuseBasinHopping

opt = FuseBasinHopping("Ag", calculator=EMT(), max_atoms=4, initial_population=4,
                       seed=7, directory="ag_run", logfile="-",
                       trajectory="ag_run/best.traj")
opt.attach(lambda: print(f"  -> best so far {opt.best_energy:.4f} eV/atom"), interval=5)
opt.run(steps=15)
print(opt.best_atoms.cell.cellpar().round(2), opt.best_atoms.get_potential_energy())
