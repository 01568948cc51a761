"""Optimisers over a GN-OA search space: TPE (hyperopt), random search, particle swarm.

Every optimiser minimises ``objective(points) -> np.ndarray`` of losses, where the
points are dicts built from a list of :class:`~.space.Dimension`.  Objectives take
a batch so a batched energy model can score many structures at once (random search,
PSO and the numpy TPE send batches; hyperopt's TPE is sequential).  Each optimiser takes a
``numpy.random.Generator`` and gives the same result for the same seed.

:class:`OptimizerResult` records the time spent inside the objective so the
optimiser's own overhead share can be measured.
"""

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ase_fuse.errors import InputError

FAILED_LOSS = 1.0e3  # loss of a point that breaks a hard constraint


@dataclass
class OptimizerResult:
    """All evaluated points with their losses, in evaluation order, plus timings."""
    points: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    total_s: float = 0.0
    objective_s: float = 0.0

    @property
    def overhead_s(self):
        return max(self.total_s - self.objective_s, 0.0)

    @property
    def overhead_share(self):
        """Fraction of the wall time spent in the optimiser itself (not the objective)."""
        return self.overhead_s / self.total_s if self.total_s > 0 else 0.0

    @property
    def best(self):
        """``(point, loss)`` with the lowest loss."""
        k = int(np.argmin(self.losses))
        return self.points[k], self.losses[k]


class _Counted:
    """Wraps an objective: counts evaluations, times them and caches repeated points."""

    def __init__(self, objective, result, budget):
        self.objective = objective
        self.result = result
        self.budget = budget
        self.cache = {}

    @property
    def left(self):
        return self.budget - len(self.result.losses)

    def __call__(self, points):
        losses = np.full(len(points), FAILED_LOSS)  # over budget: never evaluated
        todo = []
        for k, point in enumerate(points):
            key = _key(point)
            if key in self.cache:
                losses[k] = self.cache[key]
            else:
                todo.append(k)
        todo = todo[:max(self.left, 0)]
        if todo:
            start = time.perf_counter()
            fresh = np.asarray(self.objective([points[k] for k in todo]), dtype=float)
            self.result.objective_s += time.perf_counter() - start
            for k, loss in zip(todo, fresh):
                loss = float(loss) if np.isfinite(loss) else FAILED_LOSS
                losses[k] = loss
                self.cache[_key(points[k])] = loss
                self.result.points.append(points[k])
                self.result.losses.append(loss)
        return losses


def _key(point):
    return tuple(sorted((k, float(v)) for k, v in point.items()))


def _to_point(dimensions, u):
    return {d.name: d.from_unit(x) for d, x in zip(dimensions, u)}


class RandomSearch:
    """Uniform random points, scored in batches of ``batch_size``."""

    name = "random"

    def __init__(self, batch_size=32):
        self.batch_size = int(batch_size)

    def minimize(self, objective, dimensions, evaluations, rng):
        result = OptimizerResult()
        counted = _Counted(objective, result, evaluations)
        start = time.perf_counter()
        while counted.left > 0:
            n = min(self.batch_size, counted.left)
            u = rng.random((n, len(dimensions)))
            counted([_to_point(dimensions, row) for row in u])
        result.total_s = time.perf_counter() - start
        return result


class ParticleSwarm:
    """A small particle swarm on the unit cube (choices decoded by ``floor(u * n)``).

    Standard global-best PSO with inertia ``w`` and pulls ``c1`` (own best) and
    ``c2`` (swarm best); positions are clipped to [0, 1] and velocities to ``vmax``.
    Each generation is one batch for the objective.  The swarm stops early when 50
    generations in a row bring no new point (all cached: it has converged).
    """

    name = "pso"

    def __init__(self, particles=32, w=0.7, c1=1.5, c2=1.5, vmax=0.3):
        if particles < 2:
            raise InputError("a swarm needs at least 2 particles", field="particles")
        self.particles = int(particles)
        self.w, self.c1, self.c2, self.vmax = w, c1, c2, vmax

    def minimize(self, objective, dimensions, evaluations, rng):
        result = OptimizerResult()
        counted = _Counted(objective, result, evaluations)
        start = time.perf_counter()
        d = len(dimensions)
        n = min(self.particles, evaluations)
        x = rng.random((n, d))
        v = rng.uniform(-self.vmax, self.vmax, (n, d))
        f = counted([_to_point(dimensions, row) for row in x])
        own_x, own_f = x.copy(), f.copy()
        stall = 0
        while counted.left > 0 and stall < 50:
            best = own_x[np.argmin(own_f)]
            r1, r2 = rng.random((n, d)), rng.random((n, d))
            v = self.w * v + self.c1 * r1 * (own_x - x) + self.c2 * r2 * (best - x)
            v = np.clip(v, -self.vmax, self.vmax)
            x = np.clip(x + v, 0.0, 1.0)
            before = len(result.losses)
            f = counted([_to_point(dimensions, row) for row in x])
            stall = stall + 1 if len(result.losses) == before else 0
            better = f < own_f
            own_x[better], own_f[better] = x[better], f[better]
            # a particle stuck in a failed region restarts at random
            lost = own_f >= FAILED_LOSS
            if lost.all() or (lost.any() and rng.random() < 0.5):
                x[lost] = rng.random((int(lost.sum()), d))
        result.total_s = time.perf_counter() - start
        return result


class TPESearch:
    """Tree-structured Parzen estimator (GN-OA's choice), batched numpy or hyperopt.

    ``backend="numpy"`` (default): :class:`.tpe.ParzenTPE` asks for ``batch_size``
    suggestions at once from the whole history (the first ``n_startup_jobs`` points
    are random), so a batched energy model scores them together and the optimiser's
    own cost stays a small share of the time.  ``gamma``, ``candidates`` and
    ``max_bad`` tune it (see :class:`.tpe.ParzenTPE`).  The search stops early when
    50 batches in a row bring no new point (it has converged onto cached points).

    ``backend="hyperopt"``: hyperopt's ``tpe.suggest``, one suggestion at a time.  Its
    cost per suggestion grows with the number of trials, so the history restarts
    every ``block`` trials, seeded with the ``keep`` best points so far (re-scoring
    them is free: they are cached, and not counted as evaluations).
    """

    name = "tpe"
    BACKENDS = ("numpy", "hyperopt")

    def __init__(self, backend="numpy", batch_size=16, n_startup_jobs=20, gamma=0.25,
                 candidates=24, max_bad=100, block=200, keep=20):
        if backend not in self.BACKENDS:
            raise InputError(f"unknown TPE backend {backend!r}; known: "
                             f"{', '.join(self.BACKENDS)}", field="backend")
        if block < 1 or keep < 0:
            raise InputError("block must be >= 1 and keep >= 0", field="block")
        if batch_size != int(batch_size) or batch_size < 1:
            raise InputError(f"must be a whole number >= 1, got {batch_size!r}",
                             field="batch_size")
        if not 0.0 < gamma < 1.0:
            raise InputError(f"must lie in (0, 1), got {gamma!r}", field="gamma")
        self.backend = backend
        self.batch_size = int(batch_size)
        self.n_startup_jobs = int(n_startup_jobs)
        self.gamma, self.candidates, self.max_bad = float(gamma), int(candidates), int(max_bad)
        self.block = int(block)
        self.keep = int(keep)

    def minimize(self, objective, dimensions, evaluations, rng):
        if self.backend == "hyperopt":
            return self._minimize_hyperopt(objective, dimensions, evaluations, rng)
        return self._minimize_numpy(objective, dimensions, evaluations, rng)

    def _minimize_numpy(self, objective, dimensions, evaluations, rng):
        from .tpe import ParzenTPE
        result = OptimizerResult()
        counted = _Counted(objective, result, evaluations)
        tpe = ParzenTPE([len(d.options) if d.kind == "choice" else 0 for d in dimensions],
                        gamma=self.gamma, candidates=self.candidates, max_bad=self.max_bad)
        start = time.perf_counter()
        history_u = np.empty((64, len(dimensions)))
        history_f = np.empty(64)
        seen = stall = 0
        while counted.left > 0 and stall < 50:
            n = min(self.batch_size, counted.left)
            if seen < max(self.n_startup_jobs, 2):
                u = tpe.random(n, rng)
            else:
                u = tpe.suggest(history_u[:seen], history_f[:seen], n, rng)
            before = len(result.losses)
            losses = counted([_to_point(dimensions, row) for row in u])
            stall = stall + 1 if len(result.losses) == before else 0
            if seen + n > len(history_f):  # grow the history by doubling
                history_u = np.resize(history_u, (2 * (seen + n), len(dimensions)))
                history_f = np.resize(history_f, 2 * (seen + n))
            history_u[seen:seen + n], history_f[seen:seen + n] = u, losses
            seen += n
        result.total_s = time.perf_counter() - start
        return result

    def _minimize_hyperopt(self, objective, dimensions, evaluations, rng):
        try:
            from functools import partial

            from hyperopt import STATUS_OK, Trials, fmin, hp, tpe
            from hyperopt.fmin import generate_trials_to_calculate
        except ImportError as err:
            raise InputError(f"the hyperopt TPE backend needs hyperopt ({err}); "
                             "pip install hyperopt", field="optimizer") from None
        logging.getLogger("hyperopt").setLevel(logging.WARNING)
        result = OptimizerResult()
        counted = _Counted(objective, result, evaluations)
        space = {d.name: hp.choice(d.name, list(d.options)) if d.kind == "choice"
                 else hp.uniform(d.name, 0.0, 1.0) for d in dimensions}
        choices = {d.name: list(d.options) for d in dimensions if d.kind == "choice"}

        def fn(params):
            point = {k: (v if k in choices else float(v)) for k, v in params.items()}
            return {"loss": float(counted([point])[0]), "status": STATUS_OK}

        algo = partial(tpe.suggest, n_startup_jobs=self.n_startup_jobs)
        start = time.perf_counter()
        while counted.left > 0:
            seeds = []
            if self.keep and result.losses:
                order = np.argsort(result.losses, kind="stable")[:self.keep]
                for k in order:
                    p = result.points[k]
                    seeds.append({name: (choices[name].index(p[name]) if name in choices
                                         else p[name]) for name in p})
            trials = generate_trials_to_calculate(seeds) if seeds else Trials()
            block = min(self.block, counted.left)
            before = len(result.losses)
            fmin(fn, space, algo=algo, max_evals=len(seeds) + block, trials=trials,
                 rstate=np.random.default_rng(int(rng.integers(2 ** 63))),
                 show_progressbar=False)
            if len(result.losses) == before:
                break  # only repeats of cached points: nothing new to learn
        result.total_s = time.perf_counter() - start
        return result


OPTIMIZERS = {"tpe": TPESearch, "random": RandomSearch, "pso": ParticleSwarm}


def make_optimizer(optimizer, **options):
    """An optimiser from its name (``tpe``, ``random``, ``pso``) or an object with ``minimize``."""
    if hasattr(optimizer, "minimize"):
        return optimizer
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimiser {optimizer!r}; known: {', '.join(OPTIMIZERS)}",
                         field="optimizer")
    cls = OPTIMIZERS[optimizer]
    import inspect
    known = set(inspect.signature(cls.__init__).parameters) - {"self"}
    for key in options:
        if key not in known:
            raise InputError(f"unknown option {key!r} of the {optimizer} optimiser; "
                             f"known: {', '.join(sorted(known))}", field="optimizer_options")
    return cls(**options)
