"""Energy models for GN-OA: one interface, ``predict(list[Atoms]) -> energies per atom``.

* :class:`CHGNetModel` (default): CHGNet's batched ``predict_structure``.
* :class:`ProxyModel`: the project's proxy pair potential for the composition.
* :class:`CalculatorModel`: any ASE calculator, single points one by one.
* :class:`MEGNetModel`: megnet ``Eform_MP_2019`` (formation energy) from a folder.
* :class:`MatGLModel`: a MatGL model from a local folder.

Heavy libraries (torch, chgnet, tensorflow, matgl) are imported only when a model
is built.  A missing library or model folder raises
:class:`~ase_fuse.errors.InputError` with one line saying how to install it.
"""

import os
import sys
from pathlib import Path

import numpy as np

from ase_fuse.errors import InputError
from ase_fuse.lazy import require


class EnergyModel:
    """Base class: ``predict(structures)`` gives an array of energies (eV/atom)."""

    name = "model"

    def predict(self, structures):  # pragma: no cover - interface
        raise NotImplementedError


def _to_pymatgen(atoms):
    from pymatgen.io.ase import AseAtomsAdaptor
    return AseAtomsAdaptor.get_structure(atoms)


class CHGNetModel(EnergyModel):
    """CHGNet energies (eV/atom), predicted in batches of ``batch_size``."""

    name = "chgnet"

    def __init__(self, model=None, batch_size=32, device="cpu"):
        if model is None:
            CHGNet = require("chgnet.model", "the chgnet model needs it: pip install "
                                             "chgnet", field="model").CHGNet
            model = CHGNet.load(use_device=device, verbose=False)
        self.model = model
        self.batch_size = int(batch_size)

    def predict(self, structures):
        structures = list(structures)
        if not structures:
            return np.empty(0)
        out = self.model.predict_structure([_to_pymatgen(a) for a in structures], task="e",
                                           batch_size=self.batch_size)
        if isinstance(out, dict):
            out = [out]
        return np.array([float(np.asarray(p["e"]).reshape(-1)[0]) for p in out])


class CalculatorModel(EnergyModel):
    """Single-point energies per atom from any ASE calculator."""

    name = "calculator"

    def __init__(self, calculator):
        if not hasattr(calculator, "get_potential_energy"):
            raise InputError(f"{calculator!r} is not an ASE calculator", field="model")
        self.calculator = calculator

    def predict(self, structures):
        energies = []
        for atoms in structures:
            atoms = atoms.copy()
            atoms.calc = self.calculator
            energies.append(atoms.get_potential_energy() / len(atoms))
        return np.array(energies, dtype=float)


class ProxyModel(CalculatorModel):
    """The project's proxy pair potential (``ProxyPotential.for_composition``)."""

    name = "proxy"

    def __init__(self, composition, **options):
        try:
            from ase_fuse.calculators import ProxyPotential
        except (ImportError, AttributeError) as err:
            raise InputError(f"the proxy model is not available ({err})", field="model") \
                from None
        super().__init__(ProxyPotential.for_composition(composition, **options))


def _megnet_aliases():
    """Aliases megnet 1.3.2 needs on current pymatgen (and legacy Keras for TF >= 2.16)."""
    legacy = os.environ.get("TF_USE_LEGACY_KERAS") in ("1", "true", "True")
    if "tensorflow" in sys.modules and not legacy:
        # TensorFlow picked Keras 3 when it was imported; megnet's saved models need
        # tf-keras, and Keras 3 fails on them with "Argument(s) not recognized: {'lr'..."
        raise InputError("tensorflow was imported before MEGNet without "
                         "TF_USE_LEGACY_KERAS=1; set it before importing tensorflow",
                         field="model")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import pymatgen.analysis.local_env as local_env
    for old, new in (("BrunnerNN_real", "BrunnerNNReal"),
                     ("BrunnerNN_reciprocal", "BrunnerNNReciprocal"),
                     ("BrunnerNN_relative", "BrunnerNNRelative")):
        if not hasattr(local_env, old) and hasattr(local_env, new):
            setattr(local_env, old, getattr(local_env, new))


MEGNET_INSTALL = ("pip install tensorflow-cpu tf-keras megnet, then "
                  "ase-fuse models install megnet")


def default_megnet_folder():
    """Where ``ase-fuse models install megnet`` puts the models (``$ASE_FUSE_MODELS``)."""
    root = os.environ.get("ASE_FUSE_MODELS") or Path.home() / ".ase-fuse" / "models"
    return Path(root) / "mvl_models"


# model names as megnet.utils.models knows them -> files inside mvl_models/
MEGNET_FILES = {
    "Eform_MP_2019": "mp-2019.4.1/formation_energy.hdf5",
    "Eform_MP_2018": "mp-2018.6.1/formation_energy.hdf5",
}


def megnet_model_path(folder=None, model_name="Eform_MP_2019"):
    """The ``.hdf5`` file of ``model_name`` inside the ``mvl_models`` ``folder``."""
    folder = Path(folder) if folder is not None else default_megnet_folder()
    return folder / MEGNET_FILES.get(model_name, model_name)


class MEGNetModel(EnergyModel):
    """MEGNet formation energy (eV/atom), model ``Eform_MP_2019`` from ``folder``.

    ``folder`` is an ``mvl_models`` directory (default :func:`default_megnet_folder`);
    the model file is ``mp-2019.4.1/formation_energy.hdf5`` inside it.
    megnet 1.3.2 imports ``BrunnerNN_real`` / ``_reciprocal`` / ``_relative`` that
    pymatgen renamed ``BrunnerNNReal`` ...; the aliases are set before the import,
    with ``TF_USE_LEGACY_KERAS=1`` so TensorFlow >= 2.16 uses tf-keras.  ``threads``
    sets TensorFlow's intra- and inter-op threads (before its first operation; later
    it cannot change them, and they stay as they are).  Loading reads only ``folder``:
    nothing is downloaded (``tests/test_gnoa_megnet.py`` checks with sockets blocked).
    """

    name = "megnet"

    def __init__(self, folder=None, model_name="Eform_MP_2019", threads=None):
        path = megnet_model_path(folder, model_name)
        if not path.exists():
            raise InputError(f"MEGNet model {model_name} not found at {path}; "
                             f"{MEGNET_INSTALL}", field="model")
        try:
            _megnet_aliases()
            from megnet.models import MEGNetModel as _Loader
        except ImportError as err:
            raise InputError(f"megnet is not installed ({err}); {MEGNET_INSTALL}",
                             field="model") from None
        if threads is not None:
            _tf_threads(int(threads))
        self.path = path
        self.model = _Loader.from_file(str(path))

    def predict(self, structures):
        structures = [_to_pymatgen(a) for a in structures]
        if not structures:
            return np.empty(0)
        return np.asarray(self.model.predict_structures(structures), dtype=float).reshape(-1)


def _tf_threads(threads):
    """One process-wide TensorFlow thread setting; a no-op once TensorFlow has started."""
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # the runtime is initialised: its threads are fixed
        pass


class MatGLModel(EnergyModel):
    """A MatGL energy model loaded from the local folder ``path`` (nothing is downloaded)."""

    name = "matgl"

    def __init__(self, path):
        path = Path(path)
        if not path.is_dir():
            raise InputError(f"MatGL model folder {path} not found", field="model")
        matgl = require("matgl", "pip install matgl", field="model")
        self.model = matgl.load_model(str(path))

    def predict(self, structures):
        energies = []
        for atoms in structures:
            energy = self.model.predict_structure(_to_pymatgen(atoms))
            energies.append(float(np.asarray(energy).reshape(-1)[0]))
        return np.array(energies, dtype=float)


class FunctionModel(EnergyModel):
    """Wraps ``function(atoms) -> energy per atom``: handy for tests and custom scores."""

    name = "function"

    def __init__(self, function):
        self.function = function

    def predict(self, structures):
        return np.array([float(self.function(a)) for a in structures], dtype=float)


def make_model(model, composition):
    """An energy model from a name (``chgnet``, ``proxy``, ``megnet``), a model object
    (anything with ``predict``) or an ASE calculator."""
    if hasattr(model, "predict"):
        return model
    if hasattr(model, "get_potential_energy"):
        return CalculatorModel(model)
    if model == "chgnet":
        return CHGNetModel()
    if model == "proxy":
        return ProxyModel(composition)
    if model == "megnet":
        return MEGNetModel()
    raise InputError(f"unknown model {model!r}; known: chgnet, proxy, megnet, "
                     "or an object with predict() or an ASE calculator", field="model")
