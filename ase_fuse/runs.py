"""Runs, not relaxations: independent searches over one executor (:func:`run_many`),
the command line's executor (:func:`run_executor`: this process, a local Dask
cluster or a remote one) and its torch threads (:func:`limit_torch_threads`).

Split from :mod:`ase_fuse.executors` (which only dispatches relaxations and is
imported by the search) so that no module imports back into one that imports it.
"""

from contextlib import ExitStack, contextmanager
from pathlib import Path

from .errors import InputError
from .executors import SerialExecutor, check_executor


# -- independent runs ----------------------------------------------------------------
def run_search(config):
    """Run one search from a dict of :class:`FuseBasinHopping` options.

    ``config`` holds ``composition``, ``steps`` and any constructor keyword
    (``directory`` is required so that runs do not share a db).  Returns a summary
    dict.  Module-level so that executors can pickle it.
    """
    from .basinhopping import FuseBasinHopping

    config = dict(config)
    steps = int(config.pop("steps", 100))
    composition = config.pop("composition")
    config.setdefault("logfile", None)
    opt = FuseBasinHopping(composition, **config)
    converged = opt.run(steps=steps)
    return {"composition": opt.composition.formula, "seed": opt.seed,
            "directory": str(opt.directory), "steps": opt.nsteps,
            "best_energy_per_atom": opt.best_energy, "best_row": opt.best_id,
            "converged": bool(converged), "db": opt.records.path}


def run_many(configs, executor=None):
    """Run independent searches (one dict of options each) over ``executor``.

    Each config must name its own ``directory``; results come back in input order.
    """
    configs = [dict(c) for c in configs]
    for k, config in enumerate(configs):
        if "composition" not in config:
            raise InputError(f"config {k} has no composition", field="configs")
        if "directory" not in config:
            raise InputError(f"config {k} has no directory (runs must not share a db)",
                             field="configs")
    folders = [str(Path(c["directory"]).resolve()) for c in configs]
    if len(set(folders)) != len(folders):
        raise InputError("two configs share a directory", field="configs")
    executor = check_executor(executor) or SerialExecutor()
    futures = [executor.submit(run_search, config) for config in configs]
    return [future.result() for future in futures]


# -- the command line's executors ------------------------------------------------------
TORCH_TIERS = ("chgnet", "matgl", "sevennet")


def limit_torch_threads(threads, stack):
    """Pin torch to ``threads`` threads when the stack ``stack`` (a name) uses torch.

    One thread is the command's default: CHGNet on a cell of tens of atoms is faster
    on one thread than on several (measured: a 200-structure population relaxed 2.8x
    slower one at a time on two threads than on one; ``benchmarks/README.md``).  Run
    more processes (``--workers``) to use more cores.  ``threads=0`` leaves torch's
    own default.  Imports torch only for a stack that needs it.
    """
    threads = int(threads)
    if threads < 0:
        raise InputError(f"must be >= 0, got {threads}", field="threads")
    if threads and isinstance(stack, str) and any(t in stack for t in TORCH_TIERS):
        try:
            import torch
        except ImportError:   # no torch, nothing to pin: the CHGNet tier says what is missing
            return
        torch.set_num_threads(threads)


@contextmanager
def run_executor(workers=0, scheduler=None):
    """The executor of ``ase-fuse run``: None (this process), a Dask ``LocalCluster``
    of ``workers`` processes, or the Dask cluster at ``scheduler``; closed at exit."""
    workers = int(workers or 0)
    if workers < 0:
        raise InputError(f"must be >= 0, got {workers}", field="workers")
    if workers and scheduler:
        raise InputError("give --workers or --scheduler, not both", field="workers")
    if not workers and not scheduler:
        yield None
        return
    field = "scheduler" if scheduler else "workers"
    try:
        import distributed
    except ImportError:
        raise InputError("needs Dask: pip install 'ase-fuse[dask]'", field=field) from None
    with ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(distributed.Client(scheduler, timeout="20s"))
            except (OSError, TimeoutError, ValueError) as err:
                raise InputError(f"cannot reach {scheduler}: {err}", field=field) from None
        else:
            # Dask's nanny starts each worker with OMP_NUM_THREADS=1: one torch thread each
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None))
            client = stack.enter_context(distributed.Client(cluster))
        yield client.get_executor()
