"""A fuzzer over the command line (issue 15, item 9).

Random bytes, truncated CIF / extxyz / TOML / db files and random option values go
to ``run``, ``generate``, ``report`` and ``plot`` (``ase_fuse.cli.main`` in process,
the proxy calculator, tiny sizes).  Every case must end with exit status 0 or 2
(``report`` may say 1 when it prints integrity problems, its documented status), let
no exception out of ``main`` (argparse's own exit 2 aside), print nothing that looks
like a traceback, and leave every input file as it was.  The counts of cases tried
are printed at the end of the module.
"""

import collections
import hashlib
import itertools
import os
import re
from pathlib import Path

import pytest
from ase.io import write
from ase.spacegroup import crystal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ase_fuse.cli import main

#: ASE_FUSE_FUZZ_SCALE=10 tries ten times as many cases (a longer hunt than CI's)
SCALE = float(os.environ.get("ASE_FUSE_FUZZ_SCALE", "1"))
TRIED = collections.Counter()
ERRORS = collections.Counter()  # field of each one-line refusal
FUZZ = dict(deadline=None, database=None, derandomize=False,
            suppress_health_check=[HealthCheck.function_scoped_fixture,
                                   HealthCheck.too_slow, HealthCheck.data_too_large])
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*File \".*\", line \d+",
                       re.MULTILINE)
SMALL = ["--calculator", "proxy", "--steps", "1", "--initial-population", "1",
         "--max-atoms", "4", "--seed", "1"]


@pytest.fixture(scope="module", autouse=True)
def report_counts(pytestconfig):
    yield
    total = sum(v for k, v in TRIED.items() if " " not in k)
    line = "fuzz cases tried: " + ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items())) \
        + f" (total {total})"
    refused = "refused by field: " + ", ".join(f"{k} {v}" for k, v in ERRORS.most_common())
    reporter = pytestconfig.pluginmanager.getplugin("terminalreporter")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # shown in pytest's own output
            reporter.write_line("")
            reporter.write_line(line)
            reporter.write_line(refused)
    print(line)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Valid files to cut and garble: ``{kind: bytes}``, and a real run folder."""
    base = tmp_path_factory.mktemp("seeds")
    nacl = crystal(["Na", "Cl"], [(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225,
                   cellpar=[5.64, 5.64, 5.64, 90, 90, 90])
    write(base / "nacl.cif", nacl)
    write(base / "nacl.extxyz", [nacl, nacl.repeat((2, 1, 1))])
    run = base / "run"
    assert main(["run", "NaCl", "-q", "-o", str(run), "--steps", "3"] + SMALL[:-4] +
                ["--max-atoms", "8", "--initial-population", "2"]) == 0
    (base / "in.toml").write_text(
        'composition = "NaCl"\nsteps = 1\nmax_atoms = 4\ncalculator = "proxy"\n'
        'initial_population = 1\nseed = 3\ntemperature = 0.05\n'
        'move_weights = {1 = 1, 13 = 2}\n')
    kinds = {"cif": (base / "nacl.cif").read_bytes(),
             "extxyz": (base / "nacl.extxyz").read_bytes(),
             "toml": (base / "in.toml").read_bytes(),
             "db": (run / "fuse.db").read_bytes()}
    return Seeds(kinds=kinds, run=run, base=base)


class Seeds(dict):
    """The seed files; a short repr, so a falsifying example stays readable."""

    def __init__(self, **items):
        super().__init__(items)

    def __repr__(self):
        return f"<seed files in {self['base']}>"


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


_counter = itertools.count()


def fresh_dir(seeds):
    path = seeds["base"] / f"case{next(_counter)}"
    path.mkdir()
    return path


@st.composite
def a_file(draw, kinds=("cif", "extxyz", "toml", "db")):
    """``(suffix, bytes)``: a valid file cut short, garbled, or random bytes."""
    kind = draw(st.sampled_from(kinds))
    how = draw(st.sampled_from(["cut", "cut", "garble", "random", "whole", "whole"]))
    return kind, how, draw(st.integers(0, 10**6)), draw(st.binary(max_size=300))


def materialise(seeds, spec, folder, name=None):
    kind, how, number, noise = spec
    data = seeds["kinds"][kind]
    if how == "cut":
        data = data[:number % (len(data) + 1)]
    elif how == "garble":
        at = number % (len(data) + 1)
        data = data[:at] + noise + data[at + len(noise):]
    elif how == "random":
        data = noise
    path = folder / (name or f"input.{kind}")
    path.write_bytes(data)
    return path


VALUES = st.one_of(
    st.integers(-3, 3).map(str),
    st.sampled_from(["inf", "-inf", "nan", "1e999", "", " ", "0.5,1.5", "1=2", "a=b",
                     "1,2", "x", "-0", "1e-300", "13=1", "Na=1,Cl=-1", "true", "2.5"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
            max_size=6))
RUN_FLAGS = ["--temperature", "--symprec", "--melt-threshold", "--melt-increment", "--rmax",
             "--move-weights", "--oxidation-states", "--vacancy-distance", "--seed",
             "--steps", "--initial-population", "--max-atoms", "--walkers", "--db",
             "--generator", "--threads"]
GEN_KEYS = ["formula_units", "max_tries", "site_fill", "seed", "limits", "space_groups",
            "triclinic_only", "rerank", "distinct", "pool_size", "optimizer", "nonsense"]


def check(capsys, argv, inputs, command, allow_changed=()):
    """Run one case and assert the rules; returns the exit status."""
    capsys.readouterr()
    before = {p: digest(p) for p in inputs}
    parsed = True
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse refuses the command line itself
        code, parsed = stop.code, False
        assert code == 2, argv
    out, err = capsys.readouterr()
    assert not TRACEBACK.search(err) and not TRACEBACK.search(out), (argv, err[-2000:])
    allowed = (0, 2, 1) if command == "report" else (0, 2)
    assert code in allowed, (argv, code, err[-2000:])
    if code == 1:  # report: integrity problems, printed
        assert "integrity: " in out and "integrity: ok" not in out, (argv, out[-2000:])
    lines = err.strip().splitlines()
    if code == 2 and parsed:  # one line naming the problem (a restart: one per field)
        assert lines[0].startswith("ase-fuse: error: "), (argv, err)
        assert all(line.startswith("restart: ") for line in lines[1:]), (argv, err)
        ERRORS[lines[0].split(":")[2].strip()] += 1
    elif code == 2:  # argparse: its usage, then one error line
        assert lines[-1].startswith("ase-fuse") and ": error: " in lines[-1], (argv, err)
    for path, value in before.items():
        if code == 0 and path in allow_changed:
            continue
        assert digest(path) == value, (argv, path, code)
    TRIED[command] += 1
    TRIED[f"{command} exit {code}"] += 1
    return code


@settings(max_examples=round(30 * SCALE), **FUZZ)
@given(data=st.data())
def test_fuzz_run(seeds, capsys, data):
    folder = fresh_dir(seeds)
    argv = ["run"]
    inputs, allow = [], []
    source = data.draw(st.sampled_from(["formula", "toml", "toml"]))
    if source == "toml":
        toml = materialise(seeds, data.draw(a_file(("toml",))), folder)
        inputs.append(toml)
        argv.append(str(toml))
    else:
        argv.append(data.draw(st.sampled_from(["NaCl"] * 4 + ["Na", "Xx", "", "Na0Cl"])))
    argv += SMALL + ["-o", str(folder / "out"), "-q"]
    for flag in ("--structures", "--pool"):
        if data.draw(st.integers(0, 3)) == 0:
            path = materialise(seeds, data.draw(a_file(("cif", "extxyz", "db"))), folder,
                               name=f"{flag[2:]}." + data.draw(st.sampled_from(
                                   ["cif", "extxyz", "db", "xyz", "traj"])))
            inputs.append(path)
            argv += [flag, str(path)]
    if data.draw(st.integers(0, 3)) == 0:  # a damaged or cut run db in the run folder
        (folder / "out").mkdir()
        db = materialise(seeds, data.draw(a_file(("db",))), folder / "out", name="fuse.db")
        inputs.append(db)
        allow.append(db)
        if data.draw(st.booleans()):
            argv.append("--restart")
    flags = data.draw(st.lists(st.sampled_from(RUN_FLAGS), max_size=2, unique=True)) \
        if data.draw(st.booleans()) else []
    for flag in flags:
        value = data.draw(VALUES)
        if flag in ("--steps", "--initial-population") and re.fullmatch(r"\d+", value):
            value = str(min(int(value), 2))
        if flag == "--walkers" and re.fullmatch(r"\d+", value):
            value = str(min(int(value), 2))
        if flag == "--max-atoms" and re.fullmatch(r"\d+", value):
            value = str(min(int(value), 8))
        argv.append(f"{flag}={value}")
    if data.draw(st.integers(0, 3)) == 0:
        options = {data.draw(st.sampled_from(GEN_KEYS)): data.draw(VALUES)}
        if data.draw(st.booleans()):  # GN-OA, kept small: the proxy, 8 evaluations
            argv += ["--generator", "gnoa"]
            options.update(model="proxy", evaluations="8", progress="false")
        argv += ["--generator-options",
                 ",".join(f"{k}={v}" for k, v in options.items() if "," not in v)]
    check(capsys, argv, inputs, "run", allow_changed=allow)


@settings(max_examples=round(40 * SCALE), **FUZZ)
@given(data=st.data())
def test_fuzz_generate(seeds, capsys, data):
    folder = fresh_dir(seeds)
    argv = ["generate", data.draw(st.sampled_from(["NaCl", "Na", "Cu", "Xx", "", "Na2",
                                                   "NaCl2", "(NaCl"]))]
    suffix = data.draw(st.sampled_from([".extxyz", ".db", ".cif", ".xyz", ".traj", ".png",
                                        ".nope", ""]))
    argv += ["-o", str(folder / f"out{suffix}"), "-q"]
    for flag in data.draw(st.lists(st.sampled_from(["-n", "--max-atoms", "--seed",
                                                    "--formula-units", "--oxidation-states",
                                                    "-g"]), max_size=3, unique=True)):
        value = data.draw(VALUES)
        if flag == "-g" and value == "gnoa":
            value = "fuse"  # GN-OA's own defaults (CHGNet, 5000 evaluations) are slow
        if flag in ("-n", "--max-atoms") and re.fullmatch(r"\d+", value):
            value = str(min(int(value), 12))
        argv.append(f"{flag}={value}")
    if data.draw(st.integers(0, 3)) == 0:  # as run's: fuse's options, or GN-OA kept small
        options = {data.draw(st.sampled_from(GEN_KEYS)): data.draw(VALUES)}
        if data.draw(st.booleans()):
            argv += ["-g", "gnoa"]
            options.update(model="proxy", evaluations="8", progress="false")
        argv += ["--generator-options",
                 ",".join(f"{k}={v}" for k, v in options.items() if "," not in v)]
    existing = folder / "keep.cif"
    existing.write_bytes(seeds["kinds"]["cif"])
    check(capsys, argv, [existing], "generate")


@settings(max_examples=round(40 * SCALE), **FUZZ)
@given(data=st.data())
def test_fuzz_report(seeds, capsys, data):
    folder = fresh_dir(seeds)
    target = data.draw(st.sampled_from(["file", "file", "file", "run folder", "missing"]))
    inputs = []
    if target == "file":
        path = materialise(seeds, data.draw(a_file()), folder,
                           name=data.draw(st.sampled_from(["fuse.db", "x.cif", "y"])))
        inputs.append(path)
    elif target == "run folder":
        path = seeds["run"]
        inputs.append(path / "fuse.db")
    else:
        path = folder / "nothing.db"
    argv = ["report", str(path)] + (["--failures"] if data.draw(st.booleans()) else [])
    for flag in ("--window", "-n"):
        if data.draw(st.booleans()):
            argv += [flag, data.draw(VALUES)]
    argv += data.draw(st.sampled_from([[], ["--json"], ["--no-files"]]))
    check(capsys, argv, inputs, "report")


@settings(max_examples=round(25 * SCALE), **FUZZ)
@given(data=st.data())
def test_fuzz_plot(seeds, capsys, data):
    folder = fresh_dir(seeds)
    inputs = []
    if data.draw(st.booleans()):
        path = materialise(seeds, data.draw(a_file(("db", "db", "cif"))), folder,
                           name="fuse.db")
    else:
        path = seeds["run"] / "fuse.db"
    inputs.append(path)
    argv = ["plot", str(path)]
    if data.draw(st.booleans()):
        out = data.draw(st.sampled_from(["e.png", "e.svg", "e.xyz", "e", "", "sub/e.png",
                                         "input"]))
        argv += ["-o", str(path if out == "input" else folder / out)]
    if data.draw(st.booleans()):
        argv.append("--landscape")
    check(capsys, argv, inputs, "plot")
