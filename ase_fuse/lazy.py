"""Lazy attributes for packages whose members import heavy libraries (torch, TF)."""

from importlib import import_module


def lazy_getattr(package, table):
    """A module ``__getattr__`` that imports ``table[name]`` (a submodule) on first use."""

    def __getattr__(name):
        if name in table:
            return getattr(import_module(f"{package}.{table[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def require(module, hint, field="calculator"):
    """Import the optional package ``module`` (``"gpaw"``, ``"matgl.ext.ase"``) or raise
    one :class:`~ase_fuse.errors.InputError` line: ``"<module> is not installed
    (<why>); <hint>"``.  The one place the optional-import blocks of the calculator
    and model plug-ins go through."""
    from .errors import InputError
    try:
        return import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        raise InputError(f"{top} is not installed ({err}); {hint}", field=field) from None
