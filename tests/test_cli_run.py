"""The ``ase-fuse`` command: run, restart, TOML input, report, plot, usage errors."""

import json
import subprocess
import sys

import pytest
from ase.io import read

from ase_fuse.cli import main
from ase_fuse.config import read_toml
from ase_fuse.errors import InputError

def _has_cuda():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


SMALL = ["--calculator", "emt", "--max-atoms", "4", "--initial-population", "3",
         "--seed", "2", "-q"]


def test_run_writes_outputs_and_restart_continues(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "Ag", "--steps", "3", "-o", str(out)] + SMALL) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["composition"] == "Ag"
    assert read(out / "best.cif").get_chemical_formula().startswith("Ag")
    assert len(read(out / "best.traj", index=":")) >= 1
    # same folder again without --restart: refused with one line, exit 2
    assert main(["run", "Ag", "--steps", "3", "-o", str(out)] + SMALL) == 2
    assert "restart" in capsys.readouterr().err
    assert main(["run", "Ag", "--steps", "5", "-o", str(out), "--restart"] + SMALL) == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == 5
    assert main(["report", str(out / "fuse.db")]) == 0
    assert "integrity: ok" in capsys.readouterr().out
    assert main(["plot", str(out / "fuse.db"), "-o", str(tmp_path / "e.png")]) == 0
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


def test_toml_input(tmp_path):
    toml = tmp_path / "in.toml"
    toml.write_text('composition = "Ag"\nsteps = 2\ncalculator = "emt"\nmax_atoms = 4\n'
                    'initial_population = 2\nseed = 4\nmove_weights = {1 = 0, 2 = 1, 13 = 2}\n'
                    f'output = "{tmp_path / "t"}"\n')
    settings = read_toml(toml)
    assert settings["move_weights"] == {1: 0, 2: 1, 13: 2}
    assert main(["run", str(toml), "-q"]) == 0
    assert json.loads((tmp_path / "t" / "summary.json").read_text())["steps"] == 2


def test_toml_unknown_key_names_the_closest(tmp_path):
    toml = tmp_path / "in.toml"
    toml.write_text('composition = "Ag"\ntemprature = 0.1\n')
    with pytest.raises(InputError, match="temprature.*did you mean 'temperature'"):
        read_toml(toml)


def _found(module):
    """Is ``module`` installed?  (Without it the one-line error names the extra.)"""
    import importlib.util
    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("args, words", [
    (["run", "Xq2O"], "unknown element"),
    (["run", "Ca3Ti2O7", "--max-atoms", "5"], "max_atoms"),
    (["run", "NaCl", "--calculator", "nonesuch"], "nonesuch"),
    (["run", "NaCl", "--move-weights", "1=-2"], "move_weights"),
    (["run", "NaCl", "--move-weights", "99=1"], "move_weights"),
    (["run", "NaCl", "--generator", "nope"], "generator"),
    (["run", "NaCl", "--temperature", "hot"], "temperature"),
    (["run", "NaCl", "--structures", "/no/such/file.cif"], "structures"),
    (["run", "Na1.5Cl"], "fractional"),
    (["plot", "/no/such.db"], "no such file"),
    (["run", "NaCl", "--workers", "-1"], "workers"),
    (["run", "NaCl", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
    (["run", "NaCl", "--threads", "-2"], "threads"),
    (["run", "NaCl", "--calculator", "proxy", "--batch-size", "4"], "cannot batch"),
    (["run", "NaCl", "--calculator", "proxy", "--device", "cuda"], "device"),
    (["run", "NaCl", "--device", "tpu"], "cuda:N"),
    pytest.param(["run", "NaCl", "--device", "cuda"],
                 "no CUDA device" if _found("torch") else "needs torch",
                 marks=pytest.mark.skipif(_has_cuda(), reason="this machine has CUDA")),
    (["run", "NaCl", "--walkers", "0"], "walkers"),
    (["run", "Ag", "--calculator", "emt", "--max-atoms", "4", "--scheduler",
      "tcp://127.0.0.1:9"], "cannot reach" if _found("distributed") else "needs Dask"),
])
def test_usage_errors_are_one_line_and_exit_2(tmp_path, args, words):
    proc = subprocess.run([sys.executable, "-m", "ase_fuse.cli"] + args + ["-o", str(
        tmp_path / "x")] if args[0] == "run" else [sys.executable, "-m", "ase_fuse.cli"]
        + args, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr


def test_workers_run_on_a_local_dask_cluster_with_the_serial_result(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    import contextlib

    import ase_fuse.runs as runs
    seen, real = [], runs.run_executor

    @contextlib.contextmanager
    def spy(*args, **kwargs):
        with real(*args, **kwargs) as executor:
            seen.append(executor)
            yield executor

    monkeypatch.setattr(runs, "run_executor", spy)
    serial, pooled = tmp_path / "serial", tmp_path / "pooled"
    assert main(["run", "Ag", "--steps", "4", "-o", str(serial)] + SMALL) == 0
    assert seen.pop() is None
    assert main(["run", "Ag", "--steps", "4", "-o", str(pooled), "--workers", "2"]
                + SMALL) == 0
    assert type(seen.pop()).__module__.startswith("distributed")
    a = json.loads((serial / "summary.json").read_text())
    b = json.loads((pooled / "summary.json").read_text())
    assert b["steps"] == a["steps"] == 4
    assert b["best_energy_per_atom"] == pytest.approx(a["best_energy_per_atom"], abs=1e-9)


def test_batch_size_relaxes_the_population_in_one_chgnet_batch(tmp_path, monkeypatch):
    pytest.importorskip("torch_sim")
    pytest.importorskip("chgnet")
    from ase_fuse.calculators import batched
    from ase_fuse.records import RunRecords
    sizes, real = [], batched.BatchedRelaxer.relax_many

    def spy(self, structures, **kw):
        sizes.append(len(structures))
        return real(self, structures, **kw)

    monkeypatch.setattr(batched.BatchedRelaxer, "relax_many", spy)
    out = tmp_path / "run"
    assert main(["run", "NaCl", "--batch-size", "4", "--max-atoms", "4",
                 "--initial-population", "4", "--steps", "2", "--seed", "3", "-q",
                 "-o", str(out)]) == 0
    assert sizes[0] == 4                       # the population: one CHGNet batch
    records = RunRecords(out / "fuse.db")
    assert records.check_integrity() == []
    assert records.count(step=0) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluated"] == 6 and summary["best_energy_per_atom"] < -3.0
    # two walkers: both populations in one batch, then both candidates of a step
    sizes.clear()
    assert main(["run", "NaCl", "--batch-size", "8", "--walkers", "2", "--max-atoms", "4",
                 "--initial-population", "3", "--steps", "2", "--seed", "3", "-q",
                 "-o", str(tmp_path / "walkers")]) == 0
    assert sizes[0] == 6 and 2 in sizes[1:]
    for seed in (3, 4):
        walker = RunRecords(tmp_path / "walkers" / f"seed{seed}" / "fuse.db")
        assert walker.check_integrity() == [] and walker.count(step=0) == 3


def test_walkers_run_in_lock_step_each_as_its_seed_alone(tmp_path, capsys):
    small = [a for a in SMALL if a != "-q"]
    alone, group = tmp_path / "alone", tmp_path / "group"
    assert main(["run", "Ag", "--steps", "3", "-q", "-o", str(alone)] + SMALL) == 0
    assert main(["run", "Ag", "--steps", "3", "--walkers", "2", "-o", str(group)]
                + small) == 0
    out = capsys.readouterr().out
    assert "2 walkers, seeds 2..3" in out and "best per seed 2:" in out
    a = json.loads((alone / "summary.json").read_text())
    b = json.loads((group / "seed2" / "summary.json").read_text())
    assert b["steps"] == a["steps"] == 3
    assert b["best_energy_per_atom"] == pytest.approx(a["best_energy_per_atom"], abs=1e-12)
    assert (group / "seed3" / "fuse.db").exists()
    assert "step" in (group / "seed3" / "fuse.log").read_text()
    # a restart without --seed finds the walkers' folders and runs to the new total
    assert main(["run", "Ag", "--steps", "5", "--walkers", "2", "--restart", "-q", "-o",
                 str(group), "--calculator", "emt", "--max-atoms", "4"]) == 0
    for seed in (2, 3):
        assert json.loads((group / f"seed{seed}" / "summary.json").read_text())["steps"] == 5
    capsys.readouterr()
    assert main(["report", str(group)]) == 0
    report = capsys.readouterr().out
    assert "== seed 2" in report and "== seed 3" in report
    assert report.count("integrity: ok") == 2
    assert main(["plot", str(group)]) == 0
    assert (group / "walkers.png").read_bytes()[:4] == b"\x89PNG"


def test_one_stop_file_stops_every_walker(tmp_path):
    from ase_fuse.calculators.stacks import build_stack
    from ase_fuse.walkers import run_walkers
    (tmp_path / "STOP").write_text("")
    group = run_walkers("Ag", [1, 2], steps=4, batch_relaxer=build_stack("emt"),
                        directory=tmp_path, max_atoms=4, initial_population=2)
    assert [w.nsteps for w in group] == [0, 0]
    assert not (tmp_path / "STOP").exists()
    assert all((tmp_path / f"seed{s}" / "current.cif").exists() for s in (1, 2))


def test_threads_pin_torch_only_for_a_torch_stack():
    torch = pytest.importorskip("torch")
    from ase_fuse.runs import limit_torch_threads
    before = torch.get_num_threads()
    try:
        limit_torch_threads(1, "proxy")          # no torch tier: left alone
        assert torch.get_num_threads() == before
        limit_torch_threads(1, "proxy+chgnet")
        assert torch.get_num_threads() == 1
        limit_torch_threads(0, "proxy+chgnet")   # 0: torch's default kept as it is
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
