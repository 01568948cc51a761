"""Property-based bad-input tests: random formulas, weights and options thrown at every
public entry give either a valid object or a one-line InputError naming a field;
never another exception.  For the CLI: exit status 2 and one stderr line, no traceback.
"""

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ase_fuse import FuseBasinHopping
from ase_fuse import walkers as walkers_module
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.cli import main as cli_main
from ase_fuse.composition import Composition
from ase_fuse.config import OPTIONS, read_toml
from ase_fuse.errors import InputError
from ase_fuse.generators.fuse import FuseGenerator
from ase_fuse.moves import MoveSelector

# the same examples every run, so a CI failure reproduces; ASE_FUSE_HYPOTHESIS_RANDOM=1
# draws new ones (to hunt for more gaps locally)
FIXED = os.environ.get("ASE_FUSE_HYPOTHESIS_RANDOM") is None
FAST = settings(max_examples=60, deadline=None, derandomize=FIXED,
                suppress_health_check=[HealthCheck.too_slow])
SLOWER = settings(max_examples=25, deadline=None, derandomize=FIXED,
                  suppress_health_check=[HealthCheck.too_slow,
                                         HealthCheck.function_scoped_fixture])

ELEMENTS = ["H", "He", "Li", "O", "Na", "Cl", "Ca", "Ti", "Cu", "Ag", "Pb", "As", "Xx",
            "X", "o", "Q", "Uuo"]
formula_text = st.one_of(
    st.text(alphabet="HOClNaCaTiCuAgPbAsXxQ0123456789()[]{}.,+- \t", max_size=20),
    st.lists(st.tuples(st.sampled_from(ELEMENTS),
                       st.one_of(st.just(""), st.integers(-3, 200).map(str),
                                 st.sampled_from(["0", "1.5", "00", "1e3", "-"]))),
             min_size=0, max_size=5).map(lambda parts: "".join(a + b for a, b in parts)),
    st.text(max_size=12))
anything = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                     st.lists(st.integers(-3, 20), max_size=4),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=3))
numbers = st.one_of(st.integers(-5, 300), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["10", "x", "", None, True, 2.5, 1e308]))


def one_line(err):
    text = str(err)
    assert text and "\n" not in text
    return text


def clean(call):
    """Run ``call``: returns the object, or None after a clean one-line InputError."""
    try:
        return call()
    except InputError as err:
        one_line(err)
        return None


# -- Composition ------------------------------------------------------------------------
@FAST
@given(formula_text)
def test_formula_strings(text):
    comp = clean(lambda: Composition(text))
    if comp is not None:  # a valid result is a real composition
        assert comp.counts and all(n >= 1 for n in comp.counts.values())
        assert math.gcd(*comp.counts.values()) == 1 or len(comp.counts) == 1
        assert Composition(comp.formula).counts == comp.counts


@FAST
@given(st.dictionaries(st.sampled_from(ELEMENTS), numbers, max_size=4))
def test_formula_dicts(counts):
    comp = clean(lambda: Composition(counts))
    if comp is not None:
        assert set(comp.counts) == set(counts)


@FAST
@given(st.sampled_from(["NaCl", "Ca3Ti2O7", "SrTiO3", "Cu"]),
       st.one_of(st.none(), st.dictionaries(st.sampled_from(ELEMENTS + ["Sr"]), numbers,
                                            max_size=4), anything))
def test_oxidation_states(formula, states):
    comp = clean(lambda: Composition(formula, states))
    if comp is not None and comp.oxidation_states:
        charge = sum(comp.oxidation_states[el] * n for el, n in comp.counts.items())
        assert charge == 0


@FAST
@given(numbers)
def test_formula_units_max_atoms(max_atoms):
    comp = Composition("Ca3Ti2O7")
    zs = clean(lambda: comp.formula_units(max_atoms))
    if zs is not None:
        assert zs[-1] * 12 <= max_atoms < (zs[-1] + 1) * 12


# -- moves ------------------------------------------------------------------------------
weights = st.one_of(
    anything,
    st.dictionaries(st.one_of(st.integers(-2, 16), st.text(max_size=2)), numbers, max_size=5),
    st.lists(numbers, min_size=14, max_size=14),
    st.lists(st.floats(0, 10), min_size=0, max_size=16))


@FAST
@given(weights)
def test_move_weights(value):
    selector = clean(lambda: MoveSelector(value))
    if selector is not None:
        assert selector.weights.sum() > 0 and np.all(selector.weights >= 0)
        assert len(selector.weights) == 14


# -- generator --------------------------------------------------------------------------
@FAST
@given(max_atoms=numbers, formula_units=st.one_of(st.none(), anything, numbers),
       max_tries=numbers, site_fill=st.one_of(anything, st.tuples(numbers, numbers)),
       seed=st.one_of(st.none(), st.integers(0, 10), anything))
def test_fuse_generator_options(max_atoms, formula_units, max_tries, site_fill, seed):
    gen = clean(lambda: FuseGenerator("NaCl", max_atoms=max_atoms, seed=seed,
                                      formula_units=formula_units, max_tries=max_tries,
                                      site_fill=site_fill))
    if gen is not None:
        assert gen.max_atoms >= 2 and gen.max_tries >= 1


# -- tiers ------------------------------------------------------------------------------
@FAST
@given(fmax=numbers, steps=numbers, optimizer=st.one_of(st.sampled_from(["FIRE", "BFGS"]),
                                                        anything),
       fail_force_factor=st.one_of(st.none(), numbers), calc=st.sampled_from(["emt", "junk"]))
def test_tier_options(fmax, steps, optimizer, fail_force_factor, calc):
    calculator = EMT() if calc == "emt" else "junk"
    tier = clean(lambda: Tier(calculator, fmax=fmax, steps=steps, optimizer=optimizer,
                              fail_force_factor=fail_force_factor))
    if tier is not None:
        assert tier.fmax > 0 and tier.steps >= 0


@FAST
@given(tiers=st.one_of(st.just("tier"), st.just([]), anything),
       time_limit=st.one_of(st.none(), numbers))
def test_tiered_relaxer_options(tiers, time_limit):
    value = Tier(EMT()) if tiers == "tier" else tiers
    relaxer = clean(lambda: TieredRelaxer(value, time_limit=time_limit))
    if relaxer is not None:
        assert relaxer.tiers and (relaxer.time_limit is None or relaxer.time_limit > 0)


# -- the search -------------------------------------------------------------------------
@SLOWER
@given(composition=st.one_of(st.sampled_from(["Cu", "NaCl", "Ca3Ti2O7"]), formula_text),
       relaxer=st.one_of(st.just("emt"), st.text(max_size=6)),
       max_atoms=numbers, initial_population=numbers, temperature=numbers,
       melt_threshold=numbers, rmax=numbers, seed=st.one_of(st.none(), numbers),
       symprec=numbers, move_weights=weights,
       melt_increment=st.one_of(st.tuples(numbers, numbers), anything),
       vacancy_distance=numbers)
def test_search_constructor(**options):
    with tempfile.TemporaryDirectory() as folder:
        opt = clean(lambda: FuseBasinHopping(directory=folder, logfile=None, **options))
        if opt is not None:
            assert opt.max_atoms >= 1 and opt.initial_population >= 1
            assert (Path(folder) / "fuse.db").exists()


VALID = dict(composition="NaCl", relaxer="emt", max_atoms=8, initial_population=2,
             temperature=0.02, melt_threshold=10, rmax=50, seed=1, symprec=0.1,
             move_weights=None, melt_increment=(0.5, 1.5), vacancy_distance=1.0,
             oxidation_states=None, generator="fuse", symmetrize=True)
one_field_values = st.one_of(anything, numbers, weights, formula_text)


@SLOWER
@given(st.sampled_from(sorted(VALID)), one_field_values)
def test_search_constructor_one_bad_field(field, value):
    # all options valid but one: an error must name that field (or the value is fine)
    with tempfile.TemporaryDirectory() as folder:
        options = dict(VALID, **{field: value})
        try:
            opt = FuseBasinHopping(directory=folder, logfile=None, **options)
        except InputError as err:
            one_line(err)
            named = {"composition": ("formula", "composition", "oxidation_states"),
                     "relaxer": ("relaxer", "stack", "composition", "calculator")}
            assert err.field in named.get(field, (field,)), (field, value, str(err))
        else:
            assert opt.max_atoms >= 1 and opt.initial_population >= 1


# -- command line -----------------------------------------------------------------------
VALUE_OPTIONS = [o for o in OPTIONS if o.type is not bool and o.name not in ("restart",)]
cli_values = st.one_of(st.text(alphabet="0123456789.,=-+eaxCuNOl ", max_size=8),
                       st.sampled_from(["1", "2", "0", "-1", "nan", "inf", "1.5", "",
                                        "emt", "1=2", "Cu=1", "x=y", "1,2", "a,b"]))


@pytest.fixture
def no_search(monkeypatch):
    """Constructing the search is real; running it is skipped (kept cheap).  With
    ``--walkers`` the walkers are made (real) and closed, never run: a real lock-step
    search here once ran EMT for 1000 steps inside one hypothesis example."""
    monkeypatch.setattr(FuseBasinHopping, "run", lambda self, steps=0, time_limit=None: False)

    def make_only(composition, seeds, steps=100, batch_relaxer=None, directory=".",
                  total=False, on_round=None, time_limit=None, **options):
        walkers = walkers_module.make_walkers(composition, seeds, batch_relaxer, directory,
                                              **options)
        for walker in walkers:
            walker.close()
        return walkers

    monkeypatch.setattr(walkers_module, "run_walkers", make_only)


def run_cli(argv, capsys):
    code = cli_main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("ase-fuse: error: ")
    return code, err


@SLOWER
@given(composition=st.one_of(st.sampled_from(["Cu", "NaCl"]), formula_text.filter(
           lambda s: s and not s.startswith("-") and not s.endswith(".toml"))),
       flags=st.dictionaries(st.sampled_from(VALUE_OPTIONS), cli_values, max_size=4))
def test_cli_run_options(tmp_path_factory, capsys, no_search, composition, flags):
    out = tmp_path_factory.mktemp("cli")
    argv = ["run", composition, "-q", "-o", str(out / "run"), "--calculator=emt",
            "--initial-population=1"]
    argv += [f"--{o.name.replace('_', '-')}={v}" for o, v in flags.items()]
    run_cli(argv, capsys)


# -- TOML -------------------------------------------------------------------------------
def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else
                                                         ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


toml_scalars = st.one_of(st.booleans(), st.integers(-10**6, 10**6),
                         st.floats(allow_nan=True, allow_infinity=True),
                         st.text(max_size=8))
toml_values = st.one_of(toml_scalars, st.lists(st.integers(-5, 20), max_size=14),
                        st.dictionaries(st.sampled_from(["Na", "Cl", "1", "x"]),
                                        st.integers(-3, 3), max_size=3))
toml_keys = st.sampled_from([o.name for o in OPTIONS] + ["composition", "output",
                                                         "max_atom", "calculater", "steps"])


@SLOWER
@given(st.dictionaries(toml_keys, toml_values, max_size=5),
       st.one_of(st.none(), st.sampled_from(["Cu", "NaCl"]), formula_text))
def test_toml_input(tmp_path_factory, capsys, no_search, data, composition):
    folder = tmp_path_factory.mktemp("toml")
    if composition is not None:
        data = dict(data, composition=composition)
    data["output"] = str(folder / "run")
    text = "\n".join(f"{key} = {toml_value(value)}" for key, value in data.items())
    path = folder / "input.toml"
    path.write_text(text + "\n")
    settings_ = clean(lambda: read_toml(str(path)))
    if settings_ is not None:
        assert "composition" in settings_
    run_cli(["run", str(path), "-q", "--calculator=emt", "--initial-population=1"], capsys)


@SLOWER
@given(st.binary(max_size=40))
def test_toml_garbage_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "input.toml"
    path.write_bytes(data)
    clean(lambda: read_toml(str(path)))
