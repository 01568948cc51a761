"""``ase-fuse generate``: write structures from any registered generator to a file.

::

    ase-fuse generate Ca3Ti2O7 --generator fuse -n 20 --max-atoms 50 --seed 1 -o out.extxyz
    ase-fuse generate Ca3Ti2O7 --oxidation-states Ca=2,Ti=4,O=-2 --formula-units 1-4 -o a.db
    ase-fuse generate NaCl --generator gnoa -n 25 \
        --generator-options model=proxy,evaluations=500,rerank=single -o pop.extxyz
    ase-fuse generate --list

The output's extension picks any format ASE can write (``ase.io.write``); ``.db``
writes an ASE database with the structures' ``info`` as key-value pairs and data.
Bad input raises :class:`~ase_fuse.errors.InputError`; ``ase_fuse.cli`` turns it into
one line on stderr and exit status 2.
"""

import re
import sys
from pathlib import Path

from .errors import InputError

_STATE = re.compile(r"^\s*([A-Z][a-z]?)\s*=\s*([+-]?\d+)\s*([+-]?)\s*$")


def add_arguments(parser):
    """Add the ``generate`` options to an ``argparse`` parser."""
    parser.add_argument("composition", nargs="?", default=None,
                        help="formula to generate, e.g. Ca3Ti2O7 or Pb5(AsO4)3Cl")
    parser.add_argument("-g", "--generator", default="fuse",
                        help="registered generator name (default fuse; see --list)")
    parser.add_argument("-n", "--number", type=int, default=10,
                        help="number of structures (default 10)")
    parser.add_argument("--max-atoms", type=int, default=50,
                        help="largest number of atoms in a cell (default 50)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (same seed, same structures)")
    parser.add_argument("--oxidation-states", default=None, metavar="EL=Q,...",
                        help="e.g. Ca=2,Ti=4,O=-2: size sub-modules with Shannon radii")
    parser.add_argument("--formula-units", default=None, metavar="Z",
                        help="formula units per cell: 2, 1-4 or 1,2,4 (default: all "
                             "that fit in --max-atoms)")
    parser.add_argument("-o", "--output", default=None,
                        help="output file; its extension picks the format (default "
                             "<formula>_<generator>.extxyz; .db writes an ase.db)")
    parser.add_argument("--generator-options", default=None, metavar="KEY=VALUE,...",
                        help="the generator's own options, as for `ase-fuse run` (e.g. "
                             "evaluations=500,model=proxy for gnoa); a generator with a "
                             "ranked pool also takes rerank/rerank_steps/distinct/order/"
                             "random_share, "
                             "and then writes the -n best of its re-ranked pool")
    parser.add_argument("--list", action="store_true",
                        help="list the registered generators and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    return parser


def parse_oxidation_states(text):
    """``"Ca=2,Ti=4,O=-2"`` (also ``O=2-``, ``Ti=+4``) -> ``{"Ca": 2, "Ti": 4, "O": -2}``."""
    states = {}
    for part in text.split(","):
        if not part.strip():
            continue
        match = _STATE.match(part)
        if not match:
            raise InputError(f"expected EL=CHARGE like Ca=2 or O=-2, got {part.strip()!r}",
                             field="oxidation-states")
        symbol, number, sign = match.groups()
        value = int(number)
        if sign:
            if number[0] in "+-":
                raise InputError(f"two signs in {part.strip()!r}", field="oxidation-states")
            value = -value if sign == "-" else value
        if symbol in states:
            raise InputError(f"{symbol} given twice", field="oxidation-states")
        states[symbol] = value
    if not states:
        raise InputError("no oxidation states given", field="oxidation-states")
    return states


def parse_formula_units(text):
    """``"2"`` -> [2]; ``"1-4"`` -> [1, 2, 3, 4]; ``"1,3,5-6"`` -> [1, 3, 5, 6]."""
    values = set()
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match:
            raise InputError(f"expected Z, Z1-Z2 or a comma list, got {part!r}",
                             field="formula-units")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if low < 1 or high < low:
            raise InputError(f"bad range {part!r}", field="formula-units")
        values.update(range(low, high + 1))
    return sorted(values)


def _check_output(path, n):
    """Format name for ``path``; raises InputError if ASE cannot write it."""
    from ase.io.formats import UnknownFileTypeError, filetype, ioformats

    try:
        fmt = filetype(str(path), read=False)
        io = ioformats[fmt]
    except (KeyError, ValueError, UnknownFileTypeError) as err:
        raise InputError(f"cannot tell the file format of {str(path)!r} ({err}); use an "
                         f"extension such as .extxyz, .traj, .cif or .db",
                         field="output") from None
    if not io.can_write:
        raise InputError(f"ASE cannot write {fmt} files", field="output")
    if io.single and n > 1:
        raise InputError(f"{fmt} holds one structure but -n is {n}; use .extxyz, .traj "
                         f"or .db", field="output")
    return fmt


def write_structures(path, structures, fmt):
    """Write ``structures`` to ``path``; ``db`` format keeps each ``info`` in the rows."""
    if fmt != "db":
        from ase.io import write
        write(str(path), structures, format=fmt)
        return
    import ase.db
    from ase.db.core import reserved_keys

    with ase.db.connect(str(path), append=False) as db:
        for atoms in structures:
            pairs = {k: (v.item() if hasattr(v, "item") else v)
                     for k, v in atoms.info.items()
                     if isinstance(v, (str, bool, int, float)) or
                     (hasattr(v, "item") and getattr(v, "ndim", 1) == 0)}
            pairs = {k: v for k, v in pairs.items()
                     if k.isidentifier() and k not in reserved_keys}
            db.write(atoms, key_value_pairs=pairs, data=dict(atoms.info))


def _generator_options(args, cls):
    """``(constructor options, pool re-ranking options)`` from ``--generator-options``,
    parsed and checked as ``ase-fuse run`` does (an unknown key is named)."""
    from .config import BY_NAME, convert
    from .generators.base import has_pool
    from .search_setup import check_generator_options

    if args.generator_options is None:
        return {}, {}
    options = convert(BY_NAME["generator_options"], args.generator_options) or {}
    check_generator_options(args.generator, cls, options)
    if not has_pool(cls):
        return options, {}
    from .generators.gnoa.seeding import split_seeding_options
    options, seeding = split_seeding_options(options)
    if "pool_size" in seeding:  # only the search keeps a pool for moves 13/14
        raise InputError("pool_size is a search option (the pool moves 13/14 draw "
                         "from); generate writes the -n best", field="generator_options")
    return options, seeding


def _list_generators(out):
    from .generators import describe

    rows = describe()
    width = max([len(name) for name, _, _ in rows] + [4])
    for name, target, doc in rows:
        print(f"{name:<{width}}  {doc}  [{target}]", file=out)
    return 0


def main(args):
    """Run ``ase-fuse generate`` with parsed ``args``; returns the exit status."""
    if args.list:
        return _list_generators(sys.stdout)
    if not args.composition:
        raise InputError("give a formula to generate, e.g. Ca3Ti2O7 (or --list)",
                         field="composition")
    if args.number < 1:
        raise InputError(f"must be at least 1, got {args.number}", field="number")

    from .composition import Composition
    from .generators import get

    states = parse_oxidation_states(args.oxidation_states) \
        if args.oxidation_states else None
    composition = Composition(args.composition, oxidation_states=states)
    formula_units = parse_formula_units(args.formula_units) \
        if args.formula_units else None
    output = Path(args.output or f"{composition.formula}_{args.generator}.extxyz")
    fmt = _check_output(output, args.number)
    from .generators.base import make_rng
    rng = make_rng(None, args.seed)          # a negative seed is one error line
    cls = get(args.generator)
    options, seeding = _generator_options(args, cls)
    generator = cls(composition, max_atoms=args.max_atoms, rng=rng, **options)
    if formula_units is not None:  # checked against max_atoms before any work
        too_big = [z for z in formula_units
                   if z * composition.atoms_per_formula_unit > args.max_atoms]
        if too_big:
            raise InputError(f"{too_big[0]} formula units of {composition.formula} is "
                             f"more than --max-atoms {args.max_atoms}",
                             field="formula-units")

    live = not args.quiet and sys.stderr.isatty()  # one line, rewritten in place
    structures = []
    if seeding:  # the pool hook, re-ranked as the search does (gnoa: rerank=...)
        if formula_units is not None:
            raise InputError("--formula-units and the pool's re-ranking options cannot "
                             "be combined; set formula_units in --generator-options",
                             field="formula-units")
        from .generators.gnoa.seeding import seed_population
        structures, _ = seed_population(list(generator.ranked_pool()), composition,
                                        args.number, args.max_atoms, rng,
                                        **seeding)  # fewer if few distinct
    from .errors import GenerationError
    from .generators.base import has_pool
    for i in range(0 if seeding else args.number):
        try:
            if formula_units is None:
                atoms = generator.generate()
            else:
                atoms = generator.generate(formula_units=formula_units)
        except GenerationError as err:
            if not has_pool(cls):
                raise
            # fuzz find: a pool generator (gnoa) ran out: -n asks more than it made
            raise InputError(f"-n {args.number} is more than the {i} valid structures "
                             f"{args.generator} made ({err}); lower -n or let it make "
                             f"more (gnoa: evaluations=...)", field="number") from None
        structures.append(atoms)
        if live:
            print(f"\rgenerate {composition.formula} ({args.generator}): "
                  f"{i + 1}/{args.number}", end="", file=sys.stderr, flush=True)
    write_structures(output, structures, fmt)
    if not args.quiet:
        print(f"{chr(13) if live else ''}generated {len(structures)}/{args.number} "
              f"{composition.formula} structures ({args.generator}) -> {output}",
              file=sys.stderr)
    return 0
