"""GPAW adapter: PBE plane-wave presets (GPAW is imported only when a calculator is built).

Presets:

* ``"standard"``: PBE, plane waves at 500 eV, k-point density 4 per 1/A (Gamma
  centred), Fermi-Dirac smearing 0.05 eV.
* ``"fast"``: PBE, 350 eV, density 2.5: a screening stage.
* ``"cheap"``: PBE, 200 eV, density 1.5, loose SCF: only for tests and examples.

GPAW relaxes through ASE's optimisers (stress is available in plane-wave mode), so a
GPAW tier is an ordinary :class:`~ase_fuse.calculators.tiers.Tier`.
"""

from ase_fuse.errors import InputError
from ase_fuse.lazy import require

from .tiers import Tier

PRESETS = {
    "standard": dict(ecut=500.0, kpt_density=4.0, width=0.05,
                     convergence={"energy": 1e-5}),
    "fast": dict(ecut=350.0, kpt_density=2.5, width=0.1,
                 convergence={"energy": 5e-5}),
    "cheap": dict(ecut=200.0, kpt_density=1.5, width=0.1,
                  convergence={"energy": 1e-3, "density": 1e-3, "eigenstates": 1e-6}),
}


def gpaw_parameters(preset="standard", **overrides):
    """Keyword arguments for ``gpaw.GPAW`` (with ``mode`` as ``("pw", ecut)``).

    ``overrides`` may change ``ecut``, ``kpt_density``, ``width``, ``convergence``,
    ``xc``, ``txt``, ``spinpol``, ``maxiter``.
    """
    if preset not in PRESETS:
        raise InputError(f"unknown GPAW preset {preset!r}; known: {', '.join(PRESETS)}",
                         field="preset")
    settings = dict(PRESETS[preset])
    settings.update(xc="PBE", txt=None, maxiter=300)
    unknown = set(overrides) - set(settings) - {"spinpol"}
    if unknown:
        raise InputError(f"unknown GPAW option(s) {', '.join(sorted(unknown))}",
                         field="gpaw")
    settings.update(overrides)
    if not settings["ecut"] > 0 or not settings["kpt_density"] > 0:
        raise InputError("ecut and kpt_density must be positive", field="gpaw")
    params = dict(mode=("pw", float(settings["ecut"])), xc=settings["xc"],
                  kpts={"density": float(settings["kpt_density"]), "gamma": True},
                  occupations={"name": "fermi-dirac", "width": float(settings["width"])},
                  convergence=dict(settings["convergence"]), txt=settings["txt"],
                  maxiter=int(settings["maxiter"]))
    if "spinpol" in settings:
        params["spinpol"] = bool(settings["spinpol"])
    return params


def _import_gpaw():
    gpaw = require("gpaw", "apt-get install libxc-dev libopenblas-dev; CC=g++ pip install "
                           "gpaw gpaw-data")
    return gpaw.GPAW, gpaw.PW


def gpaw_calculator(preset="standard", **overrides):
    """A ``gpaw.GPAW`` calculator for ``preset``; InputError when gpaw is missing."""
    params = gpaw_parameters(preset, **overrides)
    GPAW, PW = _import_gpaw()
    _, ecut = params.pop("mode")
    return GPAW(mode=PW(ecut), **params)


def gpaw_tier(preset="standard", fmax=0.05, steps=200, optimizer="BFGS", name=None,
              **overrides):
    """A relaxation tier with GPAW (built lazily, on first use)."""
    gpaw_parameters(preset, **overrides)  # check options now
    return Tier(lambda: gpaw_calculator(preset, **overrides), fmax=fmax, steps=steps,
                optimizer=optimizer, name=name or f"gpaw-{preset}")
