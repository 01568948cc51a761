"""GnoaGenerator: ML-guided structure generation (GN-OA, as used by FUSE2).

For each number of formula units z an optimiser (TPE by default) searches space
group, Wyckoff combination, lattice and free coordinates (:mod:`.space`) to
minimise an energy model's predicted energy per atom (:mod:`.models`).  Every
valid evaluated structure is kept in :attr:`GnoaGenerator.pool` (lowest predicted
energy first) and written to ``output`` as it is found.  The pool seeds the basin
hopping search; :func:`rerank` re-orders it with a cheap potential first.
"""

import sys
import time
from pathlib import Path

import numpy as np

from ase_fuse.checks import Limits
from ase_fuse.composition import Composition
from ase_fuse.errors import GenerationError, GeneratorUnavailable, InputError
from ase_fuse.generators.base import StructureGenerator, make_rng, whole

from .models import make_model
from .optimizers import FAILED_LOSS, make_optimizer
from .space import SearchSpace

DEFAULT_MAX_Z = 8


def _mapping(value, field):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"must be a table of options, got {value!r}", field=field)
    return dict(value)


def _check_keys(options, cls, field, skip=()):
    """Refuse keys ``cls`` does not take, listing the valid ones."""
    import inspect
    valid = set(inspect.signature(cls).parameters) - set(skip)
    for key in options:
        if key not in valid:
            raise InputError(f"unknown option {key!r}; valid: {', '.join(sorted(valid))}",
                             field=field)


class GnoaGenerator(StructureGenerator):
    """Generate low predicted-energy structures of ``composition``.

    Parameters
    ----------
    composition : str, dict or Composition
    max_atoms : int
        Largest cell; caps the numbers of formula units.
    rng, seed : numpy Generator or int seed (one of them; default seed 0).
    formula_units : int or iterable of int, optional
        z values to search, capped by ``max_atoms``
        (default 1..min(8, max_atoms // atoms per formula unit)).
    model : "chgnet", "proxy", "megnet", an object with ``predict`` or an ASE calculator.
    optimizer : "tpe", "random", "pso" or an object with ``minimize``.
    optimizer_options : dict, optional
        Options of the named optimiser, e.g. ``{"backend": "hyperopt"}`` or
        ``{"batch_size": 32}`` for TPE (see :mod:`.optimizers`).
    evaluations : int
        Evaluations per z.
    space_groups, triclinic_only : the groups searched (see :class:`.space.SearchSpace`).
    output : str or Path, optional
        ``.db`` -> ase.db rows; anything else -> extxyz (appended).
    progress : bool
        Progress lines on stderr.
    limits : ase_fuse.checks.Limits, optional
        Hard constraints (minimum distance, volume window).
    space_options : dict, optional
        More :class:`.space.SearchSpace` options (``max_combinations`` ...).
    """

    #: what a search starts it with unless ``generator_options`` say otherwise: the
    #: proxy model and 200 evaluations per formula-unit count.  Raced as the search's
    #: start (lever 8 in benchmarks/README.md) it reached first hits sooner than FUSE
    #: and symmetric starts; the defaults below (CHGNet, 5000) are for standalone
    #: generation, where minutes of optimisation are the point.  ``random_share="auto"``
    #: gives half the population to random symmetric starts on cells of at most 12
    #: atoms, where they won the lever-10 race (:func:`.seeding.resolved_share`).
    search_options = {"model": "proxy", "evaluations": 200, "random_share": "auto"}

    def __init__(self, composition, max_atoms=50, rng=None, seed=None, formula_units=None,
                 model="chgnet", optimizer="tpe", evaluations=5000, space_groups=None,
                 triclinic_only=False, output=None, progress=True, limits=None,
                 space_options=None, optimizer_options=None):
        self.composition = Composition(composition)
        self.rng = make_rng(rng, seed, default_seed=0)
        self.max_atoms = max_atoms
        self.z_values = self._z_values(formula_units, max_atoms)
        self.evaluations = whole(evaluations, "evaluations", 1)
        self.optimizer = make_optimizer(optimizer, **_mapping(optimizer_options,
                                                              "optimizer_options"))
        if isinstance(space_groups, (int, np.integer)) and not isinstance(space_groups, bool):
            space_groups = [space_groups]
        if space_groups is not None and (isinstance(space_groups, (str, bytes, dict))
                                         or not hasattr(space_groups, "__iter__")):
            raise InputError(f"must be space-group numbers 1-230, got {space_groups!r}",
                             field="space_groups")
        self.space_groups = None if space_groups is None else \
            [whole(g, "space_groups", 1, 230) for g in space_groups]
        if self.space_groups is not None and not self.space_groups:
            raise InputError("empty space-group range", field="space_groups")
        for name, flag in (("triclinic_only", triclinic_only), ("progress", progress)):
            if not isinstance(flag, (bool, np.bool_)):
                raise InputError(f"must be true or false, got {flag!r}", field=name)
        self.triclinic_only = triclinic_only
        if limits is not None and not isinstance(limits, Limits):
            raise InputError(f"must be ase_fuse.checks.Limits, got {limits!r}",
                             field="limits")
        self.limits = limits or Limits(max_atoms=max_atoms)
        self.space_options = _mapping(space_options, "space_options")
        _check_keys(self.space_options, SearchSpace, "space_options",
                    skip={"composition", "formula_units", "space_groups", "triclinic_only",
                          "limits"})
        if output is not None and not isinstance(output, (str, Path)):
            raise InputError(f"must be a file name, got {output!r}", field="output")
        self.output = None if output is None else str(output)
        self.progress = progress
        self._model_spec = model
        self.model = None if isinstance(model, str) else make_model(model, self.composition)
        if isinstance(model, str) and model not in ("chgnet", "proxy", "megnet"):
            make_model(model, self.composition)  # raises the InputError
        self.pool = []
        self.results = {}  # z -> OptimizerResult
        self._done = set()
        self._used = set()  # ids of pool structures handed out by generate()
        reason = self.unavailable()  # the options first, then this
        if reason:
            raise GeneratorUnavailable(f"GN-OA {reason}", field="generator")

    @classmethod
    def unavailable(cls):
        """Why it cannot run here (a missing package), or None."""
        import importlib.util
        if importlib.util.find_spec("pyxtal") is None:
            return ("needs pyxtal for its space groups' Wyckoff sites: "
                    "pip install 'ase-fuse[ml]'")
        return None

    def _z_values(self, formula_units, max_atoms):
        allowed = self.composition.formula_units(max_atoms)
        if formula_units is None:
            return allowed[:DEFAULT_MAX_Z]
        values = [formula_units] if np.isscalar(formula_units) else list(formula_units)
        if not values:
            raise InputError("empty range", field="formula_units")
        out = []
        for z in values:
            whole(z, "formula_units", 1)
            if int(z) in allowed:  # the range is capped by max_atoms
                out.append(int(z))
        if not out:
            raise InputError(
                f"every z in {values} gives more than max_atoms={max_atoms} atoms of "
                f"{self.composition.formula}", field="formula_units")
        return sorted(set(out))

    # -- the search ----------------------------------------------------------------------
    def _get_model(self):
        if self.model is None:
            self.model = make_model(self._model_spec, self.composition)
        return self.model

    def search(self, formula_units):
        """Run the optimisation for one z (once); returns its OptimizerResult."""
        z = int(formula_units)
        if z in self._done:
            return self.results[z]
        space = SearchSpace(self.composition, z, space_groups=self.space_groups,
                            triclinic_only=self.triclinic_only, limits=self.limits,
                            **self.space_options)
        model = self._get_model()
        state = {"valid": 0, "count": 0, "best": np.inf, "start": time.perf_counter(),
                 "shown": 0}

        def objective(points):
            losses = np.full(len(points), FAILED_LOSS)
            decoded = [(k, space.decode(p)) for k, p in enumerate(points)]
            valid = [(k, a) for k, a in decoded if a is not None]
            if valid:
                energies = np.asarray(model.predict([a for _, a in valid]), dtype=float)
                for (k, atoms), energy in zip(valid, energies):
                    if not np.isfinite(energy):
                        continue
                    losses[k] = energy
                    self._keep(atoms, float(energy), z)
                    state["valid"] += 1
                    state["best"] = min(state["best"], float(energy))
            state["count"] += len(points)
            self._report(z, state)
            return losses

        result = self.optimizer.minimize(objective, space.dimensions, self.evaluations,
                                         self.rng)
        state["shown"] = -1
        self._report(z, state, final=True)
        self.results[z] = result
        self._done.add(z)
        return result

    def _keep(self, atoms, energy, z):
        atoms.info.update(origin="gnoa", predicted_energy=energy, formula_units=z)
        atoms.info["spacegroup"] = int(atoms.info["spacegroup"])
        self.pool.append(atoms)
        if self.output:
            _write(self.output, atoms)

    def _report(self, z, state, final=False):
        if not self.progress:
            return
        step = max(self.evaluations // 10, 1)
        if not final and state["count"] < state["shown"] + step:
            return
        state["shown"] = state["count"]
        rate = state["count"] / max(time.perf_counter() - state["start"], 1e-9)
        best = f"{state['best']:.4f}" if np.isfinite(state["best"]) else "-"
        print(f"gnoa {self.composition.formula} z={z}: {state['count']}/{self.evaluations} "
              f"evaluations, {state['valid']} valid, best {best} eV/atom, {rate:.1f}/s"
              + (" done" if final else ""), file=sys.stderr, flush=True)

    def run(self):
        """Search every z not yet searched; returns the sorted pool."""
        for z in self.z_values:
            self.search(z)
        self._sort()
        return self.pool

    def ranked_pool(self):
        """The search's pool hook: the whole pool, lowest predicted energy first (the
        optimisation runs on the first call)."""
        return self.run()

    def _sort(self):
        self.pool.sort(key=lambda a: a.info["predicted_energy"])

    # -- generator interface ---------------------------------------------------------------
    def generate_many(self, n):
        """The ``n`` lowest predicted-energy structures over all z (sorted, copies)."""
        if n != int(n) or n < 1:
            raise InputError(f"must be a positive whole number, got {n}", field="n")
        self.run()
        return [a.copy() for a in self.pool[:int(n)]]

    def generate(self, formula_units=None):
        """The next structure of the sorted pool (optionally of ``formula_units`` z).

        The optimisation runs on the first call (for that z only when one is given).
        """
        if formula_units is None:
            self.run()
            wanted = None
        else:
            wanted = self._z_values(formula_units, self.max_atoms)[0]
            self.search(wanted)
            self._sort()
        for atoms in self.pool:
            if id(atoms) in self._used:
                continue
            if wanted is not None and atoms.info["formula_units"] != wanted:
                continue
            self._used.add(id(atoms))
            return atoms.copy()
        raise GenerationError(
            f"the GN-OA pool of {self.composition.formula} has no more valid structures"
            + (f" with z={wanted}" if wanted else ""))


def _write(path, atoms):
    if path.endswith(".db"):
        from ase.db import connect
        info = atoms.info
        with connect(path) as db:
            db.write(atoms, origin=info["origin"], predicted_energy=info["predicted_energy"],
                     spacegroup=info["spacegroup"], formula_units=info["formula_units"])
    else:
        from ase.io import write
        write(path, atoms, format="extxyz", append=True)


def rerank(structures, calculator_or_relaxer, top=25):
    """Re-rank ``structures`` by a cheap potential's single-point energy per atom.

    ``calculator_or_relaxer`` is an ASE calculator, an energy model (``predict``) or
    a callable ``atoms -> energy per atom``.  Returns ``(top, rest)``: copies sorted
    by that energy, with it in ``info["rerank_energy"]``; structures whose energy is
    not finite go to the end of ``rest``.
    """
    if top != int(top) or top < 0:
        raise InputError(f"must be a whole number >= 0, got {top}", field="top")
    structures = [a.copy() for a in structures]
    scorer = calculator_or_relaxer
    if hasattr(scorer, "predict"):
        energies = np.asarray(scorer.predict(structures), dtype=float)
    elif hasattr(scorer, "get_potential_energy"):
        from .models import CalculatorModel
        energies = CalculatorModel(scorer).predict(structures)
    elif callable(scorer):
        energies = np.array([float(scorer(a)) for a in structures])
    else:
        raise InputError(f"{scorer!r} is not a calculator, model or callable",
                         field="calculator")
    energies = np.where(np.isfinite(energies), energies, np.inf)
    order = np.argsort(energies, kind="stable")
    ranked = []
    for k in order:
        structures[k].info["rerank_energy"] = float(energies[k])
        ranked.append(structures[k])
    return ranked[:int(top)], ranked[int(top):]
