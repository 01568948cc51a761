"""Turning a user's options into the parts of a search: checks, relaxer, population, pool."""

import math
from pathlib import Path

from .errors import InputError


def _positive_int(name, value, minimum=1):
    if isinstance(value, bool) or value != int(value) or int(value) < minimum:
        raise InputError(f"must be a whole number >= {minimum}, got {value!r}", field=name)


def _non_negative(name, value):
    try:
        ok = math.isfinite(float(value)) and float(value) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"must be a number >= 0, got {value!r}", field=name)


def validate_options(composition, *, max_atoms, initial_population, temperature,
                     melt_threshold, rmax, seed, symprec):
    """Check the search options; returns them as a plain dict (for the db's settings)."""
    _positive_int("max_atoms", max_atoms)
    composition.formula_units(max_atoms)  # raises if below one formula unit
    _positive_int("initial_population", initial_population)
    _non_negative("temperature", temperature)
    _positive_int("melt_threshold", melt_threshold, minimum=0)
    _positive_int("rmax", rmax)
    _non_negative("symprec", symprec)
    if seed is not None:
        _positive_int("seed", seed, minimum=0)
    return {"initial_population": int(initial_population), "temperature": float(temperature),
            "melt_threshold": int(melt_threshold), "rmax": int(rmax),
            "symprec": float(symprec)}


def make_relaxer(relaxer, calculator, composition):
    """A relaxer from a relaxer object, a stack name, or a plain ASE calculator."""
    if relaxer is not None and calculator is not None:
        raise InputError("give either relaxer= or calculator=, not both", field="calculator")
    if calculator is not None:
        from .calculators.stacks import stack_from_calculator
        return stack_from_calculator(calculator)
    if relaxer is None:
        relaxer = "proxy+chgnet"
    if isinstance(relaxer, str):
        from .calculators.stacks import build_stack
        return build_stack(relaxer, composition)
    if not callable(getattr(relaxer, "relax", None)):
        raise InputError("needs a relax(atoms) method (e.g. a TieredRelaxer) or a stack "
                         "name", field="relaxer")
    return relaxer


def read_structures(items, composition):
    """Atoms from a list of Atoms and/or file names; each must match the composition."""
    from ase import Atoms
    from ase.io import read

    out = []
    for item in items:
        if isinstance(item, Atoms):
            images = [item]
        else:
            try:
                images = read(str(item), index=":")
            except (OSError, ValueError, KeyError, StopIteration) as err:
                raise InputError(f"cannot read structure file {item}: {err}",
                                 field="structures") from None
        for atoms in images:
            if composition.formula_units_of(atoms) is None:
                raise InputError(f"{atoms.get_chemical_formula()} from {item if not isinstance(item, Atoms) else 'Atoms'} "
                                 f"is not {composition.formula}", field="structures")
            atoms = atoms.copy()
            atoms.calc = None
            atoms.info.setdefault("origin", "user")
            out.append(atoms)
    return out


def load_pool(pool, composition):
    """The unused structure pool for moves 13/14: a file/db path or a list of Atoms."""
    if pool is None:
        return []
    items = [pool] if isinstance(pool, (str, Path)) else list(pool)
    structures = read_structures(items, composition)
    for index, atoms in enumerate(structures):
        atoms.info["pool_index"] = index
    return structures


def initial_structures(composition, n, generator, options, structures, max_atoms, rng):
    """``(population, extra_pool)``: user structures, or ``n`` from the named generator.

    A generator that keeps a ranked ``pool`` (the ML one) hands its unused
    structures back as the extra pool; too few user structures are topped up by FUSE.
    """
    from .generators import get

    population = []
    if structures is not None:
        population = read_structures(structures, composition)
        population = [a for a in population if len(a) <= max_atoms]
    extra = []
    if len(population) < n:
        name = "fuse" if structures is not None else generator
        maker = get(name)(composition, max_atoms=max_atoms, rng=rng, **options)
        population += maker.generate_many(n - len(population))
        rest = [a for a in getattr(maker, "pool", [])[n:]]
        for index, atoms in enumerate(rest):
            atoms.info["pool_index"] = 100000 + index
        extra = rest
    return population[:max(n, len(population))], extra
