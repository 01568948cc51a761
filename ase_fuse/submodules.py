"""Sub-module description of crystals: decompose any cell onto a grid and back.

A crystal is a grid of ``na x nb x nc`` sub-modules (small cells of about
``Ip x Ip x Ip/2``); the layers of the grid along c are the *modules*.  Every atom
belongs to exactly one sub-module: ``index[n]`` is the grid cell of atom ``n`` and
``local[n]`` its fractional position inside that sub-module, in ``[0, 1)``.

``decompose(atoms, composition)`` and ``SubmoduleGrid.assemble()`` round-trip
exactly (same cell, same atoms in the same order, same positions), so any
structure, random, ML-made or read from a file, can enter the search.
"""

import numpy as np
from ase import Atoms

#: FUSE's four sub-module sites (fractional, within one sub-module).
SITES = np.array([[0.0, 0.0, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.5], [0.0, 0.5, 0.5]])

_EPS = 1e-9


def grid_shape(cell_lengths, ip):
    """Sub-module grid that fits a cell: ``round(a/Ip), round(b/Ip), round(2c/Ip)``, each >= 1."""
    a, b, c = cell_lengths
    return tuple(max(1, int(round(x))) for x in (a / ip, b / ip, 2.0 * c / ip))


class SubmoduleGrid:
    """A crystal as a grid of sub-modules.

    Parameters
    ----------
    cell : (3, 3) array
        Cell of the whole crystal (rows are a, b, c).
    grid : tuple of 3 ints
        Number of sub-modules along a, b, c.
    symbols : list of str
        Chemical symbol of each atom.
    index : (n, 3) int array
        Sub-module of each atom.
    local : (n, 3) float array
        Fractional position of each atom inside its sub-module, in [0, 1).
    offsets : (n, 3) int array, optional
        Periodic image each atom was taken from, so that a decomposed structure
        reassembles to its exact positions (moves drop it: new structures are wrapped).
    """

    def __init__(self, cell, grid, symbols, index, local, pbc=True, offsets=None):
        self.cell = np.array(cell, dtype=float).reshape(3, 3)
        self.grid = tuple(int(g) for g in grid)
        if any(g < 1 for g in self.grid):
            raise ValueError(f"grid must be positive, got {self.grid}")
        self.symbols = list(symbols)
        n = len(self.symbols)
        self.index = np.array(index, dtype=int).reshape(n, 3)
        self.local = np.array(local, dtype=float).reshape(n, 3)
        self.pbc = pbc
        self.offsets = None if offsets is None else np.array(offsets, dtype=int).reshape(n, 3)
        if n and (np.any(self.index < 0) or np.any(self.index >= np.array(self.grid))):
            raise ValueError("sub-module index outside the grid")

    # -- facts ------------------------------------------------------------------
    def __len__(self):
        return len(self.symbols)

    def __repr__(self):
        return (f"SubmoduleGrid(grid={self.grid}, atoms={len(self)}, "
                f"submodules={self.n_submodules})")

    @property
    def n_submodules(self):
        return int(np.prod(self.grid))

    @property
    def n_modules(self):
        """Number of modules (layers of sub-modules along c)."""
        return self.grid[2]

    @property
    def submodule_cell(self):
        """Cell of one sub-module (the crystal cell's rows divided by the grid)."""
        return self.cell / np.array(self.grid, dtype=float)[:, None]

    def flat_index(self):
        """Sub-module of each atom as one integer ``(i * nb + j) * nc + k``."""
        return np.ravel_multi_index(self.index.T, self.grid) if len(self) else np.zeros(0, int)

    def atoms_in(self, submodule):
        """Indices of the atoms in sub-module ``(i, j, k)``."""
        return np.flatnonzero(np.all(self.index == np.asarray(submodule), axis=1))

    def atoms_in_module(self, k):
        """Indices of the atoms in module (layer) ``k``."""
        return np.flatnonzero(self.index[:, 2] == k)

    def occupancy(self):
        """Number of atoms in each sub-module, as an array of shape ``grid``."""
        counts = np.zeros(self.grid, dtype=int)
        np.add.at(counts, tuple(self.index.T), 1)
        return counts

    def fractional(self):
        """Fractional coordinates of each atom in the whole cell."""
        frac = (self.index + self.local) / np.array(self.grid, dtype=float)
        if self.offsets is not None:
            frac = frac + self.offsets
        return frac

    # -- building -----------------------------------------------------------------
    def assemble(self, info=None):
        """The crystal as ASE ``Atoms``, with its sub-module description in ``info``."""
        atoms = Atoms(self.symbols, scaled_positions=np.zeros((len(self), 3)),
                      cell=self.cell, pbc=self.pbc)
        atoms.positions = self.fractional() @ self.cell
        atoms.info.update(info or {})
        atoms.info["submodule_grid"] = list(self.grid)
        return atoms

    def copy(self):
        return SubmoduleGrid(self.cell, self.grid, self.symbols, self.index.copy(),
                             self.local.copy(), self.pbc,
                             None if self.offsets is None else self.offsets.copy())

    def wrapped(self):
        """A copy without periodic-image offsets (positions wrapped into the cell)."""
        new = self.copy()
        new.offsets = None
        return new

    def with_cell(self, cell, grid=None):
        """Same sub-modules and local positions in a new cell (and optionally grid)."""
        new = self.wrapped()
        new.cell = np.array(cell, dtype=float).reshape(3, 3)
        if grid is not None:
            new.grid = tuple(int(g) for g in grid)
        return new


def decompose(atoms, composition=None, ip=None, grid=None):
    """Slice ``atoms`` into a :class:`SubmoduleGrid`.

    The grid is ``round(a/Ip) x round(b/Ip) x round(2c/Ip)`` (each at least 1),
    with ``Ip`` from ``composition`` (a :class:`~ase_fuse.composition.Composition`
    or formula) unless ``ip`` or an explicit ``grid`` is given.  Angles are inherited;
    c is the stacking direction.  Each atom lands in exactly one sub-module.
    """
    if grid is None:
        if ip is None:
            if composition is None:
                raise ValueError("decompose needs a composition, ip or grid")
            from .composition import Composition
            ip = Composition(composition).ip
        grid = grid_shape(atoms.cell.lengths(), ip)
    grid = np.array(grid, dtype=int)
    frac = atoms.cell.scaled_positions(atoms.positions)
    offsets = np.floor(frac + _EPS).astype(int)
    wrapped = frac - offsets
    scaled = wrapped * grid
    index = np.floor(scaled + _EPS).astype(int)
    index = np.clip(index, 0, grid - 1)
    local = scaled - index
    return SubmoduleGrid(atoms.cell.array, tuple(grid), atoms.get_chemical_symbols(),
                         index, local, pbc=atoms.pbc.copy(), offsets=offsets)
