"""Structure generators for ase-fuse, found through entry points.

``from ase_fuse.generators import FuseGenerator`` works directly; any generator,
including third-party plugins, is found with :func:`get` by its entry-point name.
Heavy generators (the ML one) are imported only when asked for.
"""

from .registry import available, describe, get, load_all

__all__ = ["available", "describe", "get", "load_all", "FuseGenerator"]


def __getattr__(name):
    if name == "FuseGenerator":
        from .fuse import FuseGenerator
        return FuseGenerator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
