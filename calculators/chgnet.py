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
from functools import partial

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
        _MODELS[device].eval()
    return _MODELS[device]


def chgnet_efs(model, graphs):
    """Energy (eV), forces (eV/A) and stress (3x3, eV/A^3, ASE sign) for CHGNet graphs.

    The same numbers as ``model(graphs, task="efs")`` (energies equal, forces within
    1e-4 eV/A in float32), from one backward pass instead of two: CHGNet's own
    ``forward`` takes the position and strain gradients separately and keeps both
    graphs for training (``create_graph=True``); for relaxations one pass without a
    second-order graph is enough, and about 1.7x cheaper on CPU
    (``benchmarks/batched.py``).  Returns one dict per graph.
    """
    import torch
    from chgnet.model.model import BatchedGraph

    with warnings.catch_warnings():
        # chgnet converts a grad-tracking tensor inside its stress code
        warnings.filterwarnings("ignore", message="Converting a tensor with "
                                "requires_grad=True to a scalar")
        batched = BatchedGraph.from_graphs(
            graphs, bond_basis_expansion=model.bond_basis_expansion,
            angle_basis_expansion=model.angle_basis_expansion, compute_stress=True)
    prediction = model._compute(batched, compute_force=False, compute_stress=False)
    per_graph = prediction["atoms_per_graph"]
    scale = per_graph if model.is_intensive else torch.ones_like(per_graph)
    model_energy = prediction["e"] * scale
    grads = torch.autograd.grad(model_energy.sum(),
                                [*batched.atom_positions, *batched.strains])
    reference = 0.0
    if model.composition_model is not None:
        reference = model.composition_model(graphs).detach() * scale
    energies = (model_energy.detach() + reference).cpu().numpy().reshape(-1)
    n = len(graphs)
    volumes = batched.volumes.detach().cpu().numpy()
    return [{"energy": float(energies[k]),
             "forces": -grads[k].detach().cpu().numpy().astype(float),
             "stress": grads[n + k].detach().cpu().numpy().astype(float) / volumes[k]}
            for k in range(n)]


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
            """CHGNet's ASE calculator that refuses structures with isolated atoms.

            Energy, forces and stress come from :func:`chgnet_efs` (one backward
            pass); a request for anything else (magnetic moments) goes through
            CHGNet's own path.
            """

            isolated_cutoff = ISOLATED_CUTOFF
            fast = True

            def calculate(self, atoms=None, properties=None, system_changes=None,
                          task="efsm"):
                lonely = isolated_atoms(atoms if atoms is not None else self.atoms,
                                        self.isolated_cutoff)
                if len(lonely):
                    raise GuardFailure("isolated", f"atom {lonely[0]} isolated: no "
                                       f"neighbour within {self.isolated_cutoff} A "
                                       "(not sent to CHGNet)")
                wanted = set(properties or ["energy", "forces", "stress"])
                if self.fast and wanted <= {"energy", "free_energy", "forces", "stress"}:
                    self._calculate_efs(atoms, properties, system_changes)
                    return
                with warnings.catch_warnings():
                    # chgnet converts a grad-tracking tensor inside its stress code
                    warnings.filterwarnings("ignore", message="Converting a tensor with "
                                            "requires_grad=True to a scalar")
                    super().calculate(atoms, properties, system_changes, task=task)

            def _calculate_efs(self, atoms, properties, system_changes):
                from ase.calculators.calculator import Calculator
                from pymatgen.io.ase import AseAtomsAdaptor

                Calculator.calculate(self, atoms, properties, system_changes)
                graph = self.model.graph_converter(
                    AseAtomsAdaptor.get_structure(self.atoms)).to(self.device)
                out = chgnet_efs(self.model, [graph])[0]
                s = out["stress"] * (self.stress_weight * 160.21766208)
                self.results = {
                    "energy": out["energy"], "free_energy": out["energy"],
                    "forces": out["forces"],
                    "stress": np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2],
                                        s[0, 1]])}

        _CALCULATOR_CLASS.append(SafeCHGNetCalculator)
    return _CALCULATOR_CLASS[0]


def chgnet_calculator(device="cpu", isolated_cutoff=ISOLATED_CUTOFF, fast=True, **kw):
    """An ASE calculator using the process-wide CHGNet model.

    ``kw`` go to ``chgnet.model.dynamics.CHGNetCalculator`` (e.g. ``stress_weight``).
    Stress is in eV/A^3 (ASE convention).  ``fast=False`` keeps CHGNet's own
    evaluation for every property (two backward passes).
    """
    model = load_chgnet_model(device)
    cls = _calculator_class()
    kw.setdefault("on_isolated_atoms", "ignore")
    with contextlib.redirect_stdout(io.StringIO()):
        calc = cls(model=model, use_device=device, **kw)
    calc.isolated_cutoff = isolated_cutoff
    calc.fast = bool(fast)
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


#: the CHGNet stage's optimiser: BFGS took 1.8-3.4x fewer ML steps than the paper's
#: FIRE (benchmarks/protocol.py) and won the race's ablation (benchmarks/README.md)
DEFAULT_OPTIMIZER = "BFGS"


def chgnet_tier(fmax=0.05, steps=2000, optimizer=DEFAULT_OPTIMIZER, device="cpu",
                name="chgnet", **tier_kw):
    """The paper's CHGNet stage, max force < 0.05 eV/A or 2000 steps, with BFGS
    (``optimizer="FIRE"``: the paper's optimiser; the batched path is FIRE)."""
    return Tier(partial(chgnet_calculator, device=device), fmax=fmax, steps=steps,
                optimizer=optimizer, name=name, **tier_kw)
