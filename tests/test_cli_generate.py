"""``ase-fuse generate`` (ase_fuse.cli_generate), driven through its own argparse parser."""

import argparse

import ase.db
import numpy as np
import pytest
from ase.io import read

from ase_fuse import cli_generate
from ase_fuse.composition import Composition
from ase_fuse.errors import CompositionError, InputError


def run(argv):
    parser = cli_generate.add_arguments(argparse.ArgumentParser(prog="generate"))
    return cli_generate.main(parser.parse_args(argv))


def test_writes_extxyz(tmp_path, capsys):
    out = tmp_path / "out.extxyz"
    assert run(["Ca3Ti2O7", "--generator", "fuse", "-n", "6", "--max-atoms", "50",
                "--seed", "1", "-o", str(out)]) == 0
    images = read(out, index=":")
    assert len(images) == 6
    comp = Composition("Ca3Ti2O7")
    for atoms in images:
        assert comp.formula_units_of(atoms) is not None
        assert len(atoms) <= 50
        assert atoms.info["origin"] == "fuse"
        grid = [int(g) for g in atoms.info["submodule_grid"]]
        assert len(grid) == 3 and len(atoms) <= 4 * np.prod(grid)
    err = capsys.readouterr().err
    assert "6/6" in err and str(out) in err


def test_same_seed_same_file(tmp_path):
    first, second = tmp_path / "a.extxyz", tmp_path / "b.extxyz"
    for path in (first, second):
        run(["CoAs2", "-n", "3", "--seed", "5", "-q", "-o", str(path)])
    for a, b in zip(read(first, ":"), read(second, ":")):
        assert np.allclose(a.positions, b.positions)


def test_options_reach_the_generator(tmp_path):
    out = tmp_path / "ox.extxyz"
    run(["Ca3Ti2O7", "--oxidation-states", "Ca=2,Ti=+4,O=2-", "--formula-units", "1-2",
         "-n", "5", "--seed", "2", "-q", "-o", str(out)])
    ip = Composition("Ca3Ti2O7", {"Ca": 2, "Ti": 4, "O": -2}).ip
    for atoms in read(out, ":"):
        assert atoms.info["formula_units"] in (1, 2)
        assert atoms.info["submodule_ip"] == pytest.approx(ip)


def test_writes_ase_db(tmp_path):
    out = tmp_path / "gen.db"
    run(["Mn", "-n", "4", "--seed", "3", "-q", "-o", str(out)])
    with ase.db.connect(str(out)) as db:
        rows = list(db.select())
    assert len(rows) == 4
    for row in rows:
        assert row.origin == "fuse" and row.formula_units == row.natoms
        assert len(row.data["submodule_grid"]) == 3


def test_list(capsys):
    assert run(["--list"]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("fuse ") for line in out.splitlines())
    assert "ase_fuse.generators.fuse:FuseGenerator" in out


@pytest.mark.parametrize("argv, error, field", [
    (["Ca3Xx2O7", "-n", "1"], CompositionError, "formula"),
    ([], InputError, "composition"),
    (["Mn", "-n", "0"], InputError, "number"),
    (["Mn", "--generator", "nope"], InputError, "generator"),
    (["Mn", "--oxidation-states", "Mn"], InputError, "oxidation-states"),
    (["NaCl", "--oxidation-states", "Na=1,Cl=-2"], CompositionError, "oxidation_states"),
    (["Mn", "--formula-units", "a-b"], InputError, "formula-units"),
    (["CoAs2", "--formula-units", "20", "--max-atoms", "12"], InputError, "formula-units"),
    (["Mn", "-o", "x.unknownext"], InputError, "output"),
    (["Mn", "-n", "2", "-o", "POSCAR"], InputError, "output"),
    (["Mn", "--max-atoms", "0"], CompositionError, "max_atoms"),
    (["NaCl", "--seed", "-1"], InputError, "seed"),          # fuzz find (a traceback)
    (["Mn", "--generator-options", "nonsense=1"], InputError, "generator_options"),
    (["Mn", "--generator-options", "rerank=single"], InputError, "generator_options"),
    (["Mn", "--generator-options", "max_tries"], InputError, "generator_options"),
    (["Mn", "--generator-options", "max_tries=0"], InputError, "max_tries"),
])
def test_bad_input_is_one_line(argv, error, field, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written on failure
    with pytest.raises(error) as err:
        run(argv)
    text = str(err.value)
    assert text.startswith(field + ":") and "\n" not in text
    assert list(tmp_path.iterdir()) == []


def test_parsers():
    assert cli_generate.parse_formula_units("1,3,5-6") == [1, 3, 5, 6]
    assert cli_generate.parse_formula_units("4") == [4]
    assert cli_generate.parse_oxidation_states("Ca=2, O=-2") == {"Ca": 2, "O": -2}
    with pytest.raises(InputError):
        cli_generate.parse_oxidation_states("Ca=2,Ca=3")
    with pytest.raises(InputError):
        cli_generate.parse_formula_units("3-1")


def test_generator_options_reach_the_generator(tmp_path):
    # FUSE's own option max_tries: with one try per structure a 12-atom oxide fails,
    # and the message counts that one try
    from ase_fuse.errors import GenerationError
    with pytest.raises(GenerationError, match=" 1 tries"):
        for seed in range(5):
            run(["Ca3Ti2O7", "-n", "5", "--seed", str(seed), "-q", "--max-atoms", "24",
                 "-o", str(tmp_path / f"s{seed}.extxyz"), "--generator-options",
                 "max_tries=1"])
    out = tmp_path / "many.extxyz"
    run(["NaCl", "-n", "2", "--seed", "1", "-q", "-o", str(out), "--generator-options",
         "max_tries=400"])
    assert len(read(out, ":")) == 2


def test_gnoa_from_the_command_line_with_its_options(tmp_path, capsys):
    pytest.importorskip("pyxtal")
    plain, ranked = tmp_path / "plain.extxyz", tmp_path / "ranked.extxyz"
    common = ["NaCl", "-g", "gnoa", "-n", "3", "--seed", "4", "-q", "--max-atoms", "4"]
    options = "model=proxy,evaluations=24,progress=false,formula_units=1"
    assert run(common + ["-o", str(plain), "--generator-options", options]) == 0
    images = read(plain, ":")
    assert len(images) == 3 and {a.info["origin"] for a in images} == {"gnoa"}
    predicted = [a.info["predicted_energy"] for a in images]
    assert predicted == sorted(predicted)          # the pool's best by the model
    assert run(common + ["-o", str(ranked), "--generator-options",
                         options + ",rerank=single,distinct=fingerprint"]) == 0
    again = read(ranked, ":")
    assert 1 <= len(again) <= 3
    reranked = [a.info["rerank_energy"] for a in again]
    assert reranked == sorted(reranked)            # re-ranked with the proxy, as the search
    with pytest.raises(InputError, match="pool_size"):
        run(common + ["-o", str(tmp_path / "x.extxyz"), "--generator-options",
                      options + ",pool_size=5"])


def test_gnoa_without_pyxtal_is_one_line(tmp_path, monkeypatch):
    # floor-env fuzz find: GN-OA's Wyckoff tables are pyxtal's; without it the first
    # search raised ModuleNotFoundError (a traceback) instead of naming what to install
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyxtal" else real(name, *a))
    with pytest.raises(InputError) as err:
        run(["NaCl", "-g", "gnoa", "-n", "2", "-q", "-o", str(tmp_path / "g.extxyz"),
             "--generator-options", "model=proxy,evaluations=8,progress=false"])
    assert err.value.field == "generator" and "pyxtal" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_more_than_a_small_gnoa_pool_holds_is_one_line(tmp_path):
    pytest.importorskip("pyxtal")
    out = tmp_path / "few.db"
    with pytest.raises(InputError) as err:
        run(["Cu", "-g", "gnoa", "-n", "500", "-q", "-o", str(out), "--max-atoms", "2",
             "--generator-options", "model=proxy,evaluations=4,progress=false"])
    assert err.value.field == "number" and "evaluations" in str(err.value)
    assert not out.exists()
