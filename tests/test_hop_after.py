"""hop_after: hopping starts after the first K population structures; the rest of the
population is relaxed one before each step, and a restart replays the same schedule.

Issue "Time to the right answer" (lever: interleave hops with the population).
"""

import pytest

from ase_fuse import FuseBasinHopping
from ase_fuse.calculators.stacks import build_stack
from ase_fuse.cli import main
from ase_fuse.calculators.tiers import RelaxResult
from ase_fuse.errors import InputError
from ase_fuse.walkers import run_walkers

KW = dict(max_atoms=8, initial_population=6, seed=3, logfile=None, generator="fuse")


def _order(records):
    """(step, slot) of every finished relaxation, in the order they reached the db."""
    rows = [r for r in records.rows() if r.get("finished_at") is not None]
    return [(r.step, r.slot) for r in sorted(rows, key=lambda r: (r.finished_at, r.id))]


def _energies(records):
    return sorted((r.step, r.slot, round(r.energy_per_atom, 8))
                  for r in records.rows(status="relaxed"))


def test_schedule_head_then_one_population_structure_per_step(tmp_path):
    opt = FuseBasinHopping("NaCl", relaxer="proxy", hop_after=2, directory=tmp_path, **KW)
    opt.run(steps=6)
    order = _order(opt.records)
    population = [(step, slot) for step, slot in order if step == 0]
    assert [slot for _, slot in population] == list(range(6))
    # slots 0, 1 first; then slot 2 + n between steps n + 1 and n + 2
    position = {key: i for i, key in enumerate(order)}
    first_step = min(i for (step, _), i in position.items() if step == 1)
    assert position[(0, 0)] < first_step and position[(0, 1)] < first_step
    for n in range(4):
        slot_pos = position[(0, 2 + n)]
        later = [i for (step, _), i in position.items() if step >= n + 2]
        earlier = [i for (step, _), i in position.items() if 0 < step <= n + 1]
        assert earlier
        assert all(slot_pos < i for i in later)
        assert all(i < slot_pos for i in earlier)
    assert opt.records.count(status="queued") == 0
    # the best is the lowest relaxed structure, population ones included
    lowest = min(r.energy_per_atom for r in opt.records.rows(status="relaxed"))
    assert opt.best_energy == pytest.approx(lowest)


def test_fewer_steps_than_the_tail_leaves_it_queued_and_a_restart_finishes_it(tmp_path):
    ref = FuseBasinHopping("NaCl", relaxer="proxy", hop_after=2, directory=tmp_path / "ref",
                           **KW)
    ref.run(steps=7)
    cut = FuseBasinHopping("NaCl", relaxer="proxy", hop_after=2, directory=tmp_path / "cut",
                           **KW)
    cut.run(steps=2)
    # the head (slots 0, 1), then slot 2 before step 2: 3 of 6 relaxed
    assert cut.records.count(status="queued") == 3
    cut.close()
    again = FuseBasinHopping("NaCl", relaxer="proxy", hop_after=2, restart=True,
                             directory=tmp_path / "cut", **KW)
    again.run(steps=5)
    assert _energies(again.records) == _energies(ref.records)   # as if never stopped
    assert again.best_energy == pytest.approx(ref.best_energy)


def test_kill_after_a_population_relaxation_before_it_was_taken(tmp_path):
    """A population structure relaxed (row written) but killed before the state was
    committed: the restart takes it as best before the next step, as the run would."""
    opt = FuseBasinHopping("NaCl", relaxer="proxy", hop_after=2, directory=tmp_path, **KW)
    opt.run(steps=1)
    item = opt.population_due()[0]
    result = opt.relaxer.relax(item[2])
    low = RelaxResult(atoms=result.atoms, energy=result.energy - 100.0 * len(result.atoms),
                      energy_per_atom=result.energy_per_atom - 100.0, converged=True)
    from ase.calculators.singlepoint import SinglePointCalculator
    low.atoms.calc = SinglePointCalculator(low.atoms, energy=low.energy)
    opt.records.record_result(item[1], low)      # the row, without commit_step
    opt.close()
    again = FuseBasinHopping("NaCl", relaxer="proxy", hop_after=2, restart=True,
                             directory=tmp_path, **KW)
    assert again.best_id == item[1] and again.current_id == item[1]
    assert [p[0] for p in again.population_due()] == []       # slot 2 is done
    again.run(steps=1)
    assert again.best_energy == pytest.approx(low.energy_per_atom)


def test_all_of_the_head_failing_relaxes_more_of_the_population(tmp_path):
    class FailFirst:
        def __init__(self):
            self.inner, self.calls = build_stack("proxy", "NaCl"), 0

        def relax(self, atoms):
            self.calls += 1
            if self.calls <= 2:
                return RelaxResult(atoms=atoms, energy=None, energy_per_atom=None,
                                   converged=False, failed="injected failure")
            return self.inner.relax(atoms)

    opt = FuseBasinHopping("NaCl", relaxer=FailFirst(), hop_after=2, directory=tmp_path,
                           **KW)
    opt.run(steps=0)
    assert opt.current_id is not None
    assert opt.records.count(status="failed") == 2
    assert opt.records.find(0, 2).status == "relaxed"      # taken to rescue the head


def test_restart_with_another_hop_after_is_refused(tmp_path):
    FuseBasinHopping("NaCl", relaxer="proxy", hop_after=2, directory=tmp_path,
                     **KW).run(steps=1)
    with pytest.raises(InputError, match="hop_after: stored 2, given 3"):
        FuseBasinHopping("NaCl", relaxer="proxy", hop_after=3, restart=True,
                         directory=tmp_path, **KW)


@pytest.mark.parametrize("bad", [-1, 1.5, "x", True])
def test_bad_hop_after_names_the_field(tmp_path, bad):
    with pytest.raises(InputError, match="hop_after"):
        FuseBasinHopping("NaCl", relaxer="proxy", hop_after=bad, directory=tmp_path, **KW)


def test_hop_after_at_least_the_population_is_the_whole_population_first(tmp_path):
    runs = {}
    for k in (0, 6, 50):
        opt = FuseBasinHopping("NaCl", relaxer="proxy", hop_after=k,
                               directory=tmp_path / str(k), **KW)
        opt.run(steps=3)
        order = _order(opt.records)
        assert [step for step, _ in order[:6]] == [0] * 6
        runs[k] = _energies(opt.records)
    assert runs[0] == runs[6] == runs[50]


def test_cli_flag_and_plain_restart_keep_it(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "NaCl", "--calculator", "proxy", "--max-atoms", "8",
            "--initial-population", "5", "--hop-after", "2", "--steps", "2", "--seed", "1",
            "--generator", "fuse", "-o", str(out)]
    assert main(args) == 0
    assert main(["run", "NaCl", "--restart", "--steps", "4", "-o", str(out), "-q"]) == 0
    from ase_fuse.run_settings import stored_settings
    assert stored_settings(out / "fuse.db")["hop_after"] == 2
    assert main(["run", "NaCl", "--restart", "--hop-after", "3", "-o", str(out),
                 "-q"]) == 2
    assert "hop_after: stored 2, given 3" in capsys.readouterr().err


def test_walkers_relax_the_tail_too(tmp_path):
    relaxer = build_stack("proxy", "NaCl")
    walkers = run_walkers("NaCl", [1, 2], steps=4, batch_relaxer=relaxer,
                          directory=tmp_path, hop_after=2,
                          **{k: v for k, v in KW.items() if k != "seed"})
    for walker in walkers:
        assert walker.records.count(status="queued") == 1        # slot 5 is due before step 5
        assert walker.records.find(0, 4).status == "relaxed"
