"""The settings that define a run, as stored in its db, and the restart check.

Every setting that changes what a search does is stored in the db's metadata when
the run starts (:func:`search_settings`).  A restart compares what it is given with
what is stored *before* it writes anything (:func:`check_restart`): any difference
is refused, one line per field.  How the run executes (steps, time limit, workers,
scheduler, threads, batch size, device, walkers, logging, output) is not stored and
may change.  A db written before a field was stored is not refused on that field.
"""

import hashlib
import json

import numpy as np

from .config import DEFAULTS, STORED
from .errors import InputError
from .jsonsafe import plain as _plain

# compared on restart, in this order: the composition, the options the record marks
# as defining the run (config.STORED; "calculator" is the stack name, None for a
# relaxer object) with "relaxer" (the tiers it relaxes with) after the stack's
# options, and the Python-only limits
FIELDS = ("composition",) + tuple(
    name for option in STORED
    for name in ((option, "relaxer") if option == "stack_options" else (option,))) \
    + ("limits",)


class RestartMismatch(InputError):
    """A restart given settings that differ from the stored run's (``differences``:
    one line per field)."""

    def __init__(self, differences):
        self.differences = list(differences)
        super().__init__("\n".join(self.differences))


def describe_tier(tier):
    """``"proxy(fmax=0.1, steps=1000)"``: what a tier relaxes to.  A batched CHGNet tier
    and CHGNet one at a time describe alike (batching does not change the search)."""
    name = getattr(tier, "name", None) or type(tier).__name__
    if getattr(tier, "single_point", False):
        return f"{name}(single point)"
    parts = []
    optimizer = getattr(tier, "optimizer", "FIRE")
    if isinstance(optimizer, str) and optimizer != "FIRE":
        parts.append(optimizer)
    if getattr(tier, "fmax", None) is not None:
        parts.append(f"fmax={float(tier.fmax):g}")
    if getattr(tier, "steps", None) is not None:
        parts.append(f"steps={int(tier.steps)}")
    return f"{name}({', '.join(parts)})"


def describe_relaxer(relaxer):
    """The tiers of a relaxer, ``"proxy(fmax=0.1, steps=1000) -> chgnet(...)"``; for a
    relaxer without tiers, its class (no memory address: it must match on restart)."""
    tiers = getattr(relaxer, "tiers", None)
    if isinstance(tiers, (list, tuple)) and tiers:
        return " -> ".join(describe_tier(t) for t in tiers)
    if hasattr(relaxer, "batched"):                      # BatchedStack
        pre = getattr(relaxer, "pre", None)
        head = [describe_relaxer(pre)] if pre is not None else []
        return " -> ".join(head + [describe_relaxer(relaxer.batched)])
    if getattr(relaxer, "fmax", None) is not None:       # one batched tier
        return describe_tier(relaxer)
    kind = type(relaxer)
    return f"{kind.__module__}.{kind.__qualname__}"


def stack_name(relaxer, calculator):
    """The named stack a search relaxes with, or None (a relaxer object or calculator).
    A relaxer built from a named stack may carry it as ``stack_name``."""
    if calculator is not None:
        return None
    if relaxer is None:
        return DEFAULTS["calculator"]
    if isinstance(relaxer, str):
        return relaxer
    name = getattr(relaxer, "stack_name", None)
    return name if isinstance(name, str) else None


def _fingerprint(atoms):
    digest = hashlib.sha256()
    digest.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    digest.update(np.round(np.asarray(atoms.cell, dtype=float), 6).tobytes())
    digest.update(np.round(np.asarray(atoms.positions, dtype=float), 6).tobytes())
    return f"Atoms({atoms.get_chemical_formula()}, sha256 {digest.hexdigest()[:12]})"


def describe_inputs(items):
    """Structure or pool inputs as given: file names as strings, Atoms by content."""
    from ase import Atoms
    if items is None:
        return None
    if isinstance(items, Atoms):
        items = [items]
    elif isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        return str(items)
    return [_fingerprint(item) if isinstance(item, Atoms) else str(item) for item in items]


def search_settings(search, *, relaxer, calculator, seed, generator, generator_options,
                    structures, pool, melt_increment, vacancy_distance, limits):
    """The settings of ``search`` (a FuseBasinHopping being set up) to store in its db."""
    limit_values = {key: value for key, value in vars(limits).items()
                    if key != "max_atoms" and not key.startswith("_")}
    return _plain({
        "composition": search.composition.formula,
        "oxidation_states": search.composition.oxidation_states,
        "max_atoms": search.max_atoms, "seed": seed,
        "calculator": stack_name(relaxer, calculator),
        "stack_options": dict(getattr(relaxer, "stack_options", None) or {}),
        "relaxer": describe_relaxer(search.relaxer),
        **search.options,
        "generator": generator, "generator_options": dict(generator_options or {}),
        "structures": describe_inputs(structures), "pool": describe_inputs(pool),
        "move_weights": [float(w) for w in search.selector.weights],
        "melt_increment": [float(x) for x in melt_increment],
        "symmetrize": bool(search.do_symmetrize),
        "adaptive_moves": search.credit is not None,
        "pressure": float(search.pressure),
        "vacancy_distance": float(vacancy_distance),
        "limits": limit_values,
    })


def for_restart(search, restart, **given):
    """``(settings, stored, restart, fresh)`` for a search whose db is open: a restart
    of an empty db starts afresh (``fresh``); any other is checked against the stored
    settings (:class:`RestartMismatch`) before anything is written."""
    settings = search_settings(search, limits=search.limits, **given)
    stored = search.records.settings()
    fresh = bool(restart) and search.records.count() == 0
    if restart and not fresh:
        check_restart(stored, settings, search.records.path)
    return settings, stored, bool(restart) and not fresh, fresh


def _show(value):
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def differences(stored, given):
    """One ``"restart: FIELD: stored X, given Y"`` line per field that differs."""
    stored = stored or {}
    lines = []
    names_differ = (isinstance(stored.get("calculator"), str)
                    and isinstance(given.get("calculator"), str)
                    and stored["calculator"] != given["calculator"])
    options_differ = ("stack_options" in stored and "stack_options" in given
                      and _plain(stored["stack_options"]) != _plain(given["stack_options"]))
    for field in FIELDS:
        if field not in stored or field not in given:
            continue                       # an older db that did not store it
        if field == "calculator" and not names_differ:
            continue                       # a relaxer object: its tiers are compared
        if field == "relaxer" and (names_differ or options_differ):
            continue                       # said once, as the stack name or options
        if _plain(stored[field]) != _plain(given[field]):
            lines.append(f"restart: {field}: stored {_show(stored[field])}, "
                         f"given {_show(given[field])}")
    return lines


def check_restart(stored, given, db_path):
    """Raise :class:`RestartMismatch` when ``given`` differs from the run in ``db_path``
    (the run keeps its settings: a new one belongs in another folder)."""
    lines = differences(stored, given)
    if lines:
        raise RestartMismatch(lines)


def to_save(stored, given):
    """What a restart stores: the stored settings, plus fields an older db lacked."""
    if not stored:
        return given
    merged = dict(stored)
    for field, value in given.items():
        if field not in merged or (field == "calculator" and merged[field] is None):
            merged[field] = value
    return merged


# -- the command line ------------------------------------------------------------------
# stored settings a `--restart` takes when the option is not on the command line / TOML:
# every option that defines the run
CLI_FILLED = STORED


def stored_settings(db_path):
    """The settings stored in an existing run db (read only, no lock), or None."""
    import sqlite3
    from pathlib import Path
    if not Path(db_path).is_file():
        return None
    from .records import db_file_problem
    if db_file_problem(str(db_path)):  # ase.db would write its tables into the file
        return None                    # RunRecords refuses it with the reason
    from ase.db import connect
    try:
        with connect(str(db_path), type="db", use_lock_file=False) as db:
            return db.metadata.get("settings")
    except (OSError, ValueError, KeyError, sqlite3.Error):
        return None


def fill_from_stored(settings, stored, skip=()):
    """``settings`` (what the command line / TOML gave) with every option not given
    taken from ``stored``: a plain ``--restart`` continues the run as it was."""
    from .config import BY_NAME, convert
    for name in CLI_FILLED:
        if name in skip or name in settings or name not in (stored or {}):
            continue
        value = stored[name]
        if name == "calculator" and not isinstance(value, str):
            continue                      # a relaxer object from Python: not nameable
        if name == "pool" and value is not None and not isinstance(value, str):
            continue                      # a list given in Python: not an option value
        if name == "structures" and isinstance(value, list) and any(
                str(v).startswith("Atoms(") for v in value):
            continue                      # Atoms given in Python: no file to read back
        settings[name] = convert(BY_NAME[name], value)
    return settings


def fill_restart(settings):
    """``ase-fuse run ... --restart``: fill ``settings`` (command line and TOML, before
    defaults) from the run's stored settings; with ``--walkers`` from the first
    walker's db, its seed excepted (each walker keeps its own)."""
    from pathlib import Path
    output = Path(settings.get("output") or f"run_{settings['composition']}")
    db = settings.get("db") or "fuse.db"
    if int(settings.get("walkers") or 1) > 1:
        found = sorted((int(p.parent.name[4:]), p) for p in output.glob(f"seed*/{db}")
                       if p.parent.name[4:].isdigit())
        path, skip = (found[0][1] if found else None), ("seed",)
    else:
        path, skip = (Path(db) if Path(db).is_absolute() else output / db), ()
    stored = stored_settings(path) if path is not None else None
    if stored:
        fill_from_stored(settings, stored, skip)
    return settings
