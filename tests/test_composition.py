"""Composition: formula parsing, its errors, formula units, radii and the sub-module edge Ip."""

import math
from functools import reduce

import pytest
from ase.data import chemical_symbols
from hypothesis import given, settings
from hypothesis import strategies as st

from ase_fuse.composition import Composition
from ase_fuse.errors import CompositionError, InputError


@pytest.mark.parametrize("formula, expected", [
    ("Ca3Ti2O7", {"Ca": 3, "Ti": 2, "O": 7}),
    ("Pb5(AsO4)3Cl", {"Pb": 5, "As": 3, "O": 12, "Cl": 1}),
    ("Si6Al6B3Fe3NaO30F", {"Si": 6, "Al": 6, "B": 3, "Fe": 3, "Na": 1, "O": 30, "F": 1}),
    ("Mn", {"Mn": 1}),
    ("Mn4", {"Mn": 1}),  # reduced to one formula unit
    ("Ca6Ti4O14", {"Ca": 3, "Ti": 2, "O": 7}),
    ("Li4OBrCl", {"Li": 4, "O": 1, "Br": 1, "Cl": 1}),
])
def test_parsing(formula, expected):
    comp = Composition(formula)
    assert comp.counts == expected
    assert list(comp.counts) == list(expected)  # order as written
    assert comp.atoms_per_formula_unit == sum(expected.values())
    assert comp.elements == list(expected)


def test_dict_input_and_copy():
    comp = Composition({"Co": 2, "As": 4})
    assert comp.counts == {"Co": 1, "As": 2}
    assert comp.formula == "CoAs2"
    assert Composition(comp) == comp
    assert Composition("Mn").is_element and not comp.is_element


def test_symbols_grouped_by_element():
    assert Composition("CoAs2").symbols(2) == ["Co", "Co", "As", "As", "As", "As"]


@pytest.mark.parametrize("formula, words", [
    ("Ca3Xx2O7", "unknown element"),
    ("Qq", "unknown element"),
    ("Ca0O", "positive"),
    ("Ca-1O", "unexpected character"),
    ("Ca1.5O", "fractional"),
    ("", "empty"),
    ("   ", "empty"),
    ("Pb5(AsO4", "unbalanced"),
    ("Pb5AsO4)3Cl", "unbalanced"),
    ("()", "empty brackets"),
    ("3O", "without an element"),
    ("ca3", "unexpected character"),
])
def test_formula_errors(formula, words):
    with pytest.raises(CompositionError, match=words) as err:
        Composition(formula)
    assert isinstance(err.value, InputError)
    assert str(err.value).startswith("formula:")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("counts", [{"Ca": 0, "O": 1}, {"Ca": -1, "O": 1},
                                    {"Ca": 1.5, "O": 1}, {"Zz": 1}, {}])
def test_dict_errors(counts):
    with pytest.raises(CompositionError):
        Composition(counts)


def test_formula_units():
    comp = Composition("Ca3Ti2O7")  # 12 atoms per formula unit
    assert comp.formula_units(50) == [1, 2, 3, 4]
    assert comp.formula_units(12) == [1]
    with pytest.raises(CompositionError, match="max_atoms") as err:
        comp.formula_units(11)
    assert "12 atoms" in str(err.value)
    with pytest.raises(CompositionError, match="max_atoms"):
        comp.formula_units(0)


def test_formula_units_of(rocksalt, rutile):
    assert Composition("NaCl").formula_units_of(rocksalt) == 4
    assert Composition("TiO2").formula_units_of(rutile) == 2
    assert Composition("TiO2").formula_units_of(rocksalt) is None
    del rutile[-1]  # Ti2O3 is not whole units of TiO2
    assert Composition("TiO2").formula_units_of(rutile) is None


def test_garnet_ip_from_vesta_radii():
    comp = Composition("Ca3Al2Si3O12")
    vesta = {"Ca": 1.97, "Al": 1.43, "Si": 1.18, "O": 0.74}
    assert comp.radii == pytest.approx(vesta)
    mean = (3 * 1.97 + 2 * 1.43 + 3 * 1.18 + 12 * 0.74) / 20
    assert mean == pytest.approx(1.06, abs=0.001)
    assert comp.ip == pytest.approx(4.24, abs=0.005)  # the FUSE2 paper's value
    assert comp.submodule_shape == pytest.approx([comp.ip, comp.ip, comp.ip / 2])
    assert comp.submodule_shape == pytest.approx([4.24, 4.24, 2.12], abs=0.005)


def test_ip_from_oxidation_states():
    from pymatgen.core import Species

    comp = Composition("Ca3Ti2O7", oxidation_states={"Ca": 2, "Ti": 4, "O": -2})
    r_ca = Species("Ca", 2).ionic_radius
    r_ti = Species("Ti", 4).ionic_radius
    r_o = Species("O", -2).ionic_radius
    mean_cation = (3 * r_ca + 2 * r_ti) / 5
    assert comp.ip == pytest.approx(2 * (mean_cation + r_o))
    assert comp.radii["O"] == pytest.approx(r_o)


def test_sphere_volume():
    comp = Composition("NaCl")
    expected = 4 / 3 * math.pi * (1.91 ** 3 + 0.99 ** 3)
    assert comp.sphere_volume(2) == pytest.approx(2 * expected)


@pytest.mark.parametrize("states, words", [
    ({"Ca": 2, "Ti": 4, "O": -3}, "charge neutral"),
    ({"Ca": 2, "Ti": 4}, "no oxidation state for O"),
    ({"Ca": 2, "Ti": 4, "O": -2, "F": -1}, "not in"),
    ({"Ca": 2, "Ti": 4.5, "O": -2}, "whole number"),
])
def test_oxidation_state_errors(states, words):
    with pytest.raises(CompositionError, match=words) as err:
        Composition("Ca3Ti2O7", oxidation_states=states)
    assert str(err.value).startswith("oxidation_states:")


# -- property tests ---------------------------------------------------------------------
ELEMENTS = [s for s in chemical_symbols[1:95] if s != "X"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ELEMENTS), st.integers(1, 40)),
                min_size=1, max_size=7, unique_by=lambda pair: pair[0]))
def test_random_formulas_round_trip(pairs):
    formula = "".join(el + (str(n) if n > 1 else "") for el, n in pairs)
    comp = Composition(formula)
    divisor = reduce(math.gcd, [n for _, n in pairs])
    assert comp.counts == {el: n // divisor for el, n in pairs}
    assert Composition(comp.formula).counts == comp.counts
    assert Composition(dict(pairs)).counts == comp.counts


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("()0123456789.-+ xXabCOHNaFeZzq[]*\t")) |
               st.characters(), max_size=20))
def test_junk_gives_only_composition_errors(text):
    try:
        comp = Composition(text)
    except CompositionError:
        return
    assert comp.atoms_per_formula_unit >= 1  # parsed: a real composition
    assert all(n >= 1 for n in comp.counts.values())
