"""Proxy pair potentials: the cheap "SPP" relaxation tier.

:class:`ProxyPotential` is an ASE calculator for per-element-pair terms
(Buckingham, Morse, Lennard-Jones, r^-12 repulsion, tabulated spline) plus an
optional Coulomb sum between species charges done in real space with the
damped-shifted-force (Wolf) scheme of Fennell & Gezelter (J. Chem. Phys. 124,
234104, 2006).  Everything is vectorised numpy over a half neighbour list built
here by image shifts (any cell shape, periodic images included).

Each short-range term is switched off over its last ``taper`` Angstrom with a
quintic smoothstep, so energy and force go continuously to zero at its outer
cut-off; the DSF Coulomb pair energy and force are zero at its cut-off by
construction.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from scipy.special import erfc

from ase_fuse.errors import InputError

from .neighbours import neighbour_pairs

COULOMB = 14.399645478425668  # e^2 / (4 pi eps0) in eV Angstrom
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

    def evaluate(self, r):
        """Energy and dE/dr of the bare form at distances ``r`` (no cut-off)."""
        if self.form == "spline":
            return self._spline(r), self._spline(r, 1)
        return _FUNCS[self.form](r, *self.params)


def smoothstep(x):
    """1 -> 0 quintic switch on x in [0, 1] (C2 at both ends) and its derivative."""
    x = np.clip(x, 0.0, 1.0)
    s = 1.0 - x ** 3 * (10.0 - 15.0 * x + 6.0 * x * x)
    ds = -30.0 * x * x * (1.0 - x) ** 2
    return s, ds


class ProxyPotential(Calculator):
    """Fast pair-potential calculator (short-range terms + optional DSF Coulomb).

    Parameters
    ----------
    terms : iterable of PairTerm
    charges : dict element -> charge (e), optional; enables the Coulomb sum.
    taper : width (A) of the smooth switch-off before each term's rmax (0: hard cut).
    coulomb_cutoff, coulomb_alpha : DSF cut-off (A) and damping (1/A).
    atomic_energies : dict element -> constant energy per atom (eV), e.g. from a fit.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, terms=(), charges=None, taper=0.5, coulomb_cutoff=10.0,
                 coulomb_alpha=0.2, atomic_energies=None, notes=(), **kwargs):
        super().__init__(**kwargs)
        self.terms = [t if isinstance(t, PairTerm) else PairTerm(**t) for t in terms]
        self.charges = dict(charges) if charges else {}
        if taper < 0:
            raise InputError(f"must be >= 0, got {taper}", field="taper")
        if coulomb_cutoff <= 0 or coulomb_alpha < 0:
            raise InputError("coulomb_cutoff must be > 0 and coulomb_alpha >= 0",
                             field="coulomb_cutoff")
        self.taper = float(taper)
        self.coulomb_cutoff = float(coulomb_cutoff)
        self.coulomb_alpha = float(coulomb_alpha)
        self.atomic_energies = dict(atomic_energies) if atomic_energies else {}
        self.notes = list(notes)

    # -- constructors ------------------------------------------------------------
    @classmethod
    def for_composition(cls, composition, **kwargs):
        """Radius-based default potential for any composition (see :func:`default_terms`)."""
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in _DEFAULT_KEYS}
        terms, notes = default_terms(composition, **options)
        return cls(terms=terms, notes=notes, **kwargs)

    @classmethod
    def from_gulp_library(cls, path_or_text, shells="ignore", **kwargs):
        """Calculator from a GULP library file (see :func:`read_gulp_library`)."""
        from .gulp_library import read_gulp_library
        params = read_gulp_library(path_or_text, shells=shells)
        return cls(terms=params.terms, charges=params.charges, notes=params.notes, **kwargs)

    @property
    def cutoff(self):
        cut = max((t.rmax for t in self.terms), default=0.0)
        if self.charges:
            cut = max(cut, self.coulomb_cutoff)
        return cut

    # -- evaluation ----------------------------------------------------------------
    def pair_energies(self, symbols, i, j, r):
        """Energy and dE/dr of each listed pair (short-range + Coulomb)."""
        energy = np.zeros(len(r))
        dedr = np.zeros(len(r))
        if not len(r):
            return energy, dedr
        kinds = sorted(set(symbols))
        index = {el: n for n, el in enumerate(kinds)}
        types = np.array([index[s] for s in symbols])
        ti, tj = types[i], types[j]
        nk = len(kinds)
        pair_type = np.minimum(ti, tj) * nk + np.maximum(ti, tj)
        for term in self.terms:
            if term.a not in index or term.b not in index:
                continue
            ta, tb = sorted((index[term.a], index[term.b]))
            sel = (pair_type == ta * nk + tb) & (r < term.rmax) & (r >= term.rmin)
            if not sel.any():
                continue
            rs = r[sel]
            e, de = term.evaluate(rs)
            width = min(self.taper, 0.5 * (term.rmax - term.rmin))
            if width > 0:
                s, ds = smoothstep((rs - (term.rmax - width)) / width)
                e, de = e * s, de * s + e * ds / width
            energy[sel] += e
            dedr[sel] += de
        if self.charges:
            q = np.array([self.charges.get(s, 0.0) for s in symbols])
            qq = q[i] * q[j]
            sel = (qq != 0) & (r < self.coulomb_cutoff)
            e, de = self._dsf(r[sel])
            energy[sel] += qq[sel] * e
            dedr[sel] += qq[sel] * de
        return energy, dedr

    def _dsf(self, r):
        a, rc = self.coulomb_alpha, self.coulomb_cutoff
        erc = math.erfc(a * rc)
        grc = erc / rc ** 2 + 2.0 * a / math.sqrt(math.pi) * math.exp(-(a * rc) ** 2) / rc
        e = erfc(a * r) / r - erc / rc + grc * (r - rc)
        de = -erfc(a * r) / r ** 2 \
            - 2.0 * a / math.sqrt(math.pi) * np.exp(-(a * r) ** 2) / r + grc
        return COULOMB * e, COULOMB * de

    def self_energy(self, symbols):
        """Constant DSF self term (position independent)."""
        if not self.charges:
            return 0.0
        a, rc = self.coulomb_alpha, self.coulomb_cutoff
        q2 = sum(self.charges.get(s, 0.0) ** 2 for s in symbols)
        return -COULOMB * (math.erfc(a * rc) / (2 * rc) + a / math.sqrt(math.pi)) * q2

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        symbols = atoms.get_chemical_symbols()
        n = len(atoms)
        i, j, d = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, self.cutoff)
        r = np.sqrt((d * d).sum(1))
        e, dedr = self.pair_energies(symbols, i, j, r)
        energy = float(e.sum()) + self.self_energy(symbols) \
            + sum(self.atomic_energies.get(s, 0.0) for s in symbols)
        g = (dedr / np.where(r > 0, r, 1.0))[:, None] * d  # dE/d(d)
        forces = np.empty((n, 3))
        for c in range(3):
            forces[:, c] = np.bincount(i, g[:, c], n) - np.bincount(j, g[:, c], n)
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}
        if atoms.pbc.all():
            virial = d.T @ g
            s = virial / atoms.get_volume()
            self.results["stress"] = np.array(
                [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        elif "stress" in properties:
            raise PropertyNotImplementedError("stress needs a cell periodic in 3D")

    def __repr__(self):
        charges = f", charges={self.charges}" if self.charges else ""
        return f"ProxyPotential({len(self.terms)} terms{charges})"


# -- radius-based defaults ------------------------------------------------------------
_DEFAULT_KEYS = ("oxidation_states", "well_depth", "stiffness", "like_repulsion",
                 "like_factor", "cutoff_factor")


def element_roles(composition):
    """``{element: "cation" | "anion" | "metal"}`` for a Composition.

    Oxidation states decide when given.  Otherwise a pure element or an all-metal
    composition is "metal" throughout; else the most electronegative element and any
    non-metal within 0.6 (Pauling) of it are anions, the rest cations.
    """
    from pymatgen.core import Element

    states = composition.oxidation_states
    if states:
        return {el: "cation" if q > 0 else "anion" if q < 0 else "metal"
                for el, q in states.items()}
    elements = composition.elements
    if composition.is_element or all(Element(el).is_metal for el in elements):
        return {el: "metal" for el in elements}
    chi = {el: Element(el).X for el in elements}
    top = max(chi.values())
    return {el: "anion" if (chi[el] >= top - 0.6 and not Element(el).is_metal) else "cation"
            for el in elements}


def default_terms(composition, oxidation_states=None, well_depth=1.0, stiffness=6.0,
                  like_repulsion=0.05, like_factor=1.2, cutoff_factor=2.0):
    """Terms for every element pair of ``composition`` built from its radii.

    With R = r_i + r_j: cation-anion and metal pairs get a Morse well of depth
    ``well_depth`` (eV) at R with a = stiffness / R; like-charged pairs get a soft
    repulsion ``like_repulsion * (d / r)^12`` with d = max(R, like_factor * mean
    cation-anion R), so anions (and cations) keep apart about as far as in a
    polyhedral network.  Returns ``(terms, notes)``.
    """
    from ase_fuse.composition import Composition

    if not isinstance(composition, Composition) or oxidation_states:
        composition = Composition(composition, oxidation_states=oxidation_states)
    roles = element_roles(composition)
    radii = composition.radii
    elements = composition.elements
    ionic = [(a, b) for a in elements for b in elements
             if {roles[a], roles[b]} == {"cation", "anion"}]
    mean_ca = np.mean([radii[a] + radii[b] for a, b in ionic]) if ionic else 0.0
    terms = []
    notes = [f"default proxy for {composition.formula}: roles {roles}"]
    for n, a in enumerate(elements):
        for b in elements[n:]:
            R = radii[a] + radii[b]
            if "metal" in (roles[a], roles[b]) or roles[a] != roles[b]:
                terms.append(PairTerm("morse", a, b, (well_depth, stiffness / R, R),
                                      rmax=cutoff_factor * R))
            else:
                d = max(R, like_factor * mean_ca)
                terms.append(PairTerm("r12", a, b, (like_repulsion * d ** 12,),
                                      rmax=1.6 * d))
    return terms, notes
