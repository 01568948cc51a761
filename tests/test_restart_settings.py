"""``--restart`` continues the stored run or refuses, one line per differing setting,
before anything is written; only how the run executes may change."""

import hashlib
import json
import shutil

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.db import connect
from ase.io import write

from ase_fuse import FuseBasinHopping, InputError
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.cli import main
from ase_fuse.records import RunRecords
from ase_fuse.runlock import LOCK_FILE

TINY = ["--calculator", "proxy", "--max-atoms", "8", "--initial-population", "3",
        "--seed", "3"]
STEPS = 4


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny NaCl run (the tests work on copies of it)."""
    out = tmp_path_factory.mktemp("finished") / "d"
    assert main(["run", "NaCl", *TINY, "--steps", str(STEPS), "-q", "-o", str(out)]) == 0
    return out


@pytest.fixture
def run_copy(finished, tmp_path):
    out = tmp_path / "d"
    shutil.copytree(finished, out)
    return out


def snapshot(folder):
    """Every file of the run folder (but the lock file) and its content hash."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != LOCK_FILE}


def stored(folder):
    return RunRecords(folder / "fuse.db").settings()


def restart(folder, *args, composition="NaCl", steps=STEPS + 2):
    return main(["run", composition, "-o", str(folder), "--restart", "--steps", str(steps),
                 "-q", *args])


def test_every_setting_that_defines_the_run_is_stored(finished):
    settings = stored(finished)
    assert settings["composition"] == "NaCl" and settings["max_atoms"] == 8
    assert settings["seed"] == 3 and settings["calculator"] == "proxy"
    assert settings["relaxer"].startswith("proxy(")
    from ase_fuse.config import BY_NAME
    assert settings["initial_population"] == 3
    assert settings["generator"] == BY_NAME["generator"].default
    assert settings["move_weights"] == [1.0] * 14 and settings["symmetrize"] is True
    for key in ("temperature", "melt_threshold", "melt_increment", "rmax", "symprec",
                "vacancy_distance", "oxidation_states", "structures", "pool",
                "generator_options"):
        assert key in settings, key
    for key in ("steps", "workers", "scheduler", "threads", "batch_size", "device",
                "walkers", "time_limit", "output", "restart", "db"):
        assert key not in settings, key


@pytest.mark.parametrize("args, line", [
    (["--max-atoms", "4"], "restart: max_atoms: stored 8, given 4"),
    (["--max-atoms", "12"], "restart: max_atoms: stored 8, given 12"),
    (["--calculator", "emt"], "restart: calculator: stored proxy, given emt"),
    (["--seed", "4"], "restart: seed: stored 3, given 4"),
    (["--temperature", "0.5"], "restart: temperature: stored 0.02, given 0.5"),
    (["--initial-population", "5"], "restart: initial_population: stored 3, given 5"),
    (["--melt-threshold", "10"], "restart: melt_threshold: stored 150, given 10"),
    (["--melt-increment", "1,2"], "restart: melt_increment: stored [0.5,1.5], given [1.0,2.0]"),
    (["--rmax", "50"], "restart: rmax: stored 1000, given 50"),
    (["--no-symmetrize"], "restart: symmetrize: stored true, given false"),
    (["--symprec", "0.2"], "restart: symprec: stored 0.1, given 0.2"),
    (["--vacancy-distance", "2"], "restart: vacancy_distance: stored 1.0, given 2.0"),
    (["--move-weights", "1=2,7=1"], "restart: move_weights: stored [1.0,"),
    (["--oxidation-states", "Na=1,Cl=-1"],
     'restart: oxidation_states: stored none, given {"Na":1,"Cl":-1}'),
    (["--generator-options", "retries=5"],
     'restart: generator_options: stored {}, given {"retries":5}'),
])
def test_each_changed_setting_is_refused_before_anything_is_written(run_copy, capsys,
                                                                    args, line):
    before = snapshot(run_copy)
    assert restart(run_copy, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ase-fuse: error: " + line), err
    assert snapshot(run_copy) == before


def test_another_composition_is_refused_and_the_stored_one_kept(run_copy, capsys):
    before = snapshot(run_copy)
    assert restart(run_copy, composition="KCl") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ase-fuse: error: restart: composition: stored NaCl, given KCl"]
    assert snapshot(run_copy) == before and stored(run_copy)["composition"] == "NaCl"


def test_structure_and_pool_inputs_are_part_of_the_run(run_copy, tmp_path, capsys):
    rocksalt = bulk("NaCl", "rocksalt", a=5.6)
    write(tmp_path / "start.extxyz", rocksalt)
    write(tmp_path / "pool.extxyz", [rocksalt])
    for args, field in ((["--structures", str(tmp_path / "start.extxyz")], "structures"),
                        (["--pool", str(tmp_path / "pool.extxyz")], "pool")):
        assert restart(run_copy, *args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"ase-fuse: error: restart: {field}: stored none, given "
                       + (json.dumps([args[1]]) if field == "structures" else args[1])]


def test_several_differences_give_one_line_each(run_copy, capsys):
    before = snapshot(run_copy)
    assert restart(run_copy, "--max-atoms", "12", "--seed", "4", "--temperature", "0.5") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ase-fuse: error: restart: max_atoms: stored 8, given 12",
                   "restart: seed: stored 3, given 4",
                   "restart: temperature: stored 0.02, given 0.5"]
    assert snapshot(run_copy) == before


def test_plain_restart_continues_with_the_stored_settings(run_copy):
    settings = stored(run_copy)
    # nothing but the folder and the new total: every setting comes from the db
    assert main(["run", "NaCl", "-o", str(run_copy), "--restart", "--steps",
                 str(STEPS + 2), "-q"]) == 0
    assert json.loads((run_copy / "summary.json").read_text())["steps"] == STEPS + 2
    assert stored(run_copy) == settings
    records = RunRecords(run_copy / "fuse.db")
    assert records.count(step=0) == 3 and records.check_integrity() == []


def test_same_settings_given_again_and_run_options_may_change(run_copy):
    settings = stored(run_copy)
    assert restart(run_copy, "--threads", "2", "--rmax", "7") == 2   # rmax: not a run option
    assert restart(run_copy, *TINY, "--threads", "2", "--batch-size", "0",
                   "--device", "cpu", "--workers", "0") == 0
    assert stored(run_copy) == settings
    assert json.loads((run_copy / "summary.json").read_text())["steps"] == STEPS + 2


def test_restarted_run_equals_an_uninterrupted_one(finished, tmp_path):
    full = tmp_path / "full"
    assert main(["run", "NaCl", *TINY, "--steps", str(STEPS + 2), "-q", "-o", str(full)]) == 0
    part = tmp_path / "part"
    shutil.copytree(finished, part)
    assert restart(part) == 0

    def sequence(folder):
        return [(r.step, r.slot, r.get("move"), r.status, r.get("energy_per_atom"))
                for r in sorted(RunRecords(folder / "fuse.db").rows(),
                                key=lambda r: (r.step, r.slot))]
    assert sequence(part) == sequence(full)


def test_restart_without_a_run_says_so_and_starts_one(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["run", "NaCl", *TINY, "--steps", "2", "-o", str(out), "--restart"]) == 0
    log = capsys.readouterr().out.splitlines()
    assert f"no run in {out / 'fuse.db'} to restart: starting a new one" in log
    assert RunRecords(out / "fuse.db").count(step=0) == 3
    assert stored(out)["seed"] == 3


def test_old_db_without_a_field_is_not_refused_on_it(run_copy, capsys):
    old_keys = ("composition", "max_atoms", "seed", "initial_population", "temperature",
                "melt_threshold", "rmax", "symprec")     # what older versions stored
    with connect(str(run_copy / "fuse.db"), use_lock_file=False) as db:
        md = db.metadata
        md["settings"] = {k: v for k, v in md["settings"].items() if k in old_keys}
        db.metadata = md
    assert restart(run_copy, "--max-atoms", "12") == 2     # a stored field: checked
    assert "max_atoms: stored 8, given 12" in capsys.readouterr().err
    assert restart(run_copy, "--calculator", "proxy", "--vacancy-distance", "1.0") == 0
    settings = stored(run_copy)
    assert settings["vacancy_distance"] == 1.0 and settings["calculator"] == "proxy"


def test_existing_run_without_restart_names_the_flag(run_copy, capsys):
    assert main(["run", "NaCl", *TINY, "--steps", "9", "-q", "-o", str(run_copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--restart" in err[0]


# -- in Python: what is passed is compared ------------------------------------------------
def emt_search(folder, steps=100, **kw):
    options = dict(relaxer=TieredRelaxer([Tier(EMT(), fmax=0.05, steps=steps)]),
                   max_atoms=4, initial_population=3, seed=5, directory=folder,
                   logfile=None)
    options.update(kw)
    return FuseBasinHopping("Cu", **options)


def test_python_restart_compares_what_is_passed(tmp_path):
    folder = tmp_path / "run"
    emt_search(folder).run(steps=2)
    before = snapshot(folder)
    cases = [(dict(temperature=0.5), "restart: temperature: stored 0.02, given 0.5"),
             (dict(initial_population=25), "restart: initial_population: stored 3, given 25"),
             (dict(steps=50), "restart: relaxer: stored EMT(fmax=0.05, steps=100), "
                              "given EMT(fmax=0.05, steps=50)"),
             (dict(relaxer="emt"), "restart: relaxer: stored EMT(fmax=0.05, steps=100), "
                                   "given emt(fmax=0.05, steps=500)"),
             (dict(move_weights={2: 1.0}), "restart: move_weights: stored [1.0,")]
    for kw, line in cases:
        with pytest.raises(InputError) as info:
            emt_search(folder, restart=True, **kw)
        assert str(info.value).startswith(line), (kw, str(info.value))
        assert "\n" not in str(info.value)
        assert snapshot(folder) == before
    again = emt_search(folder, restart=True)
    assert again.nsteps == 2
    again.run(steps=1)
    assert again.nsteps == 3


def test_python_message_names_both_ways_to_restart(tmp_path):
    folder = tmp_path / "run"
    emt_search(folder).run(steps=1)
    with pytest.raises(InputError) as info:
        emt_search(folder)
    assert "--restart" in str(info.value) and "restart=True" in str(info.value)


def test_batching_the_chgnet_tier_describes_its_own_optimiser():
    """One at a time the CHGNet stage is BFGS; torch-sim's batches are FIRE: another
    relaxation, so a restart may not switch batching on or off silently."""
    pytest.importorskip("torch_sim")
    from ase_fuse.calculators.stacks import build_stack
    from ase_fuse.run_settings import describe_relaxer
    one_at_a_time = describe_relaxer(build_stack("proxy+chgnet", "NaCl"))
    batched = describe_relaxer(build_stack("proxy+chgnet", "NaCl", batch_size=4))
    fire = describe_relaxer(build_stack("proxy+chgnet", "NaCl",
                                        chgnet={"optimizer": "FIRE"}))
    assert one_at_a_time == "proxy(fmax=0.1, steps=1000) -> chgnet(BFGS, fmax=0.05, steps=2000)"
    assert batched == fire == "proxy(fmax=0.1, steps=1000) -> chgnet(fmax=0.05, steps=2000)"
    assert describe_relaxer(build_stack("proxy", "NaCl")) != one_at_a_time
