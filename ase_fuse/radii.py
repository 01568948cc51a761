"""Radius tables used to size sub-modules and to judge contacts.

``ATOMIC_RADII`` are the atomic radii (Angstrom) tabulated by VESTA (its
``elements.ini``), which is what FUSE used: with them the FUSE2 paper's garnet
Ca3Al2Si3O12 gives a 4.24 A sub-module edge.  Elements VESTA leaves out fall back
to ASE's covalent radii.

Shannon ionic radii (oxidation states given) come from pymatgen, imported only then.
"""

from ase.data import atomic_numbers, covalent_radii

ATOMIC_RADII = {
    "H": 0.46, "He": 1.22, "Li": 1.57, "Be": 1.12, "B": 0.81, "C": 0.77,
    "N": 0.74, "O": 0.74, "F": 0.72, "Ne": 1.60, "Na": 1.91, "Mg": 1.60,
    "Al": 1.43, "Si": 1.18, "P": 1.10, "S": 1.04, "Cl": 0.99, "Ar": 1.92,
    "K": 2.35, "Ca": 1.97, "Sc": 1.64, "Ti": 1.47, "V": 1.35, "Cr": 1.29,
    "Mn": 1.37, "Fe": 1.26, "Co": 1.25, "Ni": 1.25, "Cu": 1.28, "Zn": 1.37,
    "Ga": 1.53, "Ge": 1.22, "As": 1.21, "Se": 1.04, "Br": 1.14, "Kr": 1.98,
    "Rb": 2.50, "Sr": 2.15, "Y": 1.82, "Zr": 1.60, "Nb": 1.47, "Mo": 1.40,
    "Tc": 1.35, "Ru": 1.34, "Rh": 1.34, "Pd": 1.37, "Ag": 1.44, "Cd": 1.52,
    "In": 1.67, "Sn": 1.58, "Sb": 1.41, "Te": 1.37, "I": 1.33, "Xe": 2.18,
    "Cs": 2.72, "Ba": 2.24, "La": 1.88, "Ce": 1.82, "Pr": 1.82, "Nd": 1.82,
    "Pm": 1.81, "Sm": 1.81, "Eu": 2.06, "Gd": 1.79, "Tb": 1.77, "Dy": 1.77,
    "Ho": 1.76, "Er": 1.75, "Tm": 1.00, "Yb": 1.94, "Lu": 1.72, "Hf": 1.59,
    "Ta": 1.47, "W": 1.41, "Re": 1.37, "Os": 1.35, "Ir": 1.36, "Pt": 1.39,
    "Au": 1.44, "Hg": 1.55, "Tl": 1.71, "Pb": 1.75, "Bi": 1.82, "Po": 1.77,
    "At": 0.62, "Rn": 0.80, "Fr": 1.00, "Ra": 2.35, "Ac": 2.03, "Th": 1.80,
    "Pa": 1.63, "U": 1.56, "Np": 1.56, "Pu": 1.64, "Am": 1.73,
}


def atomic_radius(symbol):
    """VESTA atomic radius of an element (Angstrom)."""
    try:
        return ATOMIC_RADII[symbol]
    except KeyError:
        return float(covalent_radii[atomic_numbers[symbol]])


def ionic_radius(symbol, oxidation_state):
    """Shannon ionic radius (Angstrom) of ``symbol`` in ``oxidation_state``.

    Falls back to the atomic radius for a zero oxidation state.  Raises
    ``KeyError`` when pymatgen has no radius for that ion.
    """
    if oxidation_state == 0:
        return atomic_radius(symbol)
    from pymatgen.core import Species

    radius = Species(symbol, oxidation_state).ionic_radius
    if radius is None:
        raise KeyError(f"no Shannon radius for {symbol}{oxidation_state:+d}")
    return float(radius)
