"""MatGL adapter: a PES calculator (M3GNet, CHGNet, TensorNet...) from a LOCAL model folder.

``matgl.load_model("M3GNet-MP-2021.2.8-PES")`` downloads from a model hub at run
time, which offline machines cannot reach; this adapter therefore only accepts a
local folder (one that ``matgl.load_model`` can read: it holds ``model.pt``,
``state.pt`` and ``model.json``).  matgl is imported only when a calculator is built.
"""

from pathlib import Path

from ase_fuse.errors import InputError
from ase_fuse.lazy import require

from .tiers import Tier

MODEL_FILES = ("model.json",)

HOW_TO = ("download a MatGL PES model on a machine with internet access (e.g. "
          "matgl.load_model('M3GNet-MP-2021.2.8-PES') fills ~/.cache/matgl/) and pass "
          "that model folder")


def check_model_path(model_path):
    """The model folder as a Path; InputError (field ``model_path``) when unusable."""
    if model_path is None or str(model_path).strip() == "":
        raise InputError(f"no MatGL model folder given; {HOW_TO}", field="model_path")
    path = Path(model_path).expanduser()
    if not path.exists():
        raise InputError(f"{str(path)!r} does not exist; {HOW_TO}", field="model_path")
    if not path.is_dir():
        raise InputError(f"{str(path)!r} is not a folder; {HOW_TO}", field="model_path")
    missing = [name for name in MODEL_FILES if not (path / name).exists()]
    if missing:
        raise InputError(f"{str(path)!r} has no {', '.join(missing)}: not a MatGL model "
                         f"folder; {HOW_TO}", field="model_path")
    return path


def _import_matgl():
    hint = "pip install 'ase-fuse[matgl]' (or pip install matgl) to use MatGL models"
    matgl = require("matgl", hint)
    return matgl, require("matgl.ext.ase", hint).PESCalculator


def matgl_calculator(model_path=None, **kw):
    """MatGL's ASE ``PESCalculator`` for the potential stored in ``model_path``.

    ``kw`` go to ``PESCalculator`` (e.g. ``stress_weight``).  Raises InputError
    when the folder is missing or matgl is not installed.
    """
    path = check_model_path(model_path)
    matgl, PESCalculator = _import_matgl()
    potential = matgl.load_model(path)
    return PESCalculator(potential, **kw)


def matgl_tier(model_path, fmax=0.05, steps=2000, optimizer="FIRE", name="matgl",
               **tier_kw):
    """A relaxation tier with a MatGL potential; the path is checked now, loading is lazy."""
    check_model_path(model_path)
    return Tier(lambda: matgl_calculator(model_path), fmax=fmax, steps=steps,
                optimizer=optimizer, name=name, **tier_kw)
