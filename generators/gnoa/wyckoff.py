"""Light Wyckoff positions for the GN-OA search space.

The search space needs, per space group, each Wyckoff position's multiplicity, its
number of free coordinates, its letter, and its symmetry operations to place an
orbit.  PyXtal's ``Group`` also builds every position's site-symmetry operations,
about 7 ms a group on one core (1.5 s for the 229 groups a search space screens
before its first evaluation, every run).  Here only the operations are read, from
PyXtal's own table (``pyxtal.symmetry.get_wyckoffs``), and only for the groups a
search touches: the same orbits, numbers bit for bit (``tests/test_gnoa_space.py``
compares every position of every group with PyXtal's ``Wyckoff_position``).
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

LETTERS = "abcdefghijklmnopqrstuvwxyzA"

#: the last space-group number of each crystal family's range (International Tables)
_SYSTEMS = ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"),
            (142, "tetragonal"), (167, "trigonal"), (194, "hexagonal"), (230, "cubic"))


def lattice_system(number):
    """``"triclinic"`` ... ``"cubic"`` for a space-group number 1-230."""
    number = int(number)
    if not 1 <= number <= 230:
        raise ValueError(f"space groups are 1-230, got {number}")
    return next(name for last, name in _SYSTEMS if number <= last)


@dataclass(frozen=True, eq=False)
class WyckoffSite:
    """One Wyckoff position of a space group.

    ``affine`` holds its operations as 4x4 affine matrices (the first one maps the
    free coordinates to a representative point); ``free_axes`` are the axes of the
    representative point that take free coordinates, in order.
    """
    number: int
    index: int
    letter: str
    affine: np.ndarray
    free_axes: tuple

    @property
    def multiplicity(self):
        return len(self.affine)

    @property
    def dof(self):
        return len(self.free_axes)

    @property
    def label(self):
        """``"4a"``: multiplicity and letter."""
        return f"{self.multiplicity}{self.letter}"

    def orbit(self, free):
        """Fractional coordinates (multiplicity x 3, not wrapped) of the orbit whose
        representative takes the free coordinates ``free`` (``dof`` numbers)."""
        point = np.zeros(3)
        for axis, value in zip(self.free_axes, free):
            point[axis] = value
        point = self._apply(point)[0]
        if self.free_axes:
            point -= np.floor(point)
        return self._apply(point)

    def _apply(self, point):
        homogeneous = np.concatenate([np.asarray(point, dtype=float), [1.0]])
        return np.inner(homogeneous, self.affine)[..., :-1]


def _free_axes(number, index, rotation):
    """Axes of the representative point that carry the free coordinates.

    The general position (index 0) takes x, y and z.  A special position with
    ``d`` free coordinates takes them on the axes its first operation keeps: for
    tetragonal and higher groups, the axes whose diagonal entry is non-zero; below,
    the ``d`` axes whose diagonal entry is 1, taken from z downwards when ``d`` is 1
    and from x upwards when ``d`` is 2 (PyXtal's convention, which fixes the orbit a
    point of the search space decodes to).
    """
    dof = int(np.linalg.matrix_rank(rotation))
    if index == 0:
        return (0, 1, 2)
    if dof == 0:
        return ()
    diagonal = np.diag(rotation)
    if number >= 75:
        return tuple(ax for ax in range(3) if diagonal[ax] != 0)
    if dof == 1:
        for ax in (2, 1, 0):
            if diagonal[ax] == 1:
                return (ax,)
    else:
        for frozen in (2, 1, 0):
            if diagonal[frozen] != 1:
                return tuple(ax for ax in range(3) if ax != frozen)
    raise ValueError(f"group {number} position {index}: no free axes for {rotation.tolist()}")


@lru_cache(maxsize=None)
def wyckoff_sites(number):
    """The Wyckoff positions of space group ``number`` (general position first)."""
    from pyxtal.symmetry import get_wyckoffs
    positions = get_wyckoffs(int(number))
    n = len(positions)
    sites = []
    for index, ops in enumerate(positions):
        affine = np.array([op.affine_matrix for op in ops])
        affine.setflags(write=False)
        sites.append(WyckoffSite(int(number), index, LETTERS[n - 1 - index], affine,
                                 _free_axes(int(number), index, affine[0][:3, :3])))
    return tuple(sites)
