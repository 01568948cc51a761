"""A normal (non-editable) install works and imports from the installed copy.

The package maps ``calculators/`` and ``generators/`` into ``ase_fuse`` through
``package_dir``; an editable install hides mistakes there, so this installs a copy of
the source tree with pip into a temporary target and imports it from outside the repo.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                ".pytest_cache", ".hypothesis", "runs", "*.db", ".ci",
                                ".benchmarks", "examples")

PROBE = r"""
import json, sys
import ase_fuse, ase_fuse.calculators, ase_fuse.generators
from ase_fuse.generators import FuseGenerator, available, get
from ase_fuse.composition import Composition
atoms = FuseGenerator("CoAs2", max_atoms=12, seed=1).generate()
print(json.dumps({
    "ase_fuse": ase_fuse.__file__,
    "generators": ase_fuse.generators.__file__,
    "calculators": ase_fuse.calculators.__file__,
    "fuse_module": sys.modules[FuseGenerator.__module__].__file__,
    "registry_fuse": get("fuse") is FuseGenerator,
    "available": available(),
    "formula_units": Composition("CoAs2").formula_units_of(atoms),
}))
"""


def test_non_editable_install(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=IGNORE)
    target = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-2000:]
    assert (target / "ase_fuse" / "generators" / "fuse.py").is_file()
    assert (target / "ase_fuse" / "calculators" / "__init__.py").is_file()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(target)
    env["PYTHONNOUSERSITE"] = "1"
    probe = subprocess.run([sys.executable, "-c", PROBE], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    for key in ("ase_fuse", "generators", "calculators", "fuse_module"):
        assert Path(found[key]).resolve().is_relative_to(target.resolve()), (key, found)
    assert found["registry_fuse"] is True
    assert "fuse" in found["available"]
    assert found["formula_units"] is not None
