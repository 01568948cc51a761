"""SevenNet adapter: the checkpoints shipped in the ``sevenn`` wheel as ASE tiers, and a
batched backend built on torch-sim's SevenNet model.

=========================  ===========================================================
``SevenNet-0``             SevenNet-0 of 11 Jul 2024 (MPtrj, PBE/PBE+U; the default)
``SevenNet-0-22May2024``   the first SevenNet-0 release (MPtrj)
``SevenNet-l3i5``          larger (l_max 3, 5 interaction layers; MPtrj), ~3x slower
``SevenNet-MF-0``          multi-fidelity; ``modal`` ``"PBE"`` (default) or ``"R2SCAN"``
=========================  ===========================================================

The ``[sevennet]`` extra pins ``sevenn==0.12.1``: its wheel carries these checkpoints
(offline), and torch-sim 0.3.0's wrapper (``torch_sim.models.sevennet``), which the
batched path uses, imports ``sevenn.calculator.torch_script_type``, gone in 0.13.0.

Nothing here imports torch or sevenn until a model is needed.  A network is loaded
once per process, checkpoint and device (the ASE calculators share it; the batched
backend keeps its own, since torch-sim's wrapper switches it to batch mode).  A
structure with an isolated atom or an element the checkpoint was not trained on is
never sent to the network: the calculator raises
:class:`~ase_fuse.calculators.guards.GuardFailure` (a failed relaxation, not a crash)
and the batched backend fails that structure alone.  Every tier is also guarded by
its relaxer, as the CHGNet tier is.  torch's thread count is left to the caller.
"""

import contextlib
import io
from functools import partial

import numpy as np
from ase.calculators.calculator import all_changes

from ase_fuse.errors import InputError
from ase_fuse.lazy import require

from .chgnet import DEFAULT_OPTIMIZER, ISOLATED_CUTOFF, isolated_atoms
from .guards import GuardFailure
from .tiers import Tier

#: our name -> sevenn's name of the checkpoint in its wheel (sevenn.util)
CHECKPOINTS = {
    "SevenNet-0": "7net-0_11Jul2024",
    "SevenNet-0-22May2024": "7net-0_22May2024",
    "SevenNet-l3i5": "7net-l3i5",
    "SevenNet-MF-0": "7net-mf-0",
}
DEFAULT_MODEL = "SevenNet-0"
#: fidelities of a multi-fidelity checkpoint; the first is the default
MODALS = {"SevenNet-MF-0": ("PBE", "R2SCAN")}
INSTALL_HINT = "pip install 'ase-fuse[sevennet]' (sevenn==0.12.1)"

_NETWORKS = {}
_TORCHSIM_MODELS = {}
_CALCULATOR_CLASS = []


# -- names and options ------------------------------------------------------------------
def checkpoint_name(model):
    """Our name of a shipped checkpoint: ``"SevenNet-l3i5"``, ``"sevennet-l3i5"`` or
    sevenn's ``"7net-l3i5"``; InputError (field ``model``) lists the known ones."""
    if isinstance(model, str):
        wanted = model.strip().lower()
        for name, sevenn_name in CHECKPOINTS.items():
            aliases = {name.lower(), sevenn_name.lower(), "7net" + name.lower()[8:]}
            if wanted in aliases:
                return name
    raise InputError(f"unknown SevenNet checkpoint {model!r}; known: "
                     f"{', '.join(CHECKPOINTS)}", field="model")


def checkpoint_modal(model, modal=None):
    """The fidelity to evaluate ``model`` (a name from :data:`CHECKPOINTS`) with: None
    for a one-fidelity checkpoint, the default or ``modal`` (case-insensitive) for a
    multi-fidelity one."""
    modals = MODALS.get(model)
    if modals is None:
        if modal is not None:
            raise InputError(f"{model} has one fidelity; modal applies to "
                             f"{', '.join(MODALS)}", field="modal")
        return None
    if modal is None:
        return modals[0]
    for known in modals:
        if isinstance(modal, str) and modal.strip().upper() == known.upper():
            return known
    raise InputError(f"unknown modal {modal!r} of {model}; known: {', '.join(modals)}",
                     field="modal")


def tier_name(model, modal=None):
    """``"sevennet-0"``, ``"sevennet-l3i5"``, ``"sevennet-mf-0-pbe"``: the checkpoint is in
    the tier's name, so a run's stored relaxer says which one it used."""
    name = model.lower()
    return f"{name}-{modal.lower()}" if modal else name


def check_device(device):
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"``, else InputError (field ``device``)."""
    if not isinstance(device, str) or not (device in ("cpu", "cuda")
                                           or device.startswith("cuda:")):
        raise InputError(f"must be 'cpu', 'cuda' or 'cuda:N', got {device!r}",
                         field="device")
    return device


# -- networks -------------------------------------------------------------------------
def _build_network(model):
    util = require("sevenn.util", INSTALL_HINT)
    path = util.pretrained_name_to_path(CHECKPOINTS[model])
    with contextlib.redirect_stdout(io.StringIO()):
        return util.load_checkpoint(path).build_model()


def load_sevennet_network(model=DEFAULT_MODEL, device="cpu"):
    """The network of checkpoint ``model`` on ``device`` for ASE calculators, loaded once
    per process (sevenn's ``AtomGraphSequential``, eval mode, float32)."""
    model = checkpoint_name(model)
    key = (model, check_device(device))
    if key not in _NETWORKS:
        network = _build_network(model)
        network.set_is_batch_data(False)
        _NETWORKS[key] = network.to(device).eval()
    return _NETWORKS[key]


def load_torchsim_model(model=DEFAULT_MODEL, modal=None, device="cpu"):
    """torch-sim's ``SevenNetModel`` around checkpoint ``model`` on ``device``, loaded once
    per process, checkpoint, fidelity and device (float32, as sevenn's calculator)."""
    model = checkpoint_name(model)
    modal = checkpoint_modal(model, modal)
    key = (model, modal, check_device(device))
    if key not in _TORCHSIM_MODELS:
        require("torch_sim", "pip install 'ase-fuse[batched]'")
        require("sevenn.calculator", INSTALL_HINT)
        import torch
        from torch_sim.models.sevennet import SevenNetModel
        _TORCHSIM_MODELS[key] = SevenNetModel(_build_network(model), modal=modal,
                                              device=torch.device(device),
                                              dtype=torch.float32)
    return _TORCHSIM_MODELS[key]


def unknown_elements(numbers, type_map):
    """Atomic numbers in ``numbers`` that a checkpoint with ``type_map`` does not know."""
    return sorted({int(z) for z in np.unique(numbers)} - {int(z) for z in type_map})


def _refuse(atoms, type_map, isolated_cutoff, model):
    """Raise GuardFailure for a structure the network must not see."""
    from ase.data import chemical_symbols
    unknown = unknown_elements(atoms.numbers, type_map)
    if unknown:
        raise GuardFailure("unknown-element", f"{model} was not trained on "
                           f"{', '.join(chemical_symbols[z] for z in unknown)}")
    if isolated_cutoff is not None:
        lonely = isolated_atoms(atoms, isolated_cutoff)
        if len(lonely):
            raise GuardFailure("isolated", f"atom {lonely[0]} isolated: no neighbour "
                               f"within {isolated_cutoff} A (not sent to {model})")


# -- the ASE calculator -----------------------------------------------------------------
def _calculator_class():
    if not _CALCULATOR_CLASS:
        from sevenn.calculator import SevenNetCalculator

        class SafeSevenNetCalculator(SevenNetCalculator):
            """sevenn's ASE calculator that refuses isolated atoms and unknown elements
            (a :class:`GuardFailure` before the network is called)."""

            isolated_cutoff = ISOLATED_CUTOFF
            checkpoint = DEFAULT_MODEL

            def set_atoms(self, atoms):
                """sevenn raises ValueError here for an unknown element; the check is
                made (as a GuardFailure) when a calculation is asked for instead."""

            def calculate(self, atoms=None, properties=None, system_changes=all_changes):
                _refuse(atoms if atoms is not None else self.atoms, self.type_map,
                        self.isolated_cutoff, self.checkpoint)
                super().calculate(atoms, properties, system_changes)

        _CALCULATOR_CLASS.append(SafeSevenNetCalculator)
    return _CALCULATOR_CLASS[0]


def sevennet_calculator(model=DEFAULT_MODEL, modal=None, device="cpu",
                        isolated_cutoff=ISOLATED_CUTOFF):
    """An ASE calculator for checkpoint ``model`` (energy, forces, stress in eV/A^3),
    sharing the process-wide network.  InputError when sevenn is missing."""
    model = checkpoint_name(model)
    modal = checkpoint_modal(model, modal)
    require("sevenn.calculator", INSTALL_HINT)
    network = load_sevennet_network(model, device)
    cls = _calculator_class()
    with contextlib.redirect_stdout(io.StringIO()):  # sevenn prints its settings
        calc = cls(network, file_type="model_instance", device=device, modal=modal)
    calc.isolated_cutoff = isolated_cutoff
    calc.checkpoint = model
    return calc


def sevennet_tier(model=DEFAULT_MODEL, modal=None, fmax=0.05, steps=2000,
                  optimizer=DEFAULT_OPTIMIZER, device="cpu", name=None, **tier_kw):
    """A relaxation tier with checkpoint ``model`` (any of :data:`CHECKPOINTS`), built
    like the CHGNet stage: max force < 0.05 eV/A or 2000 steps, BFGS, cell and
    positions.  Options are checked now; the network loads on first use, and a missing
    sevenn fails the tier (``could not create calculator``), not the program.
    ``tier_kw`` go to :class:`Tier`."""
    model = checkpoint_name(model)
    modal = checkpoint_modal(model, modal)
    check_device(device)
    return Tier(partial(sevennet_calculator, model=model, modal=modal, device=device),
                fmax=fmax, steps=steps, optimizer=optimizer,
                name=name or tier_name(model, modal), **tier_kw)


# -- the batched backend -----------------------------------------------------------------
class SevennetBackend:
    """A :class:`~ase_fuse.calculators.batched.BatchedRelaxer` backend: the whole batch in
    one call of torch-sim's ``SevenNetModel`` (neighbour lists and graph on ``device``).

    A structure with an element the checkpoint does not know, or an isolated atom, gets
    a :class:`GuardFailure` and is not sent; the rest are evaluated together.  A class,
    not a closure, so that a relaxer holding it pickles (process pools).
    """

    def __init__(self, model=DEFAULT_MODEL, modal=None, device="cpu",
                 isolated_cutoff=ISOLATED_CUTOFF):
        self.model = checkpoint_name(model)
        self.modal = checkpoint_modal(self.model, modal)
        self.device = check_device(device)
        self.isolated_cutoff = isolated_cutoff
        self.__name__ = tier_name(self.model, self.modal)

    def __repr__(self):
        return f"SevennetBackend({self.model!r}, modal={self.modal!r}, device={self.device!r})"

    def __call__(self, structures):
        import torch
        import torch_sim as ts

        wrapped = load_torchsim_model(self.model, self.modal, self.device)
        out = [None] * len(structures)
        good = []
        for k, atoms in enumerate(structures):
            try:
                _refuse(atoms, wrapped.model.type_map, self.isolated_cutoff, self.model)
            except GuardFailure as failure:
                out[k] = failure
                continue
            good.append(k)
        if not good:
            return out
        state = ts.io.atoms_to_state([structures[k] for k in good],
                                     torch.device(self.device), torch.float32)
        result = wrapped(state)
        index = state.system_idx.detach().cpu().numpy()
        energy = result["energy"].detach().cpu().numpy().astype(float)
        forces = result["forces"].detach().cpu().numpy().astype(float)
        stress = result["stress"].detach().cpu().numpy().astype(float)
        for b, k in enumerate(good):
            out[k] = {"energy": float(energy[b]), "forces": forces[index == b],
                      "stress": stress[b]}
        return out


def sevennet_backend(device="cpu", model=DEFAULT_MODEL, modal=None):
    """The batched backend for checkpoint ``model`` on ``device``."""
    return SevennetBackend(model=model, modal=modal, device=device)
