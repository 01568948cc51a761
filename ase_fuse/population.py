"""The initial population of a search: made, queued, relaxed, and (with ``hop_after``)
interleaved with the first basin-hopping steps.

:class:`PopulationPhase` is mixed into :class:`~ase_fuse.basinhopping.FuseBasinHopping`.
With ``hop_after = K`` (0 < K < the population) only the first K structures are relaxed
before hopping starts from the lowest of them; the rest stay queued in the db and one
is relaxed after each step: slot ``K + n`` between steps ``n + 1`` and ``n + 2``.  A relaxed
population structure below the best so far becomes current and best, as the lowest of
the population does.  The schedule depends only on the step count, so a restart (or a
run killed at any moment) replays it exactly; the population is made before any step,
so hopping early draws nothing from the random stream that the population would.
``hop_after = 0`` relaxes the whole population first (FUSE's order).
"""

import time
from types import SimpleNamespace

from .errors import GenerationError
from .records import result_enthalpy, row_enthalpy


class PopulationPhase:
    """The starting population (a mixin of FuseBasinHopping)."""

    def _head_size(self):
        """How many population slots are relaxed before the first step."""
        k = int(getattr(self, "hop_after", 0) or 0)
        return self.initial_population if k <= 0 else min(k, self.initial_population)

    def _initial_population(self):
        """Make, relax and record the head of the starting population; the lowest
        becomes current.

        Each relaxation is written to the db as it finishes.  Returns False when a
        ``STOP`` file or the time limit ended it early: what finished is kept and a
        restart relaxes only the rest.  When every structure of the head failed, the
        queued ones are relaxed one by one until one succeeds.
        """
        from .executors import relax_structures
        plan = self.population_plan()
        relax_structures(self.relaxer, plan.structures, self.executor, on_result=plan.store,
                         should_stop=self.should_stop)
        return self.finish_population(plan)

    def finish_population(self, plan, relaxer=None):
        """After the head of ``plan`` was relaxed (``plan.store`` took each result):
        rescue a head that all failed, then make the lowest current (True), or, when
        the run was stopped first, keep the best so far in the outputs (False)."""
        if not plan.unfinished():
            self._rescue_head(plan, relaxer)
        if plan.unfinished() or not any(energy is not None for _, energy in plan.energies) \
                and self._pending_population:
            self._population_stopped(plan)
            return False
        self._population_done(plan)
        return True

    def _rescue_head(self, plan, relaxer=None):
        """Every structure of the head failed: relax queued ones, one at a time, until
        one succeeds (or none is left, or the run is stopped)."""
        from .executors import relax_structures
        while (self._pending_population and not self.should_stop()
               and all(energy is None for _, energy in plan.energies)):
            plan.take_pending()
            index = len(plan.structures) - 1
            relax_structures(relaxer or self.relaxer, plan.structures[index:],
                             self.executor,
                             on_result=lambda _, result: plan.store(index, result))

    def population_plan(self):
        """Make the starting population and queue what is not yet relaxed in the db.

        Returns a plan: ``structures`` (the head) to relax and ``store(index,
        result)`` to record each result as it arrives (lock-step walkers relax
        several plans together).  Every structure is queued before any is relaxed, so
        a restart resubmits only what is still queued; the queued slots past the head
        are relaxed between steps (:meth:`population_due`).  Then
        :meth:`finish_population`.
        """
        started = time.perf_counter()
        from .search_setup import initial_structures
        structures, extra_pool = initial_structures(
            self.composition, self.initial_population, self.generator_name,
            self.generator_options, self.user_structures, self.max_atoms, self.rng)
        self._save_generator_pool(extra_pool)
        if extra_pool:  # the pool as written (extxyz keeps 8 decimals): a restart reads
            extra_pool = self._load_generator_pool()  # this back, and must see the same
        self.context.pool.extend(extra_pool)
        head = self._head_size()
        self._log_line(f"initial population: {len(structures)} structures "
                       f"({self.generator_name if self.user_structures is None else 'given'})"
                       + (f"; hopping starts after the first {head}, one more of them "
                          "relaxed before each step" if head < len(structures) else ""))
        out, todo, pending = [], [], []
        for slot, atoms in enumerate(structures):
            row = self.records.find(0, slot)
            if row is not None and row.status in ("relaxed", "failed"):
                out.append((row.id, row_enthalpy(row) if row.status == "relaxed" else None))
                continue
            row_id = row.id if row is not None else self.records.add_queued(
                atoms, 0, slot, parent=0, move=0)
            out.append((row_id, None))
            (todo if slot < head else pending).append((slot, row_id, atoms))
        self._pending_population = pending
        finished = set()

        def store(index, result):
            slot, row_id, _ = todo[index]
            self.records.record_result(row_id, result)
            out[slot] = (row_id, None if result.failed else result_enthalpy(result))
            finished.add(index)
            self._log_population(slot, len(out), result)

        def take_pending():
            todo.append(self._pending_population.pop(0))
            plan.structures.append(todo[-1][2])

        plan = SimpleNamespace(started=started, energies=out, store=store,
                               structures=[atoms for _, _, atoms in todo],
                               take_pending=take_pending,
                               unfinished=lambda: len(todo) - len(finished))
        return plan

    def _log_population(self, slot, total, result, note=""):
        self._log_line(f"  initial {slot + 1}/{total}: " + (
            f"{result_enthalpy(result):.4f} eV/atom{note}" if not result.failed
            else f"failed ({str(result.failed)[:60]})"))

    def _population_stopped(self, plan):
        """The initial population was cut short: keep the best so far in the outputs."""
        done = [(row_id, energy) for row_id, energy in plan.energies if energy is not None]
        self._log_line(f"initial population stopped with {plan.unfinished()} of "
                       f"{len(plan.energies)} structures still to relax")
        if done:
            self.best_id, self.best_energy = min(done, key=lambda item: item[1])
            self.best_atoms = self.records.atoms(self.best_id)
            self._new_best()

    def _population_done(self, plan):
        """After the head of ``plan`` is relaxed: the lowest becomes current."""
        energies = plan.energies
        for slot, (row_id, energy) in enumerate(energies):
            if energy is not None and (self.current_energy is None
                                       or energy < self.current_energy):
                self.current_id, self.current_energy = row_id, energy
        if self.current_id is None:
            raise GenerationError("every structure of the initial population failed to "
                                  f"relax ({self._commonest_failure()}); see the 'reason' "
                                  "column of " + self.records.path)
        self.best_id, self.best_energy = self.current_id, self.current_energy
        self.atoms = self.records.atoms(self.current_id)
        self.best_atoms = self.atoms
        self.records.commit_step(None, self._state())
        self._new_best()
        left = len(self._pending_population)
        self._log_line(f"initial population {'head ' if left else ''}done in "
                       f"{time.perf_counter() - plan.started:.1f} s; best "
                       f"{self.best_energy:.4f} eV/atom"
                       + (f"; {left} more relaxed between steps" if left else ""))
        self._log_header()

    # -- the population's tail, between steps (public step phases) --------------------
    def population_due(self):
        """The queued population structures due before the next step, as
        ``(slot, row_id, atoms)``: slot ``K + n`` is due once ``n + 1`` steps are done."""
        due_below = self._head_size() + self.nsteps
        return [item for item in self._pending_population if item[0] < due_below]

    def absorb_population(self, item, result):
        """Record the relaxation of a queued population structure; one below the best
        so far becomes current and best.  Safe to repeat (a restart after a kill)."""
        slot, row_id, _ = item
        self.records.record_result(row_id, result)
        self._pending_population = [p for p in self._pending_population if p[0] != slot]
        better = (not result.failed and self.best_energy is not None
                  and result_enthalpy(result) < self.best_energy - 1e-12)
        if better:
            self.current_id = self.best_id = row_id
            self.current_energy = self.best_energy = result_enthalpy(result)
            self.atoms = self.best_atoms = self.records.atoms(row_id)
        self.records.commit_step(None, self._state())
        if better:
            self._new_best()
        self._log_population(slot, self.initial_population, result,
                             " (new best: current)" if better else "")

    def relax_due_population(self):
        """Relax the population structures due before the next step (normally one);
        stops early on ``STOP`` or the time limit.  Returns how many were relaxed."""
        from .executors import relax_one
        done = 0
        for item in self.population_due():
            if self.should_stop():
                break
            self.absorb_population(item, relax_one(self.relaxer, item[2], self.executor))
            done += 1
        return done

    def _restore_population(self):
        """After a restart: the queued population rows past the head become pending
        again, and a relaxed one below the best (killed before it was taken as best)
        is taken now, as it would have been before the next step."""
        head = self._head_size()
        items = []
        for row in self.records.rows(step=0):
            slot = int(row.get("slot"))
            if slot < head:
                continue
            if row.get("status") == "queued":
                items.append((slot, row.id, self.records.atoms(row.id)))
            elif (row.get("status") == "relaxed" and self.best_energy is not None
                  and row_enthalpy(row) < self.best_energy - 1e-12):
                self.current_id = self.best_id = row.id
                self.current_energy = self.best_energy = row_enthalpy(row)
        self._pending_population = sorted(items, key=lambda item: item[0])
