"""spglib symmetrisation of candidates before relaxation (relaxation itself runs in P1).

spglib 2.x wants a ``(cell, positions, numbers)`` tuple, never ``Atoms``; both
functions here build that tuple.  Symmetrisation keeps the cell and the number of
atoms (it refines cell and positions to the symmetry found within ``symprec``).  A
failure never passes silently: the caller gets the unsymmetrised structure and the
reason to log.
"""

import numpy as np
import spglib

try:  # spglib >= 2.5 raises its own errors (e.g. "too close distance between atoms")
    from spglib.error import SpglibError
except ImportError:  # older spglib returns None instead
    class SpglibError(Exception):
        """Placeholder: never raised by an spglib without an error module."""


def spglib_cell(atoms):
    return (np.asarray(atoms.cell.array), atoms.get_scaled_positions(wrap=True),
            np.asarray(atoms.numbers))


def space_group(atoms, symprec=1e-3):
    """International symbol and number, e.g. ``("Fm-3m", 225)``; ``(None, 0)`` if none found."""
    try:
        dataset = spglib.get_symmetry_dataset(spglib_cell(atoms), symprec=symprec)
    except SpglibError:
        return None, 0
    if dataset is None:
        return None, 0
    return dataset.international, int(dataset.number)


def symmetrize(atoms, symprec=0.1):
    """Return ``(new_atoms, spacegroup_number, error)``.

    ``new_atoms`` is a refined copy (or an unchanged copy when symmetrisation fails,
    then ``error`` says why).
    """
    from ase.spacegroup.symmetrize import refine_symmetry

    new = atoms.copy()
    new.calc = None
    try:
        dataset = spglib.get_symmetry_dataset(spglib_cell(new), symprec=symprec)
        if dataset is None:
            return new, 0, f"spglib found no symmetry at symprec={symprec}"
        refine_symmetry(new, symprec=symprec, verbose=False)
    except (SpglibError, RuntimeError, ValueError, TypeError,
            np.linalg.LinAlgError) as err:
        return atoms.copy(), 0, f"symmetrisation failed: {err}"
    if len(new) != len(atoms) or not np.all(np.isfinite(new.positions)):
        return atoms.copy(), 0, "symmetrisation changed the structure's size"
    return new, int(dataset.number), None
