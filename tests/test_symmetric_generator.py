"""The symmetric (PyXtal, AIRSS-style) generator and the FUSE/symmetric mix."""

import time
import warnings

import numpy as np
import pytest

pytest.importorskip("pyxtal")

from ase_fuse import generators  # noqa: E402
from ase_fuse.checks import Limits, check_structure  # noqa: E402
from ase_fuse.composition import Composition  # noqa: E402
from ase_fuse.errors import GenerationError, InputError  # noqa: E402
from ase_fuse.generators.symmetric import MixedGenerator, SymmetricGenerator  # noqa: E402

CASES = [("NaCl", 8), ("SrTiO3", 10), ("TiO2", 12), ("Al2O3", 10), ("Si", 8)]


def make(formula, max_atoms, seed, **kwargs):
    return SymmetricGenerator(formula, max_atoms=max_atoms,
                              rng=np.random.default_rng(seed), **kwargs)


@pytest.fixture(scope="module")
def batches():
    return {formula: make(formula, max_atoms, 7).generate_many(5)
            for formula, max_atoms in CASES}


def same(a, b):
    return (a.get_chemical_symbols() == b.get_chemical_symbols()
            and np.allclose(a.cell.array, b.cell.array)
            and np.allclose(a.positions, b.positions) and a.info == b.info)


@pytest.mark.parametrize("formula,max_atoms", CASES)
def test_composition_size_and_checks(batches, formula, max_atoms):
    composition = Composition(formula)
    for atoms in batches[formula]:
        z = composition.formula_units_of(atoms)
        assert z is not None and z * composition.atoms_per_formula_unit == len(atoms)
        assert len(atoms) <= max_atoms
        assert atoms.pbc.all()
        assert check_structure(atoms, composition, Limits(max_atoms=max_atoms)) is None
        origin = atoms.info["origin"]
        assert origin["name"] == "symmetric" and origin["z"] == z
        assert 2 <= origin["space_group"] <= 230
        assert atoms.info["formula_units"] == z


def contains_group(atoms, number, symprec=0.1):
    """Whether the symmetry spglib finds (symprec) holds every operation of space group
    ``number`` (pyxtal's standard setting, the basis of the cell it wrote): the found
    group is ``number`` or a supergroup of it."""
    import spglib
    from pyxtal.symmetry import Group

    cell = (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = spglib.get_symmetry(cell, symprec=symprec)
    if found is None:
        return False
    for op in Group(number)[0].ops:  # the general position's operations
        rotation = np.rint(op.rotation_matrix).astype(int)
        match = np.all(found["rotations"] == rotation, axis=(1, 2))
        shift = found["translations"][match] - op.translation_vector
        shift -= np.rint(shift)
        if not len(shift) or np.abs(shift).max(axis=1).min() > 0.02:
            return False
    return True


def test_spglib_finds_the_drawn_group_or_a_supergroup(batches):
    structures = [atoms for batch in batches.values() for atoms in batch]
    held = [contains_group(atoms, atoms.info["origin"]["space_group"])
            for atoms in structures]
    assert sum(held) >= 0.8 * len(structures), held


def test_same_seed_same_structures_different_seed_differ():
    first = make("TiO2", 12, 3).generate_many(4)
    np.random.seed(123)  # the global state plays no part
    again = make("TiO2", 12, 3).generate_many(4)
    other = make("TiO2", 12, 4).generate_many(4)
    assert all(same(a, b) for a, b in zip(first, again))
    assert not all(same(a, b) for a, b in zip(first, other))


def test_space_groups_and_formula_units_are_kept():
    gen = make("NaCl", 8, 1, space_groups=[221, 225])
    for atoms in gen.generate_many(3):
        assert atoms.info["origin"]["space_group"] in (221, 225)
    atoms = gen.generate(formula_units=4)
    assert len(atoms) == 8 and atoms.info["origin"]["z"] == 4


def test_impossible_groups_fail_quickly():
    # Ia-3d's smallest orbit has 16 sites: no NaCl cell of up to 8 atoms fits
    gen = make("NaCl", 8, 1, space_groups=230)
    started = time.perf_counter()
    with pytest.raises(GenerationError, match="Wyckoff") as err:
        gen.generate()
    assert time.perf_counter() - started < 10
    assert "\n" not in str(err.value) and "NaCl" in str(err.value)


def test_bounded_tries_then_generation_error():
    gen = make("Si", 4, 1, max_tries=3, limits=Limits(volume_window=(50.0, 60.0)))
    with pytest.raises(GenerationError, match="3 tries"):
        gen.generate()
    assert gen.candidates_drawn == 3


@pytest.mark.parametrize("kwargs,field", [
    ({"space_groups": [231]}, "space_groups"),
    ({"space_groups": []}, "space_groups"),
    ({"space_groups": "Fm-3m"}, "space_groups"),
    ({"formula_units": 5}, "formula_units"),
    ({"max_tries": 0}, "max_tries"),
    ({"max_atoms": 1}, "max_atoms"),
])
def test_bad_input(kwargs, field):
    settings = {"max_atoms": 8, **kwargs}
    with pytest.raises(InputError) as err:
        SymmetricGenerator("NaCl", rng=np.random.default_rng(0), **settings)
    assert str(err.value).startswith(f"{field}:")


def test_missing_pyxtal_names_the_extra(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyxtal" else real(name, *a))
    with pytest.raises(InputError, match=r"ase-fuse\[ml\]") as err:
        SymmetricGenerator("NaCl", max_atoms=8)
    assert "\n" not in str(err.value)


def test_registered_and_unknown_options_refused():
    assert generators.get("symmetric") is SymmetricGenerator
    assert generators.get("mix") is MixedGenerator
    try:  # the search's check (reads the signature); older trees lack it
        from ase_fuse.search_setup import check_generator_options
    except ImportError:
        pytest.skip("ase_fuse.search_setup.check_generator_options not present")
    for name in ("symmetric", "mix"):
        with pytest.raises(InputError, match="unknown option 'colour'") as err:
            check_generator_options(name, generators.get(name), {"colour": 1})
        assert "space_groups" in str(err.value) and "\n" not in str(err.value)
    check_generator_options("mix", MixedGenerator, {"fraction": 0.3, "space_groups": [225]})


def test_mix_alternates_and_is_seeded():
    def origins(seed, n=8, **kwargs):
        gen = MixedGenerator("NaCl", max_atoms=8, rng=np.random.default_rng(seed), **kwargs)
        made = gen.generate_many(n)
        names = [a.info["origin"] if isinstance(a.info["origin"], str)
                 else a.info["origin"]["name"] for a in made]
        return names, made

    names, made = origins(5)
    assert set(names) == {"fuse", "symmetric"}
    assert all(a != b for a, b in zip(names, names[1:]))  # strictly alternating
    again, made_again = origins(5)
    assert again == names and all(same(a, b) for a, b in zip(made, made_again))
    firsts = {origins(seed, n=1)[0][0] for seed in range(8)}
    assert firsts == {"fuse", "symmetric"}  # which comes first is drawn

    quarter, _ = origins(2, n=8, fraction=0.25)
    assert quarter.count("symmetric") == 2
    assert origins(2, n=3, fraction=0.0)[0] == ["fuse"] * 3
    assert origins(2, n=3, fraction=1.0)[0] == ["symmetric"] * 3
    with pytest.raises(InputError, match="fraction"):
        MixedGenerator("NaCl", max_atoms=8, fraction=1.5)


def test_search_starts_from_symmetric_structures(tmp_path):
    import ase.db

    from ase_fuse import FuseBasinHopping
    from ase_fuse.calculators.stacks import build_stack

    opt = FuseBasinHopping("NaCl", relaxer=build_stack("proxy", "NaCl"), max_atoms=8, initial_population=4,
                           generator="symmetric", generator_options={"max_tries": 100},
                           seed=1, logfile=None, directory=tmp_path)
    opt.run(steps=2)
    with ase.db.connect(str(tmp_path / "fuse.db")) as db:
        origins = [row.get("origin") for row in db.select()]
    assert origins.count("symmetric") >= 4
    assert np.isfinite(opt.best_energy)
    assert Composition("NaCl").formula_units_of(opt.best_atoms) is not None


def test_mix_without_pyxtal_warns_and_makes_fuse_structures(monkeypatch):
    """The search's default generator must work on a base install (no pyxtal)."""
    import importlib.util

    from ase_fuse.generators.symmetric import MixedGenerator
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyxtal" else real(name, *a))
    with pytest.warns(RuntimeWarning, match="pyxtal"):
        gen = MixedGenerator("NaCl", max_atoms=8, rng=np.random.default_rng(1))
    origins = [a.info.get("origin") for a in gen.generate_many(4)]
    assert all(not isinstance(o, dict) or o.get("name") != "symmetric" for o in origins)
