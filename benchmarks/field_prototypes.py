"""Known Ni-Al-Ti structures, built from published lattice constants and Wyckoff sites,
relaxed with the field's calculator: did the search reach the calculator's own ground
state, and does the calculator order the known structures as experiment does?

Lattice constants are the experimental ones (Pearson's Handbook / the Strukturbericht
prototypes); the relaxation moves them to the calculator's own.
"""

from ase.build import bulk
from ase.spacegroup import crystal


def _cub(symbols, basis, group, a):
    return crystal(symbols, basis, spacegroup=group, cellpar=[a, a, a, 90, 90, 90],
                   primitive_cell=True)


def _hex(symbols, basis, a, c, group=194):
    return crystal(symbols, basis, spacegroup=group, cellpar=[a, a, c, 90, 90, 120],
                   primitive_cell=True)


#: formula -> [(structure name, builder)]; the experimental ground state first
PROTOTYPES = {
    "Ni": [("fcc", lambda: bulk("Ni", "fcc", a=3.524))],
    "Al": [("fcc", lambda: bulk("Al", "fcc", a=4.050))],
    "Ti": [("hcp", lambda: bulk("Ti", "hcp", a=2.951, c=4.686)),
           ("omega", lambda: _hex(["Ti", "Ti"], [(0, 0, 0), (1 / 3, 2 / 3, 0.5)],
                                  4.625, 2.813, group=191)),
           ("fcc", lambda: bulk("Ti", "fcc", a=4.12))],
    "NiAl": [("B2", lambda: _cub(["Ni", "Al"], [(0, 0, 0), (0.5, 0.5, 0.5)], 221, 2.887))],
    "Ni3Al": [("L1_2", lambda: _cub(["Al", "Ni"], [(0, 0, 0), (0, 0.5, 0.5)], 221, 3.572)),
              ("D0_22", lambda: crystal(["Al", "Ni", "Ni"],
                                        [(0, 0, 0), (0, 0, 0.5), (0, 0.5, 0.25)],
                                        spacegroup=139,
                                        cellpar=[3.57, 3.57, 7.14, 90, 90, 90],
                                        primitive_cell=True))],
    "TiAl": [("L1_0", lambda: crystal(["Ti", "Al"], [(0, 0, 0), (0.5, 0.5, 0.5)],
                                      spacegroup=123, cellpar=[2.829, 2.829, 4.071, 90, 90, 90]))],
    "TiAl3": [("D0_22", lambda: crystal(["Ti", "Al", "Al"],
                                        [(0, 0, 0), (0, 0, 0.5), (0, 0.5, 0.25)],
                                        spacegroup=139,
                                        cellpar=[3.848, 3.848, 8.596, 90, 90, 90],
                                        primitive_cell=True)),
              ("L1_2", lambda: _cub(["Ti", "Al"], [(0, 0, 0), (0, 0.5, 0.5)], 221, 3.97))],
    "Ti3Al": [("D0_19", lambda: _hex(["Al", "Ti"], [(1 / 3, 2 / 3, 0.25),
                                                     (5 / 6, 2 / 3, 0.25)], 5.780, 4.647)),
              ("L1_2", lambda: _cub(["Al", "Ti"], [(0, 0, 0), (0, 0.5, 0.5)], 221, 4.10))],
    "NiTi": [("B2", lambda: _cub(["Ni", "Ti"], [(0, 0, 0), (0.5, 0.5, 0.5)], 221, 3.015))],
    "Ni3Ti": [("D0_24", lambda: _hex(["Ti", "Ti", "Ni", "Ni"],
                                     [(0, 0, 0), (1 / 3, 2 / 3, 0.25), (0.5, 0, 0),
                                      (5 / 6, 2 / 3, 0.25)], 5.101, 8.307)),
              ("L1_2", lambda: _cub(["Ti", "Ni"], [(0, 0, 0), (0, 0.5, 0.5)], 221, 3.62))],
    "Ni2TiAl": [("L2_1", lambda: _cub(["Ni", "Ti", "Al"],
                                      [(0.25, 0.25, 0.25), (0, 0, 0), (0.5, 0.5, 0.5)],
                                      225, 5.866))],
}


def relax_prototypes(stack, formulas, fmax=0.02, steps=500):
    """``{formula: [(name, natoms, energy per atom or None, reason)]}`` relaxed with the
    named stack's tiers (cell and positions)."""
    from ase_fuse.calculators.stacks import build_stack
    out = {}
    for formula in formulas:
        rows = []
        for name, build in PROTOTYPES.get(formula, []):
            atoms = build()
            relaxer = build_stack(stack, formula)
            result = relaxer.relax(atoms)
            rows.append((name, len(atoms),
                         None if result.failed else float(result.energy_per_atom),
                         result.failed))
        out[formula] = rows
    return out
