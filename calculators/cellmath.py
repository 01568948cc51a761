"""The 3x3 matrix functions of ASE's ``FrechetCellFilter``, by eigendecomposition.

The filter takes the cell's degrees of freedom as the matrix logarithm of the
deformation gradient ``F``: every optimiser step calls ``logm(F)`` twice and the
Frechet derivative of ``expm`` nine times.  scipy's general-purpose versions cost
about 0.9 ms and 0.07 ms per call on a 3x3 matrix (norm estimates, Schur forms,
Python overhead): about 2 ms of a 19 ms CHGNet step on a 4-atom cell.  Here they
cost about 0.05 and 0.01 ms (scipy's ``expm``, already fast, is kept).

For a diagonalisable ``F = V diag(w) V^-1`` with no eigenvalue on the closed
negative real axis, ``log F = V diag(log w) V^-1``, and the Frechet derivative of
``exp`` at ``A = V diag(l) V^-1`` in direction ``E`` is
``V (D * (V^-1 E V)) V^-1`` with the divided differences
``D_ij = (exp l_i - exp l_j) / (l_i - l_j)`` (``exp l_i`` when equal).  A
deformation gradient is near the identity, its eigenvectors well conditioned; when
they are not (condition number above :data:`MAX_CONDITION`), or anything is not
finite, scipy's function is used instead, so the results are scipy's to rounding.
"""

import numpy as np

#: eigenvector condition number above which scipy's algorithm takes over
MAX_CONDITION = 1.0e6


def _eig(matrix):
    """``(w, V, V^-1)`` of a real 3x3 matrix, or None when the shortcut is unsafe."""
    matrix = np.asarray(matrix)
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
        return None
    w, v = np.linalg.eig(matrix)
    if np.linalg.cond(v) > MAX_CONDITION:
        return None
    return w, v, np.linalg.inv(v)


def _real(result, like):
    """The real part when ``like`` is real (the imaginary part is rounding)."""
    return result.real if not np.iscomplexobj(like) else result


def logm(matrix):
    """Principal matrix logarithm of a 3x3 matrix (scipy's where unsafe)."""
    parts = _eig(matrix)
    if parts is not None:
        w, v, vinv = parts
        if not np.any((w.real <= 0) & (np.abs(w.imag) <= 1e-12 * np.abs(w).max())):
            return _real((v * np.log(w.astype(complex))) @ vinv, matrix)
    from scipy.linalg import logm as scipy_logm
    return scipy_logm(matrix)


def _divided_differences(w):
    """``D_ij = (exp w_i - exp w_j) / (w_i - w_j)``, ``exp w_i`` on (near) ties."""
    d = w[:, None] - w[None, :]
    ew = np.exp(w)
    tie = np.abs(d) < 1e-8
    safe = np.where(tie, 1.0, d)
    # exp(w_j) expm1(d) / d: no cancellation when w_i and w_j are close
    out = np.exp(w)[None, :] * np.expm1(safe) / safe
    return np.where(tie, 0.5 * (ew[:, None] + ew[None, :]), out)


class _FrechetCache:
    """The last matrix's decomposition: the filter asks for nine directions at a time
    at the same point."""

    def __init__(self):
        self.key = None
        self.parts = None

    def get(self, matrix):
        key = np.asarray(matrix).tobytes()
        if key != self.key:
            parts = _eig(matrix)
            if parts is not None:
                w, v, vinv = parts
                parts = (v, vinv, _divided_differences(w))
            self.key, self.parts = key, parts
        return self.parts


def make_expm_frechet():
    """An ``expm_frechet(A, E, compute_expm=True)`` with scipy's signature, keeping
    the decomposition of the last ``A`` (one per filter: no state is shared)."""
    cache = _FrechetCache()

    def expm_frechet(a, e, method=None, compute_expm=True, check_finite=True):
        parts = cache.get(a) if method is None else None
        if parts is None or not np.all(np.isfinite(e)):
            from scipy.linalg import expm_frechet as scipy_expm_frechet
            return scipy_expm_frechet(a, e, method=method, compute_expm=compute_expm,
                                      check_finite=check_finite)
        v, vinv, divided = parts
        derivative = _real(v @ (divided * (vinv @ e @ v)) @ vinv,
                           np.asarray(a) + np.asarray(e))
        if compute_expm:
            from scipy.linalg import expm
            return expm(a), derivative
        return derivative

    return expm_frechet
