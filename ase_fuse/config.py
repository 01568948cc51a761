"""Search options: one record for each, and everything else derived from it.

:data:`OPTIONS` holds each option's name, type, default, ``--help`` text, smallest
value and whether it defines the run.  From it come ``FuseBasinHopping``'s constructor
defaults and ``validate_options``' bounds (:data:`DEFAULTS`, :data:`MINIMA`), the
acceptance rule's defaults, the CLI flags and their ``--help``, the TOML keys and
their checks, and the settings a restart compares and fills in
(:data:`STORED`; ``run_settings``).  ``tests/test_defaults_agree.py`` holds them to it.
"""

import difflib
import math
from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class Option:
    name: str            # constructor / TOML name
    type: object         # int, float, str, bool, "weights", "list", "dict", "pair"
    default: object
    help: str
    minimum: object = None   # smallest value of a whole-number option
    stored: bool = True      # defines the run: stored in the db, compared on restart


OPTIONS = [
    Option("max_atoms", int, 50, "largest cell (atoms)", minimum=1),
    Option("steps", int, 1000, "total basin-hopping steps of the run (a restart runs the rest)",
           minimum=0, stored=False),
    Option("seed", int, None, "random seed (same seed, same run)"),
    Option("calculator", str, "proxy+chgnet", "calculator stack name"),
    Option("stack_options", "dict", None, "options of the stack's stages, STAGE.KEY=VALUE "
           "(chgnet.optimizer=LBFGS, chgnet.fmax=0.03, proxy.steps=500)"),
    Option("initial_population", int, 25, "size of the starting population", minimum=1),
    Option("hop_after", int, 5, "start hopping after this many population structures, "
           "relaxing the rest one before each step (0: the whole population first)", minimum=0),
    Option("generator", str, "gnoa", "registered generator of the starting population "
           "(gnoa: GN-OA's optimiser over space groups and Wyckoff sites on the proxy, "
           "the best distinct structures first; mix: FUSE and symmetric in turn)"),
    Option("generator_options", "dict", None, "generator options, KEY=VALUE"),
    Option("structures", "list", None, "structure files to start from"),
    Option("pool", str, None, "file or db of unused structures for moves 13/14"),
    Option("temperature", float, 0.02, "Metropolis temperature (eV/atom)"),
    Option("melt_threshold", int, 150, "consecutive rejections before melting", minimum=0),
    Option("melt_increment", "pair", (0.5, 1.5), "melting rise range, multiples of T"),
    Option("rmax", int, 1000, "steps without a new minimum before converging", minimum=1),
    Option("move_weights", "weights", None, "move weights: 14 numbers or N=W,..."),
    Option("adaptive_moves", bool, False, "learn move weights as the run goes: each "
           "move's reward (new best, accepted) per ML step scales its weight 0.25-4x"),
    Option("pressure", float, 0.0, "external pressure (GPa): cells relax under it and "
           "the search compares enthalpy per atom, H = E + PV"),
    Option("symmetrize", bool, True, "spglib-symmetrise candidates before relaxing"),
    Option("symprec", float, 0.1, "symmetrisation tolerance (A)"),
    Option("vacancy_distance", float, 1.0, "a vacant point is this far from every atom (A)"),
    Option("oxidation_states", "dict", None, "oxidation states, EL=N,..."),
    Option("reuse", bool, True, "re-use the result of an input already relaxed in this "
           "run instead of relaxing it again", stored=False),
    Option("db", str, "fuse.db", "database file in the run folder", stored=False),
    Option("restart", bool, False, "continue the run in the folder's db", stored=False),
    Option("workers", int, 0, "relax on N local Dask worker processes (0: in this process)",
           minimum=0, stored=False),
    Option("scheduler", str, None, "relax on the Dask cluster at this address (tcp://...)",
           stored=False),
    Option("threads", int, 1, "torch threads per relaxation (0: torch's own default)",
           minimum=0, stored=False),
    Option("batch_size", int, 0, "relax the final CHGNet or SevenNet tier N structures "
           "at a time (torch-sim; 0: one at a time)", minimum=0, stored=False),
    Option("device", str, "cpu", "torch device of the CHGNet and SevenNet tiers: cpu or "
           "cuda", stored=False),
    Option("time_limit", "duration", None, "stop cleanly after this wall time from the "
           "start (90s, 30m, 2h); --restart continues", stored=False),
    Option("walkers", int, 1, "independent searches (seeds seed, seed+1, ...) advancing "
           "in lock-step so their relaxations batch together", minimum=1, stored=False),
]
RUN_KEYS = {"workers", "scheduler", "threads", "batch_size", "device", "walkers",
            "time_limit"}  # how the run executes, not the search
BY_NAME = {o.name: o for o in OPTIONS}
#: each option's default: the constructor's keyword defaults are these
DEFAULTS = {o.name: o.default for o in OPTIONS}
#: smallest value of each whole-number option (the search's checks use these)
MINIMA = {o.name: o.minimum for o in OPTIONS if o.minimum is not None}
#: the options that define a run, in the record's order (stored, compared on restart)
STORED = tuple(o.name for o in OPTIONS if o.stored)
SEARCH_KEYS = {"composition", "output"} | set(BY_NAME)


def closest(name, names):
    match = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def parse_mapping(text, field, value_type=str):
    """``"Ca=2,Ti=4"`` -> ``{"Ca": 2, "Ti": 4}`` with values converted by ``value_type``."""
    out = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        if "=" not in part:
            raise InputError(f"expected KEY=VALUE, got {part!r}", field=field)
        key, value = (x.strip() for x in part.split("=", 1))
        try:
            out[key] = value_type(value)
        except ValueError:
            raise InputError(f"bad value {value!r} for {key}", field=field) from None
    return out


def _auto(value):
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def parse_weights(value):
    """Move weights from ``"1=2,5=0.5"``, ``"1,1,0,..."`` (14 numbers), a list or a dict."""
    if value is None:
        return value
    if isinstance(value, dict):
        try:
            return {int(k): v for k, v in value.items()}
        except ValueError:
            raise InputError(f"move numbers must be whole numbers: {sorted(value)}",
                             field="move_weights") from None
    if isinstance(value, (list, tuple)):
        return list(value)
    text = str(value)
    if "=" in text:
        try:
            return {int(k): float(v) for k, v in parse_mapping(text, "move_weights").items()}
        except ValueError:
            raise InputError(f"move numbers must be whole numbers: {text!r}",
                             field="move_weights") from None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise InputError(f"cannot read weights {text!r}", field="move_weights") from None


def convert(option, value):
    """Check and convert one option value (from TOML or a CLI string)."""
    name, kind = option.name, option.type
    if value is None:
        return None
    if kind == "weights":
        return parse_weights(value)
    if kind == "duration":
        from .durations import parse_duration
        return parse_duration(value, field=name)
    if kind == "dict":
        if isinstance(value, dict):
            return value
        value_type = int if name == "oxidation_states" else _auto
        return parse_mapping(value, name, value_type)
    if kind == "list":
        if isinstance(value, str):
            return [value]
        if not isinstance(value, (list, tuple)):
            raise InputError(f"expected a list of file names, got {value!r}", field=name)
        return list(value)
    if kind == "pair":
        if isinstance(value, str):
            value = value.split(",")
        try:
            low, high = (float(x) for x in value)
        except (TypeError, ValueError):
            raise InputError(f"expected two numbers LOW,HIGH, got {value!r}",
                             field=name) from None
        return (low, high)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise InputError(f"expected true or false, got {value!r}", field=name)
    try:
        if kind is int and (isinstance(value, bool) or float(value) != int(float(value))):
            raise ValueError
        if kind is str and not isinstance(value, str):
            raise TypeError
        out = kind(value) if kind is not int else int(float(value))
    except (TypeError, ValueError, OverflowError):  # OverflowError: int("inf")
        raise InputError(f"expected {kind.__name__}, got {value!r}", field=name) from None
    if kind is float and not math.isfinite(out):
        raise InputError(f"must be a finite number, got {value!r}", field=name)
    if name in MINIMUM and out < MINIMUM[name]:
        raise InputError(f"must be >= {MINIMUM[name]}, got {value!r}", field=name)
    return out


#: Smallest value of the whole-number options the search itself does not check (how
#: the run executes; the search checks its own against :data:`MINIMA`).
MINIMUM = {name: value for name, value in MINIMA.items() if not BY_NAME[name].stored}


def load_toml(path):
    """The table of a TOML file; an unreadable or invalid file is one error line."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    try:
        with open(path, "rb") as fd:
            return tomllib.load(fd)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}", field="input") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid TOML: {err}", field="input") from None


def read_toml(path):
    """Search settings from a TOML file; unknown keys are an error naming the closest one."""
    data = load_toml(path)
    settings = {}
    for key, value in data.items():
        if key not in SEARCH_KEYS:
            raise InputError(f"unknown key {key!r} in {path}{closest(key, SEARCH_KEYS)}",
                             field="input")
        if key in ("composition", "output") and not isinstance(value, str):
            raise InputError(f"must be a string, got {value!r}", field=key)
        settings[key] = value if key in ("composition", "output") else \
            convert(BY_NAME[key], value)
    if "composition" not in settings:
        raise InputError(f"{path} has no 'composition'", field="input")
    return settings
