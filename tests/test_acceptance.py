import math

import numpy as np
import pytest

from ase_fuse.acceptance import AcceptanceRule


def run_sequence(rule, energies, seed=0):
    """Feed a fake energy sequence through the rule as the driver does."""
    rng = np.random.default_rng(seed)
    state = rule.initial_state()
    current, best = None, math.inf
    history = []
    for e in energies:
        accepted, downhill = rule.accept(e, current, state, rng)
        new_best = e < best
        best = min(best, e)
        state = rule.update(state, accepted, downhill, new_best, rng)
        if accepted:
            current = e
        history.append((accepted, state.temperature, state.rejections))
    return history, state


def test_downhill_always_accepted():
    rule = AcceptanceRule(temperature=1e-9)
    history, _ = run_sequence(rule, [0.0, -0.1, -0.2, -0.3])
    assert all(acc for acc, _, _ in history)


def test_uphill_acceptance_follows_boltzmann():
    rule = AcceptanceRule(temperature=0.02, melt_threshold=0)
    rng = np.random.default_rng(1)
    state = rule.initial_state()
    delta = 0.02
    accepted = sum(rule.accept(delta, 0.0, state, rng)[0] for _ in range(20000))
    assert accepted / 20000 == pytest.approx(math.exp(-1), abs=0.015)


def test_zero_temperature_rejects_uphill():
    rule = AcceptanceRule(temperature=0.0)
    state = rule.initial_state()
    assert rule.accept(0.1, 0.0, state, np.random.default_rng(0)) == (False, False)


def test_melting_raises_temperature_after_threshold_and_downhill_restores():
    rule = AcceptanceRule(temperature=0.01, melt_threshold=5, melt_increment=(1.0, 1.0))
    # one start, then 12 strongly uphill rejections, then one downhill step
    energies = [0.0] + [10.0] * 12 + [-1.0]
    history, state = run_sequence(rule, energies)
    temps = [t for _, t, _ in history]
    assert temps[1:5] == [0.01] * 4                  # 4 rejections: unchanged
    assert temps[5] == pytest.approx(0.02)           # 5th rejection: melted once
    assert temps[10] == pytest.approx(0.03)          # 10th: melted again, stays raised
    assert temps[11] == pytest.approx(0.03)
    assert temps[-1] == pytest.approx(0.01)          # downhill restores the base T
    assert state.rejections == 0 and state.melts == 2


def test_steps_since_best_counts_for_convergence():
    rule = AcceptanceRule(temperature=0.02)
    _, state = run_sequence(rule, [0.0, -1.0, 5.0, 5.0, 5.0])
    assert state.steps_since_best == 3


def test_same_seed_same_decisions():
    rule = AcceptanceRule(temperature=0.05, melt_threshold=3)
    energies = list(np.random.default_rng(5).normal(size=200) * 0.05)
    assert run_sequence(rule, energies, seed=3)[0] == run_sequence(rule, energies, seed=3)[0]
    assert run_sequence(rule, energies, seed=3)[0] != run_sequence(rule, energies, seed=4)[0]


def test_an_energy_equal_to_within_noise_takes_the_uphill_branch():
    # a structure relaxed again (1e-13 below) and a re-used result (exactly equal)
    # must draw from the rng alike, or a restart that re-uses parts from the run
    rule = AcceptanceRule(temperature=0.02)
    state = rule.initial_state()
    draws = []
    for e_new in (-3.0, -3.0 - 1e-13, -3.0 + 1e-13):
        rng = np.random.default_rng(0)
        accepted, downhill = rule.accept(e_new, -3.0, state, rng)
        assert accepted and not downhill
        draws.append(rng.random())
    assert draws[0] == draws[1] == draws[2]
    rng = np.random.default_rng(0)
    assert rule.accept(-3.0 - 1e-6, -3.0, state, rng) == (True, True)
    assert rng.random() == np.random.default_rng(0).random()    # nothing drawn
