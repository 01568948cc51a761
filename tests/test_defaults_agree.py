"""One default per option: ``FuseBasinHopping``'s constructor and the option table
(``config.OPTIONS``, from which the CLI flags, their ``--help`` and the TOML keys are
made) agree."""

import inspect

from ase_fuse import FuseBasinHopping
from ase_fuse.config import OPTIONS


def test_constructor_defaults_are_the_option_table_s():
    params = inspect.signature(FuseBasinHopping.__init__).parameters
    # "calculator": a stack name in the table, an ASE calculator object in Python
    # (the stack is the constructor's ``relaxer``: checked below)
    shared = [o for o in OPTIONS if o.name in params and o.name != "calculator"]
    assert len(shared) >= 15                      # the search's own options
    for option in shared:
        default = params[option.name].default
        if isinstance(option.default, tuple) or isinstance(default, tuple):
            default, expected = tuple(default), tuple(option.default)
        else:
            expected = option.default
        assert default == expected, f"{option.name}: constructor {default!r}, " \
                                    f"config {expected!r}"


def test_the_default_stack_is_the_option_table_s():
    from ase_fuse.run_settings import stack_name
    from ase_fuse.search_setup import make_relaxer
    default = next(o.default for o in OPTIONS if o.name == "calculator")
    assert stack_name(None, None) == default
    relaxer = make_relaxer(None, None, "NaCl")
    assert [t.name for t in relaxer.tiers] == default.split("+")


def test_every_default_and_bound_comes_from_the_record():
    # issue 19 item 1: the constructor, validate_options, the acceptance rule, the
    # stack module and the CLI's --help take their defaults from config.OPTIONS
    import argparse
    import dataclasses

    from ase_fuse.acceptance import AcceptanceRule
    from ase_fuse.calculators.stacks import DEFAULT
    from ase_fuse.cli import _add_run
    from ase_fuse.config import DEFAULTS, MINIMA, MINIMUM
    from ase_fuse.search_setup import validate_options

    for name, param in inspect.signature(validate_options).parameters.items():
        if param.default is not inspect.Parameter.empty:
            assert param.default == DEFAULTS[name], name
    rule = AcceptanceRule()
    for field in dataclasses.fields(rule):
        assert getattr(rule, field.name) == DEFAULTS[field.name], field.name
    assert DEFAULT == DEFAULTS["calculator"]
    sub = argparse.ArgumentParser().add_subparsers()
    _add_run(sub)
    parser = sub.choices["run"]
    helps = {}
    for action in parser._actions:        # a bool's --no- flag shares its dest: the first
        helps.setdefault(action.dest, action.help)
    for option in OPTIONS:
        assert helps[option.name].startswith(option.help), option.name
        if option.type not in (bool, "list"):
            assert f"(default {option.default})" in helps[option.name], option.name
    # the bounds: the CLI checks those of how a run executes, the search the rest
    assert MINIMUM == {"steps": 0, "workers": 0, "threads": 0, "batch_size": 0,
                       "walkers": 1}
    assert MINIMA["max_atoms"] == 1 and MINIMA["hop_after"] == 0


def test_the_restart_comparison_is_the_record_s_stored_options():
    from ase_fuse.config import RUN_KEYS, STORED
    from ase_fuse.run_settings import CLI_FILLED, FIELDS

    assert set(FIELDS) == set(STORED) | {"composition", "relaxer", "limits"}
    assert CLI_FILLED == STORED
    assert not RUN_KEYS & set(STORED)                  # how a run executes is not stored
    assert {"steps", "restart", "db"}.isdisjoint(STORED)
    assert FIELDS.index("relaxer") == FIELDS.index("stack_options") + 1


def test_the_record_drives_the_checks(tmp_path):
    # a bound moved in the record moves the search's check with it
    import pytest

    from ase_fuse import config
    from ase_fuse.composition import Composition
    from ase_fuse.errors import InputError
    from ase_fuse.search_setup import validate_options

    options = dict(max_atoms=8, initial_population=3, temperature=0.02, melt_threshold=10,
                   rmax=10, seed=1, symprec=0.1, hop_after=1)
    validate_options(Composition("Cu"), **options)
    saved = dict(config.MINIMA)
    try:
        config.MINIMA["hop_after"] = 2
        with pytest.raises(InputError, match=">= 2") as err:
            validate_options(Composition("Cu"), **options)
        assert err.value.field == "hop_after"
    finally:
        config.MINIMA.clear()
        config.MINIMA.update(saved)
