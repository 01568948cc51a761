"""``ase-fuse field``: one search per composition of a phase field, then the hull.

    ase-fuse field Cu Au CuAu Cu3Au --calculator emt --max-atoms 8 --steps 40 -o cuau
    ase-fuse field --end-members Li2S SnS2 --step 1/4 --max-atoms 20 -o lisns
    ase-fuse field --elements Li Sn S --oxidation-states Li=1,Sn=4,S=-2 --max-atoms 12
    ase-fuse field Si SiO2 --pressure 10 ...    # enthalpy H = E + PV on the hull
    ase-fuse field field.toml                  # compositions = [...], and run's keys
    ase-fuse field Cu Au CuAu CuAu3 --calculator emt -o cuau --restart   # one added

Every option of ``ase-fuse run`` applies to each composition (``--steps``,
``--time-limit`` per composition); ``--workers N`` / ``--scheduler`` run the
compositions in parallel, one per worker.  Prints the table, writes
``FIELD/field.json`` (after every composition) and ``FIELD/field.png``.
"""

import sys
from pathlib import Path

from .errors import InputError

#: keys of a field TOML besides run's options
FIELD_KEYS = ("compositions", "end_members", "step", "elements", "references", "budget",
              "output")
#: run options that do not apply to a field (yet): say so in one line
NOT_FOR_FIELD = ("walkers", "batch_size", "device", "db")


def add_arguments(p):
    from .cli_options import add_option_flags
    p.add_argument("compositions", nargs="*",
                   help="formulas of the field (e.g. Cu Au CuAu Cu3Au), or one .toml file")
    p.add_argument("--end-members", nargs="+", default=None, metavar="FORMULA",
                   help="a grid between these (with --step)")
    p.add_argument("--step", default=None, help="grid step between end members, 1/N")
    p.add_argument("--elements", nargs="+", default=None, metavar="EL",
                   help="every compound of these up to --max-atoms atoms (charge-neutral "
                        "ones with --oxidation-states)")
    p.add_argument("--references", default=None, metavar="EL=E,...",
                   help="energies per atom (eV) of elements not to search, the hull's "
                        "end points (same calculator!)")
    p.add_argument("--budget", default=None, metavar="DURATION",
                   help="wall time for the whole field (90s, 30m, 2h): compositions start "
                        "with what is left, none after it; --restart runs the rest")
    p.add_argument("-o", "--output", default=None,
                   help="field folder (default: field_<elements>)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    add_option_flags(p)      # those of NOT_FOR_FIELD refused in one line


def read_field_toml(path):
    """A field's settings from TOML: :data:`FIELD_KEYS` and run's options."""
    from .config import BY_NAME, SEARCH_KEYS, closest, convert, load_toml
    data = load_toml(path)
    known = (set(SEARCH_KEYS) - {"composition"} - set(NOT_FOR_FIELD)) | set(FIELD_KEYS)
    settings = {}
    for key, value in data.items():
        if key not in known:
            raise InputError(f"unknown key {key!r} in {path}{closest(key, known)}",
                             field="input")
        if key in FIELD_KEYS:
            settings[key] = value
        else:
            settings[key] = convert(BY_NAME[key], value)
    for key in ("compositions", "end_members", "elements"):
        value = settings.get(key)
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(v, str) for v in value)):
            raise InputError(f"must be a list of formulas, got {value!r}", field=key)
    if isinstance(settings.get("step"), bool):
        raise InputError(f"expected a fraction like 1/4, got {settings['step']!r}",
                         field="step")
    if settings.get("output") is not None and not isinstance(settings["output"], str):
        raise InputError(f"must be a string, got {settings['output']!r}", field="output")
    return settings


def _references(value):
    from .config import parse_mapping
    if value is None or isinstance(value, dict):
        return value

    def number(text):
        return float(text)
    return parse_mapping(value, "references", number)


def field_command(args):
    from .config import BY_NAME, OPTIONS, RUN_KEYS, convert
    from .field import elements_of, field_compositions, hull_energy, run_field, table

    given = list(args.compositions)
    settings = {}
    if len(given) == 1 and given[0].endswith(".toml"):
        settings = read_field_toml(given[0])
        given = []
    elif any(g.endswith(".toml") for g in given):
        raise InputError("give one .toml file alone, or formulas", field="input")
    for option in OPTIONS:                  # command-line flags override the file
        value = getattr(args, option.name, None)
        if value is not None:
            settings[option.name] = convert(option, value)
    for key in ("end_members", "step", "elements", "references", "budget", "output"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if given:
        settings["compositions"] = given
    references = _references(settings.pop("references", None))
    budget = settings.pop("budget", None)
    if budget is not None:                                   # the same durations
        from .durations import parse_duration
        budget = parse_duration(budget, field="budget")
    formulas = field_compositions(settings.pop("compositions", None) or (),
                                  settings.pop("end_members", None),
                                  settings.pop("step", None), references,
                                  elements=settings.pop("elements", None),
                                  max_atoms=settings.get("max_atoms",
                                                         BY_NAME["max_atoms"].default),
                                  oxidation_states=settings.get("oxidation_states"))
    records_like = [{"composition": f} for f in formulas]
    output = Path(settings.pop("output", None)
                  or "field_" + "-".join(elements_of(records_like)))
    for option in OPTIONS:
        settings.setdefault(option.name, option.default)
    steps = settings.pop("steps")
    calculator = settings.pop("calculator")
    for key in NOT_FOR_FIELD:
        if settings.pop(key) != BY_NAME[key].default:
            raise InputError("not available for a field yet; run the compositions "
                             "with ase-fuse run", field=key)
    run = {key: settings.pop(key) for key in RUN_KEYS if key in settings}
    from .calculators.stacks import check_stages, stage_options
    if settings.get("stack_options"):
        check_stages(calculator, stage_options(settings["stack_options"]))
    from .runs import limit_torch_threads, run_executor
    limit_torch_threads(run["threads"], calculator)
    options = {k: v for k, v in settings.items() if k in BY_NAME and k != "restart"}
    say = (lambda text: None) if args.quiet else (lambda text: print(text, flush=True))
    say(f"field of {len(formulas)} compositions: {' '.join(formulas)} -> {output}/")

    def on_record(record):
        e = hull_energy(record)
        unit = "eV/atom (H)" if record.get("pressure") else "eV/atom"
        say(f"  {record['composition']:<12} {record['status']:<9} "
            f"{'-' if e is None else f'{e:.4f} {unit}'}  ({record['steps']} steps)")

    with run_executor(run["workers"], run["scheduler"]) as executor:
        records = run_field(formulas, output, steps=steps, executor=executor,
                            restart=bool(settings.get("restart")), references=references,
                            time_limit=run["time_limit"], budget=budget,
                            on_record=on_record,
                            relaxer=calculator, **options)
    from .field import hull
    records, problem = hull(records, references)     # field.json holds the same
    say(table(records, problem))
    from .plotting import plot_field
    png = plot_field(records, output / "field.png", problem, references)
    say(f"-> {output / 'field.json'}" + (f", {png}" if png else ""))
    if problem:
        print(f"ase-fuse: no hull: {problem}", file=sys.stderr)
        return 1
    return 0
