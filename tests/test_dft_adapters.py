"""VASP, GULP, GPAW and MatGL adapters: the inputs they write and their error paths.

No DFT code runs here: VASP inputs are written into tmp_path with a fake POTCAR
tree, GULP's .gin is written without running GULP (a real run is skipped when no
gulp executable is on PATH).
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read
from ase.spacegroup import crystal

from ase_fuse.calculators import gpaw as gpaw_mod
from ase_fuse.calculators import gulp as gulp_mod
from ase_fuse.calculators import matgl as matgl_mod
from ase_fuse.calculators import vasp as vasp_mod
from ase_fuse.calculators.tiers import TieredRelaxer
from ase_fuse.errors import InputError

VASP_ENV = ("ASE_VASP_COMMAND", "VASP_COMMAND", "VASP_SCRIPT")


def perovskite():
    # cubic CaTiO3 (Pm-3m), a = 3.895 A
    return crystal(["Ca", "Ti", "O"], basis=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)],
                   spacegroup=221, cellpar=3.895)


def fake_potcars(root, enmax):
    for name, value in enmax.items():
        folder = root / "potpaw_PBE" / name
        folder.mkdir(parents=True)
        (folder / "POTCAR").write_text(
            f"  PAW_PBE {name} 06Sep2000\n   ENMAX  =  {value:.3f}; ENMIN  =  "
            f"{0.75 * value:.3f} eV\n End of Dataset\n")
    return root


def incar(path):
    values = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


@pytest.fixture
def potcars(tmp_path, monkeypatch):
    root = fake_potcars(tmp_path / "pp", {"Ca_sv": 267.0, "Ti_sv": 274.6, "O": 400.0,
                                          "Fe": 267.9, "Co": 267.9, "As": 208.7})
    monkeypatch.setenv("VASP_PP_PATH", str(root))
    return root


# -- VASP -----------------------------------------------------------------------------
def test_vasp_stage1_inputs_for_perovskite(tmp_path, potcars):
    atoms = perovskite()
    calc = vasp_mod.vasp_calculator(stage=1, directory=tmp_path / "run")
    calc.write_input(atoms)
    values = incar(tmp_path / "run" / "INCAR")
    assert float(values["ENCUT"]) == pytest.approx(1.3 * 400.0)  # max ENMAX is O's
    assert float(values["KSPACING"]) == 0.5
    assert values["NSW"] == "220" and values["IBRION"] == "2" and values["ISIF"] == "3"
    assert values["GGA"] == "PE"
    assert float(values["EDIFFG"]) < 0
    assert values.get("ISPIN", "1") == "1" and "MAGMOM" not in values
    assert not (tmp_path / "run" / "KPOINTS").exists()  # KSPACING replaces KPOINTS
    # POTCARs: the recommended setups, concatenated in POSCAR species order
    titles = [line.split()[1] for line in (tmp_path / "run" / "POTCAR").read_text()
              .splitlines() if "PAW_PBE" in line]
    poscar = read(tmp_path / "run" / "POSCAR", format="vasp")
    species = list(dict.fromkeys(poscar.get_chemical_symbols()))
    assert titles == [{"Ca": "Ca_sv", "Ti": "Ti_sv", "O": "O"}[el] for el in species]
    assert sorted(poscar.get_chemical_symbols()) == sorted(atoms.get_chemical_symbols())


def test_vasp_stage2_is_denser(tmp_path, potcars):
    calc = vasp_mod.vasp_calculator(stage=2, directory=tmp_path / "run2")
    calc.write_input(perovskite())
    assert float(incar(tmp_path / "run2" / "INCAR")["KSPACING"]) == 0.3


def test_vasp_magnetic_elements_switch_on_spin(tmp_path, potcars):
    calc = vasp_mod.vasp_calculator(directory=tmp_path / "fe")
    calc.write_input(bulk("Fe", "bcc", a=2.87))
    values = incar(tmp_path / "fe" / "INCAR")
    assert values["ISPIN"] == "2"
    assert float(values["MAGMOM"].split("*")[1]) == vasp_mod.HIGH_SPIN
    assert float(values["ENCUT"]) == pytest.approx(round(1.3 * 267.9, 1))
    # CoAs2-like cell: Co high spin, As small
    coas = crystal(["Co", "As"], basis=[(0, 0, 0), (0.2, 0.4, 0.33)], spacegroup=58,
                   cellpar=[5.0, 5.9, 3.2, 90, 90, 90])
    calc = vasp_mod.vasp_calculator(directory=tmp_path / "coas")
    calc.write_input(coas)
    magmom = incar(tmp_path / "coas" / "INCAR")["MAGMOM"].split()
    assert {float(item.split("*")[1]) for item in magmom} == {vasp_mod.HIGH_SPIN,
                                                              vasp_mod.LOW_SPIN}


def test_vasp_encut_override_and_table(tmp_path, monkeypatch):
    monkeypatch.delenv("VASP_PP_PATH", raising=False)
    assert vasp_mod.max_enmax(["Si", "O"]) == vasp_mod.ENMAX_TABLE["O"]
    with pytest.raises(InputError, match="encut"):
        vasp_mod.max_enmax(["Pu"])
    root = fake_potcars(tmp_path / "pp", {"Si": 245.3})
    calc = vasp_mod.vasp_calculator(directory=tmp_path / "si", pp_path=root, encut=300)
    calc.write_input(bulk("Si", "diamond", a=5.431))
    assert float(incar(tmp_path / "si" / "INCAR")["ENCUT"]) == 300.0


def test_read_enmax_takes_largest(tmp_path):
    path = tmp_path / "POTCAR"
    path.write_text("ENMAX  =  250.000; ENMIN = 1\n...\nENMAX  =  400.500; ENMIN = 2\n")
    assert vasp_mod.read_enmax(path) == 400.5


@pytest.mark.parametrize("command", [None, "/nonexistent/bin/vasp_std"])
def test_vasp_missing_executable_gives_failed_result(tmp_path, potcars, monkeypatch,
                                                     command):
    for name in VASP_ENV:
        monkeypatch.delenv(name, raising=False)
    atoms = perovskite()
    relaxer = TieredRelaxer(vasp_mod.vasp_tiers(directory=tmp_path / "v", command=command))
    result = relaxer.relax(atoms)
    assert result.failed is not None and result.failed.startswith("vasp-k0.5")
    assert "calculator error" in result.failed
    assert len(result.tiers) == 1  # stage 2 never ran
    assert atoms.calc is None


def test_vasp_bad_stage():
    with pytest.raises(InputError, match="stage"):
        vasp_mod.stage_parameters(3)


# -- GULP -----------------------------------------------------------------------------
BUSH = """# toy shell-model library
species
Ca core  2.000
Ti core  4.000
O  core  0.513
O  shel -2.513
buckingham
Ca core O shel 1090.4 0.3437 0.0 0.0 10.0
Ti core O shel 2549.4 0.2989 0.0 0.0 10.0
O  shel O shel 22764.3 0.1490 27.88 0.0 12.0
"""
OTHER = """species
Co core 2.0
As core -1.0
Ca core 2.0
O  core -2.0
morse
Co core As core 1.0 1.5 2.3 0.0 8.0
"""


@pytest.fixture
def libs(tmp_path, monkeypatch):
    folder = tmp_path / "libs"
    folder.mkdir()
    (folder / "bush.lib").write_text(BUSH)
    (folder / "aaa.lib").write_text(OTHER)
    monkeypatch.setenv("GULP_LIB", str(folder))
    return folder


def test_gulp_library_choice(libs):
    assert gulp_mod.library_species(libs / "bush.lib") == ({"Ca", "Ti", "O"}, {"O"})
    # both cover Ca-O: the preferred bush.lib wins over the alphabetically first aaa.lib
    assert gulp_mod.choose_library({"Ca", "O"}).name == "bush.lib"
    assert gulp_mod.choose_library({"Ca", "Ti", "O"}).name == "bush.lib"
    assert gulp_mod.choose_library({"Co", "As"}).name == "aaa.lib"
    with pytest.raises(InputError, match="library") as info:
        gulp_mod.choose_library({"Li", "Br"})
    assert "aaa.lib" in str(info.value) and "bush.lib" in str(info.value)
    assert gulp_mod.choose_library({"Co"}, library="bush.lib").name == "bush.lib"
    with pytest.raises(InputError, match="not found"):
        gulp_mod.choose_library({"Co"}, library="nope.lib")


def test_gulp_stage_keywords_and_shells(libs):
    keywords, options, shel = gulp_mod.gulp_settings(["Ca", "Ti", "O"], stage=1)
    assert keywords.split() == ["opti", "conj", "conp"]
    assert options[0] == f"library {(libs / 'bush.lib').resolve()}"
    assert shel == ["O"]
    keywords2, options2, _ = gulp_mod.gulp_settings(["Ca", "Ti", "O"], stage=2)
    assert "opti" in keywords2 and "conp" in keywords2 and keywords2 != keywords
    assert any("gnorm" in option for option in options2)
    with pytest.raises(InputError, match="stage"):
        gulp_mod.gulp_settings(["Ca"], stage=5)


def test_gulp_input_file_written(tmp_path, libs):
    calc = gulp_mod.gulp_calculator(["Ca", "Ti", "O"], directory=tmp_path / "g",
                                    command="gulp < PREFIX.gin > PREFIX.got")
    atoms = perovskite()
    calc.atoms = atoms.copy()  # ASE's GULP.write_input reads self.atoms (set by calculate)
    calc.write_input(atoms)
    gin = (tmp_path / "g" / "gulp.gin").read_text()
    assert gin.splitlines()[0] == "opti conj conp"
    assert f"library {(libs / 'bush.lib').resolve()}" in gin
    assert gin.count(" O  core") == 3 and gin.count(" O  shel") == 3
    assert "maxcyc" in gin


def test_gulp_missing_executable(tmp_path, libs, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("ASE_GULP_COMMAND", raising=False)
    with pytest.raises(InputError, match="command"):
        gulp_mod.gulp_calculator(["Ca", "Ti", "O"])
    result = TieredRelaxer(gulp_mod.gulp_tiers(["Ca", "Ti", "O"],
                                               directory=tmp_path / "g")).relax(perovskite())
    assert "no gulp executable" in result.failed and len(result.tiers) == 1


@pytest.mark.skipif(shutil.which("gulp") is None, reason="gulp executable not on PATH")
def test_gulp_runs_for_real(tmp_path, libs):
    atoms = perovskite()
    atoms.set_cell(atoms.cell * 1.03, scale_atoms=True)
    result = TieredRelaxer(gulp_mod.gulp_tiers(["Ca", "Ti", "O"],
                                               directory=tmp_path / "g")).relax(atoms)
    assert result.failed is None and np.isfinite(result.energy)


# -- GPAW -----------------------------------------------------------------------------
def test_gpaw_presets():
    cheap = gpaw_mod.gpaw_parameters("cheap")
    standard = gpaw_mod.gpaw_parameters("standard")
    assert cheap["mode"] == ("pw", 200.0) and standard["mode"] == ("pw", 500.0)
    assert cheap["xc"] == standard["xc"] == "PBE"
    assert cheap["kpts"]["density"] < standard["kpts"]["density"]
    assert cheap["kpts"]["gamma"] is True
    assert gpaw_mod.gpaw_parameters("cheap", ecut=150)["mode"] == ("pw", 150.0)
    with pytest.raises(InputError, match="preset"):
        gpaw_mod.gpaw_parameters("ultra")
    with pytest.raises(InputError, match="h_spacing"):
        gpaw_mod.gpaw_parameters("cheap", h_spacing=0.2)


def test_gpaw_missing_gives_clear_error_and_failed_tier(monkeypatch):
    monkeypatch.setitem(sys.modules, "gpaw", None)  # import gpaw -> ImportError
    with pytest.raises(InputError, match="gpaw is not installed"):
        gpaw_mod.gpaw_calculator("cheap")
    result = TieredRelaxer(gpaw_mod.gpaw_tier("cheap")).relax(bulk("Si", "diamond",
                                                                    a=5.431))
    assert "gpaw is not installed" in result.failed


def test_gpaw_cheap_single_point_on_si():
    pytest.importorskip("gpaw", reason="gpaw not installed")
    atoms = bulk("Si", "diamond", a=5.431)
    atoms.calc = gpaw_mod.gpaw_calculator("cheap")
    energy = atoms.get_potential_energy()
    # PBE binding energy of Si is ~5 eV/atom (GPAW energies are relative to atoms)
    assert -7.0 < energy / len(atoms) < -4.0
    assert np.abs(atoms.get_forces()).max() < 0.05  # symmetric: no forces


# -- MatGL ----------------------------------------------------------------------------
def test_matgl_model_path_errors(tmp_path):
    with pytest.raises(InputError, match="model_path") as info:
        matgl_mod.matgl_calculator()
    assert "download" in str(info.value)
    with pytest.raises(InputError, match="does not exist"):
        matgl_mod.matgl_calculator(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        matgl_mod.matgl_calculator(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="model.json"):
        matgl_mod.matgl_calculator(tmp_path / "empty")
    with pytest.raises(InputError, match="model_path"):
        matgl_mod.matgl_tier(None)


def test_matgl_not_installed(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matgl", None)  # import matgl -> ImportError
    folder = tmp_path / "M3GNet-MP-2021.2.8-PES"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    with pytest.raises(InputError, match="matgl is not installed"):
        matgl_mod.matgl_calculator(folder)
