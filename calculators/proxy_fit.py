"""Fit a per-composition :class:`ProxyPotential` to a better calculator's results.

The structures a run has already relaxed or scored with an expensive tier are a
free training set: :func:`fit_proxy` adjusts one Buckingham or Morse term per
element pair (plus one constant energy per element) by scipy least squares so the
proxy reproduces their energies per atom (and forces, when given).  Neighbour
lists are built once; each residual evaluation is one vectorised pass over all
pairs of all structures, so a fit takes about a second.
"""

import numpy as np

from ase_fuse.errors import InputError

from .proxy import PairTerm, ProxyPotential, neighbour_pairs


def _pair_keys(elements):
    return [(a, b) for n, a in enumerate(elements) for b in elements[n:]]


def _basis(form, width):
    """Linear basis of a pair term for one nonlinear width (A): (form, params) pairs.

    Buckingham A exp(-r/rho) - C/r^6 is linear in (A, C) at fixed rho = width.
    Morse D[(1 - x)^2 - 1], x = exp(-a(r - r0)), equals c1 exp(-2ar) - c2 exp(-ar)
    with c1 = D exp(2 a r0) and c2 = 2 D exp(a r0): linear in (c1, c2) at fixed
    a = 1 / width.
    """
    if form == "buckingham":
        return [(1.0, width, 0.0), (0.0, width, 1.0)]
    return [(1.0, width / 2.0, 0.0), (-1.0, width, 0.0)]


def _term_params(form, width, c1, c2):
    if form == "buckingham":
        return (c1, width, c2)
    a = 1.0 / width
    c2 = max(c2, 1e-12)
    c1 = max(c1, 1e-12)
    depth = c2 * c2 / (4.0 * c1)
    return (depth, a, np.log(2.0 * c1 / c2) / a)


def fit_proxy(structures, energies, forces=None, composition=None, form="buckingham",
              cutoff=6.0, taper=0.5, charges=None, coulomb_cutoff=10.0, coulomb_alpha=0.2,
              force_weight=0.1, max_nfev=100):
    """Least-squares fit of pair terms to reference ``energies`` (eV per structure).

    Parameters
    ----------
    structures : list of ase.Atoms (all with 3D periodic cells or all without).
    energies : reference total energies, one per structure.
    forces : optional list of (n, 3) reference force arrays.
    composition : formula or Composition; its radii seed the Morse widths.
    form : "buckingham" or "morse"; one term per element pair.
    cutoff, taper : outer cut-off of every term and width of its smooth switch-off.
    charges, coulomb_cutoff, coulomb_alpha : optional fixed species charges for a DSF
        Coulomb part (not fitted; subtracted from the targets).
    force_weight : weight of a force residual (eV/A) against an energy-per-atom one.

    The energy of each term is linear in two coefficients once its width (Buckingham
    rho, Morse 1/a) is fixed, and the constant energy per element is linear too, so
    only the widths are searched (scipy least_squares, bounded); for each trial the
    coefficients come from a bounded linear least-squares solve (scipy lsq_linear).
    Returns a :class:`ProxyPotential` whose ``notes`` record the fit's RMS errors.
    """
    from scipy.optimize import least_squares, lsq_linear

    from ase_fuse.composition import Composition
    from ase_fuse.radii import atomic_radius

    if form not in ("buckingham", "morse"):
        raise InputError(f"use 'buckingham' or 'morse', got {form!r}", field="form")
    structures = list(structures)
    energies = np.asarray(energies, dtype=float)
    if not structures or len(structures) != len(energies):
        raise InputError(f"need one energy per structure ({len(structures)} structures, "
                         f"{len(energies)} energies)", field="energies")
    if forces is not None and len(forces) != len(structures):
        raise InputError("need one force array per structure", field="forces")
    elements = sorted({s for atoms in structures for s in atoms.get_chemical_symbols()})
    radii = {el: atomic_radius(el) for el in elements}
    if composition is not None:
        comp = Composition(composition)
        radii.update({el: r for el, r in comp.radii.items() if el in radii})
    keys = _pair_keys(elements)

    # neighbour lists once, concatenated with global atom indices
    symbols, I, J, D, owner, counts = [], [], [], [], [], []
    offset = 0
    for s, atoms in enumerate(structures):
        i, j, d = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc,
                                  max(cutoff, coulomb_cutoff if charges else 0.0))
        I.append(i + offset)
        J.append(j + offset)
        D.append(d)
        owner.append(np.full(len(i), s))
        symbols += atoms.get_chemical_symbols()
        counts.append([atoms.get_chemical_symbols().count(el) for el in elements])
        offset += len(atoms)
    I, J, D, owner = (np.concatenate(a) for a in (I, J, D, owner))
    R = np.sqrt((D * D).sum(1))
    counts = np.array(counts, dtype=float)
    natoms = counts.sum(1)
    with_forces = forces is not None
    nstruct = len(structures)

    def rows(calc):
        """Energies per atom (and weighted forces) that ``calc`` gives, as one vector."""
        e, dedr = calc.pair_energies(symbols, I, J, R)
        out = [np.bincount(owner, e, nstruct) / natoms]
        if with_forces:
            g = (dedr / R)[:, None] * D
            f = np.empty((offset, 3))
            for c in range(3):
                f[:, c] = np.bincount(I, g[:, c], offset) - np.bincount(J, g[:, c], offset)
            out.append(force_weight * f.ravel())
        return np.concatenate(out)

    target = energies / natoms
    if with_forces:
        target = np.concatenate([target, force_weight * np.concatenate(
            [np.asarray(f, dtype=float) for f in forces]).ravel()])
    if charges:
        coulomb = ProxyPotential(charges=charges, coulomb_cutoff=coulomb_cutoff,
                                 coulomb_alpha=coulomb_alpha)
        fixed = rows(coulomb)
        fixed[:nstruct] += [coulomb.self_energy(a.get_chemical_symbols()) / len(a)
                            for a in structures]
        target = target - fixed
    per_element = np.zeros((len(target), len(elements)))
    per_element[:nstruct] = counts / natoms[:, None]

    def design(widths):
        columns = []
        for (a, b), width in zip(keys, widths):
            for params in _basis(form, width):
                term = PairTerm("buckingham", a, b, params, rmax=cutoff)
                columns.append(rows(ProxyPotential([term], taper=taper)))
        return np.column_stack(columns + [per_element])

    nterm = 2 * len(keys)
    lower = np.r_[np.zeros(nterm), np.full(len(elements), -np.inf)]

    def solve(log_widths):
        matrix = design(np.exp(log_widths))
        scale = np.linalg.norm(matrix, axis=0)
        scale[scale == 0] = 1.0
        sol = lsq_linear(matrix / scale, target, bounds=(lower, np.inf))
        coef = sol.x / scale
        return coef, matrix @ coef - target

    if form == "buckingham":
        start = [np.log(0.3)] * len(keys)
        bounds = (np.log(0.1), np.log(1.0))
    else:
        start = [np.log((radii[a] + radii[b]) / 6.0) for a, b in keys]
        bounds = (np.log(0.2), np.log(2.0))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = least_squares(lambda x: solve(x)[1], start, bounds=bounds,
                               max_nfev=max_nfev, diff_step=1e-3)
        coef, residual = solve(result.x)
    widths = np.exp(result.x)
    terms = [PairTerm(form, a, b, _term_params(form, w, *coef[2 * n:2 * n + 2]), rmax=cutoff)
             for n, ((a, b), w) in enumerate(zip(keys, widths))]
    calc = ProxyPotential(terms=terms, charges=charges, taper=taper,
                          coulomb_cutoff=coulomb_cutoff, coulomb_alpha=coulomb_alpha,
                          atomic_energies=dict(zip(elements, coef[nterm:])))
    rms_e = float(np.sqrt(np.mean(residual[:nstruct] ** 2)))
    calc.notes.append(f"fit_proxy {form}: {nstruct} structures, "
                      f"RMS energy error {rms_e:.4f} eV/atom")
    if with_forces:
        rms_f = np.sqrt(np.mean(residual[nstruct:] ** 2)) / force_weight
        calc.notes.append(f"RMS force error {rms_f:.4f} eV/A")
    return calc
