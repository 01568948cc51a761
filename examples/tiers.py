"""Build your own calculator chain: proxy pre-relaxation, then CHGNet.

    python examples/tiers.py
"""
from ase_fuse import FuseBasinHopping
from ase_fuse.calculators import ProxyPotential, Tier, TieredRelaxer
from ase_fuse.calculators.chgnet import chgnet_calculator

composition = "SrTiO3"
relaxer = TieredRelaxer([
    Tier(ProxyPotential.for_composition(composition), fmax=0.1, steps=500, name="proxy"),
    Tier(chgnet_calculator, fmax=0.05, steps=300, name="chgnet"),   # a factory: loads lazily
])
opt = FuseBasinHopping(composition, relaxer=relaxer, max_atoms=10, initial_population=4,
                       seed=1, directory="srtio3_run")
opt.run(steps=10)
for tier in relaxer.relax(opt.best_atoms).tiers:   # time per structure per tier
    print(tier)
