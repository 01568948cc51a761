"""GN-OA: graph-network energy model + Bayesian optimisation structure generator.

``GnoaGenerator`` and ``rerank`` are imported on first use, so importing this
package (e.g. by the generator registry) loads no ML library.
"""

from ase_fuse.lazy import lazy_getattr

_LAZY = {
    "GnoaGenerator": "generator",
    "rerank": "generator",
    "SearchSpace": "space",
    "make_optimizer": "optimizers",
    "make_model": "models",
    "CHGNetModel": "models",
    "ProxyModel": "models",
    "CalculatorModel": "models",
    "MEGNetModel": "models",
    "MatGLModel": "models",
    "install_megnet_models": "models_install",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY)
