"""The ``ase-fuse`` command: ``run``, ``generate``, ``plot``, ``report``.

Usage errors print one line (``ase-fuse: error: <field>: <problem>``) and exit with
status 2; no traceback.
"""

import argparse
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

from .cli_report import shorten  # noqa: F401  (cli.shorten: tests and callers)
from .errors import GenerationError, InputError


def printable(message):
    """``message`` with every control or line-breaking character but ``\n`` escaped:
    a message quoting a damaged file (sqlite's own text, a file name) stays the one
    line it is meant to be; a restart's one line per field keeps its newlines."""
    import unicodedata
    text = str(message)
    return "".join(c if c == "\n" or not (unicodedata.category(c).startswith(("C", "Z"))
                                          and c != " ") else ascii(c)[1:-1] for c in text)


def _add_run(sub):
    p = sub.add_parser("run", help="run a basin-hopping search",
                       description="Run a FUSE basin-hopping search on a formula, or on "
                                   "the settings of a TOML file.")
    p.add_argument("composition", help="formula (e.g. Ca3Ti2O7) or an input .toml file")
    p.add_argument("-o", "--output", default=None,
                   help="run folder (default: run_<formula>)")
    p.add_argument("-q", "--quiet", action="store_true", help="no log lines")
    from .cli_options import add_option_flags
    add_option_flags(p)


def run_command(args):
    from .config import BY_NAME, OPTIONS, RUN_KEYS, convert, read_toml

    settings = {}
    if args.composition.endswith(".toml"):
        settings = read_toml(args.composition)
    else:
        settings["composition"] = args.composition
    for option in OPTIONS:  # command-line flags override the file
        value = getattr(args, option.name)
        if value is not None:
            settings[option.name] = convert(option, value)
    if args.output:
        settings["output"] = args.output
    if settings.get("restart"):  # what is not given continues as stored; the rest is checked
        from .run_settings import fill_restart
        fill_restart(settings)
    for option in OPTIONS:
        settings.setdefault(option.name, option.default)
    composition = settings.pop("composition")
    output = Path(settings.pop("output", None) or f"run_{composition}")
    steps = settings.pop("steps")
    calculator = settings.pop("calculator")
    stack_options = settings.pop("stack_options")
    run = {key: settings.pop(key) for key in RUN_KEYS}
    from .basinhopping import FuseBasinHopping
    from .runs import limit_torch_threads, run_executor
    limit_torch_threads(run["threads"], calculator)
    walkers = int(run["walkers"])
    if walkers < 1:
        raise InputError(f"must be >= 1, got {walkers}", field="walkers")
    relaxer = _relaxer(calculator, composition, settings.get("oxidation_states"),
                       run["batch_size"], run["device"], build=walkers > 1,
                       stack_options=stack_options)
    if not isinstance(relaxer, str):
        relaxer.stack_name = calculator   # stored with the run, so a restart can check it
        relaxer.stack_options = _stage_options(stack_options)
    with run_executor(run["workers"], run["scheduler"]) as executor:
        if walkers > 1:
            return _run_walkers(composition, walkers, steps, relaxer, output, executor,
                                settings, args.quiet, _time_left(run, args.started))
        opt = FuseBasinHopping(composition, relaxer=relaxer, directory=output,
                               logfile=None if args.quiet else "-",
                               trajectory=str(output / "best.traj"), executor=executor,
                               **{k: v for k, v in settings.items() if k in BY_NAME})
        with opt:  # --steps is the run's total: a restarted run finishes what is left
            opt.run(steps=max(0, steps - opt.nsteps),
                    time_limit=_time_left(run, args.started))
    if not args.quiet and opt.best_atoms is None:
        print(f"stopped before any structure was relaxed; continue with --restart "
              f"-o {output}")
    elif not args.quiet:
        print(f"best {opt.best_energy:.4f} eV/atom "
              f"({opt.best_atoms.get_chemical_formula()}) -> {output / 'best.cif'}")
    return 0


def _time_left(run, started):
    """``--time-limit`` counts from the command's start (imports and set-up included)."""
    if run.get("time_limit") is None:
        return None
    return max(1e-3, run["time_limit"] - (time.monotonic() - started))


def _run_walkers(composition, walkers, steps, relaxer, output, executor, settings, quiet,
                 time_limit=None):
    """``--walkers N``: N seeded searches in lock-step, one folder each under ``output``."""
    import numpy as np

    from .config import BY_NAME
    from .walkers import run_walkers
    seed = settings.pop("seed")
    found = sorted(int(p.parent.name[4:]) for p in output.glob("seed*/fuse.db")
                   if p.parent.name[4:].isdigit())
    if seed is None and settings.get("restart") and found:
        seeds = found                     # a restart without --seed: the folders' seeds
        if len(seeds) != walkers:
            raise InputError(f"{output} holds {len(seeds)} walkers, not {walkers}",
                             field="walkers")
    else:
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**31)
        seeds = [seed + k for k in range(walkers)]
    options = {k: v for k, v in settings.items() if k in BY_NAME}
    say = (lambda text: None) if quiet else (lambda text: print(text, flush=True))
    say(f"{walkers} walkers, seeds {seeds[0]}..{seeds[-1]}: logs in "
        f"{output}/seed<N>/fuse.log")

    def on_round(group):
        bests = "  ".join(f"{w.seed}: {w.best_energy:.4f}" for w in group)
        say(f"step {max(w.nsteps for w in group):5d}  best per seed {bests}  "
            f"{time.strftime('%H:%M:%S')}")

    group = run_walkers(composition, seeds, steps=steps, batch_relaxer=relaxer,
                        directory=output, total=True, on_round=on_round,
                        executor=executor, logfile=str(output / "seed{seed}" / "fuse.log"),
                        trajectory=str(output / "seed{seed}" / "best.traj"),
                        time_limit=time_limit, **options)
    if all(w.best_energy is None for w in group):
        say(f"stopped before any structure was relaxed; continue with --restart -o {output}")
        return 0
    best = min((w for w in group if w.best_energy is not None), key=lambda w: w.best_energy)
    say(f"best {best.best_energy:.4f} eV/atom ({best.best_atoms.get_chemical_formula()}, "
        f"seed {best.seed}) -> {output / f'seed{best.seed}' / 'best.cif'}")
    return 0


def _stage_options(stack_options):
    from .calculators.stacks import stage_options
    return stage_options(stack_options)


def _relaxer(stack, composition, oxidation_states, batch_size, device, build=False,
             stack_options=None):
    """The stack name itself, or (batching, a GPU, walkers, stage options) the stack
    built with those options."""
    overrides = _stage_options(stack_options)
    if overrides:
        from .calculators.stacks import check_stages
        check_stages(stack, overrides)
    if not batch_size and device == "cpu" and not build and not overrides:
        return stack
    from .calculators.stacks import build_stack
    from .composition import Composition
    ml_stages = [stage for stage in stack.split("+") if stage in ("chgnet", "sevennet")]
    if device != "cpu":
        if not ml_stages:
            raise InputError(f"applies to a CHGNet or SevenNet stack, not {stack!r}",
                             field="device")
        if device != "cuda" and not device.startswith("cuda:"):
            raise InputError(f"must be cpu, cuda or cuda:N, got {device!r}", field="device")
        try:
            import torch
        except ImportError:
            raise InputError("needs torch (pip install 'ase-fuse[chgnet]')",
                             field="device") from None
        if not torch.cuda.is_available():
            raise InputError(f"{device}: torch sees no CUDA device here (torch "
                             f"{torch.__version__})", field="device")
        for stage in ml_stages:
            overrides.setdefault(stage, {})["device"] = device
    return build_stack(stack, Composition(composition, oxidation_states),
                       batch_size=batch_size, **overrides)


def _add_plot(sub):
    p = sub.add_parser("plot", help="draw energy vs step of a run to PNG")
    p.add_argument("db", help="run database (fuse.db), its run folder, or a --walkers "
                              "folder (one best-energy line per seed)")
    p.add_argument("-o", "--output", default=None, help="PNG file (default: next to the db)")
    p.add_argument("--landscape", action="store_true",
                   help="energy against volume per atom of the distinct structures "
                        "(landscape.png), marker size by times found")


def plot_command(args):
    from .plotting import plot_landscape, plot_run, plot_walkers, walker_dbs
    path = Path(args.db)
    if not path.exists():
        raise InputError(f"no such file {path}", field="db")
    if args.landscape:
        out = plot_landscape(path, args.output)
    elif path.is_dir() and walker_dbs(path):
        out = plot_walkers(path, args.output)
    else:
        out = plot_run(path / "fuse.db" if path.is_dir() else path, args.output)
    print(out)
    return 0


def _add_models(sub):
    p = sub.add_parser("models", help="install pretrained model files (MEGNet)")
    p.add_argument("action", choices=["install"])
    p.add_argument("name", choices=["megnet"])
    p.add_argument("--dest", default=None, help="folder for the model files")


def models_command(args):
    from .generators.gnoa.models_install import install_megnet_models
    path = install_megnet_models(args.dest)
    print(f"MEGNet models installed in {path}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ase-fuse", description="ASE-native crystal structure prediction (FUSE2).")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    from . import cli_generate
    gen = sub.add_parser("generate", help="generate structures with a registered generator")
    cli_generate.add_arguments(gen)
    _add_plot(sub)
    from . import cli_field
    cli_field.add_arguments(sub.add_parser(
        "field", help="search every composition of a phase field; the convex hull",
        description="One search per composition (each in FIELD/<formula>/), then "
                    "formation energies and the convex hull (pymatgen)."))
    from . import cli_report
    cli_report.add_arguments(sub.add_parser(
        "report", help="the distinct lowest structures of a run, failures, integrity"))
    _add_models(sub)
    return parser


def main(argv=None):
    started = time.monotonic()  # --time-limit counts from here
    parser = build_parser()
    args = parser.parse_args(argv)
    args.started = started
    from .cli_report import report_command
    from .cli_field import field_command
    commands = {"run": run_command, "plot": plot_command, "report": report_command,
                "models": models_command, "field": field_command}
    terminated = []
    previous = _on_sigterm(terminated)
    try:
        if args.command == "generate":
            from . import cli_generate
            return cli_generate.main(args)
        return commands[args.command](args)
    except InputError as err:
        print(f"ase-fuse: error: {printable(err)}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as err:  # damage found past the checks at opening
        print(f"ase-fuse: error: db: damaged database ({printable(err)})", file=sys.stderr)
        return 2
    except GenerationError as err:
        print(f"ase-fuse: failed: {printable(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (a batch system's kill)
        print("ase-fuse: interrupted; restart with --restart", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:  # `ase-fuse report ... | head`: the reader left early
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _on_sigterm(terminated):
    """Make SIGTERM end the command as Ctrl-C does (KeyboardInterrupt: the run's db
    keeps every finished relaxation, one line is printed); a second SIGTERM gets the
    previous handler.  Returns that handler to restore, or None off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum, frame):
        terminated.append(signum)
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    return previous if previous is not None else signal.SIG_DFL


if __name__ == "__main__":
    sys.exit(main())
