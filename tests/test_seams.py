"""Seams of the search (issue 19, item 3): the public step phases that ``irun`` is
built from and that other drivers (the lock-step walkers) use instead of private
methods."""

import ast
from pathlib import Path

import pytest
from ase.calculators.emt import EMT

from ase_fuse import FuseBasinHopping
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.executors import relax_one
from ase_fuse.records import RunRecords

ROOT = Path(__file__).resolve().parents[1]


def sequence(path):
    return [(r.step, r.slot, r.get("move"), r.status, round(r.get("energy_per_atom", 0), 10),
             r.get("accepted")) for r in sorted(RunRecords(path).rows(),
                                                key=lambda r: (r.step, r.slot))]


def search(tmp_path, name):
    return FuseBasinHopping("Cu", relaxer=TieredRelaxer([Tier(EMT(), fmax=0.05, steps=150)]),
                            max_atoms=4, initial_population=4, hop_after=2, seed=5,
                            directory=tmp_path / name, logfile=None)


def test_a_driver_of_the_public_phases_replays_run(tmp_path):
    plain = search(tmp_path, "plain")
    plain.run(steps=5)
    driven = search(tmp_path, "driven")
    driven.run(steps=0)                               # the population's head
    seen = []
    relaxed = reused = 0
    driven.attach(lambda: seen.append(driven.nsteps))
    while driven.nsteps < 5:
        for item in driven.population_due():          # the tail, one before each step
            driven.absorb_population(item, relax_one(driven.relaxer, item[2]))
        plan = driven.propose_step()
        assert plan.step == driven.nsteps + 1
        if plan.pending:                          # else: an input relaxed before, reused
            with pytest.raises(RuntimeError, match="not relaxed"):
                driven.conclude_step(plan)
            driven.take_result(plan, relax_one(driven.relaxer, plan.candidate))
            relaxed += 1
        else:
            assert plan.energy is not None
            reused += 1
        driven.conclude_step(plan)
        driven.nsteps += 1
        driven.call_observers()
    driven.write_outputs()
    assert seen == [1, 2, 3, 4, 5]
    assert relaxed + reused == 5 and relaxed >= 1
    assert reused == sum(r.step > 0 and r.get("reused_from") is not None
                         for r in plain.records.rows())
    assert sequence(driven.records.path) == sequence(plain.records.path)
    assert driven.best_energy == plain.best_energy


def test_a_restarted_step_reuses_its_stored_result(tmp_path):
    opt = search(tmp_path, "run")
    opt.run(steps=2)
    plan = opt.propose_step()
    opt.take_result(plan, relax_one(opt.relaxer, plan.candidate))
    energy = plan.energy
    opt.close()                                       # killed before conclude_step
    again = FuseBasinHopping("Cu", relaxer=opt.relaxer, max_atoms=4, initial_population=4,
                             hop_after=2, seed=5, directory=tmp_path / "run",
                             logfile=None, restart=True)
    replay = again.propose_step()
    assert not replay.pending and replay.row_id == plan.row_id
    assert replay.energy == pytest.approx(energy)


def test_walkers_touch_no_private_attribute_of_the_search():
    tree = ast.parse((ROOT / "ase_fuse" / "walkers.py").read_text())
    private = sorted({node.attr for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and node.attr.startswith("_")
                      and not node.attr.startswith("__")})
    assert private == [], private


def test_outputs_are_written_when_a_caller_breaks_out_of_irun(tmp_path):
    # issue 19 item 5: ASE's irun convention; current.cif was missing after a break
    import json

    opt = search(tmp_path, "loop")
    for converged in opt.irun(steps=50):
        if opt.nsteps == 2:
            break                                    # the loop's generator is dropped here
    folder = tmp_path / "loop"
    assert (folder / "current.cif").exists()
    assert json.loads((folder / "summary.json").read_text())["steps"] == 2
    held = search(tmp_path, "held")
    steps = held.irun(steps=50)                      # a caller that keeps the generator
    for converged in steps:
        if held.nsteps == 3:
            break
    steps.close()                                    # GeneratorExit: the finally block
    assert json.loads((tmp_path / "held" / "summary.json").read_text())["steps"] == 3
    assert (tmp_path / "held" / "current.cif").exists()
