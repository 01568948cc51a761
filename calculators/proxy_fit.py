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


def _initial(form, radius_sum, depth=0.5):
    """Starting parameters (in fitted coordinates) with a well of ``depth`` at R."""
    if form == "morse":
        return [np.log(depth), np.log(6.0 / radius_sum), radius_sum]
    # A exp(-r/rho) - C/r^6 with rho = R/12 has its minimum, -depth, at R when
    # C = 2 depth R^6 and A = depth e^12.
    return [np.log(depth) + 12.0, np.log(radius_sum / 12.0), np.log(2 * depth * radius_sum ** 6)]


def _params(form, x):
    if form == "morse":
        return (np.exp(x[0]), np.exp(x[1]), x[2])
    return (np.exp(x[0]), np.exp(x[1]), np.exp(x[2]))


def fit_proxy(structures, energies, forces=None, composition=None, form="buckingham",
              cutoff=6.0, taper=0.5, charges=None, force_weight=0.1, max_nfev=200):
    """Least-squares fit of pair terms to reference ``energies`` (eV per structure).

    Parameters
    ----------
    structures : list of ase.Atoms (all with 3D periodic cells or all without).
    energies : reference total energies, one per structure.
    forces : optional list of (n, 3) reference force arrays.
    composition : formula or Composition; its radii seed the fit (else VESTA radii).
    form : "buckingham" or "morse".
    cutoff, taper : outer cut-off of every term and width of its smooth switch-off.
    charges : optional fixed species charges for a DSF Coulomb part (not fitted).
    force_weight : weight of a force residual (eV/A) against an energy-per-atom one.

    Returns a :class:`ProxyPotential` whose ``notes`` record the fit's RMS errors.
    """
    from scipy.optimize import least_squares

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
        i, j, d = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
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
    ref_forces = np.concatenate([np.asarray(f, dtype=float) for f in forces]) \
        if forces is not None else None

    def build(x):
        terms = [PairTerm(form, a, b, _params(form, x[3 * n:3 * n + 3]), rmax=cutoff)
                 for n, (a, b) in enumerate(keys)]
        mu = dict(zip(elements, x[3 * len(keys):]))
        return ProxyPotential(terms=terms, charges=charges, taper=taper, atomic_energies=mu)

    def predict(x, with_forces):
        calc = build(x)
        e, dedr = calc.pair_energies(symbols, I, J, R)
        total = np.bincount(owner, e, len(structures)) + counts @ x[3 * len(keys):]
        if charges:
            total += [calc.self_energy(a.get_chemical_symbols()) for a in structures]
        if not with_forces:
            return total, None
        g = (dedr / R)[:, None] * D
        f = np.empty((offset, 3))
        for c in range(3):
            f[:, c] = np.bincount(I, g[:, c], offset) - np.bincount(J, g[:, c], offset)
        return total, f

    def residuals(x):
        total, f = predict(x, ref_forces is not None)
        res = (total - energies) / natoms
        if f is None:
            return res
        return np.concatenate([res, force_weight * (f - ref_forces).ravel()])

    x0 = []
    for a, b in keys:
        x0 += _initial(form, radii[a] + radii[b])
    # constant energies per element start at the mean reference energy per atom
    x0 += [float(np.mean(energies / natoms))] * len(elements)
    x0 = np.array(x0)
    with np.errstate(over="ignore", invalid="ignore"):
        result = least_squares(residuals, x0, max_nfev=max_nfev, x_scale="jac")
    calc = build(result.x)
    total, f = predict(result.x, ref_forces is not None)
    rms_e = float(np.sqrt(np.mean(((total - energies) / natoms) ** 2)))
    calc.notes.append(f"fit_proxy {form}: {len(structures)} structures, "
                      f"RMS energy error {rms_e:.4f} eV/atom")
    if f is not None:
        calc.notes.append(f"RMS force error {np.sqrt(np.mean((f - ref_forces) ** 2)):.4f} eV/A")
    return calc
