"""``--stack-options STAGE.KEY=VALUE``: a stage's optimiser, tolerance or step cap set
from the command line or TOML, stored with the run, checked on restart."""

import pytest
from ase.db import connect

from ase_fuse import InputError
from ase_fuse.calculators.stacks import build_stack, check_stages, stage_options
from ase_fuse.cli import main

TINY = ["--calculator", "proxy", "--max-atoms", "6", "--initial-population", "2",
        "--seed", "5"]


def stored(folder):
    with connect(str(folder / "fuse.db")) as db:
        return db.metadata["settings"]


def test_flat_and_nested_forms_agree():
    flat = stage_options({"chgnet.fmax": 0.1, "chgnet.optimizer": "LBFGS",
                          "proxy.steps": 50})
    nested = stage_options({"chgnet": {"fmax": 0.1, "optimizer": "LBFGS"},
                            "proxy": {"steps": 50}})
    assert flat == nested == {"chgnet": {"fmax": 0.1, "optimizer": "LBFGS"},
                              "proxy": {"steps": 50}}
    assert stage_options(None) == {}


@pytest.mark.parametrize("options, words", [
    ({"fmax": 0.1}, "expected STAGE.KEY"),
    ({"dft.fmax": 0.1}, "unknown stage 'dft'"),
    ({"chgnet.colour": 1}, "chgnet.colour: unknown option"),
    ("chgnet.fmax", "expected STAGE.KEY=VALUE"),
])
def test_bad_options_are_named(options, words):
    with pytest.raises(InputError, match=words):
        stage_options(options)


def test_a_stage_the_stack_lacks_is_refused():
    with pytest.raises(InputError, match="has no chgnet stage"):
        check_stages("proxy", {"chgnet": {"fmax": 0.1}})
    check_stages("proxy+chgnet", {"chgnet": {"fmax": 0.1}, "proxy": {"steps": 5}})


def test_options_reach_the_tiers():
    relaxer = build_stack("proxy", "NaCl", **stage_options(
        {"proxy.optimizer": "LBFGS", "proxy.fmax": 0.2, "proxy.steps": 77}))
    (tier,) = relaxer.tiers
    assert (tier.optimizer, tier.fmax, tier.steps) == ("LBFGS", 0.2, 77)


def test_run_stores_them_and_a_restart_keeps_or_refuses_them(tmp_path, capsys):
    out = tmp_path / "run"
    flags = ["--stack-options", "proxy.optimizer=LBFGS,proxy.fmax=0.2"]
    assert main(["run", "NaCl", *TINY, *flags, "--steps", "2", "-q", "-o", str(out)]) == 0
    settings = stored(out)
    assert settings["stack_options"] == {"proxy": {"optimizer": "LBFGS", "fmax": 0.2}}
    assert settings["relaxer"].startswith("proxy(LBFGS, fmax=0.2")
    # a plain restart continues with the stored options
    assert main(["run", "NaCl", *TINY, "--steps", "4", "--restart", "-q",
                 "-o", str(out)]) == 0
    with connect(str(out / "fuse.db")) as db:
        assert max(r.step for r in db.select()) == 4
    # other options: refused, one line, nothing written
    capsys.readouterr()
    code = main(["run", "NaCl", *TINY, "--stack-options", "proxy.fmax=0.3", "--steps", "6",
                 "--restart", "-q", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ['ase-fuse: error: restart: stack_options: stored '
                   '{"proxy":{"optimizer":"LBFGS","fmax":0.2}}, given {"proxy":{"fmax":0.3}}']


def test_bad_value_on_the_command_line_is_one_line(tmp_path, capsys):
    code = main(["run", "NaCl", *TINY, "--stack-options", "proxy.optimizer=Newton",
                 "-q", "-o", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown optimizer 'Newton'" in err[0]
    assert not (tmp_path / "r" / "fuse.db").exists()
