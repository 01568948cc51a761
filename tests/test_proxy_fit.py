"""fit_proxy: a proxy fitted to a better calculator ranks unseen structures."""

import time

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from scipy.stats import spearmanr

from ase_fuse.calculators.proxy import PairTerm, ProxyPotential
from ase_fuse.calculators.proxy_fit import fit_proxy
from ase_fuse.errors import InputError


def cu_au_structures(count, rng):
    """CuAu (8-atom fcc cells, a = 3.75 A between Cu 3.61 and Au 4.08) with random
    site order, strain and rattle, with EMT energies and forces."""
    base = bulk("Cu", "fcc", a=3.75, cubic=True).repeat((2, 1, 1))
    structures, energies, forces = [], [], []
    for _ in range(count):
        atoms = base.copy()
        symbols = np.array(["Cu"] * 4 + ["Au"] * 4)
        rng.shuffle(symbols)
        atoms.set_chemical_symbols(list(symbols))
        atoms.set_cell(atoms.cell @ (np.eye(3) + rng.normal(0, 0.02, (3, 3))), scale_atoms=True)
        atoms.rattle(0.1, rng=rng)
        atoms.calc = EMT()
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
        atoms.calc = None
        structures.append(atoms)
    return structures, np.array(energies), forces


def predicted(calc, structures):
    out = []
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = calc
        out.append(atoms.get_potential_energy())
    return np.array(out)


@pytest.mark.parametrize("form", ["morse", "buckingham"])
@pytest.mark.parametrize("use_forces", [False, True])
def test_fit_to_emt_ranks_held_out_structures(form, use_forces):
    structures, energies, forces = cu_au_structures(40, np.random.default_rng(5))
    start = time.perf_counter()
    calc = fit_proxy(structures[:30], energies[:30], forces=forces[:30] if use_forces else None,
                     composition="CuAu", form=form)
    assert time.perf_counter() - start < 10.0
    held_out = predicted(calc, structures[30:])
    assert spearmanr(held_out, energies[30:]).statistic > 0.8
    train_error = np.abs(predicted(calc, structures[:30]) - energies[:30]).mean()
    assert train_error < 0.1 * np.ptp(energies[:30])


def test_fit_recovers_a_hidden_buckingham_coulomb_ranking():
    hidden = ProxyPotential(
        [PairTerm("buckingham", "Na", "Cl", (1500.0, 0.30, 5.0), rmax=6.0),
         PairTerm("buckingham", "Cl", "Cl", (2500.0, 0.33, 30.0), rmax=6.0)],
        charges={"Na": 1.0, "Cl": -1.0}, coulomb_cutoff=8.0)
    rng = np.random.default_rng(9)
    structures, energies = [], []
    for _ in range(40):
        atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
        atoms.set_cell(atoms.cell @ (np.eye(3) + rng.normal(0, 0.03, (3, 3))), scale_atoms=True)
        atoms.rattle(0.12, rng=rng)
        atoms.calc = hidden
        energies.append(atoms.get_potential_energy())
        atoms.calc = None
        structures.append(atoms)
    # the fit's Coulomb part (default 10 A cut-off) differs from the hidden one (8 A)
    calc = fit_proxy(structures[:30], energies[:30], form="buckingham",
                     charges={"Na": 1.0, "Cl": -1.0}, cutoff=6.0)
    assert spearmanr(predicted(calc, structures[30:]), energies[30:]).statistic > 0.8
    # with the same Coulomb part the hidden Buckingham parameters come back
    exact = fit_proxy(structures[:30], energies[:30], form="buckingham",
                      charges={"Na": 1.0, "Cl": -1.0}, coulomb_cutoff=8.0, cutoff=6.0)
    found = {(t.a, t.b): t.params for t in exact.terms}
    np.testing.assert_allclose(found[("Cl", "Na")], (1500.0, 0.30, 5.0), rtol=0.02)
    np.testing.assert_allclose(found[("Cl", "Cl")], (2500.0, 0.33, 30.0), rtol=0.02)
    np.testing.assert_allclose(predicted(exact, structures[30:]), energies[30:], atol=1e-3)


def test_fit_input_errors():
    structures, energies, _ = cu_au_structures(2, np.random.default_rng(0))
    with pytest.raises(InputError, match="energies"):
        fit_proxy(structures, energies[:1])
    with pytest.raises(InputError, match="form"):
        fit_proxy(structures, energies, form="tersoff")
