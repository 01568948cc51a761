"""ProxyPotential: derivatives, cut-off smoothness, invariances and the defaults."""

import numpy as np
import pytest
import spglib
from ase import Atoms
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from ase.spacegroup import crystal

from ase_fuse.calculators.proxy import PairTerm, ProxyPotential, neighbour_pairs
from ase_fuse.errors import InputError

NA_CL_FORMS = {
    "buckingham": [PairTerm("buckingham", "Na", "Cl", (1200.0, 0.32, 2.0), rmax=5.5),
                   PairTerm("buckingham", "Cl", "Cl", (3000.0, 0.30, 40.0), rmax=5.5)],
    "morse": [PairTerm("morse", "Na", "Cl", (0.8, 1.5, 2.8), rmax=5.5),
              PairTerm("morse", "Na", "Na", (0.1, 1.2, 4.0), rmax=5.0)],
    "lennard": [PairTerm("lennard", "Na", "Cl", (3.0e4, 60.0), rmax=5.5),
                PairTerm("lennard", "Cl", "Cl", (1.0e5, 100.0, 9, 6), rmax=5.0)],
    "r12": [PairTerm("r12", "Na", "Cl", (2.0e5,), rmax=5.5),
            PairTerm("r12", "Na", "Na", (5.0e5,), rmax=5.0)],
    "spline": [PairTerm("spline", "Na", "Cl",
                        (np.linspace(1.5, 5.5, 12), 2.0 * np.exp(-np.linspace(1.5, 5.5, 12))
                         - np.linspace(1.5, 5.5, 12) ** -1.0 + 1 / 5.5), rmax=5.5)],
}


def rattled_nacl(triclinic):
    rng = np.random.default_rng(3)
    if triclinic:  # conventional rock-salt cell (a = 5.64 A) under a general strain
        atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
        strain = np.eye(3) + np.array([[0.02, 0.08, -0.05], [0.0, -0.03, 0.06], [0.0, 0.0, 0.04]])
        atoms.set_cell(atoms.cell @ strain, scale_atoms=True)
    else:
        atoms = bulk("NaCl", "rocksalt", a=5.64).repeat((2, 1, 1))
    atoms.rattle(0.08, rng=rng)
    return atoms


@pytest.mark.parametrize("triclinic", [False, True])
@pytest.mark.parametrize("form", sorted(NA_CL_FORMS) + ["coulomb"])
def test_forces_and_stress_match_finite_differences(form, triclinic):
    if form == "coulomb":
        calc = ProxyPotential(NA_CL_FORMS["buckingham"], charges={"Na": 1.0, "Cl": -1.0},
                              coulomb_cutoff=7.0)
    else:
        calc = ProxyPotential(NA_CL_FORMS[form], taper=0.7)
    atoms = rattled_nacl(triclinic)
    atoms.calc = calc
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    assert np.abs(forces).max() > 1e-3  # something to compare
    np.testing.assert_allclose(forces, calculate_numerical_forces(atoms, eps=1e-5),
                               atol=1e-5 * max(1.0, np.abs(forces).max()))
    np.testing.assert_allclose(stress, calculate_numerical_stress(atoms, eps=1e-6),
                               atol=1e-6 * max(1.0, np.abs(stress).max() * 100))


@pytest.mark.parametrize("charges", [None, {"Na": 1.0, "Cl": -1.0}])
def test_energy_and_force_vanish_continuously_at_cutoff(charges):
    terms = [PairTerm("buckingham", "Na", "Cl", (1200.0, 0.32, 20.0), rmax=5.0)]
    calc = ProxyPotential(terms, charges=charges, taper=0.8, coulomb_cutoff=5.0)

    def dimer(r):
        atoms = Atoms("NaCl", positions=[[0, 0, 0], [r, 0, 0]])
        atoms.calc = calc
        return atoms.get_potential_energy() - calc.self_energy(["Na", "Cl"]), \
            atoms.get_forces()[1, 0]

    e_in, f_in = dimer(5.0 - 1e-4)
    e_out, f_out = dimer(5.0 + 1e-4)
    e_mid, _ = dimer(4.5)
    assert e_out == 0.0 and f_out == 0.0
    assert abs(e_in) < 1e-6 * abs(e_mid) and abs(f_in) < 1e-4
    # energies along the approach change smoothly: no step bigger than the local slope allows
    rs = np.linspace(4.0, 5.2, 241)
    es = np.array([dimer(r)[0] for r in rs])
    assert np.abs(np.diff(es)).max() < 5 * np.abs(np.diff(es)).mean() + 1e-12


def test_translation_invariance_and_supercell_extensivity():
    calc = ProxyPotential(NA_CL_FORMS["buckingham"] + NA_CL_FORMS["morse"],
                          charges={"Na": 1.0, "Cl": -1.0}, coulomb_cutoff=8.0)
    atoms = rattled_nacl(triclinic=True)
    atoms.calc = calc
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    assert abs(forces.sum(axis=0)).max() < 1e-9  # Newton's third law
    moved = atoms.copy()
    moved.translate([0.37, -1.1, 2.9])
    moved.calc = calc
    assert moved.get_potential_energy() == pytest.approx(energy, abs=1e-9)
    np.testing.assert_allclose(moved.get_forces(), forces, atol=1e-9)
    big = atoms.repeat((2, 1, 3))
    big.calc = calc
    assert big.get_potential_energy() == pytest.approx(6 * energy, rel=1e-10)
    np.testing.assert_allclose(big.get_stress(), atoms.get_stress(), atol=1e-10)


def test_neighbour_pairs_match_ase_neighbour_list():
    from ase.neighborlist import neighbor_list

    atoms = rattled_nacl(triclinic=True)
    i, j, d = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, 6.5)
    ours = np.sort(np.linalg.norm(d, axis=1))
    theirs = np.sort(neighbor_list("d", atoms, 6.5))
    # ASE's full list holds every pair twice
    np.testing.assert_allclose(np.sort(np.concatenate([ours, ours])), theirs, atol=1e-10)


def test_bad_terms_raise_input_error():
    with pytest.raises(InputError, match="form"):
        PairTerm("yukawa", "Na", "Cl", (1.0,))
    with pytest.raises(InputError, match="params"):
        PairTerm("morse", "Na", "Cl", (1.0, 2.0))
    with pytest.raises(InputError, match="taper"):
        ProxyPotential([], taper=-1)


# -- defaults ------------------------------------------------------------------------
def _spacegroup(atoms):
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    return spglib.get_spacegroup(cell, symprec=0.1)


def _relax(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    FIRE(FrechetCellFilter(atoms), logfile=None).run(fmax=0.01, steps=600)
    return atoms


RUTILE = crystal(["Ti", "O"], basis=[(0, 0, 0), (0.3048, 0.3048, 0)], spacegroup=136,
                 cellpar=[4.594, 4.594, 2.959, 90, 90, 90])


@pytest.mark.parametrize("atoms, formula, states", [
    (bulk("NaCl", "rocksalt", a=5.64), "NaCl", None),
    (bulk("NaCl", "rocksalt", a=5.64), "NaCl", {"Na": 1, "Cl": -1}),
    (RUTILE, "TiO2", {"Ti": 4, "O": -2}),
    (bulk("Cu", "fcc", a=3.615), "Cu", None),
], ids=["NaCl", "NaCl-ox", "rutile-ox", "Cu"])
def test_default_potential_keeps_real_structures(atoms, formula, states):
    calc = ProxyPotential.for_composition(formula, oxidation_states=states)
    relaxed = _relax(atoms, calc)
    assert np.abs(relaxed.get_forces()).max() < 0.02
    assert 0.75 < relaxed.get_volume() / atoms.get_volume() < 1.25
    assert _spacegroup(relaxed) == _spacegroup(atoms)


def test_default_cation_anion_pair_has_its_minimum_at_radius_sum():
    from ase_fuse.composition import Composition

    comp = Composition("MgO")
    calc = ProxyPotential.for_composition(comp)
    target = comp.radii["Mg"] + comp.radii["O"]
    rs = np.linspace(0.7 * target, 1.5 * target, 1601)
    energies = []
    for r in rs:
        atoms = Atoms("MgO", positions=[[0, 0, 0], [r, 0, 0]])
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
    assert rs[int(np.argmin(energies))] == pytest.approx(target, abs=2e-3)
    assert min(energies) < 0 < energies[0]


def test_default_roles_follow_electronegativity():
    from ase_fuse.calculators.proxy import element_roles
    from ase_fuse.composition import Composition

    assert element_roles(Composition("CaTiO3")) == {"Ca": "cation", "Ti": "cation",
                                                     "O": "anion"}
    assert set(element_roles(Composition("CuAu")).values()) == {"metal"}
    assert element_roles(Composition("Si")) == {"Si": "metal"}


def test_random_loose_cell_relaxes_denser_without_collapse():
    from ase_fuse.composition import Composition

    comp = Composition("MgO")
    rng = np.random.default_rng(7)
    n = 16
    volume = 3.0 * comp.sphere_volume(n // 2)
    atoms = Atoms(comp.symbols(n // 2), scaled_positions=rng.random((n, 3)),
                  cell=np.full(3, volume ** (1 / 3)), pbc=True)
    relaxed = _relax(atoms, ProxyPotential.for_composition(comp))
    assert relaxed.get_volume() < 0.9 * atoms.get_volume()
    radii = np.array([comp.radii[s] for s in relaxed.get_chemical_symbols()])
    dist = relaxed.get_all_distances(mic=True)
    limit = 0.6 * (radii[:, None] + radii[None, :])
    np.fill_diagonal(dist, np.inf)
    assert (dist > limit).all()


def test_settings_are_ase_calculator_parameters():
    # issue 19 item 5: parameters / todict() / set() as every ASE calculator
    terms = [PairTerm("buckingham", "Na", "Cl", (1200.0, 0.32, 0.0), rmax=6.0),
             PairTerm("r12", "Cl", "Cl", (2000.0,), rmax=5.0)]
    calc = ProxyPotential(terms, charges={"Na": 1.0, "Cl": -1.0}, coulomb_cutoff=8.0)
    assert calc.parameters["coulomb_cutoff"] == 8.0 and calc.parameters["taper"] == 0.5
    plain = calc.todict()
    assert set(plain) == {"terms", "charges", "coulomb_cutoff"}   # defaults skipped
    assert plain["terms"][0] == {"form": "buckingham", "a": "Na", "b": "Cl",
                                 "params": (1200.0, 0.32, 0.0), "rmin": 0.0, "rmax": 6.0}
    atoms = rattled_nacl(False)
    energy = atoms.copy()
    energy.calc = calc
    e0 = energy.get_potential_energy()
    twin = atoms.copy()
    twin.calc = ProxyPotential(**plain)                          # rebuilt from todict()
    assert twin.get_potential_energy() == pytest.approx(e0, abs=1e-12)
    assert calc.set(coulomb_cutoff=8.0) == {}                     # unchanged: kept
    assert calc.results
    changed = calc.set(taper=0.2)
    assert changed == {"taper": 0.2} and not calc.results        # results dropped
    assert energy.get_potential_energy() != pytest.approx(e0, abs=1e-9)
    calc.charges = {}                                             # attribute = set()
    assert calc.parameters["charges"] == {} and not calc.results
    with pytest.raises(InputError, match="taper"):
        calc.set(taper=-1.0)
    with pytest.raises(InputError, match="tapr"):
        calc.set(tapr=0.1)
