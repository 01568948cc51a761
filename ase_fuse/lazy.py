"""Lazy attributes for packages whose members import heavy libraries (torch, TF)."""

from importlib import import_module


def lazy_getattr(package, table):
    """A module ``__getattr__`` that imports ``table[name]`` (a submodule) on first use."""

    def __getattr__(name):
        if name in table:
            return getattr(import_module(f"{package}.{table[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
