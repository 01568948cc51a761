"""What the command says, and how fast it says it (issue 15, items 5 and 7).

Item 5: a large ``--max-atoms`` no longer hangs in the FUSE generator's grid
enumeration.  Item 7: ``--steps -1``, ``-o`` on a file, ``--temperature inf``, SIGTERM
and long failure reasons in ``report`` each get a clear message.
"""

import math
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from ase.build import bulk
from hypothesis import given, settings
from hypothesis import strategies as st

from ase_fuse import cli
from ase_fuse.cli import main
from ase_fuse.generators.fuse import FuseGenerator, lattice_grids
from ase_fuse.records import RunRecords

RUN = ["--calculator", "proxy", "--max-atoms", "4", "--initial-population", "1",
       "--seed", "1", "-q"]


def error_line(capsys, code):
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@contextmanager
def time_limit(seconds):
    """Raise TimeoutError in the test if the block runs longer than ``seconds``."""
    def alarm(signum, frame):
        raise TimeoutError(f"took more than {seconds} s")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- item 5: no hang on a large cell ------------------------------------------------------
@pytest.mark.parametrize("max_atoms", [2000, 100000])
def test_large_max_atoms_generates_within_seconds(max_atoms):
    # before: every formula unit's grids were listed up front (minutes, then memory)
    with time_limit(30):
        gen = FuseGenerator("NaCl", max_atoms=max_atoms, seed=1)
        atoms = gen.generate()       # any of 1 .. max_atoms / 2 formula units
        small = gen.generate_many(2, formula_units=[1, 2, 3])
    assert 2 <= len(atoms) <= max_atoms and len(atoms) > 100
    assert gen.composition.formula_units_of(atoms) == atoms.info["formula_units"]
    assert all(len(a) in (2, 4, 6) for a in small)


def test_cli_generate_of_a_large_cell_is_quick(tmp_path):
    with time_limit(60):
        code = main(["generate", "NaCl", "--max-atoms", "20000", "-n", "3", "--seed", "2",
                     "-q", "-o", str(tmp_path / "big.extxyz")])
    assert code == 0
    from ase.io import read
    assert len(read(tmp_path / "big.extxyz", index=":")) == 3


def brute_force_grids(n_atoms, site_fill):
    low, high = site_fill
    n_min = max(1, math.ceil(n_atoms / (4 * high) - 1e-9))
    n_max = math.floor(n_atoms / (4 * low) + 1e-9)
    table = {k: [] for k in ("cubic", "tetragonal", "hexagonal", "orthorhombic",
                             "monoclinic", "triclinic")}
    for a in range(1, n_max + 1):
        for b in range(1, n_max // a + 1):
            for c in range(1, n_max // (a * b) + 1):
                if a * b * c < n_min:
                    continue
                if a == b:
                    table["hexagonal"].append((a, b, c))
                    table["cubic" if c == 2 * a else "tetragonal"].append((a, b, c))
                elif c not in (2 * a, 2 * b):
                    table["orthorhombic"].append((a, b, c))
                table["monoclinic"].append((a, b, c))
                table["triclinic"].append((a, b, c))
    return {k: v for k, v in table.items() if v}


@settings(max_examples=60, deadline=None)
@given(n_atoms=st.integers(0, 400), low=st.floats(0.05, 1.0), width=st.floats(0.0, 0.95))
def test_grid_table_is_the_brute_force_enumeration_in_order(n_atoms, low, width):
    site_fill = (low, min(1.0, low + width))
    assert lattice_grids(n_atoms, site_fill) == brute_force_grids(n_atoms, site_fill)


# -- item 7: messages ------------------------------------------------------------------------
def test_negative_steps_are_refused(tmp_path, capsys):
    line = error_line(capsys, main(["run", "NaCl", "--steps", "-1",
                                    "-o", str(tmp_path / "r")] + RUN))
    assert "steps: must be >= 0" in line
    toml = tmp_path / "in.toml"
    toml.write_text(f'composition = "NaCl"\nsteps = -3\noutput = "{tmp_path / "t"}"\n')
    assert "steps: must be >= 0" in error_line(capsys, main(["run", str(toml)]))
    assert not (tmp_path / "r").exists() and not (tmp_path / "t").exists()


def test_output_on_a_file_says_it_is_a_file(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    for output in (target, target / "run"):
        line = error_line(capsys, main(["run", "NaCl", "--steps", "1", "-o", str(output)]
                                       + RUN))
        assert "is a file, not a folder" in line and "File exists" not in line
        assert "Not a directory" not in line and str(target) in line
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e999"])
def test_temperature_must_be_finite(tmp_path, capsys, value):
    line = error_line(capsys, main(["run", "NaCl", f"--temperature={value}",
                                    "-o", str(tmp_path / "r")] + RUN))
    assert "temperature: must be a finite number" in line
    assert ">= 0" not in line


def test_toml_infinity_must_be_finite(tmp_path, capsys):
    toml = tmp_path / "in.toml"
    toml.write_text('composition = "NaCl"\nsymprec = inf\n')
    assert "symprec: must be a finite number" in error_line(capsys, main(["run", str(toml)]))


def test_sigterm_ends_like_ctrl_c_and_loses_nothing(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "ase_fuse.cli", "run", "NaCl", "--max-atoms", "8",
            "--steps", "400", "--initial-population", "2", "--calculator", "proxy",
            "--seed", "5", "-o", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    logged = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # the step lines: "     3 10 site_mutation  -1.6 ..."
        match = re.match(r"\s+(\d+)\s+\d+\s+\S+\s+(-?\d+\.\d+|failed)", line)
        if match:
            logged.append((int(match.group(1)), match.group(2)))
        if len(logged) >= 3 or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert len(logged) >= 3, err
    assert proc.returncode not in (0, None) and proc.returncode != -signal.SIGTERM, err
    assert "interrupted; restart with --restart" in err and "Traceback" not in err, err
    rows = {r.step: r for r in RunRecords(out / "fuse.db").rows()
            if r.get("status") in ("relaxed", "failed")}
    for step, energy in logged:  # every step the log showed is in the db
        assert step in rows
        if energy != "failed":
            assert rows[step].energy_per_atom == pytest.approx(float(energy), abs=1e-4)
    assert RunRecords(out / "fuse.db").check_integrity() == []
    done = max(rows)
    again = subprocess.run(args[:8] + [str(done + 2)] + args[9:] + ["--restart", "-q"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    steps = {r.step for r in RunRecords(out / "fuse.db").rows() if r.get("step")}
    assert {done + 1, done + 2} <= steps


def _db_with_failures(path, reasons):
    rec = RunRecords(path)
    for slot, reason in enumerate(reasons):
        row = rec.add_queued(bulk("Cu", "fcc", a=3.6), 0, slot, parent=0, move=0)
        rec.record_result(row, SimpleNamespace(failed=reason, tiers=[]))
    return path


def test_report_cuts_long_reasons_at_a_word(tmp_path, capsys):
    words = ("chgnet: relaxation stopped after the step limit with large residual "
             "forces on several atoms of the cell, far above fmax")
    long_word = "proxy: " + "x" * 120
    db = _db_with_failures(tmp_path / "fuse.db", [words, words, long_word])
    assert main(["report", str(db)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " x " in line]
    assert len(lines) == 2
    for line in lines:
        count, reason = re.match(r"\s+(\d+) x (.*)$", line).groups()
        assert len(reason) <= 70 and reason.endswith("...")
        stem = reason[:-3]
        full = words if stem.startswith("chgnet") else long_word
        assert full.startswith(stem)
        if full is words:  # cut where a word ends, never inside one
            assert count == "2" and full[len(stem)] == " "
    assert main(["report", "--failures", str(db)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert words in text and long_word in text                       # whole, wrapped


@given(st.text(st.sampled_from("ab c-"), max_size=120), st.integers(10, 80))
@settings(max_examples=200, deadline=None)
def test_shorten_keeps_a_prefix_and_the_width(text, width):
    short = cli.shorten(text, width)
    flat = " ".join(text.split())
    assert len(short) <= width
    if len(flat) <= width:
        assert short == flat
    else:
        assert short.endswith("...") and flat.startswith(short[:-3])


def test_run_refuses_a_cell_no_relaxer_can_serve(tmp_path, capsys):
    # issue 15 item 5: `run NaCl --max-atoms 100000` printed nothing for minutes
    with time_limit(30):
        code = main(["run", "NaCl", "--max-atoms", "100000", "--steps", "2",
                     "--initial-population", "2", "--calculator", "proxy", "-o",
                     str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "max_atoms" in err[0] and "1000" in err[0]
    assert not (tmp_path / "run" / "fuse.db").exists()
