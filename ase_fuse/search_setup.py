"""Turning a user's options into the parts of a search: checks, relaxer, population, pool."""

import math
from numbers import Integral, Real
from pathlib import Path

from .errors import InputError


def _positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, Real) \
            or not math.isfinite(value) or value != int(value) or int(value) < minimum:
        raise InputError(f"must be a whole number >= {minimum}, got {value!r}", field=name)


def _non_negative(name, value):
    ok = (not isinstance(value, bool) and isinstance(value, Real)
          and math.isfinite(value) and value >= 0)
    if not ok:
        raise InputError(f"must be a number >= 0, got {value!r}", field=name)


def _check_extra(melt_increment, vacancy_distance, generator):
    """Options checked up front that would otherwise fail mid-run."""
    try:
        low, high = melt_increment
        ok = all(isinstance(x, Real) and not isinstance(x, bool)
                 and math.isfinite(x) for x in (low, high)) and 0 <= low <= high
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"must be (low, high) numbers with 0 <= low <= high, got "
                         f"{melt_increment!r}", field="melt_increment")
    _non_negative("vacancy_distance", vacancy_distance)
    if not isinstance(generator, str):
        raise InputError(f"must be a generator name, got {generator!r}", field="generator")
    from .generators import available
    if generator not in available():
        raise InputError(f"unknown generator {generator!r}; known: "
                         f"{', '.join(available())}", field="generator")


def validate_options(composition, *, max_atoms, initial_population, temperature,
                     melt_threshold, rmax, seed, symprec, melt_increment=(0.5, 1.5),
                     vacancy_distance=1.0, generator="fuse"):
    """Check the search options; returns them as a plain dict (for the db's settings)."""
    _check_extra(melt_increment, vacancy_distance, generator)
    _positive_int("max_atoms", max_atoms)
    composition.formula_units(max_atoms)  # raises if below one formula unit
    _positive_int("initial_population", initial_population)
    _non_negative("temperature", temperature)
    _positive_int("melt_threshold", melt_threshold, minimum=0)
    _positive_int("rmax", rmax)
    _non_negative("symprec", symprec)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral)
                             or seed < 0):
        raise InputError(f"must be a whole number >= 0, got {seed!r}", field="seed")
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
    """The unused structure pool for moves 13/14: a file/db path or a list of Atoms.

    Files are extxyz, a ``.db`` (e.g. written by ``ase-fuse generate --generator gnoa
    -o pool.db``) or anything ``ase.io.read`` knows.  Each structure gets a unique
    ``info["pool_index"]`` (its position, 0, 1, ...) that a restart uses to keep the
    consumed ones consumed; an ``origin`` stored with it (``gnoa``) is kept.
    """
    if pool is None:
        return []
    items = [pool] if isinstance(pool, (str, Path)) else list(pool)
    items = [_db_rows(item) if isinstance(item, (str, Path)) and str(item).endswith(".db")
             and Path(item).is_file() else [item] for item in items]
    structures = read_structures([a for group in items for a in group], composition)
    for index, atoms in enumerate(structures):
        atoms.info["pool_index"] = index
    return structures


def _db_rows(path):
    """Atoms of every row of an ase.db, with its key-value pairs (origin ...) in info."""
    import sqlite3

    from ase.db import connect
    try:
        with connect(str(path), use_lock_file=False) as db:
            rows = list(db.select())
    except (OSError, ValueError, KeyError, sqlite3.DatabaseError) as err:
        raise InputError(f"cannot read structure file {path}: {err}", field="pool") from None
    out = []
    for row in rows:
        atoms = row.toatoms()
        atoms.calc = None
        atoms.info.update(row.key_value_pairs)
        out.append(atoms)
    return out


GENERATOR_POOL_OFFSET = 100000  # pool_index of a generator's pool: offset + rank


def initial_structures(composition, n, generator, options, structures, max_atoms, rng):
    """``(population, extra_pool)``: user structures, or ``n`` from the named generator.

    A generator that keeps a ranked ``pool`` (GN-OA) is run once; its whole pool is
    re-ranked with the proxy potential (``options["rerank"]``: ``"single"`` point by
    default, ``"relax"`` or ``"none"``; ``"pool_size"`` caps the extra pool, default
    500), the best ``n`` become the population and the rest the extra pool for moves
    13/14 (``pool_index`` = 100000 + rank).  Too few user or ML structures are topped
    up by FUSE.
    """
    from .generators import get

    population, extra = [], []
    if structures is not None:
        population = read_structures(structures, composition)
        population = [a for a in population if len(a) <= max_atoms]
    elif len(population) < n:
        maker_class = get(generator)
        options, seeding = dict(options or {}), {}
        if generator == "gnoa":
            from .generators.gnoa.seeding import split_seeding_options
            options, seeding = split_seeding_options(options)
        maker = maker_class(composition, max_atoms=max_atoms, rng=rng, **options)
        if hasattr(maker, "pool") and hasattr(maker, "run"):
            from .generators.gnoa.seeding import rank_for_search
            ranked, extra = rank_for_search(maker.run(), composition, n - len(population),
                                            **seeding)
            population += ranked
            for index, atoms in enumerate(extra):
                atoms.info["pool_index"] = GENERATOR_POOL_OFFSET + index
        else:
            population += maker.generate_many(n - len(population))
    if len(population) < n:
        fuse = get("fuse")(composition, max_atoms=max_atoms, rng=rng)
        population += fuse.generate_many(n - len(population))
    return population[:max(n, len(population))], extra
