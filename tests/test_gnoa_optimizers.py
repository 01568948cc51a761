"""GN-OA optimisers: seeded repeatability, budget, and that each one learns."""

import numpy as np
import pytest

from ase_fuse.errors import InputError
from ase_fuse.generators.gnoa.optimizers import FAILED_LOSS, TPESearch, make_optimizer
from ase_fuse.generators.gnoa.space import Dimension, SearchSpace

pytest.importorskip("hyperopt")

DIMS = [Dimension("sg", "choice", (1, 2, 3))] + [Dimension(f"x{i}") for i in range(6)]


def bowl(points):
    """Smooth bowl with its minimum 0 at x = 0.3 and sg = 2."""
    return np.array([sum((p[f"x{i}"] - 0.3) ** 2 for i in range(6)) + (p["sg"] != 2)
                     for p in points])


@pytest.mark.parametrize("name", ["random", "pso", "tpe"])
def test_seeded_repeatable(name):
    runs = [make_optimizer(name).minimize(bowl, DIMS, 60, np.random.default_rng(11))
            for _ in range(2)]
    assert runs[0].points == runs[1].points
    assert runs[0].losses == runs[1].losses
    other = make_optimizer(name).minimize(bowl, DIMS, 60, np.random.default_rng(12))
    assert other.losses != runs[0].losses


@pytest.mark.parametrize("name", ["random", "pso", "tpe"])
def test_budget_is_exact_and_points_distinct(name):
    result = make_optimizer(name).minimize(bowl, DIMS, 75, np.random.default_rng(0))
    assert len(result.losses) == len(result.points) == 75
    keys = {tuple(sorted(p.items())) for p in result.points}
    assert len(keys) == 75
    assert np.allclose(result.losses, bowl(result.points))
    assert 0.0 <= result.overhead_share <= 1.0


def test_guided_optimisers_beat_random_on_a_smooth_bowl():
    best = {name: min(make_optimizer(name).minimize(bowl, DIMS, 400,
                                                    np.random.default_rng(5)).losses)
            for name in ("random", "pso", "tpe")}
    assert best["pso"] < best["random"]
    assert best["tpe"] < best["random"]


def test_tpe_restarts_keep_the_best_points():
    calls = []

    def counted(points):
        calls.extend(points)
        return bowl(points)

    result = TPESearch(backend="hyperopt", block=40, keep=5).minimize(counted, DIMS, 400,
                                                  np.random.default_rng(5))
    # seeded best points are answered from the cache, never re-evaluated or counted
    assert len(calls) == len(result.losses) == 400
    # short histories seeded with the best points still learn: better than random
    rand = make_optimizer("random").minimize(bowl, DIMS, 400, np.random.default_rng(5))
    assert min(result.losses) < min(rand.losses)


@pytest.fixture(scope="module")
def nacl_energy():
    """Objective on real structures: the proxy potential's energy per atom of NaCl z=2."""
    from ase_fuse.calculators import ProxyPotential
    space = SearchSpace("NaCl", 2, space_groups=range(1, 80))
    calc = ProxyPotential.for_composition(space.composition)

    def objective(points):
        losses = []
        for point in points:
            atoms = space.decode(point)
            if atoms is None:
                losses.append(FAILED_LOSS)
                continue
            atoms.calc = calc
            losses.append(atoms.get_potential_energy() / len(atoms))
        return np.array(losses)

    return space, objective


@pytest.mark.parametrize("name", ["random", "pso", "tpe"])
def test_each_optimiser_improves_on_its_first_structure(name, nacl_energy):
    space, objective = nacl_energy
    result = make_optimizer(name).minimize(objective, space.dimensions, 150,
                                           np.random.default_rng(4))
    losses = np.array(result.losses)
    valid = losses[losses < FAILED_LOSS]
    assert len(valid) >= 3
    assert valid.min() < valid[0]


def test_unknown_optimiser():
    with pytest.raises(InputError, match="optimizer: unknown optimiser 'bayes'"):
        make_optimizer("bayes")
    with pytest.raises(InputError, match="particles"):
        make_optimizer("pso", particles=1)


def test_numpy_tpe_is_default_batched_and_cheap():
    batches = []

    def counted(points):
        batches.append(len(points))
        return bowl(points)

    opt = make_optimizer("tpe", batch_size=8)
    assert opt.backend == "numpy"
    result = opt.minimize(counted, DIMS, 400, np.random.default_rng(3))
    assert len(result.losses) == 400 and sum(batches) == 400
    assert max(batches) == 8 and len(batches) == 50  # whole batches reach the objective
    # it learns: its best beats random search's best, and the late points beat the early
    rand = make_optimizer("random").minimize(bowl, DIMS, 400, np.random.default_rng(3))
    assert min(result.losses) < min(rand.losses)
    assert np.median(result.losses[-100:]) < np.median(result.losses[:100])
    # and it picks the good choice (sg = 2) most of the time once it has learnt
    late = [p["sg"] for p in result.points[-100:]]
    assert late.count(2) > 50


def test_numpy_tpe_overhead_is_small_next_to_hyperopt():
    import time

    def slow(points):  # a model costing 1 ms per point
        time.sleep(1e-3 * len(points))
        return bowl(points)

    ours = make_optimizer("tpe").minimize(slow, DIMS, 300, np.random.default_rng(0))
    theirs = make_optimizer("tpe", backend="hyperopt").minimize(
        slow, DIMS, 300, np.random.default_rng(0))
    assert ours.overhead_s < theirs.overhead_s / 5
    assert ours.overhead_share < 0.5


def test_parzen_tpe_density_is_normalised_and_samples_stay_in_the_box():
    from ase_fuse.generators.gnoa.tpe import ParzenTPE
    rng = np.random.default_rng(1)
    tpe = ParzenTPE([0, 3])
    points = np.column_stack([rng.random(7) * 0.2 + 0.7, (rng.integers(0, 3, 7) + 0.5) / 3])
    # integrate the continuous x categorical density numerically: it must be 1
    xs = (np.arange(4000) + 0.5) / 4000
    total = 0.0
    for k in range(3):
        grid = np.column_stack([xs, np.full_like(xs, (k + 0.5) / 3)])
        total += np.exp(tpe._log_density(grid, points)).mean()
    assert abs(total - 1.0) < 1e-3
    draws = tpe._sample(points, 5000, rng)
    assert draws.min() >= 0.0 and draws.max() <= 1.0
    assert np.mean(draws[:, 0] > 0.6) > 0.7  # mass near the points


def test_unknown_optimiser_options_are_named():
    with pytest.raises(InputError, match="optimizer_options: unknown option 'blocks'"):
        make_optimizer("tpe", blocks=3)
    with pytest.raises(InputError, match="backend: unknown TPE backend 'optuna'"):
        make_optimizer("tpe", backend="optuna")
