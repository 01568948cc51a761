"""Dense half neighbour lists for the small periodic cells of a structure search.

Vectorised over atom pairs x periodic image shifts: for cells of tens of atoms this is
several times faster than a binned list, and it works for any cell shape (the image
range along each periodic axis comes from the spacing of the lattice planes).
"""

import numpy as np


def neighbour_pairs(positions, cell, pbc, cutoff, max_work=None):
    """Half list ``(i, j, d)`` within ``cutoff``, ``d = r_j + shift - r_i`` (vectors).

    Each unordered pair, an atom with its own periodic images included, appears once.
    With ``max_work``, returns None instead when more than that many distances would
    be needed (the caller then uses a binned list).
    """
    from ase.geometry import complete_cell

    positions = np.asarray(positions, dtype=float)
    pbc = np.asarray(pbc, dtype=bool)
    n = len(positions)
    if pbc.any():
        cell = complete_cell(cell)
        frac = np.linalg.solve(cell.T, positions.T).T
        frac[:, pbc] %= 1.0
        positions = frac @ cell
        spacing = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)
        reps = np.where(pbc, np.ceil(cutoff / spacing), 0).astype(int)
    else:
        cell = np.zeros((3, 3))
        reps = np.zeros(3, dtype=int)
    if max_work is not None and int(np.prod(2 * reps + 1)) * n * (n + 1) // 2 > max_work:
        return None
    grids = [np.arange(-m, m + 1) for m in reps]
    shifts = np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, 3)
    vectors = shifts @ cell
    centre = len(shifts) // 2  # shifts are symmetric: k and len-1-k are opposite
    iu, ju = np.triu_indices(n)
    d0 = positions[ju] - positions[iu]
    r2 = (d0 * d0).sum(1)[:, None] + 2.0 * d0 @ vectors.T + (vectors * vectors).sum(1)
    inside = r2 < cutoff * cutoff
    inside[iu == ju, :centre + 1] = False  # self at zero shift, and each image pair once
    p, k = np.nonzero(inside)
    return iu[p], ju[p], d0[p] + vectors[k]
