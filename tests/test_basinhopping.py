"""End-to-end and behaviour tests of FuseBasinHopping with cheap real calculators."""

import json
import math

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read

from ase_fuse import FuseBasinHopping, InputError
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.records import RunRecords


def emt_relaxer(steps=150):
    return TieredRelaxer([Tier(EMT(), fmax=0.05, steps=steps)])


def matches(atoms, reference):
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor
    adaptor = AseAtomsAdaptor()
    return StructureMatcher().fit(adaptor.get_structure(atoms),
                                  adaptor.get_structure(reference))


def candidate_sequence(db_path):
    rows = RunRecords(db_path).rows()
    return [(r.step, r.slot, r.get("move"), r.status,
             round(r.get("energy_per_atom", math.nan), 10), r.get("accepted"))
            for r in sorted(rows, key=lambda r: (r.step, r.slot))]


def small_search(tmp_path, name="run", seed=3, composition="Cu", **kw):
    options = dict(relaxer=emt_relaxer(), max_atoms=4, initial_population=4, seed=seed,
                   directory=tmp_path / name, logfile=None)
    options.update(kw)
    return FuseBasinHopping(composition, **options)


def emt_energy(atoms):
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS
    atoms = atoms.copy()
    atoms.calc = EMT()
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=0.001, steps=300)
    return atoms.get_potential_energy() / len(atoms)


def test_finds_fcc_silver_from_random_cells(tmp_path):
    # EMT puts hcp below fcc for Cu (by 1 meV/atom), so fcc Cu is not EMT's ground
    # state; for Ag EMT has fcc lowest (hcp +1.5 meV/atom): the search must find it.
    opt = small_search(tmp_path, composition="Ag", trajectory=str(tmp_path / "best.traj"))
    opt.run(steps=15)
    best = opt.best_atoms
    assert opt.best_energy == pytest.approx(best.get_potential_energy() / len(best))
    assert opt.best_energy <= emt_energy(bulk("Ag", "fcc", a=4.09)) + 1e-4
    assert matches(best, bulk("Ag", "fcc", a=4.09))
    # outputs: best.cif, current.cif, summary, trajectory of improving minima
    assert matches(read(tmp_path / "run" / "best.cif"), best)
    assert (tmp_path / "run" / "current.cif").exists()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best_energy_per_atom"] == pytest.approx(opt.best_energy)
    traj = read(tmp_path / "best.traj", index=":")
    energies = [a.get_potential_energy() / len(a) for a in traj]
    assert energies == sorted(energies, reverse=True)
    assert energies[-1] == pytest.approx(opt.best_energy)


def test_irun_yields_and_observers_are_called(tmp_path):
    opt = small_search(tmp_path)
    calls, lagging = [], []

    def summary_steps():
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        if summary["steps"] != opt.nsteps:
            lagging.append((summary["steps"], opt.nsteps))

    opt.attach(lambda: calls.append(opt.nsteps), interval=2)
    opt.attach(summary_steps, interval=1)
    yielded = [converged for converged in opt.irun(steps=4)]
    assert len(yielded) == 5 and not any(yielded)   # initial state + 4 steps
    assert opt.nsteps == 4
    assert calls == [0, 2, 4]
    assert lagging == []          # summary.json is current after every step


def test_same_seed_same_run_and_rows_are_recorded(tmp_path):
    a = small_search(tmp_path, "a", seed=11)
    a.run(steps=8)
    b = small_search(tmp_path, "b", seed=11)
    b.run(steps=8)
    c = small_search(tmp_path, "c", seed=12)
    c.run(steps=8)
    seq_a = candidate_sequence(a.records.path)
    assert seq_a == candidate_sequence(b.records.path)
    assert seq_a != candidate_sequence(c.records.path)
    rows = a.records.rows()
    assert {r.status for r in rows} <= {"relaxed", "failed", "invalid"}
    steps = [r for r in rows if r.step > 0 and r.status == "relaxed"]
    assert all(1 <= r.move <= 14 and r.parent > 0 for r in steps)
    assert all(r.relax_time >= 0 for r in steps)
    assert a.records.check_integrity() == []


def test_converges_after_rmax_steps_without_improvement(tmp_path):
    opt = small_search(tmp_path, rmax=3)
    converged = opt.run(steps=200)
    assert converged and opt.acceptance.steps_since_best == 3
    assert opt.nsteps < 200


def test_stop_file_ends_the_run_cleanly(tmp_path):
    opt = small_search(tmp_path)
    opt.attach(lambda: (tmp_path / "run" / "STOP").write_text("") if opt.nsteps == 2
               else None)
    opt.run(steps=50)
    assert opt.nsteps == 2
    assert not (tmp_path / "run" / "STOP").exists()
    # and the run continues from the db afterwards
    again = small_search(tmp_path, restart=True)
    assert again.nsteps == 2 and again.best_energy == pytest.approx(opt.best_energy)
    again.run(steps=2)
    assert again.nsteps == 4


def test_restart_continues_exactly_as_an_uninterrupted_run(tmp_path):
    full = small_search(tmp_path, "full", seed=5)
    full.run(steps=8)
    part = small_search(tmp_path, "part", seed=5)
    part.run(steps=3)
    resumed = small_search(tmp_path, "part", seed=5, restart=True)
    assert resumed.nsteps == 3
    resumed.run(steps=5)
    assert candidate_sequence(resumed.records.path) == candidate_sequence(full.records.path)
    assert resumed.best_energy == pytest.approx(full.best_energy)


def test_existing_db_without_restart_is_refused(tmp_path):
    small_search(tmp_path).run(steps=1)
    with pytest.raises(InputError, match="restart"):
        small_search(tmp_path)


@pytest.mark.parametrize("bad, field", [
    (dict(max_atoms=0), "max_atoms"),
    (dict(initial_population=0), "initial_population"),
    (dict(temperature=-1), "temperature"),
    (dict(move_weights={1: -1.0}), "move_weights"),
    (dict(relaxer=object()), "relaxer"),
])
def test_bad_options_give_one_clear_error(tmp_path, bad, field):
    with pytest.raises(InputError) as info:
        small_search(tmp_path, **bad)
    assert field in str(info.value) and "\n" not in str(info.value)


def test_given_structures_start_the_search(tmp_path):
    start = bulk("Cu", "fcc", a=3.9, cubic=True)
    opt = small_search(tmp_path, structures=[start], initial_population=1)
    opt.run(steps=0)
    row = opt.records.rows(step=0)[0]
    assert row.status == "relaxed" and row.origin == "user"
    assert matches(opt.best_atoms, bulk("Cu", "fcc", a=3.61))


def test_failed_relaxations_are_recorded_and_the_search_goes_on(tmp_path):
    class Flaky(EMT):
        armed = False

        def calculate(self, *args, **kwargs):
            if Flaky.armed:
                raise RuntimeError("flaky calculator")
            super().calculate(*args, **kwargs)

    class EveryThirdFails:
        def __init__(self):
            self.inner = TieredRelaxer([Tier(Flaky(), fmax=0.05, steps=100)])
            self.calls = 0

        def relax(self, atoms):
            self.calls += 1
            Flaky.armed = self.calls % 3 == 0
            return self.inner.relax(atoms)

    opt = small_search(tmp_path, relaxer=EveryThirdFails(), reuse=False)  # every step relaxes
    opt.run(steps=6)
    failed = opt.records.rows(status="failed")
    assert len(failed) >= 3 and all("flaky" in r.reason for r in failed)
    assert opt.nsteps == 6 and np.isfinite(opt.best_energy)
    assert all(not r.accepted for r in failed if r.step > 0)
