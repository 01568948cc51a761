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
