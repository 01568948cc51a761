"""GULP library reader: parsed terms reproduce an explicit pair-and-image sum."""

import itertools
import math

import numpy as np
import pytest
from ase.build import bulk

from ase_fuse.calculators.gulp_library import read_gulp_library
from ase_fuse.calculators.proxy import ProxyPotential
from ase_fuse.errors import InputError

LIBRARY = """\
# a tiny made-up library in GULP's format
keyword conp
species
Na core  1.000
Cl core -1.000
Cl shel -2.000
buckingham
Na core Cl core 1200.0 0.32 2.0 0.0 6.0
morse
Na core Na core 0.10 1.2 4.0 0.0 5.0
lennard 12 6
Cl core Cl core 1.0e5 100.0 6.0 0 0
lennard epsilon
Na core Cl core 0.05 3.2 0.0 5.5
three
Na core Cl core Cl core 1.0 90.0 3.0 3.0 5.0
"""


def hand_energy(atoms, coulomb_cutoff=None, alpha=0.2):
    """Half the sum over every atom pair and periodic image, written out longhand."""
    charge = {"Na": 1.0, "Cl": -1.0}
    ke = 14.399645478425668

    def pair(a, b, r):
        e = 0.0
        kinds = {a, b}
        if kinds == {"Na", "Cl"} and r < 6.0:
            e += 1200.0 * math.exp(-r / 0.32) - 2.0 / r ** 6
        if kinds == {"Na", "Cl"} and r < 5.5:  # epsilon form: depth 0.05 at 3.2
            e += 0.05 * ((3.2 / r) ** 12 - 2.0 * (3.2 / r) ** 6)
        if a == b == "Na" and r < 5.0:
            e += 0.10 * ((1.0 - math.exp(-1.2 * (r - 4.0))) ** 2 - 1.0)
        if a == b == "Cl" and r < 6.0:
            e += 1.0e5 / r ** 12 - 100.0 / r ** 6
        if coulomb_cutoff and r < coulomb_cutoff:
            rc = coulomb_cutoff
            slope = math.erfc(alpha * rc) / rc ** 2 \
                + 2 * alpha / math.sqrt(math.pi) * math.exp(-alpha ** 2 * rc ** 2) / rc
            e += ke * charge[a] * charge[b] * (
                math.erfc(alpha * r) / r - math.erfc(alpha * rc) / rc + slope * (r - rc))
        return e

    symbols = atoms.get_chemical_symbols()
    cell = atoms.cell.array
    total = 0.0
    for i, j in itertools.product(range(len(atoms)), repeat=2):
        for shift in itertools.product(range(-2, 3), repeat=3):
            if i == j and shift == (0, 0, 0):
                continue
            r = np.linalg.norm(atoms.positions[j] + np.dot(shift, cell) - atoms.positions[i])
            total += 0.5 * pair(symbols[i], symbols[j], r)
    if coulomb_cutoff:
        rc = coulomb_cutoff
        total -= ke * (math.erfc(alpha * rc) / (2 * rc) + alpha / math.sqrt(math.pi)) \
            * sum(charge[s] ** 2 for s in symbols)
    return total


@pytest.fixture
def nacl():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)  # 5.64 A: published lattice constant
    atoms.rattle(0.1, rng=np.random.default_rng(11))
    return atoms


def test_library_terms_and_notes():
    with pytest.warns(UserWarning, match="'three'"):
        params = read_gulp_library(LIBRARY)
    assert params.charges == {"Na": 1.0, "Cl": -1.0}
    assert sorted(t.form for t in params.terms) == ["buckingham", "lennard", "lennard", "morse"]
    lj = [t for t in params.terms if t.form == "lennard" and t.a == "Cl"][0]
    assert (lj.rmin, lj.rmax) == (0.0, 6.0)  # the trailing "0 0" are fit flags
    assert any("shell" in note for note in params.notes)
    assert any("three" in note for note in params.notes)


@pytest.mark.parametrize("coulomb", [False, True])
def test_library_energy_matches_hand_sum(nacl, coulomb):
    with pytest.warns(UserWarning):
        calc = ProxyPotential.from_gulp_library(LIBRARY, taper=0.0, coulomb_cutoff=7.5)
    if not coulomb:
        calc.charges = {}
    nacl.calc = calc
    expected = hand_energy(nacl, coulomb_cutoff=7.5 if coulomb else None)
    assert nacl.get_potential_energy() == pytest.approx(expected, rel=1e-10, abs=1e-9)


def test_from_path_and_shell_merge(tmp_path):
    path = tmp_path / "tiny.lib"
    path.write_text(LIBRARY)
    with pytest.warns(UserWarning):
        merged = read_gulp_library(str(path), shells="merge")
    assert merged.charges == {"Na": 1.0, "Cl": -3.0}
    with pytest.warns(UserWarning):
        calc = ProxyPotential.from_gulp_library(path)
    assert len(calc.terms) == 4 and calc.charges["Cl"] == -1.0


def test_lennard_epsilon_and_zero_forms():
    text = "lennard epsilon\nAr core Ar core 0.0104 3.82 8.0\n" \
           "lennard zero 12 6\nKr core Kr core 0.014 3.6 8.0\n"
    eps_term, zero_term = read_gulp_library(text).terms
    r = np.linspace(3.0, 6.0, 3001)
    energy, _ = eps_term.evaluate(r)
    assert r[np.argmin(energy)] == pytest.approx(3.82, abs=2e-3)
    assert energy.min() == pytest.approx(-0.0104, rel=1e-4)
    e_sigma, _ = zero_term.evaluate(np.array([3.6]))
    assert e_sigma[0] == pytest.approx(0.0, abs=1e-12)
    assert zero_term.evaluate(np.array([3.6 * 2 ** (1 / 6)]))[0][0] == pytest.approx(-0.014)


def test_bad_line_raises_input_error():
    with pytest.raises(InputError, match="library"):
        read_gulp_library("buckingham\nNa core Cl core 1200.0 zero 2.0 6.0\n")
    with pytest.raises(InputError, match="shells"):
        read_gulp_library(LIBRARY, shells="keep")
