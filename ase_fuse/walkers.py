"""Lock-step walkers: independent basin-hopping searches whose relaxations batch together.

Each walker is a full :class:`~ase_fuse.basinhopping.FuseBasinHopping` with its own
seed, random stream and run folder (``<directory>/seed<seed>/fuse.db``).  In each
round every walker proposes its next candidate from its own stream, all candidates
(and at the start all initial populations) are relaxed with one ``relax_many`` call (a
:class:`~ase_fuse.calculators.batched.BatchedRelaxer` sends them through the model
together), and each walker then accepts or rejects its own.  A walker's sequence
therefore depends only on its seed, not on how many walkers ran beside it (as long
as the relaxer gives each structure the same result in any batch, as
``BatchedRelaxer`` does: every system has its own FIRE state).

A walker that converges (``rmax``) or finds its ``STOP`` file drops out; the others
go on; a ``STOP`` file in ``directory`` stops them all after the current round.  Restart works per walker (``restart=True``), as for a single search.
"""

from pathlib import Path

from .errors import InputError
from .executors import relax_structures


def make_walkers(composition, seeds, batch_relaxer, directory=".", **options):
    """One :class:`FuseBasinHopping` per seed, sharing ``batch_relaxer``.

    A ``logfile`` or ``trajectory`` string holding ``{seed}`` names one file per walker
    (``"run/seed{seed}/fuse.log"``).
    """
    from .basinhopping import FuseBasinHopping

    seeds = list(seeds)
    if not seeds:
        raise InputError("need at least one seed", field="seeds")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"seeds repeat: {seeds}", field="seeds")
    if batch_relaxer is None or not callable(getattr(batch_relaxer, "relax", None)):
        raise InputError("needs a relaxer with relax() (and relax_many() to batch), "
                         "e.g. BatchedRelaxer", field="batch_relaxer")
    for bad in ("seed", "relaxer", "calculator", "directory"):
        if bad in options:
            raise InputError("set per walker by run_walkers", field=bad)
    options.setdefault("logfile", None)
    walkers = []
    for seed in seeds:
        own = dict(options)
        for key in ("logfile", "trajectory"):
            if isinstance(own.get(key), str) and "{seed}" in own[key]:
                own[key] = own[key].replace("{seed}", str(seed))
        folder = Path(directory) / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)     # before a log file opens there
        try:                                          # each takes its folder's lock
            walkers.append(FuseBasinHopping(composition, relaxer=batch_relaxer, seed=seed,
                                            directory=folder, **own))
        except BaseException:
            for walker in walkers:                    # a refused one frees the others
                walker.close()
            raise
    return walkers


def run_walkers(composition, seeds, steps=100, batch_relaxer=None, directory=".",
                total=False, on_round=None, time_limit=None, **options):
    """Run one walker per seed for ``steps`` basin-hopping steps in lock-step.

    ``options`` are :class:`FuseBasinHopping` keywords (``max_atoms``,
    ``initial_population``, ``restart``, ``executor``...).  total: ``steps`` is each
    walker's total (a restarted walker runs what is left), as ``ase-fuse run
    --steps``.  on_round: called with the walkers after each lock-step round.
    time_limit: seconds from this call; every walker stops at the next safe point.
    Returns the walkers (``best_energy``, ``best_atoms``, ``records``...), each with
    its outputs written.
    """
    walkers = make_walkers(composition, seeds, batch_relaxer, directory, **options)
    for walker in walkers:
        walker.max_steps = int(steps) if total else walker.nsteps + int(steps)
        walker.set_time_limit(time_limit)
    if not start_together([w for w in walkers if w.current_id is None], batch_relaxer):
        rounds = 0                            # stopped inside the initial populations
    else:
        rounds = max(w.max_steps - w.nsteps for w in walkers)
    stop_all = Path(directory) / "STOP"
    for _ in range(max(0, rounds)):
        if stop_all.exists():                 # one STOP file for every walker
            stop_all.unlink()
            break
        if walkers[0].time_is_up():
            break
        active = [w for w in walkers if w.nsteps < w.max_steps and not w.converged()
                  and not w.stop_requested()]
        if not active:
            break
        advance_together(active, batch_relaxer)
        if on_round is not None:
            on_round(walkers)
    for walker in walkers:
        walker.write_outputs()
        walker.close()                        # each folder's lock: another run may go on
    return walkers


def start_together(walkers, batch_relaxer):
    """The initial populations of ``walkers``, relaxed together in one call.

    Returns False when the time limit or a STOP file cut it short (each walker keeps
    what finished; a restart relaxes the rest)."""
    if not walkers:
        return True
    plans = [walker.population_plan() for walker in walkers]
    items = [(plan, k) for plan in plans for k in range(len(plan.structures))]

    def store(index, result):
        plan, k = items[index]
        plan.store(k, result)

    relax_structures(batch_relaxer, [plan.structures[k] for plan, k in items],
                     walkers[0].executor, on_result=store,
                     should_stop=lambda: any(w.should_stop() for w in walkers))
    started = [walker.finish_population(plan, batch_relaxer)
               for walker, plan in zip(walkers, plans)]
    for walker, ok in zip(walkers, started):
        if ok:
            walker.call_observers()
    return all(started)


def advance_together(walkers, batch_relaxer):
    """One basin-hopping step of every walker, their relaxations in one batch (with
    ``hop_after``, the population structures due before the step first, batched too).
    Only the search's public step phases are used, as ``FuseBasinHopping.irun`` does."""
    due = [(walker, item) for walker in walkers for item in walker.population_due()]
    if due:
        relax_structures(batch_relaxer, [item[2] for _, item in due], walkers[0].executor,
                         on_result=lambda i, result: due[i][0].absorb_population(
                             due[i][1], result))
    plans = [walker.propose_step() for walker in walkers]
    todo = [k for k, plan in enumerate(plans) if plan.pending]

    def store(index, result):
        k = todo[index]
        walkers[k].take_result(plans[k], result)

    relax_structures(batch_relaxer, [plans[k].candidate for k in todo],
                     walkers[0].executor, on_result=store)
    for walker, plan in zip(walkers, plans):
        walker.conclude_step(plan)
        walker.nsteps += 1
        walker.call_observers()
