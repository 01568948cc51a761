"""GN-OA: graph-network energy model + Bayesian optimisation structure generator.

``GnoaGenerator`` and ``rerank`` are imported on first use, so importing this
package (e.g. by the generator registry) loads no ML library.
"""

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


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module
        module = import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
