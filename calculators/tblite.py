"""tblite adapter: GFN1-xTB / GFN2-xTB tight binding, periodic, as a semi-empirical tier.

tblite (``pip install tblite``; wheels for CPython on Linux x86-64) is imported only
when a calculator is built.  It gives energy, forces and stress for periodic cells,
so a tblite tier relaxes cell and positions through ASE's optimisers like any other
:class:`~ase_fuse.calculators.tiers.Tier`.  It sits between the ML tier and DFT in
cost: a Si8 cell takes well under a second per single point on one core.

Its SCF runs in compiled code: the relaxer's time limit interrupts it when the call
returns to Python (each SCF is short for the small cells of a search).
"""

from ase_fuse.errors import InputError

from .tiers import Tier

METHODS = ("GFN2-xTB", "GFN1-xTB", "IPEA1-xTB")
OPTIONS = ("accuracy", "max_iterations", "electronic_temperature", "mixer_damping",
           "charge", "multiplicity", "verbosity", "guess")


def tblite_parameters(method="GFN2-xTB", **overrides):
    """Keyword arguments for ``tblite.ase.TBLite``; InputError names a bad option."""
    if method not in METHODS:
        raise InputError(f"unknown tblite method {method!r}; known: {', '.join(METHODS)}",
                         field="method")
    unknown = set(overrides) - set(OPTIONS)
    if unknown:
        raise InputError(f"unknown tblite option(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(OPTIONS)}", field="tblite")
    params = {"method": method, "verbosity": 0, "max_iterations": 250,
              "electronic_temperature": 300.0}
    params.update(overrides)
    for key in ("accuracy", "electronic_temperature", "max_iterations"):
        value = params.get(key)
        if value is not None and not (isinstance(value, (int, float))
                                      and not isinstance(value, bool) and value > 0):
            raise InputError(f"must be a positive number, got {value!r}", field=key)
    return params


def _import_tblite():
    try:
        from tblite.ase import TBLite
    except ImportError as err:
        raise InputError("tblite is not installed (pip install tblite)",
                         field="calculator") from err
    return TBLite


def tblite_calculator(method="GFN2-xTB", **overrides):
    """A ``tblite.ase.TBLite`` calculator; InputError when tblite is missing."""
    params = tblite_parameters(method, **overrides)
    TBLite = _import_tblite()
    return TBLite(**params)


def tblite_tier(method="GFN2-xTB", fmax=0.05, steps=300, optimizer="FIRE", name=None,
                tier_options=None, **overrides):
    """A relaxation tier with tblite (calculator built lazily, on first use).

    ``overrides`` go to tblite (``accuracy``, ``max_iterations``...),
    ``tier_options`` to :class:`Tier` (``fail_force_factor``, ``guards``...).
    Options are checked now; a missing tblite fails the tier (recorded as
    ``could not create calculator``) when it is first used, like the other
    optional back-ends.
    """
    tblite_parameters(method, **overrides)
    return Tier(lambda: tblite_calculator(method, **overrides), fmax=fmax, steps=steps,
                optimizer=optimizer, name=name or f"tblite-{method}",
                **(tier_options or {}))
