"""Entry-point discovery of structure generators.

Generators register under the entry-point group ``ase_fuse.generators``.  Looking
one up imports only its module; a plugin that fails to import gives a warning naming
it, and every other generator still works (as ASE's plugin loader does).
"""

import warnings
from importlib.metadata import entry_points

from ase_fuse.errors import InputError

from .base import protocol_problem

GROUP = "ase_fuse.generators"


def _entry_points():
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available():
    """Names of the registered generators (nothing is imported)."""
    return sorted(_entry_points())


def get(name):
    """The generator class registered as ``name``.

    Raises :class:`~ase_fuse.errors.InputError` for an unknown name (listing the
    known ones) or a plugin that cannot be imported.
    """
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise InputError(f"unknown generator {name!r}; known: {known}", field="generator")
    try:
        obj = eps[name].load()
    except Exception as err:  # a broken plugin must not crash the caller
        raise InputError(
            f"generator plugin {name!r} ({eps[name].value}) failed to load: {err}",
            field="generator") from err
    problem = protocol_problem(obj)
    if problem:
        raise InputError(f"generator plugin {name!r} ({eps[name].value}) {problem}",
                         field="generator")
    return obj


def load_all():
    """Load every generator; broken plugins are skipped with a warning naming them."""
    loaded = {}
    for name, ep in sorted(_entry_points().items()):
        try:
            obj = ep.load()
        except Exception as err:  # warn, never crash the others
            warnings.warn(f"ase-fuse generator plugin {name!r} ({ep.value}) "
                          f"failed to load: {err}", RuntimeWarning, stacklevel=2)
            continue
        problem = protocol_problem(obj)
        if problem:
            warnings.warn(f"ase-fuse generator plugin {name!r} ({ep.value}) {problem}; "
                          f"skipped", RuntimeWarning, stacklevel=2)
            continue
        loaded[name] = obj
    return loaded


def describe():
    """``[(name, target, first line of doc or error)]`` for ``ase-fuse generate --list``."""
    rows = []
    for name, ep in sorted(_entry_points().items()):
        try:
            obj = ep.load()
            problem = protocol_problem(obj)
            if problem:
                raise TypeError(problem)
            doc = (obj.__doc__ or "").strip().splitlines()
            rows.append((name, ep.value, doc[0] if doc else ""))
        except Exception as err:  # show it, do not crash the listing
            warnings.warn(f"ase-fuse generator plugin {name!r} ({ep.value}) "
                          f"failed to load: {err}", RuntimeWarning, stacklevel=2)
            rows.append((name, ep.value, f"BROKEN: {err}"))
    return rows
