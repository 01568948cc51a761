"""Calculators and relaxation tiers for ase-fuse (installed as ``ase_fuse.calculators``).

Heavy back-ends (CHGNet/torch, GPAW, MatGL) are imported only when used.
"""

from ase_fuse.lazy import lazy_getattr

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


__getattr__ = lazy_getattr(__name__, _LAZY)
