"""FuseBasinHopping: FUSE's basin-hopping search as an ASE optimiser-style object.

It follows ASE's ``Dynamics`` conventions: :meth:`irun` is a generator yielding
``converged`` after each step, :meth:`run` exhausts it, observers attach with
``attach(fn, interval)``, ``logfile='-'`` prints one line per step and
``trajectory`` receives every new global minimum.  Any ASE calculator, or any
relaxer with ``relax(atoms) -> RelaxResult`` (e.g. a ``TieredRelaxer`` stack), does
the energies.
"""

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase.optimize.optimize import BaseDynamics

from .acceptance import AcceptanceRule
from .checks import Limits, check_structure, limits_for_parent
from .composition import Composition
from .config import DEFAULTS as _D  # one default per option: the record in config.py
from .errors import GenerationError, InputError
from .population import PopulationPhase
from .records import RunRecords, result_enthalpy, row_enthalpy
from .run_outputs import RunOutputs
from .runlock import RunLock, folder_problem, reacquire, releases_lock_on_error
from .search_setup import load_pool, make_relaxer, relaxer_at_pressure, validate_options
from .symmetry import symmetrize



@dataclass
class StepPlan:
    """One basin-hopping step between its phases (see ``FuseBasinHopping.step``)."""
    step: int
    move: object
    slot: int
    candidate: object       # ase.Atoms, queued in the db as row ``row_id``
    row_id: int
    energy: float = None    # eV/atom once relaxed; None while pending or if it failed
    pending: bool = True    # True until take_result (False: reused after a restart)


class FuseBasinHopping(PopulationPhase, RunOutputs, BaseDynamics):
    """Basin hopping over sub-module crystals (FUSE / FUSE2).

    Parameters
    ----------
    composition : str or Composition
        Formula to search, e.g. ``"Ca3Ti2O7"``.
    relaxer : object or str, optional
        Anything with ``relax(atoms) -> RelaxResult`` (e.g. ``TieredRelaxer``) or a
        named stack (``"proxy+chgnet"``).  Default: ``"proxy+chgnet"``.
    calculator : ase Calculator, optional
        A plain ASE calculator, wrapped in a default FIRE + FrechetCellFilter relaxation.
    max_atoms, initial_population, generator, generator_options, structures, pool :
        Cell size limit, size of the starting population, the registered generator
        that makes it (``"gnoa"``, the default: GN-OA on the proxy model, 200
        evaluations per formula-unit count, its best distinct structures first and
        the rest a pool for moves 13/14; ``"mix"``, ``"fuse"``, ``"symmetric"``), its
        options, user structures (Atoms or files) to start from, and a pool of unused
        (ML) structures for moves 13/14.
    hop_after : int
        Start hopping after this many population structures are relaxed, from the
        lowest of them; the rest of the population is relaxed one before each step
        (``ase_fuse.population``).  Default 5 (raced: ``benchmarks/README.md``); 0:
        the whole population first (FUSE's order; with an executor it runs in
        parallel, the tail does not).
    seed : int
        Seeds the one random stream the search owns (moves, acceptance, generator).
    temperature, melt_threshold, melt_increment, rmax :
        Metropolis temperature (eV/atom), consecutive rejections before melting, the
        rise as multiples of T, and steps without a new global minimum to converge.
    move_weights : dict or sequence
        Weights of FUSE's 14 moves (default equal).
    adaptive_moves : learn the weights as the run goes: each move's reward (new best,
        accepted) per ML step scales its weight 0.25-4x (``ase_fuse.moves.adaptive``).
    pressure : float
        External pressure in GPa (default 0): every cell relaxes under it and the
        search compares enthalpy per atom, ``H / N = (E + PV) / N`` (``best_energy``
        and the log hold it); the db stores ``energy_per_atom``, ``enthalpy_per_atom``,
        ``pressure`` and ``volume``.  The relaxer must take it (``set_pressure``: a
        ``TieredRelaxer`` or a named stack); the batched ones run at zero pressure.
    symmetrize, symprec : spglib symmetrisation of candidates before relaxation.
    reuse : a candidate equal to an input already relaxed in this run takes that
        result instead of being relaxed again (``reused_from``; ``ase_fuse.identity``).
    directory : run folder for ``best.cif``, ``current.cif``, ``summary.json`` and the db.
    db : database file name (inside ``directory`` unless absolute).
    restart : continue from the db; every setting that defines the run must match the
        stored one (``ase_fuse.run_settings``).  One search at a time per folder: it
        holds ``directory/fuse.lock`` until ``run()`` ends or :meth:`close`.
    logfile, trajectory : as in ASE optimisers (``'-'`` is stdout, ``None`` quiet).
    executor : concurrent.futures Executor, optional
        Where relaxations run (``ase_fuse.executors``): a ProcessPoolExecutor or a
        Dask client's ``get_executor()``; the initial population is submitted at
        once.  None: in this process (a relaxer with ``relax_many`` gets the whole
        initial population as one batch).
    """

    @releases_lock_on_error
    def __init__(self, composition, relaxer=None, *, calculator=None,
                 max_atoms=_D["max_atoms"], initial_population=_D["initial_population"],
                 hop_after=_D["hop_after"], generator=_D["generator"],
                 generator_options=_D["generator_options"], structures=_D["structures"],
                 pool=_D["pool"], seed=_D["seed"], temperature=_D["temperature"],
                 melt_threshold=_D["melt_threshold"], melt_increment=_D["melt_increment"],
                 rmax=_D["rmax"], move_weights=_D["move_weights"],
                 symmetrize=_D["symmetrize"], symprec=_D["symprec"], limits=None,
                 vacancy_distance=_D["vacancy_distance"], directory=".", db=_D["db"],
                 restart=_D["restart"], logfile="-", trajectory=None,
                 oxidation_states=_D["oxidation_states"], stop_file="STOP", executor=None,
                 reuse=_D["reuse"], adaptive_moves=_D["adaptive_moves"],
                 pressure=_D["pressure"]):
        self.composition = Composition(composition, oxidation_states)
        self.options = validate_options(
            self.composition, max_atoms=max_atoms, initial_population=initial_population,
            hop_after=hop_after,
            temperature=temperature, melt_threshold=melt_threshold, rmax=rmax, seed=seed,
            symprec=symprec, melt_increment=melt_increment,
            vacancy_distance=vacancy_distance, generator=generator)
        self.max_atoms = int(max_atoms)
        self.initial_population = int(initial_population)
        self.hop_after = int(hop_after)
        self._pending_population = []   # queued population slots relaxed between steps
        self.directory = Path(directory)
        self._check_writable()
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.rule = AcceptanceRule(temperature, melt_threshold, tuple(melt_increment))
        self.rmax = int(rmax)
        self.do_symmetrize = bool(symmetrize)
        self.reuse = bool(reuse)
        self.symprec = float(symprec)
        self.limits = limits or Limits()
        self.limits.max_atoms = self.max_atoms
        self.stop_file = self.directory / stop_file if stop_file else None
        self.relaxer = relaxer_at_pressure(make_relaxer(relaxer, calculator,
                                                        self.composition), pressure)
        self.pressure = float(getattr(self.relaxer, "pressure", 0.0) or 0.0)  # GPa
        from .executors import check_executor
        self.executor = check_executor(executor)

        from .moves import MoveContext, MoveSelector
        self.selector = MoveSelector(move_weights)
        self.selector.check_composition(self.composition)
        from .moves.adaptive import MoveCredit
        self.credit = MoveCredit(self.selector.numbers) if adaptive_moves else None
        from .generators import get as get_generator
        self.generator_name = generator
        self.generator_options = dict(generator_options or {})
        self.user_structures = structures
        fresh = get_generator("fuse")(self.composition, max_atoms=self.max_atoms,
                                      rng=self.rng)
        self.context = MoveContext(composition=self.composition, max_atoms=self.max_atoms,
                                   limits=self.limits, vacancy_distance=vacancy_distance,
                                   generator=fresh,
                                   pool=load_pool(pool, self.composition, self.max_atoms))

        if db is not None and (not isinstance(db, (str, Path)) or not str(db).strip()
                               or Path(db).name in ("", ".", "..")):
            raise InputError(f"must be a database file name, got {db!r}", field="db")
        db_path = Path(db) if db is None or Path(db).is_absolute() else self.directory / db
        self._lock = RunLock(self.directory)   # one live search per folder, from here
        lock_notice = self._lock.acquire()
        try:
            self.records = RunRecords(db_path if db is not None else self.directory / "fuse.db")
        except (OSError, sqlite3.Error) as err:
            raise InputError(f"cannot open {db_path}: {err}", field="db") from None
        from . import run_settings          # compared on restart before any write
        settings, stored, restart, fresh_restart = run_settings.for_restart(
            self, restart, relaxer=relaxer, calculator=calculator, seed=seed,
            generator=generator, generator_options=generator_options, structures=structures,
            pool=pool, melt_increment=melt_increment, vacancy_distance=vacancy_distance)
        state = self.records.load_state() if restart else None
        if not restart and self.records.count() > 0:
            raise InputError(f"{self.records.path} already holds a run; continue it with "
                             "--restart (restart=True in Python) or choose another folder",
                             field="db")
        self._logfile_arg = logfile
        super().__init__(atoms=None, logfile=logfile, trajectory=trajectory,
                         append_trajectory=bool(restart))
        for line in (lock_notice, fresh_restart and f"no run in {self.records.path} to "
                     "restart: starting a new one"):
            if line:
                self._log_line(line)
        self.current_id = self.best_id = None
        self.current_energy = self.best_energy = None
        self.atoms = self.best_atoms = None
        self.acceptance = self.rule.initial_state()
        self._last_written_best = None
        self._stopped = False
        if state is not None:
            self._restore(state)
        self.records.save_settings(run_settings.to_save(stored if restart else None,
                                                        settings))

    # -- the run folder's lock ---------------------------------------------------------
    def close(self):
        """Release the run folder (another search may then continue it) and close
        the files; ``with FuseBasinHopping(...) as opt:`` calls it on exit."""
        lock = self.__dict__.get("_lock")
        if lock is not None:
            lock.release()
        super().close()

    # -- ASE Dynamics interface --------------------------------------------------
    def todict(self):
        return {"type": "global-optimization", "optimizer": self.__class__.__name__,
                "composition": self.composition.formula, "seed": self.seed}

    def converged(self, *args):
        """True after ``rmax`` steps without a new global minimum."""
        return self.acceptance.steps_since_best >= self.rmax

    def irun(self, steps=1000, time_limit=None):
        """Run the search as a generator yielding ``converged`` after each step.

        time_limit: seconds from this call (or None); the search stops at the next
        safe point after it (between relaxations, also inside the initial
        population), writes its outputs as for ``STOP``, and a restart continues.
        Outputs are written however the loop ends (a caller's ``break`` included).
        """
        self.max_steps = self.nsteps + int(steps)
        self.set_time_limit(time_limit)
        self._stopped = False
        try:
            if self.current_id is None:
                if not self._initial_population():
                    return
                self.call_observers()
            yield self.converged()
            while not self.converged() and self.nsteps < self.max_steps:
                if self.stop_requested() or self.time_is_up():
                    break
                self.relax_due_population()       # with hop_after: the population's tail
                if self.should_stop():
                    break
                self.step()
                self.nsteps += 1
                self.call_observers()
                yield self.converged()
        finally:
            self.write_outputs()

    def run(self, steps=1000, time_limit=None):
        """Run ``steps`` basin-hopping steps (or until converged, or ``time_limit``
        seconds); returns converged.  The run folder's lock is released at the end."""
        converged = False
        reacquire(self)                       # if an earlier run() released it
        try:
            for converged in self.irun(steps=steps, time_limit=time_limit):
                pass
        finally:
            self._lock.release()
        return converged

    def set_time_limit(self, time_limit):
        """Stop ``time_limit`` seconds from now (None: no limit)."""
        from .durations import parse_duration
        seconds = parse_duration(time_limit, field="time_limit")
        self._deadline = None if seconds is None else time.monotonic() + seconds
        self._time_limit = seconds

    def time_is_up(self):
        """True once the time limit has passed (logged once)."""
        deadline = getattr(self, "_deadline", None)
        if deadline is None or time.monotonic() < deadline:
            return False
        if not self._stopped:
            self._log_line("time limit reached: stopping cleanly (restart continues)")
        self._stopped = True
        return True

    def should_stop(self):
        """A ``STOP`` file or the time limit: checked between relaxations."""
        return self._stopped or self.stop_requested() or self.time_is_up()

    # -- the search ---------------------------------------------------------------
    # One step in three public phases; ``step()`` is built from them, and a driver
    # that relaxes several searches' candidates together (``walkers.py``) uses them
    # directly: propose_step() for each, relax the pending candidates as it likes,
    # take_result() each result, then conclude_step(), ``nsteps += 1`` and
    # ``call_observers()`` as ``irun`` does.
    def step(self):
        """One basin-hopping step: move, (symmetrise), relax, accept or reject."""
        plan = self.propose_step()
        if plan.pending:
            from .executors import relax_one
            self.take_result(plan, relax_one(self.relaxer, plan.candidate, self.executor))
        self.conclude_step(plan)

    def propose_step(self):
        """Phase 1: the next step's valid candidate, queued in the db, as a
        :class:`StepPlan`.  After a restart a candidate already relaxed (or failed)
        is reused, and so is the result of an equal input relaxed earlier in the run
        (the row records ``reused_from``): ``plan.pending`` is False and
        ``plan.energy`` holds the result."""
        step = self.nsteps + 1
        candidate, move, slot = self._propose(step)
        row = self.records.find(step, slot)
        if row is not None and row.status in ("relaxed", "failed"):
            energy = row_enthalpy(row) if row.status == "relaxed" else None
            return StepPlan(step, move, slot, candidate, row.id, energy, pending=False)
        kv = {"parent": self.current_id, "move": move.number, "move_name": move.name}
        if self.reuse:  # an input relaxed before is not relaxed again (a restart too)
            source = self.records.relaxed_input_like(candidate)
            if source is not None:
                row_id, energy = self.records.add_reused(
                    candidate, step, slot, source, row_id=row.id if row else None, **kv)
                return StepPlan(step, move, slot, candidate, row_id, energy, pending=False)
        row_id = row.id if row is not None else self.records.add_queued(
            candidate, step, slot, **kv)
        return StepPlan(step, move, slot, candidate, row_id)

    def take_result(self, plan, result):
        """Phase 2: record the relaxation ``result`` (a RelaxResult) of ``plan``."""
        self.records.record_result(plan.row_id, result)
        plan.energy = None if result.failed else result_enthalpy(result)
        plan.pending = False

    def conclude_step(self, plan):
        """Phase 3: accept or reject the relaxed candidate of ``plan``; commit the
        state (the caller then counts the step, as ``irun`` does)."""
        if plan.pending:
            raise RuntimeError(f"step {plan.step}: its candidate is not relaxed yet")
        self._conclude_step(plan.step, plan.move, plan.row_id, plan.energy)

    def _conclude_step(self, step, move, row_id, energy):
        accepted = downhill = new_best = False
        if energy is not None:
            accepted, downhill = self.rule.accept(energy, self.current_energy,
                                                  self.acceptance, self.rng)
            new_best = energy < self.best_energy - 1e-12
        self.acceptance = self.rule.update(self.acceptance, accepted, downhill, new_best,
                                           self.rng)
        if self.credit is not None:            # learned weights: saved with the state
            steps, new = self.records.step_facts(row_id)
            self.credit.record(move.number, steps, accepted, new_best, new)
            self.selector.factors = self.credit.factors()
        if accepted:
            self.current_id, self.current_energy = row_id, energy
            self.atoms = self.records.atoms(row_id)
        if new_best:
            self.best_id, self.best_energy = row_id, energy
            self.best_atoms = self.atoms
        self.records.commit_step(row_id, self._state(step), accepted=bool(accepted),
                                 temperature=float(self.acceptance.temperature))
        if new_best:
            self.best_atoms.write(self.directory / "best.cif")
        self._write_summary(step)
        self._log_step(step, move, energy, accepted)

    def _draw_candidate(self, step):
        """A candidate from the selector; when no move gives a valid one from the
        current structure, a new structure (moves 13/14) instead of ending the run."""
        from .moves.catalogue import NEW_STRUCTURE_MOVES
        try:
            return self.selector.propose(self.atoms, self.context, self.rng)
        except GenerationError as err:
            self._log_line(f"  step {step}: {err}; a new structure (moves 13/14) instead")
            try:
                return self.selector.propose(self.atoms, self.context, self.rng,
                                             only=NEW_STRUCTURE_MOVES)
            except GenerationError as again:
                raise GenerationError(f"step {step}: {err}; new structures failed too: "
                                      f"{again}") from None

    def _propose(self, step, max_invalid=20):
        """Draw a valid candidate; invalid ones are recorded with their reason."""
        limits = limits_for_parent(self.limits, self.atoms, self.composition)
        for slot in range(max_invalid):
            candidate, move = self._draw_candidate(step)
            if self.do_symmetrize:
                symmetric, number, error = symmetrize(candidate, self.symprec)
                if error:
                    self._log_line(f"  step {step}: {error}; keeping P1 candidate")
                else:
                    symmetric.info = dict(candidate.info, spacegroup=number)
                    candidate = symmetric
            reason = check_structure(candidate, self.composition, limits)
            if reason is None:
                return candidate, move, slot
            if self.records.find(step, slot) is None:
                self.records.add_invalid(candidate, step, slot, reason, move=move.number,
                                         move_name=move.name, parent=self.current_id)
        raise GenerationError(f"step {step}: {max_invalid} candidates in a row were invalid")

    def _commonest_failure(self):
        """``"N of M: <reason>"`` for the commonest reason among failed/invalid rows."""
        from collections import Counter
        reasons = Counter(str(r.get("reason", "unknown")).split(";")[0][:120]
                          for status in ("failed", "invalid")
                          for r in self.records.rows(status=status))
        if not reasons:
            return "no reason recorded"
        reason, n = reasons.most_common(1)[0]
        return f"{n} of {sum(reasons.values())}: {reason}"

    # -- state and restart ----------------------------------------------------------
    def _state(self, step=None):
        return {"nsteps": self.nsteps if step is None else step,
                "current_id": self.current_id, "current_energy": self.current_energy,
                "best_id": self.best_id, "best_energy": self.best_energy,
                "acceptance": self.acceptance.todict(),
                "rng": self.rng.bit_generator.state,
                "pool_ids": [a.info.get("pool_index") for a in self.context.pool],
                "move_credit": None if self.credit is None else self.credit.todict()}

    def _restore(self, state):
        from .acceptance import AcceptanceState
        self.nsteps = int(state["nsteps"])
        self.current_id, self.current_energy = state["current_id"], state["current_energy"]
        self.best_id, self.best_energy = state["best_id"], state["best_energy"]
        self.acceptance = AcceptanceState.fromdict(state["acceptance"])
        self.rng.bit_generator.state = state["rng"]
        if self.credit is not None and state.get("move_credit"):
            from .moves.adaptive import MoveCredit
            self.credit = MoveCredit.fromdict(state["move_credit"])
            self.selector.factors = self.credit.factors()
        keep = set(state.get("pool_ids") or [])
        self.context.pool.extend(self._load_generator_pool())
        self.context.pool[:] = [a for a in self.context.pool if a.info.get("pool_index") in keep]
        self._restore_population()
        self.atoms = self.records.atoms(self.current_id)
        self.best_atoms = self.records.atoms(self.best_id)
        self._last_written_best = self.best_id
        self.best_atoms.write(self.directory / "best.cif")  # in case the kill came first
        self._log_line(f"restarted at step {self.nsteps}: best {self.best_energy:.4f} "
                       f"eV/atom, T = {self.acceptance.temperature:.4f}")

    def stop_requested(self):
        """True (once) when the ``STOP`` file is there; it is removed and logged."""
        reacquire(self)                       # before a step: this search owns the folder
        if self.stop_file is not None and self.stop_file.exists():
            self.stop_file.unlink()
            self._log_line(f"{self.stop_file.name} file found: stopping cleanly "
                           "(file removed; restart continues)")
            self._stopped = True
            return True
        return False

    def _check_writable(self):
        # one probe per process: two searches started at once in one folder must reach
        # the lock (one runs, one is refused), not trip over each other's probe file
        probe = self.directory / f".ase-fuse-write-test-{os.getpid()}"
        problem = folder_problem(self.directory)
        if problem:
            raise InputError(problem, field="directory")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise InputError(f"run folder {self.directory} is not writable: "
                             f"{err.strerror}", field="directory") from None

    @property
    def best_energy_per_atom(self):
        return self.best_energy

    def __repr__(self):
        return (f"FuseBasinHopping({self.composition.formula!r}, steps={self.nsteps}, "
                f"best={self.best_energy})")
