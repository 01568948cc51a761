"""The race's reference crystals: known structures of at most 10 primitive sites.

Each entry is ``(key, formula, source, primitive sites, kind)``; ``source`` is a CIF
under the shared references folder (``classic/...`` or ``cspml_dev/...``, read, never
copied) or ``built``: made here with ``ase.spacegroup.crystal`` / ``ase.build`` from
published lattice constants and Wyckoff sites (the citation is beside each builder).
The primitive size is checked with spglib when a reference is loaded.

SiO2 stishovite (a high-pressure phase, far above quartz in energy) is left out: by
the energy criterion of a hit almost any SiO2 structure would "find" it.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = REPO.parent / "shared" / "data" / "references"


def _nacl():
    # rock salt, a = 5.6402 A: R. W. G. Wyckoff, Crystal Structures vol. 1 (1963)
    from ase.build import bulk
    return bulk("NaCl", "rocksalt", a=5.6402, cubic=True)


def _caf2():
    # fluorite, Fm-3m, Ca 4a, F 8c, a = 5.4631 A (295 K): D. N. Batchelder and
    # R. O. Simmons, J. Chem. Phys. 41, 2324 (1964)
    from ase.spacegroup import crystal
    return crystal(["Ca", "F"], basis=[(0, 0, 0), (0.25, 0.25, 0.25)], spacegroup=225,
                   cellpar=[5.4631, 5.4631, 5.4631, 90, 90, 90])


def _cu2o():
    # cuprite, Pn-3m (origin choice 2), Cu 4b (0,0,0), O 2a (1/4,1/4,1/4),
    # a = 4.2696 A: R. W. G. Wyckoff, Crystal Structures vol. 1 (1963)
    from ase.spacegroup import crystal
    return crystal(["Cu", "O"], basis=[(0, 0, 0), (0.25, 0.25, 0.25)], spacegroup=224,
                   setting=2, cellpar=[4.2696, 4.2696, 4.2696, 90, 90, 90])


def _graphite():
    # hexagonal (AB) graphite, P6_3/mmc, C 2b (0,0,1/4) and 2c (1/3,2/3,1/4),
    # a = 2.464, c = 6.711 A: P. Trucano and R. Chen, Nature 258, 136 (1975)
    from ase.spacegroup import crystal
    return crystal(["C", "C"], basis=[(0, 0, 0.25), (1 / 3, 2 / 3, 0.25)],
                   spacegroup=194, cellpar=[2.464, 2.464, 6.711, 90, 90, 120])


def _mos2():
    # 2H-MoS2 (molybdenite), P6_3/mmc, Mo 2c (1/3,2/3,1/4), S 4f (1/3,2/3,z),
    # z = 0.621, a = 3.1604, c = 12.295 A: B. Schoenfeld, J. J. Huang and S. C. Moss,
    # Acta Cryst. B39, 404 (1983)
    from ase.spacegroup import crystal
    return crystal(["Mo", "S"], basis=[(1 / 3, 2 / 3, 0.25), (1 / 3, 2 / 3, 0.621)],
                   spacegroup=194, cellpar=[3.1604, 3.1604, 12.295, 90, 90, 120])


def _calcite():
    # calcite, R-3c (hexagonal axes), Ca 6b (0,0,0), C 6a (0,0,1/4), O 18e (x,0,1/4),
    # x = 0.25706, a = 4.9896, c = 17.0610 A: H. Effenberger, K. Mereiter and
    # J. Zemann, Z. Kristallogr. 156, 233 (1981)
    from ase.spacegroup import crystal
    return crystal(["Ca", "C", "O"], basis=[(0, 0, 0), (0, 0, 0.25), (0.25706, 0, 0.25)],
                   spacegroup=167, cellpar=[4.9896, 4.9896, 17.0610, 90, 90, 120])


BUILDERS = {"nacl": _nacl, "caf2": _caf2, "cu2o": _cu2o, "graphite": _graphite,
            "mos2": _mos2, "calcite": _calcite}

# key, formula, source, primitive sites, kind
REFERENCES = [
    ("nacl", "NaCl", "built", 2, "binary, ionic"),
    ("si", "Si", "classic/Si_diamond_pymatgen_util.cif", 2, "element, covalent"),
    ("mnal", "MnAl", "cspml_dev/MnAl.cif", 2, "binary, metallic (L1_0)"),
    ("caf2", "CaF2", "built", 3, "binary, ionic (fluorite)"),
    ("zns", "ZnS", "classic/ZnS_wurtzite_B4_expt_AFLOW.cif", 4, "binary, wurtzite"),
    ("graphite", "C", "built", 4, "element, covalent, layered"),
    ("srtio3", "SrTiO3", "classic/SrTiO3_cubic_pymatgen_util.cif", 5,
     "ternary, ionic perovskite"),
    ("rutile", "TiO2", "classic/TiO2_rutile_C4_expt_AFLOW.cif", 6, "binary, ionic"),
    ("cu2o", "Cu2O", "built", 6, "binary, cuprite"),
    ("mos2", "MoS2", "built", 6, "binary, layered (2H)"),
    ("la2cuo4", "La2CuO4", "cspml_dev/La2CuO4.cif", 7, "ternary, layered perovskite"),
    ("quartz", "SiO2", "classic/SiO2_alpha-quartz_expt_AFLOW.cif", 9,
     "binary, covalent network"),
    ("smznpd", "SmZnPd", "cspml_dev/SmZnPd.cif", 9, "ternary, metallic (ZrNiAl type)"),
    ("v5s4", "V5S4", "cspml_dev/V5S4.cif", 9, "binary, metallic sulfide"),
    ("corundum", "Al2O3", "classic/Al2O3_corundum_D51_expt_AFLOW.cif", 10,
     "binary, ionic"),
    ("calcite", "CaCO3", "built", 10, "ternary, carbonate"),
    ("cs3inf6", "Cs3InF6", "cspml_dev/Cs3InF6.cif", 10, "ternary, ionic"),
]
KEYS = [row[0] for row in REFERENCES]
QUICK = "nacl"  # built in code: the quick mode needs no shared file


def primitive_sites(atoms, symprec=1e-3):
    import spglib
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    prim = spglib.standardize_cell(cell, to_primitive=True, symprec=symprec)
    return len(prim[2]) if prim is not None else len(atoms)


def max_atoms_for(nprim):
    """The race's cell size limit: max(2n, n+4) for n primitive sites."""
    return max(2 * nprim, nprim + 4)


def entry(key):
    for row in REFERENCES:
        if row[0] == key:
            return row
    raise KeyError(f"unknown reference {key!r}; known: {', '.join(KEYS)}")


def load(key, folder=DEFAULT_FOLDER):
    """``(atoms, info)`` of reference ``key``; info = key, formula, source, nprim, kind,
    max_atoms.  Raises ValueError when the structure is not the table's."""
    from ase.io import read
    from pymatgen.core import Composition
    key, formula, source, nprim, kind = entry(key)
    if source == "built":
        atoms = BUILDERS[key]()
    else:
        path = Path(folder) / source
        if not path.is_file():
            raise FileNotFoundError(f"reference {key}: {path} not found (--references)")
        atoms = read(path)
    found = Composition(atoms.get_chemical_formula()).reduced_composition
    if found != Composition(formula).reduced_composition:
        raise ValueError(f"reference {key}: formula {found.formula}, table says {formula}")
    n = primitive_sites(atoms)
    if n != nprim:
        raise ValueError(f"reference {key}: {n} primitive sites, table says {nprim}")
    return atoms, {"key": key, "formula": formula, "source": source, "nprim": nprim,
                   "kind": kind, "max_atoms": max_atoms_for(nprim)}


def table_rows():
    return [[key, formula, source, nprim, max_atoms_for(nprim), kind]
            for key, formula, source, nprim, kind in REFERENCES]
