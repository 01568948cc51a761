"""Short-range pair terms of the proxy potential (:class:`PairTerm`), in a module of
their own so that :mod:`.proxy` (the calculator) and :mod:`.gulp_library` (the GULP
library reader) both import them without importing each other."""

from dataclasses import asdict, dataclass, field

import numpy as np

from ase_fuse.errors import InputError

FORMS = ("buckingham", "morse", "lennard", "r12", "spline")
_NPARAMS = {"buckingham": 3, "morse": 3, "lennard": 4, "r12": 1}


# -- pair forms: energy and dE/dr, vectorised over r ---------------------------------
def _buckingham(r, A, rho, C):
    ex = A * np.exp(-r / rho)
    r6 = r ** -6
    return ex - C * r6, -ex / rho + 6.0 * C * r6 / r


def _morse(r, D, a, r0):
    x = np.exp(-a * (r - r0))
    return D * (x * x - 2.0 * x), 2.0 * a * D * x * (1.0 - x)


def _lennard(r, A, B, m=12, n=6):
    rm = r ** -m
    rn = r ** -n
    return A * rm - B * rn, (-m * A * rm + n * B * rn) / r


def _r12(r, A):
    e = A * r ** -12
    return e, -12.0 * e / r


_FUNCS = {"buckingham": _buckingham, "morse": _morse, "lennard": _lennard, "r12": _r12}


@dataclass
class PairTerm:
    """One short-range term between elements ``a`` and ``b`` (order irrelevant).

    params by form: buckingham (A, rho, C): A exp(-r/rho) - C/r^6;
    morse (D, a, r0): D[(1 - exp(-a(r - r0)))^2 - 1];
    lennard (A, B, m, n): A/r^m - B/r^n; r12 (A,): A/r^12;
    spline ((r_1..r_k), (E_1..E_k)): cubic spline through the table, zero beyond r_k.
    Applies for ``rmin <= r < rmax``.
    """
    form: str
    a: str
    b: str
    params: tuple
    rmin: float = 0.0
    rmax: float = 6.0
    _spline: object = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.form not in FORMS:
            raise InputError(f"unknown pair form {self.form!r}; use one of {', '.join(FORMS)}",
                             field="form")
        if self.form == "spline":
            from scipy.interpolate import CubicSpline
            knots, values = (np.asarray(p, dtype=float) for p in self.params)
            if knots.ndim != 1 or knots.shape != values.shape or len(knots) < 4 \
                    or np.any(np.diff(knots) <= 0):
                raise InputError("spline needs >= 4 increasing knots and one energy each",
                                 field="params")
            self.params = (tuple(knots), tuple(values))
            self._spline = CubicSpline(knots, values)
            self.rmax = min(self.rmax, float(knots[-1]))
        else:
            params = tuple(float(p) for p in self.params)
            if self.form == "lennard" and len(params) == 2:
                params += (12.0, 6.0)
            if len(params) != _NPARAMS[self.form]:
                raise InputError(f"{self.form} takes {_NPARAMS[self.form]} parameters, "
                                 f"got {len(params)}", field="params")
            self.params = params
        if not 0.0 <= self.rmin < self.rmax:
            raise InputError(f"need 0 <= rmin < rmax, got {self.rmin}, {self.rmax}",
                             field="rmax")

    def todict(self):
        """The term as plain values: ``PairTerm(**term.todict())`` is the same term."""
        out = asdict(self)
        out.pop("_spline")
        return out

    def evaluate(self, r):
        """Energy and dE/dr of the bare form at distances ``r`` (no cut-off)."""
        if self.form == "spline":
            return self._spline(r), self._spline(r, 1)
        return _FUNCS[self.form](r, *self.params)
