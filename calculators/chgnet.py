"""CHGNet adapter: a cached model, an isolated-atom-safe ASE calculator, batched ranking.

CHGNet's pretrained weights ship inside the ``chgnet`` wheel, so this works offline.
The model is loaded once per process and device, on first use; torch's thread count
is left to the caller (``torch.set_num_threads``).  A structure with an isolated atom
(no neighbour within 6 A) is never sent to the model: the calculator raises a
:class:`~ase_fuse.calculators.guards.GuardFailure` (a failed relaxation, not a crash)
and :func:`chgnet_single_points` returns NaN for it.
"""

import contextlib
import io
import warnings

import numpy as np

from ase_fuse.errors import InputError

from .guards import GuardFailure, pair_distances
from .tiers import Tier

ISOLATED_CUTOFF = 6.0
_MODELS = {}
_CALCULATOR_CLASS = []


def load_chgnet_model(device="cpu"):
    """The pretrained CHGNet model for ``device``, loaded once per process."""
    if device not in _MODELS:
        try:
            from chgnet.model import CHGNet
        except ImportError as err:
            raise InputError("CHGNet is not installed; pip install chgnet",
                             field="calculator") from err
        with contextlib.redirect_stdout(io.StringIO()):
            _MODELS[device] = CHGNet.load(verbose=False, use_device=device)
    return _MODELS[device]


def isolated_atoms(atoms, cutoff=ISOLATED_CUTOFF):
    """Indices of atoms with no neighbour within ``cutoff`` (A)."""
    if len(atoms) == 0:
        return np.array([], int)
    i, j, _ = pair_distances(atoms, cutoff)
    has_neighbour = np.zeros(len(atoms), bool)
    has_neighbour[i] = True
    has_neighbour[j] = True
    return np.flatnonzero(~has_neighbour)


def _calculator_class():
    if not _CALCULATOR_CLASS:
        from chgnet.model.dynamics import CHGNetCalculator

        class SafeCHGNetCalculator(CHGNetCalculator):
            """CHGNet's ASE calculator that refuses structures with isolated atoms."""

            isolated_cutoff = ISOLATED_CUTOFF

            def calculate(self, atoms=None, properties=None, system_changes=None,
                          task="efsm"):
                lonely = isolated_atoms(atoms if atoms is not None else self.atoms,
                                        self.isolated_cutoff)
                if len(lonely):
                    raise GuardFailure("isolated", f"atom {lonely[0]} isolated: no "
                                       f"neighbour within {self.isolated_cutoff} A "
                                       "(not sent to CHGNet)")
                with warnings.catch_warnings():
                    # chgnet converts a grad-tracking tensor inside its stress code
                    warnings.filterwarnings("ignore", message="Converting a tensor with "
                                            "requires_grad=True to a scalar")
                    super().calculate(atoms, properties, system_changes, task=task)

        _CALCULATOR_CLASS.append(SafeCHGNetCalculator)
    return _CALCULATOR_CLASS[0]


def chgnet_calculator(device="cpu", isolated_cutoff=ISOLATED_CUTOFF, **kw):
    """An ASE calculator using the process-wide CHGNet model.

    ``kw`` go to ``chgnet.model.dynamics.CHGNetCalculator`` (e.g. ``stress_weight``).
    Stress is in eV/A^3 (ASE convention).
    """
    model = load_chgnet_model(device)
    cls = _calculator_class()
    kw.setdefault("on_isolated_atoms", "ignore")
    with contextlib.redirect_stdout(io.StringIO()):
        calc = cls(model=model, use_device=device, **kw)
    calc.isolated_cutoff = isolated_cutoff
    return calc


def chgnet_single_points(structures, batch_size=16, device="cpu",
                         isolated_cutoff=ISOLATED_CUTOFF):
    """CHGNet energies per atom (eV/atom) for many structures, in batches.

    Structures with an isolated atom are not sent to the model and get NaN.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise InputError(f"must be a positive whole number, got {batch_size}",
                         field="batch_size")
    from pymatgen.io.ase import AseAtomsAdaptor

    structures = list(structures)
    energies = np.full(len(structures), np.nan)
    usable = [k for k, atoms in enumerate(structures)
              if len(atoms) and not len(isolated_atoms(atoms, isolated_cutoff))]
    if not usable:
        return energies
    model = load_chgnet_model(device)
    pmg = [AseAtomsAdaptor.get_structure(structures[k]) for k in usable]
    predictions = model.predict_structure(pmg, task="e", batch_size=int(batch_size))
    if isinstance(predictions, dict):
        predictions = [predictions]
    for k, prediction in zip(usable, predictions):
        energies[k] = float(np.asarray(prediction["e"]).reshape(-1)[0])
    return energies


def chgnet_tier(fmax=0.05, steps=2000, optimizer="FIRE", device="cpu", name="chgnet",
                **tier_kw):
    """The paper's CHGNet stage: relax to max force < 0.05 eV/A or 2000 steps."""
    return Tier(lambda: chgnet_calculator(device=device), fmax=fmax, steps=steps,
                optimizer=optimizer, name=name, **tier_kw)
