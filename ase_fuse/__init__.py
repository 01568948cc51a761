"""ase-fuse: ASE-native crystal structure prediction (FUSE2, rebuilt).

Importing the package is cheap: heavy modules (the search, ML models) load on use.
"""

__version__ = "0.1.0"

from .composition import Composition  # noqa: E402  (light)
from .errors import CompositionError, GenerationError, InputError  # noqa: E402
from .submodules import SubmoduleGrid, decompose  # noqa: E402

__all__ = ["Composition", "CompositionError", "GenerationError", "InputError",
           "SubmoduleGrid", "decompose", "FuseBasinHopping"]


def __getattr__(name):
    if name == "FuseBasinHopping":
        from .basinhopping import FuseBasinHopping
        return FuseBasinHopping
    raise AttributeError(f"module 'ase_fuse' has no attribute {name!r}")
