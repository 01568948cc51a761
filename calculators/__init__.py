"""Calculators and relaxation tiers for ase-fuse (installed as ``ase_fuse.calculators``).

Heavy back-ends (CHGNet/torch, GPAW, MatGL) are imported only when used.
"""

_LAZY = {
    "ProxyPotential": "proxy",
    "read_gulp_library": "gulp_library",
    "fit_proxy": "proxy_fit",
    "Tier": "tiers",
    "TieredRelaxer": "tiers",
    "RelaxResult": "tiers",
    "build_stack": "stacks",
    "available_stacks": "stacks",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module
        module = import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
