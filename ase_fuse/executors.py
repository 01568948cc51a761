"""Relaxations through a ``concurrent.futures.Executor``: in-process, processes or Dask.

The driver (the search) owns the database; workers only relax.  A candidate is
written as ``queued`` before it is submitted and its row is updated when the result
comes back, so a driver killed while work is out restarts with those rows still
``queued`` and submits them again.

``executor`` may be

- ``None`` or :class:`SerialExecutor`: relax in this process, one after another (a
  relaxer with ``relax_many``, e.g. :class:`~ase_fuse.calculators.batched.BatchedRelaxer`,
  then gets the whole list at once);
- a ``concurrent.futures.ProcessPoolExecutor`` (the relaxer must pickle: no lambdas);
  a batching relaxer (``batch_size`` > 1) gets chunks of structures per task;
- a Dask ``distributed.Client(...).get_executor()`` (cloudpickle: lambdas are fine).
  Dask reruns a task whose worker died; :func:`relax_structures` also resubmits a
  task whose future raised because its worker was lost.

Independent searches (seeds, compositions) fan out over one executor with
:func:`ase_fuse.runs.run_many`; the command line's executors and torch threads are
set up in :mod:`ase_fuse.runs` too (this module only dispatches relaxations, so the
search imports it and it imports nothing of the search).
"""

import concurrent.futures as cf

from .errors import InputError


class SerialExecutor(cf.Executor):
    """An executor that runs each call at submission, in this process."""

    def submit(self, fn, /, *args, **kwargs):
        future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001 - handed to the caller via the future
            future.set_exception(err)
        return future


def check_executor(executor):
    """``executor`` if usable (None becomes ``None``: in-process); else InputError."""
    if executor is None:
        return None
    if not callable(getattr(executor, "submit", None)):
        raise InputError(f"needs a concurrent.futures.Executor (or a Dask client's "
                         f"get_executor()), got {type(executor).__name__}", field="executor")
    return executor


def _relax_one(relaxer, atoms):
    return relaxer.relax(atoms)


def _relax_chunk(relaxer, structures):
    return relaxer.relax_many(structures)


def executor_slots(executor):
    """How many tasks ``executor`` runs at once, when it tells (else 1)."""
    client = getattr(executor, "_client", None)          # Dask's ClientExecutor
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except (OSError, TimeoutError, AttributeError):
            return 1
    return max(1, int(getattr(executor, "_max_workers", 1) or 1))


def chunk_size(relaxer, n, executor):
    """Structures per task: 1, or for a batching relaxer (``batch_size`` > 1) an even
    share: the number of tasks is a multiple of the executor's workers, each task at
    most four batches (a lost worker costs at most four batches of work)."""
    batch = getattr(relaxer, "batch_size", 1) or 1
    if batch <= 1 or not callable(getattr(relaxer, "relax_many", None)) or n < 1:
        return 1
    slots = executor_slots(executor)
    tasks = slots * -(-n // (slots * 4 * batch))
    return -(-n // tasks)


def streams_results(relaxer):
    """True when ``relaxer.relax_many`` takes ``on_result``/``should_stop`` (reports
    each result as it finishes), as the relaxers of ``ase_fuse.calculators`` do."""
    import inspect
    many = getattr(relaxer, "relax_many", None)
    if not callable(many):
        return False
    try:
        params = inspect.signature(many).parameters
    except (TypeError, ValueError):
        return False
    return "on_result" in params and "should_stop" in params


def relax_structures(relaxer, structures, executor=None, on_result=None, resubmit=3,
                     should_stop=None):
    """Relax ``structures`` with ``relaxer``; returns the results in input order.

    executor: None (in-process) or any Executor.  In-process, a relaxer whose
        ``relax_many`` streams (:func:`streams_results`) gets the whole list, so a
        batched relaxer keeps its batch full; another ``relax_many`` gets chunks of
        its ``batch_size`` (the whole list when it names none); a relaxer without
        one relaxes one structure at a time.  Through an executor a batching
        relaxer (``batch_size`` > 1) gets chunks per task (:func:`chunk_size`), so
        each worker batches too.
    on_result: ``on_result(index, result)`` called in the driver as each result
        arrives (completion order), e.g. to write it to the db at once: a run
        stopped or killed keeps every finished relaxation.
    should_stop: checked between results (in-process: also inside a streaming
        relaxer); once it returns True nothing more is started, pending tasks are
        cancelled and the undone structures are ``None`` in the returned list.
    resubmit: how often one task is submitted again when its future raises
        (a lost worker, a broken pool); after that the error propagates.
    """
    structures = list(structures)
    results = [None] * len(structures)

    def keep(index, result):
        results[index] = result
        if on_result is not None:
            on_result(index, result)

    def stop():
        return should_stop is not None and bool(should_stop())

    if executor is None or isinstance(executor, SerialExecutor):
        if executor is None and len(structures) > 1 and streams_results(relaxer):
            relaxer.relax_many(structures, on_result=keep, should_stop=should_stop)
            return results
        many = getattr(relaxer, "relax_many", None)
        batch = getattr(relaxer, "batch_size", None) or len(structures)
        # a relax_many that does not stream: its batch_size at a time (all at once
        # when it names none), so each chunk reaches the db when it is done
        size = max(1, batch) if executor is None and callable(many) else 1
        for first in range(0, len(structures), size):
            if stop():
                break
            if size == 1:
                keep(first, relaxer.relax(structures[first]))
                continue
            chunk = structures[first:first + size]
            for index, result in enumerate(many(chunk)):
                keep(first + index, result)
        return results
    size = chunk_size(relaxer, len(structures), executor)
    chunks = [list(range(k, min(k + size, len(structures))))
              for k in range(0, len(structures), size)]

    def submit(chunk):
        if size == 1:
            return executor.submit(_relax_one, relaxer, structures[chunk[0]])
        return executor.submit(_relax_chunk, relaxer, [structures[i] for i in chunk])

    tries = {}
    pending = {submit(chunk): c for c, chunk in enumerate(chunks)}
    while pending:
        if stop():
            for future in pending:
                future.cancel()
            break
        done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED,
                          timeout=None if should_stop is None else 1.0)
        for future in done:
            c = pending.pop(future)
            try:
                out = future.result()
            except Exception:  # worker lost / pool broken: the relaxer itself never raises
                tries[c] = tries.get(c, 0) + 1
                if tries[c] > resubmit:
                    raise
                pending[submit(chunks[c])] = c
                continue
            for index, result in zip(chunks[c], [out] if size == 1 else out):
                keep(index, result)
    return results


def relax_one(relaxer, atoms, executor=None):
    """One relaxation, through ``executor`` when given."""
    return relax_structures(relaxer, [atoms], executor)[0]
