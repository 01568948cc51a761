"""A third-party generator plug-in: random close-packed-ish cells from ASE's bulk().

Register it in your own package's setup.cfg:

    [options.entry_points]
    ase_fuse.generators =
        mine = my_generator:BulkGenerator

and then ``ase-fuse generate Cu --generator mine`` or
``FuseBasinHopping("Cu", generator="mine")`` use it.
"""
import numpy as np
from ase.build import bulk

from ase_fuse import Composition


class BulkGenerator:
    """Rattled fcc/bcc/hcp cells of a pure element."""

    def __init__(self, composition, max_atoms=50, rng=None, seed=None):
        self.composition = Composition(composition)
        if not self.composition.is_element:
            raise ValueError("BulkGenerator makes elements only")
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.max_atoms = max_atoms

    def generate(self, formula_units=None):
        element = self.composition.elements[0]
        radius = self.composition.radii[element]
        kind = self.rng.choice(["fcc", "bcc", "hcp"])
        a = {"fcc": 2 ** 1.5 * radius, "bcc": 4 * radius / 3 ** 0.5, "hcp": 2 * radius}[kind]
        atoms = bulk(element, kind, a=a)
        atoms.rattle(0.05, seed=int(self.rng.integers(2**31)))
        atoms.info["origin"] = f"bulk-{kind}"
        return atoms

    def generate_many(self, n, formula_units=None):
        return [self.generate(formula_units) for _ in range(n)]
