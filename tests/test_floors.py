"""setup.cfg's `>=` floors are what CI installs in its floor venv (.ci/floors.py, .ci/floor-tests)."""

import configparser
import re
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _floors_module():
    spec = importlib.util.spec_from_file_location("ci_floors", REPO / ".ci" / "floors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


floors = _floors_module()


def _name(pin):
    return re.split(r"[\[=;]", pin)[0].lower()


def test_every_tested_dependency_has_one_floor_and_is_pinned_to_it():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO / "setup.cfg")
    pins = floors.floors()
    names = {_name(p) for p in pins}
    for line in floors.requirement_lines(cfg["options"]["install_requires"]):
        assert floors.floor_pin(line)[0] in names, line
    for extra in floors.FLOOR_EXTRAS:
        for line in floors.requirement_lines(cfg["options.extras_require"][extra]):
            assert floors.floor_pin(line)[1] in pins, line
    base = floors.floors(extras=("test",), only=floors.RUNNER)
    assert {_name(p) for p in base} >= {"ase", "numpy", "pytest", "hypothesis"}
    assert not any(p.startswith("chgnet") for p in base)


def test_ase_floor_has_base_dynamics():
    # FuseBasinHopping subclasses ase.optimize.optimize.BaseDynamics: ASE 3.27 and later
    ase_pin = next(p for p in floors.floors() if p.startswith("ase=="))
    assert tuple(int(x) for x in ase_pin[5:].split(".")[:2]) >= (3, 27)


@pytest.mark.parametrize("line, pin", [
    ("dask[distributed]>=2024.1.0", "dask[distributed]==2024.1.0"),
    ('torch-sim-atomistic>=0.3.0,<0.4; python_version >= "3.11"',
     'torch-sim-atomistic==0.3.0; python_version >= "3.11"'),
    ('tomli>=2.0; python_version < "3.11"', 'tomli==2.0; python_version < "3.11"'),
])
def test_pin_keeps_extras_and_markers(line, pin):
    assert floors.floor_pin(line)[1] == pin


@pytest.mark.parametrize("line", ["gpaw-data", "numpy<3", "ase>=3.27,>=3.28"])
def test_a_dependency_without_exactly_one_floor_is_refused(line):
    with pytest.raises(ValueError, match="floor"):
        floors.floor_pin(line)
