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

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from scipy.special import erfc

from ase_fuse.errors import InputError

from .neighbours import neighbour_pairs
from .pair_terms import PairTerm

COULOMB = 14.399645478425668  # e^2 / (4 pi eps0) in eV Angstrom


def _same(a, b):
    """Equal settings: numbers, lists of terms, dicts (empty and None alike)."""
    if not a and not b and not isinstance(a, float) and not isinstance(b, float):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(x == y for x, y in zip(a, b))
    return a == b


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
    #: ASE's calculator parameters: ``calc.parameters``, ``calc.todict()`` and
    #: ``calc.set(taper=0.3)`` (which drops cached results) hold the settings
    default_parameters = {"terms": (), "charges": None, "taper": 0.5,
                          "coulomb_cutoff": 10.0, "coulomb_alpha": 0.2,
                          "atomic_energies": None, "notes": ()}

    def __init__(self, terms=(), charges=None, taper=0.5, coulomb_cutoff=10.0,
                 coulomb_alpha=0.2, atomic_energies=None, notes=(), **kwargs):
        super().__init__(**kwargs)
        self.set(terms=terms, charges=charges, taper=taper, coulomb_cutoff=coulomb_cutoff,
                 coulomb_alpha=coulomb_alpha, atomic_energies=atomic_energies, notes=notes)

    def set(self, **kwargs):
        """Change settings (checked; results are dropped when one changes)."""
        unknown = sorted(set(kwargs) - set(self.default_parameters))
        if unknown:
            raise InputError(f"unknown ProxyPotential parameter {unknown[0]!r}; known: "
                             f"{', '.join(self.default_parameters)}", field=unknown[0])
        merged = dict(self.parameters, **kwargs)
        taper, cutoff = merged["taper"], merged["coulomb_cutoff"]
        if not taper >= 0:
            raise InputError(f"must be >= 0, got {taper}", field="taper")
        if not (cutoff > 0 and merged["coulomb_alpha"] >= 0):
            raise InputError("coulomb_cutoff must be > 0 and coulomb_alpha >= 0",
                             field="coulomb_cutoff")
        clean = {}
        for key, value in kwargs.items():
            if key == "terms":
                value = [t if isinstance(t, PairTerm) else PairTerm(**t) for t in value]
            elif key in ("charges", "atomic_energies"):
                value = dict(value) if value else {}
            elif key == "notes":
                value = list(value)
            else:
                value = float(value)
            clean[key] = value
        changed = {k: v for k, v in clean.items()
                   if k not in self.parameters or not _same(v, self.parameters[k])}
        self.parameters.update(clean)  # normalised (None charges -> {}) even if the same
        if changed:
            self.reset()
        return changed

    def todict(self, skip_default=True):
        """The settings as plain values (terms as dicts): ``ProxyPotential(**d)``
        rebuilds the same potential."""
        out = {}
        for key, value in self.parameters.items():
            if key == "terms":
                value = [t.todict() for t in value]
            if skip_default and _same(value, self.default_parameters[key]):
                continue
            out[key] = value
        return out

    terms = property(lambda self: self.parameters["terms"],
                     lambda self, value: self.set(terms=value))
    charges = property(lambda self: self.parameters["charges"],
                       lambda self, value: self.set(charges=value))
    taper = property(lambda self: self.parameters["taper"],
                     lambda self, value: self.set(taper=value))
    coulomb_cutoff = property(lambda self: self.parameters["coulomb_cutoff"],
                              lambda self, value: self.set(coulomb_cutoff=value))
    coulomb_alpha = property(lambda self: self.parameters["coulomb_alpha"],
                             lambda self, value: self.set(coulomb_alpha=value))
    atomic_energies = property(lambda self: self.parameters["atomic_energies"],
                               lambda self, value: self.set(atomic_energies=value))
    notes = property(lambda self: self.parameters["notes"],
                     lambda self, value: self.set(notes=value))

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
