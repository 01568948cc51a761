"""Batched relaxation: many candidates relaxed together through one model call per step.

:class:`BatchedRelaxer` drives torch-sim's batched FIRE with a Frechet cell filter
(``torch_sim.optimizers.frechet_cell_fire``, ASE's FIRE flavour: the same
optimiser as the ASE path ``TieredRelaxer([chgnet_tier(optimizer="FIRE")])``, FIRE +
``FrechetCellFilter``; one at a time the CHGNet stage uses BFGS by default, which
torch-sim does not offer, so batching is another relaxation and a run keeps it on
or off).  Up to ``batch_size`` structures are in flight; one that
converges, hits its step limit or fails leaves the batch and the next waiting
structure takes its place, so the model always sees a full batch.

The energy model is a *backend*: ``backend(list[Atoms]) -> list[dict]`` with
``energy`` (eV), ``forces`` (eV/A) and ``stress`` (eV/A^3, ASE sign).  The CHGNet
backend builds each graph and evaluates the whole batch in one forward pass; the
SevenNet backend (``calculators/sevennet.py``) hands the batch to torch-sim's own
``SevenNetModel``; :func:`calculator_backend` wraps any ASE calculator (one call per
structure: for tests and cheap potentials).

Every geometry is checked by :class:`~ase_fuse.calculators.guards.Guards` before
the model sees it (cell volume against the starting volume, shortest distance,
isolated atoms, degenerate cell) and every result after (NaN, huge forces): a bad
structure leaves the batch as failed, never raising and never reaching the model.
torch and torch-sim are imported only when a relaxation runs.
"""

import time

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ase_fuse.errors import InputError

from .guards import GuardFailure, Guards
from .tiers import RelaxResult, TierRecord

_ADAPTER_CLASS = []


# -- backends ------------------------------------------------------------------------
def calculator_backend(calc_factory):
    """A backend that evaluates each structure with ``calc_factory()``'s calculator."""
    cache = []

    def evaluate(structures):
        if not cache:
            cache.append(calc_factory())
        calc = cache[0]
        out = []
        for atoms in structures:
            atoms = atoms.copy()
            atoms.calc = calc
            out.append({"energy": float(atoms.get_potential_energy()),
                        "forces": np.array(atoms.get_forces()),
                        "stress": np.array(atoms.get_stress(voigt=False))})
        return out

    return evaluate


class ChgnetBackend:
    """CHGNet on a whole batch: graphs built per structure, one forward pass.

    A class, not a closure, so that a relaxer holding it pickles (process pools).
    """

    def __init__(self, device="cpu"):
        self.device = device

    def __call__(self, structures):
        from pymatgen.io.ase import AseAtomsAdaptor

        from .chgnet import chgnet_efs, load_chgnet_model
        model = load_chgnet_model(self.device)
        graphs = [model.graph_converter(AseAtomsAdaptor.get_structure(a)).to(self.device)
                  for a in structures]
        return chgnet_efs(model, graphs)


def chgnet_backend(device="cpu"):
    """The CHGNet backend for ``device``."""
    return ChgnetBackend(device)


def sevennet_backend(device="cpu"):
    """SevenNet-0 through torch-sim's native SevenNet model (graphs built on ``device``);
    another checkpoint: ``calculators.sevennet.sevennet_backend(device, model=...)``."""
    from .sevennet import sevennet_backend as backend
    return backend(device)


BACKENDS = {"chgnet": chgnet_backend, "sevennet": sevennet_backend}


# -- the torch-sim model -----------------------------------------------------------
def _adapter_class():
    """A torch-sim ModelInterface around a backend, with guards (built on first use)."""
    if _ADAPTER_CLASS:
        return _ADAPTER_CLASS[0]
    import torch
    from torch_sim.models.interface import ModelInterface

    class GuardedBackendModel(ModelInterface):
        """Guards each system, sends the good ones to the backend in one call.

        A system that fails a guard gets zero forces/stress (so the optimiser leaves it
        alone) and its reason in ``failures[key]``; the relaxer then drops it.
        """

        def __init__(self, backend, guards, device, dtype=torch.float64):
            super().__init__()
            self.backend = backend
            self.guards = guards
            self._device = torch.device(device)
            self._dtype = dtype
            self._compute_stress = True
            self._compute_forces = True
            self.keys = []              # relaxer's id of each system, in state order
            self.start_volumes = {}
            self.failures = {}
            self.calls = 0

        def forward(self, state, **kwargs):
            n_sys = state.n_systems
            cells = state.row_vector_cell.detach().cpu().numpy()
            positions = state.positions.detach().cpu().numpy()
            numbers = state.atomic_numbers.detach().cpu().numpy()
            index = state.system_idx.detach().cpu().numpy()
            energy = np.zeros(n_sys)
            forces = np.zeros_like(positions)
            stress = np.zeros((n_sys, 3, 3))
            good, structures = [], []
            for b in range(n_sys):
                key = self.keys[b]
                if key in self.failures:
                    continue
                mask = index == b
                atoms = Atoms(numbers=numbers[mask], positions=positions[mask],
                              cell=cells[b], pbc=True)
                try:
                    self.guards.check_geometry(atoms, self.start_volumes.get(key))
                except GuardFailure as failure:
                    self.failures[key] = failure.reason
                    continue
                good.append(b)
                structures.append(atoms)
            if structures:
                self.calls += 1
                try:
                    results = self.backend(structures)
                except GuardFailure as failure:
                    results = [failure] * len(structures)
                except Exception as err:  # noqa: BLE001 - a crashing model fails the batch
                    results = [GuardFailure("calculator-error",
                                            f"{type(err).__name__}: {err}")] * len(good)
                for b, result in zip(good, results):
                    key = self.keys[b]
                    if isinstance(result, GuardFailure):
                        self.failures[key] = result.reason
                        continue
                    try:
                        self.guards.check_results(result)
                    except GuardFailure as failure:
                        self.failures[key] = failure.reason
                        continue
                    energy[b] = result["energy"]
                    forces[index == b] = result["forces"]
                    stress[b] = result["stress"]
            as_t = lambda x: torch.as_tensor(x, device=self._device, dtype=self._dtype)  # noqa: E731
            return {"energy": as_t(energy), "forces": as_t(forces), "stress": as_t(stress)}

    _ADAPTER_CLASS.append(GuardedBackendModel)
    return GuardedBackendModel


# -- the relaxer -----------------------------------------------------------------------
class BatchedRelaxer:
    """Relax many structures at once (torch-sim batched FIRE + Frechet cell filter).

    model: ``"chgnet"``, ``"sevennet"`` (SevenNet-0) or a backend callable
        ``f(list[Atoms]) -> list[dict]`` (an entry may be a ``GuardFailure``: that
        structure fails alone).
    fmax, steps: per structure, as in :class:`~ase_fuse.calculators.tiers.Tier`
        (convergence includes the cell forces, as ASE's FrechetCellFilter does).
    batch_size: structures in flight together.
    device: ``"cpu"`` or ``"cuda"``.
    guards: :class:`Guards` (defaults as for the ASE path).
    fail_force_factor: at the step limit with max force above this x fmax: failed.
    name: the tier name in the results' records.
    """

    def __init__(self, model="chgnet", fmax=0.05, steps=2000, batch_size=8, device="cpu",
                 guards=None, fail_force_factor=10.0, name=None):
        if isinstance(model, str):
            if model not in BACKENDS:
                raise InputError(f"unknown batched model {model!r}; known: "
                                 f"{', '.join(BACKENDS)} or a backend callable",
                                 field="model")
            self.backend = BACKENDS[model](device)
            self.name = name or model
        elif callable(model):
            self.backend = model
            self.name = name or getattr(model, "__name__", "batched")
        else:
            raise InputError(f"needs one of {', '.join(BACKENDS)} or a backend callable, "
                             f"got {model!r}", field="model")
        if not fmax > 0:
            raise InputError(f"must be positive, got {fmax}", field="fmax")
        if isinstance(steps, bool) or steps != int(steps) or steps < 1:
            raise InputError(f"must be a whole number >= 1, got {steps}", field="steps")
        if isinstance(batch_size, bool) or batch_size != int(batch_size) or batch_size < 1:
            raise InputError(f"must be a whole number >= 1, got {batch_size}",
                             field="batch_size")
        if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
            raise InputError(f"must be 'cpu' or 'cuda', got {device!r}", field="device")
        self.fmax = float(fmax)
        self.steps = int(steps)
        self.batch_size = int(batch_size)
        self.device = device
        self.guards = guards if guards is not None else Guards()
        self.fail_force_factor = fail_force_factor
        self.model_calls = 0

    def __repr__(self):
        return (f"BatchedRelaxer({self.name!r}, fmax={self.fmax}, steps={self.steps}, "
                f"batch_size={self.batch_size}, device={self.device!r})")

    def relax(self, atoms):
        """Relax one structure (a batch of one)."""
        return self.relax_many([atoms])[0]

    def relax_many(self, structures, on_result=None, should_stop=None):
        """Relax every structure; returns one :class:`RelaxResult` each, in order.

        on_result: ``on_result(index, result)`` as each structure leaves the batch.
        should_stop: checked before every batched step; once it returns True the
            structures still in flight or waiting are left undone (``None``).
        """
        structures = [a.copy() for a in structures]
        for atoms in structures:
            atoms.calc = None
        results = [None] * len(structures)
        self._on_result = on_result
        waiting = []
        for key, atoms in enumerate(structures):
            try:
                if not np.all(atoms.pbc):
                    raise GuardFailure("not-periodic", "batched relaxation needs a "
                                       "periodic cell")
                self.guards.check_geometry(atoms)
            except GuardFailure as failure:
                results[key] = self._failed(atoms, failure.reason, 0, 0.0)
                if on_result is not None:
                    on_result(key, results[key])
                continue
            waiting.append(key)
        if waiting:
            self._run(structures, waiting, results, should_stop)
        return results

    # -- the in-flight loop -------------------------------------------------------------
    def _run(self, structures, waiting, results, should_stop=None):
        import torch
        import torch_sim as ts
        from torch_sim.optimizers import frechet_cell_fire
        from torch_sim.state import concatenate_states

        model = _adapter_class()(self.backend, self.guards, self.device)
        init_fn, step_fn = frechet_cell_fire(model, md_flavor="ase_fire")
        self._model, self._results, self._structures = model, results, structures
        waiting = list(waiting)
        state, keys, nsteps, started = None, [], {}, {}
        while waiting or keys:
            if should_stop is not None and should_stop():
                break
            free = self.batch_size - len(keys)
            if free > 0 and waiting:
                # newcomers start on their own: torch-sim's first FIRE step treats the
                # whole batch as new when any system is, which would couple them
                new, waiting = waiting[:free], waiting[free:]
                for key in new:
                    model.start_volumes[key] = abs(structures[key].cell.volume)
                    started[key] = time.monotonic()
                    nsteps[key] = 0
                model.keys = list(new)
                fresh = init_fn(ts.io.atoms_to_state([structures[k] for k in new],
                                                     torch.device(self.device),
                                                     torch.float64))
                fresh, new = self._drop_finished(fresh, new, nsteps, started)
                if new:
                    model.keys = list(new)
                    fresh = step_fn(fresh)
                    for key in new:
                        nsteps[key] += 1
                    fresh, new = self._drop_finished(fresh, new, nsteps, started)
                if new:
                    state = fresh if state is None else concatenate_states([state, fresh])
                    keys = keys + new
                continue
            model.keys = list(keys)
            state = step_fn(state)
            for key in keys:
                nsteps[key] += 1
            state, keys = self._drop_finished(state, keys, nsteps, started)
        self.model_calls += model.calls

    def _drop_finished(self, state, keys, nsteps, started):
        """Store the results of systems that are done; returns the rest ``(state, keys)``."""
        done = self._finished(state, keys, nsteps, self._model.failures)
        if not done:
            return state, keys
        for b, key in done.items():
            self._results[key] = self._result(self._structures[key], state, b, key,
                                              nsteps[key], started[key], self._model)
            if getattr(self, "_on_result", None) is not None:
                self._on_result(key, self._results[key])
        keep = [b for b in range(len(keys)) if b not in done]
        return (state[keep] if keep else None), [keys[b] for b in keep]

    def _finished(self, state, keys, nsteps, failures):
        """``{system index: key}`` of systems that leave the batch now."""
        fmax = self._fmax_per_system(state)
        out = {}
        for b, key in enumerate(keys):
            if key in failures or fmax[b] < self.fmax or nsteps[key] >= self.steps:
                out[b] = key
        return out

    @staticmethod
    def _fmax_per_system(state):
        import torch
        norms = state.forces.norm(dim=1)
        n_sys = state.n_systems
        atom_max = torch.zeros(n_sys, dtype=norms.dtype, device=norms.device)
        atom_max = atom_max.scatter_reduce(0, state.system_idx, norms, reduce="amax")
        cell_max = state.cell_forces.norm(dim=2).max(dim=1).values
        return torch.maximum(atom_max, cell_max).detach().cpu().numpy()

    def _result(self, original, state, b, key, steps, started, model):
        wall = time.monotonic() - started
        if key in model.failures:
            return self._failed(original, model.failures[key], steps, wall)
        mask = (state.system_idx == b).detach().cpu().numpy()
        atoms = Atoms(numbers=original.numbers, cell=state.row_vector_cell[b].detach()
                      .cpu().numpy(), positions=state.positions.detach().cpu().numpy()[mask],
                      pbc=True, info=dict(original.info))
        energy = float(state.energy[b])
        forces = state.forces.detach().cpu().numpy()[mask]
        stress = state.stress[b].detach().cpu().numpy()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces,
                                           stress=_voigt(stress))
        fmax = float(self._fmax_per_system(state)[b])
        converged = fmax < self.fmax
        record = TierRecord(name=self.name, energy=energy, energy_per_atom=energy / len(atoms),
                            steps=int(steps), converged=converged, wall_time=wall,
                            fmax=fmax, cell_relaxed=True)
        if not converged and self.fail_force_factor is not None \
                and fmax > self.fail_force_factor * self.fmax:
            reason = (f"not converged: max force {fmax:.3g} eV/A after {steps} steps "
                      f"(above {self.fail_force_factor:g} x fmax {self.fmax:g})")
            return self._failed(original, reason, steps, wall)
        return RelaxResult(atoms=atoms, energy=energy, energy_per_atom=energy / len(atoms),
                           converged=converged, tiers=[record])

    def _failed(self, atoms, reason, steps, wall):
        record = TierRecord(name=self.name, steps=int(steps), wall_time=wall, failed=reason)
        return RelaxResult(atoms=atoms, failed=f"{self.name}: {reason}", tiers=[record])


def _voigt(stress):
    s = np.asarray(stress)
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
