"""Turning a user's options into the parts of a search: checks, relaxer, population, pool."""

import math
from numbers import Integral, Real
from pathlib import Path

from .config import DEFAULTS, MINIMA
from .errors import GeneratorUnavailable, InputError


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


MAX_SEARCH_ATOMS = 1000  # largest cell a search accepts (the paper's runs: 50)


def validate_options(composition, *, max_atoms, initial_population, temperature,
                     melt_threshold, rmax, seed, symprec,
                     melt_increment=DEFAULTS["melt_increment"],
                     vacancy_distance=DEFAULTS["vacancy_distance"],
                     generator=DEFAULTS["generator"], hop_after=DEFAULTS["hop_after"]):
    """Check the search options; returns them as a plain dict (for the db's settings)."""
    _check_extra(melt_increment, vacancy_distance, generator)
    _positive_int("max_atoms", max_atoms, minimum=MINIMA["max_atoms"])
    if max_atoms > MAX_SEARCH_ATOMS:
        raise InputError(f"must be at most {MAX_SEARCH_ATOMS} atoms, got {max_atoms}: "
                         "no relaxer here handles such cells (the proxy's neighbour "
                         "list alone grows with the square of the atom count)",
                         field="max_atoms")
    composition.formula_units(max_atoms)  # raises if below one formula unit
    _positive_int("initial_population", initial_population,
                  minimum=MINIMA["initial_population"])
    _positive_int("hop_after", hop_after, minimum=MINIMA["hop_after"])
    _non_negative("temperature", temperature)
    _positive_int("melt_threshold", melt_threshold, minimum=MINIMA["melt_threshold"])
    _positive_int("rmax", rmax, minimum=MINIMA["rmax"])
    _non_negative("symprec", symprec)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral)
                             or seed < 0):
        raise InputError(f"must be a whole number >= 0, got {seed!r}", field="seed")
    return {"initial_population": int(initial_population), "hop_after": int(hop_after),
            "temperature": float(temperature),
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
        relaxer = DEFAULTS["calculator"]
    if isinstance(relaxer, str):
        from .calculators.stacks import build_stack
        return build_stack(relaxer, composition)
    if not callable(getattr(relaxer, "relax", None)):
        raise InputError("needs a relax(atoms) method (e.g. a TieredRelaxer) or a stack "
                         "name", field="relaxer")
    return relaxer


def relaxer_at_pressure(relaxer, pressure):
    """``relaxer`` relaxing at ``pressure`` GPa (the search's, which decides): a copy
    told the pressure when it takes one (``set_pressure``), else ``relaxer`` itself at
    zero pressure.  A relaxer that cannot take a non-zero pressure (the batched ones)
    or that was built for another one is refused in one line."""
    import copy

    from .calculators.tiers import check_pressure
    pressure = check_pressure(pressure)
    own = getattr(relaxer, "pressure", None)
    own = 0.0 if own is None else check_pressure(own)
    if own == pressure:
        return relaxer
    name = type(relaxer).__name__
    if own:
        raise InputError(f"the relaxer ({name}) was built for {own:g} GPa and the search "
                         f"is at {pressure:g} GPa: give the search pressure={own:g}",
                         field="pressure")
    if not callable(getattr(relaxer, "set_pressure", None)):
        batched = " (batched relaxation runs at zero pressure: relax one at a time, " \
                  "no --batch-size or --walkers)" if "Batched" in name else ""
        raise InputError(f"{name} takes no pressure{batched}", field="pressure")
    relaxer = copy.copy(relaxer)           # the caller's relaxer keeps its own
    relaxer.set_pressure(pressure)
    return relaxer


def read_structures(items, composition, max_atoms=None, field="structures"):
    """Atoms from a list of Atoms and/or file names; each must be a crystal (3-D cell,
    fully occupied sites) of the composition with at most ``max_atoms`` atoms.

    Anything else is refused with an :class:`InputError` (``field``: ``structures``
    or ``pool``) naming the file and the reason; files are only read.
    """
    from ase import Atoms

    if isinstance(items, (str, Path, Atoms)):
        items = [items]
    out = []
    for number, item in enumerate(items, 1):
        if isinstance(item, Atoms):
            images, label = [item], f"Atoms #{number}"
        else:
            images, label = _read_file(item, field), str(item)
        for k, atoms in enumerate(images, 1):
            where = label if len(images) == 1 else f"{label} (structure {k} of {len(images)})"
            problem = _structure_problem(atoms, composition, max_atoms)
            if problem:
                raise InputError(f"{where}: {problem}", field=field)
            atoms = atoms.copy()
            atoms.calc = None
            atoms.info.setdefault("origin", "user")
            out.append(atoms)
    return out


def _read_file(path, field):
    """Every structure in the file ``path`` (``.db``: ase.db rows, read only)."""
    from ase import Atoms
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise InputError(f"{path} is empty", field=field)
    if str(path).endswith(".db") and Path(path).is_file():
        images = _db_rows(path, field)
    else:
        from ase.io import read
        try:
            images = read(str(path), index=":")
        except OSError as err:
            raise InputError(f"cannot read structure file {path}: "
                             f"{err.strerror or err}", field=field) from None
        except Exception as err:  # ase's readers raise anything on a garbled file
            text = " ".join(str(err).split())[:200] or type(err).__name__
            raise InputError(f"cannot read structure file {path}: {text}",
                             field=field) from None
    if isinstance(images, Atoms):
        images = [images]
    images = [a for a in images if isinstance(a, Atoms)]
    if not images:
        raise InputError(f"{path} holds no structure", field=field)
    return images


def _structure_problem(atoms, composition, max_atoms):
    """Why ``atoms`` cannot start or feed a search, or ``None``."""
    import numpy as np
    occupancy = atoms.info.get("occupancy")
    if isinstance(occupancy, dict):  # ase.io's CIF reader: {site: {symbol: fraction}}
        for site in occupancy.values():
            for symbol, fraction in (site.items() if isinstance(site, dict) else ()):
                try:
                    full = abs(float(fraction) - 1.0) <= 1e-3
                except (TypeError, ValueError):
                    full = False
                if not full:
                    return (f"partial occupancy ({symbol} {fraction} on one site); "
                            "give an ordered structure with every site full")
    if len(atoms) == 0:
        return "has no atoms"
    cell = atoms.cell.array
    if not atoms.pbc.all() or not np.all(np.isfinite(cell)) \
            or abs(np.linalg.det(cell)) < 1e-6:
        return (f"no 3-D periodic cell (pbc {''.join('T' if p else 'F' for p in atoms.pbc)}, "
                f"cell volume {abs(atoms.cell.volume):.3g} A^3): a molecule or slab, not a "
                "crystal; give a CIF or an extxyz with Lattice=")
    if not np.all(np.isfinite(atoms.positions)):
        return "has non-finite positions"
    if composition.formula_units_of(atoms) is None:
        return f"{atoms.get_chemical_formula()} is not {composition.formula}"
    if max_atoms is not None and len(atoms) > max_atoms:
        return f"{len(atoms)} atoms, more than max_atoms={max_atoms}"
    return None


def load_pool(pool, composition, max_atoms=None):
    """The unused structure pool for moves 13/14: a file/db path or a list of Atoms.

    Files are extxyz, a ``.db`` (e.g. written by ``ase-fuse generate --generator gnoa
    -o pool.db``) or anything ``ase.io.read`` knows.  Each structure gets a unique
    ``info["pool_index"]`` (its position, 0, 1, ...) that a restart uses to keep the
    consumed ones consumed; an ``origin`` stored with it (``gnoa``) is kept.  Structures
    are checked as ``structures`` are (errors name ``pool``).
    """
    if pool is None:
        return []
    items = [pool] if isinstance(pool, (str, Path)) else list(pool)
    structures = read_structures(items, composition, max_atoms=max_atoms, field="pool")
    for index, atoms in enumerate(structures):
        atoms.info["pool_index"] = index
    return structures


def _db_rows(path, field="pool"):
    """Atoms of every row of an ase.db, with its key-value pairs (origin ...) in info."""
    import json
    import sqlite3

    from ase.db import connect

    from .records import db_file_problem
    problem = db_file_problem(str(path))
    if problem:
        raise InputError(problem, field=field)
    try:
        with connect(str(path), use_lock_file=False) as db:
            rows = list(db.select())
        out = []
        for row in rows:
            atoms = row.toatoms()
            atoms.calc = None
            atoms.info.update(row.key_value_pairs)
            out.append(atoms)
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError,
            sqlite3.DatabaseError) as err:
        raise InputError(f"cannot read structure file {path}: {err}", field=field) from None
    return out


def check_generator_options(name, cls, options):
    """Refuse an option the generator ``name`` (class ``cls``) does not take, naming it
    and listing the ones it does (GN-OA's seeding options included)."""
    import inspect

    from .config import closest
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature to check against
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    valid = {k for k, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                               p.KEYWORD_ONLY)}
    valid -= {"composition", "max_atoms", "rng"}  # the search passes these itself
    from .generators.base import POOL_OPTIONS, has_pool
    if has_pool(cls):  # the pool hook's re-ranking options
        valid |= set(POOL_OPTIONS)
    for key in options:
        if key not in valid:
            raise InputError(f"unknown option {key!r} of generator {name}"
                             f"{closest(str(key), valid)}; valid: {', '.join(sorted(valid))}",
                             field="generator_options")


def search_options(cls, options):
    """The options a search gives generator class ``cls``: its ``search_options``
    (what it needs to be a quick start, e.g. GN-OA's proxy model and 200
    evaluations) under the user's ``options``, which win."""
    merged = dict(getattr(cls, "search_options", None) or {})
    merged.update(options or {})
    return merged


GENERATOR_POOL_OFFSET = 100000  # pool_index of a generator's pool: offset + rank


def initial_structures(composition, n, generator, options, structures, max_atoms, rng):
    """``(population, extra_pool)``: user structures, or ``n`` from the named generator.

    A generator with the ``ranked_pool`` hook (GN-OA, or any plugin that has it; see
    :mod:`ase_fuse.generators.base`) is run once; its whole pool is re-ranked with the
    proxy potential (``options["rerank"]``: ``"single"`` point by default, ``"relax"``
    or ``"none"``; ``"pool_size"`` caps the extra pool, default 500), the best ``n``
    become the population and the rest the extra pool for moves 13/14
    (``pool_index`` = 100000 + rank); ``"random_share"`` gives that share of the
    population to random symmetric structures
    (:func:`~ase_fuse.generators.gnoa.seeding.seed_population`).  Too few user or ML
    structures are topped up by FUSE.
    """
    from .generators import get

    population, extra = [], []
    if structures is not None:  # every one is used: a misfit is an error, never dropped
        population = read_structures(structures, composition, max_atoms=max_atoms)
    else:
        maker_class = get(generator)
        options = search_options(maker_class, options)
        check_generator_options(generator, maker_class, options)
        from .generators.base import has_pool
        options, seeding = dict(options or {}), {}
        if has_pool(maker_class):
            from .generators.gnoa.seeding import split_seeding_options
            options, seeding = split_seeding_options(options)
        try:  # the options' values are checked before a missing package is
            maker = maker_class(composition, max_atoms=max_atoms, rng=rng, **options)
        except GeneratorUnavailable as err:
            import warnings
            warnings.warn(f"{err}; starting from FUSE structures instead", stacklevel=2)
            maker = None
        pool = maker.ranked_pool() if maker is not None and has_pool(maker_class) else None
        if pool is not None:
            from .generators.gnoa.seeding import seed_population
            ranked, extra = seed_population(list(pool), composition, n, max_atoms, rng,
                                            **seeding)
            population += ranked
            for index, atoms in enumerate(extra):
                atoms.info["pool_index"] = GENERATOR_POOL_OFFSET + index
        elif maker is not None:
            population += maker.generate_many(n)
    if len(population) < n:
        fuse = get("fuse")(composition, max_atoms=max_atoms, rng=rng)
        population += fuse.generate_many(n - len(population))
    return population[:max(n, len(population))], extra
