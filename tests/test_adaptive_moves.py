"""Move weights that learn (issue 14's lever): MoveCredit's factors, the selector
drawing with them, a seeded run that repeats, and a restart that continues with the
same factors."""

import json

import numpy as np
import pytest
from ase.calculators.emt import EMT

from ase_fuse import FuseBasinHopping
from ase_fuse.cli import main
from ase_fuse.errors import InputError
from ase_fuse.moves import MoveSelector
from ase_fuse.moves.adaptive import REWARD_ACCEPTED, MoveCredit, ml_steps
from ase_fuse.records import RunRecords


def test_no_reward_yet_leaves_the_user_weights():
    credit = MoveCredit([1, 2, 3])
    assert np.array_equal(credit.factors(), [1, 1, 1])
    credit.record(1, 40, accepted=False, new_best=False)
    credit.record(2, 10, accepted=False, new_best=False)
    assert np.array_equal(credit.factors(), [1, 1, 1])


def test_reward_per_ml_step_raises_a_move_and_lowers_the_others_within_bounds():
    credit = MoveCredit([1, 2, 3], pseudo=1.0, low=0.5, high=2.0)
    for _ in range(5):
        credit.record(1, 10, accepted=True, new_best=True)     # cheap and rewarded
        credit.record(2, 200, accepted=False, new_best=False)  # dear, never accepted
    f1, f2, f3 = credit.factors()
    assert f1 > 1 > f2
    assert f1 <= 2.0 and f2 >= 0.5
    assert f3 == pytest.approx(1.0)             # never tried: the overall rate
    # an accepted step is worth less than a new best
    a, b = MoveCredit([1, 2]), MoveCredit([1, 2])
    a.record(1, 10, accepted=True, new_best=False)
    b.record(1, 10, accepted=True, new_best=True)
    a.record(2, 10, accepted=True, new_best=True)
    b.record(2, 10, accepted=True, new_best=True)
    assert a.factors()[0] < b.factors()[0] and a.reward[1] == REWARD_ACCEPTED
    # a candidate that is no new structure (re-used, a repeat) earns nothing
    c = MoveCredit([1, 2])
    c.record(1, 0, accepted=True, new_best=False, new_structure=False)
    c.record(2, 10, accepted=True, new_best=False)
    assert c.reward[1] == 0 and c.cost[1] == 1 and c.factors()[0] < 1 < c.factors()[1]
    # the same reward at a tenth of the cost earns more
    cheap, dear = MoveCredit([1, 2]), MoveCredit([1, 2])
    for credit_, steps in ((cheap, 10), (dear, 100)):
        credit_.record(1, steps, accepted=True, new_best=True)
        credit_.record(2, 50, accepted=True, new_best=True)
    assert cheap.factors()[0] > dear.factors()[0]


def test_state_round_trips_and_bad_input_is_refused():
    credit = MoveCredit(range(1, 15))
    for n, steps, acc, best in [(3, 12, True, True), (5, 80, False, False), (3, 7, True, False)]:
        credit.record(n, steps, acc, best)
    again = MoveCredit.fromdict(json.loads(json.dumps(credit.todict())))
    assert np.array_equal(again.factors(), credit.factors())
    assert again.table() == credit.table()
    with pytest.raises(KeyError):
        credit.record(15, 1, True, True)
    with pytest.raises(ValueError):
        MoveCredit([1], low=2.0)


def test_ml_steps_leave_out_the_proxy_tier():
    tiers = [{"name": "proxy", "steps": 300}, {"name": "chgnet", "steps": 42}]
    assert ml_steps(tiers) == 42 and ml_steps([]) == 0 and ml_steps(None) == 0


def test_the_selector_draws_by_weight_times_factor():
    selector = MoveSelector({1: 1.0, 2: 1.0})
    rng = np.random.default_rng(0)
    even = [selector.draw(rng).number for _ in range(2000)]
    selector.factors = np.array([4.0 if n == 2 else 1.0 for n in selector.numbers])
    rng = np.random.default_rng(0)
    tilted = [selector.draw(rng).number for _ in range(2000)]
    assert 0.4 < even.count(2) / 2000 < 0.6
    assert 0.75 < tilted.count(2) / 2000 < 0.85          # 4 / (4 + 1)
    assert selector.weights.tolist().count(1.0) == 2      # the user's weights unchanged


def _search(folder, **kw):
    options = dict(calculator=EMT(), max_atoms=4, initial_population=4, seed=3,
                   directory=folder, logfile=None, adaptive_moves=True)
    options.update(kw)
    return FuseBasinHopping("Cu", **options)


def _moves(folder):
    rows = RunRecords(folder / "fuse.db").rows()
    return [(r.step, r.slot, r.get("move"), r.status, round(r.get("energy_per_atom", 0), 10))
            for r in sorted(rows, key=lambda r: (r.step, r.slot)) if r.step > 0]


def test_a_seeded_adaptive_run_repeats_and_learns(tmp_path):
    # the mix start, pinned: without pyxtal the default start falls back to plain
    # FUSE structures, from which this seed's 30 steps of Cu earn no move any credit
    first = _search(tmp_path / "a", generator="mix")
    first.run(steps=30)
    second = _search(tmp_path / "b", generator="mix")
    second.run(steps=30)
    assert _moves(tmp_path / "a") == _moves(tmp_path / "b")
    assert np.array_equal(first.selector.factors, second.selector.factors)
    assert not np.allclose(first.selector.factors, 1.0)     # it learned something
    assert sum(first.credit.tries.values()) == 30
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert sum(m["tries"] for m in summary["moves"].values()) == 30
    plain = _search(tmp_path / "c", adaptive_moves=False, generator="mix")
    plain.run(steps=30)
    assert "moves" not in json.loads((tmp_path / "c" / "summary.json").read_text())
    assert np.allclose(plain.selector.factors, 1.0)


def test_a_restart_continues_with_the_learned_factors(tmp_path):
    whole = _search(tmp_path / "whole")
    whole.run(steps=24)
    whole.close()
    part = _search(tmp_path / "part")
    part.run(steps=12)
    part.close()
    again = _search(tmp_path / "part", restart=True)
    assert again.credit.todict() == part.credit.todict()
    again.run(steps=12)
    assert _moves(tmp_path / "part") == _moves(tmp_path / "whole")
    assert np.array_equal(again.selector.factors, whole.selector.factors)
    again.close()
    with pytest.raises(InputError, match="adaptive_moves"):
        _search(tmp_path / "part", restart=True, adaptive_moves=False)


def test_the_cli_flag_reaches_the_search(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "Cu", "--calculator", "emt", "--max-atoms", "4",
                 "--initial-population", "4", "--steps", "6", "--seed", "1",
                 "--adaptive-moves", "-q", "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sum(m["tries"] for m in summary["moves"].values()) == 6
    # a plain --restart keeps the stored setting (the run goes on learning)
    assert main(["run", "Cu", "--steps", "8", "--restart", "-q", "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sum(m["tries"] for m in summary["moves"].values()) == 8
    capsys.readouterr()
