"""RunRecords: one connection per session, re-entrant sessions, flat memory."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from ase_fuse.calculators.tiers import RelaxResult
from ase_fuse.records import RunRecords


def rss_mb():
    with open("/proc/self/statm") as fd:
        return int(fd.read().split()[1]) * 4096 / 2**20


def relaxed(atoms, energy):
    out = atoms.copy()
    out.calc = SinglePointCalculator(out, energy=energy, forces=np.zeros((len(out), 3)))
    return RelaxResult(atoms=out, energy=energy, energy_per_atom=energy / len(out),
                       converged=True)


def test_nested_sessions_share_one_transaction(tmp_path):
    records = RunRecords(tmp_path / "fuse.db")
    atoms = bulk("NaCl", "rocksalt", a=5.6)
    with records.session():
        row = records.add_queued(atoms, step=1, slot=0)
        with records.session():
            records.record_result(row, relaxed(atoms, -7.0))
        # the inner session did not close the outer connection
        assert records.find(1, 0).status == "relaxed"
        records.commit_step(row, {"step": 1}, accepted=True)
    assert records.load_state() == {"step": 1}
    assert records.rows(status="relaxed")[0].accepted


def test_a_failed_session_rolls_back_and_the_db_stays_usable(tmp_path):
    records = RunRecords(tmp_path / "fuse.db")
    atoms = bulk("NaCl", "rocksalt", a=5.6)
    with pytest.raises(RuntimeError):
        with records.session():
            records.add_queued(atoms, step=1, slot=0)
            raise RuntimeError("killed mid-step")
    assert records.count() == 0
    records.add_queued(atoms, step=1, slot=0)
    assert records.count() == 1 and records.check_integrity() == []


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"),
                    reason="reads resident memory from /proc (Linux)")
def test_memory_flat_over_many_writes_and_updates(tmp_path):
    """ase.db outside a session opened a connection per call and grew resident memory
    ~4 kB per update; 1500 candidates added ~10 MB."""
    records = RunRecords(tmp_path / "fuse.db")
    atoms = bulk("NaCl", "rocksalt", a=5.6) * (2, 1, 1)

    def candidates(first, n):
        for step in range(first, first + n):
            row = records.add_queued(atoms, step=step, slot=0)
            records.find(step, 0)
            records.record_result(row, relaxed(atoms, -7.0 - step * 1e-6))
            records.commit_step(row, {"step": step}, accepted=False)
            records.count(status="relaxed")

    candidates(0, 300)  # warm-up: imports, sqlite caches
    before = rss_mb()
    candidates(300, 1500)
    assert rss_mb() - before < 4.0
    assert records.count(status="relaxed") == 1800


def test_lookups_and_counts_from_memory_agree_with_the_db(tmp_path):
    records = RunRecords(tmp_path / "fuse.db")
    atoms = bulk("NaCl", "rocksalt", a=5.6)
    failed = RelaxResult(atoms=atoms, failed="proxy: exploded")
    for step in range(6):
        row = records.add_queued(atoms, step=step, slot=0)
        if step % 3 == 0:
            records.record_result(row, failed)
        elif step % 3 == 1:
            records.record_result(row, relaxed(atoms, -7.0))
    records.add_invalid(atoms, step=6, slot=0, reason="too close")
    # a second reader (a restart) builds its index from the db
    again = RunRecords(tmp_path / "fuse.db")
    for rec in (records, again):
        assert rec.find(1, 0).status == "relaxed" and rec.find(0, 0).status == "failed"
        assert rec.find(2, 0).status == "queued" and rec.find(9, 0) is None
        for status in ("relaxed", "failed", "queued", "invalid"):
            assert rec.count(status=status) == records.db.count(status=status)
        assert rec.count() == records.db.count() == 7


def test_a_restart_rebuilds_the_relaxed_inputs_in_the_order_they_were_recorded(tmp_path):
    # the population's tail is recorded after later rows (higher ids); a candidate that
    # two inputs match takes the one recorded first, after a restart as before it
    from ase_fuse.run_identity import RunIdentity

    def scaled(volume_ratio):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.set_cell(atoms.cell * volume_ratio ** (1 / 3), scale_atoms=True)
        return atoms

    def result(atoms, energy):
        relaxed = atoms.copy()
        relaxed.calc = SinglePointCalculator(relaxed, energy=energy * len(relaxed))
        return RelaxResult(atoms=relaxed, energy=energy * len(relaxed),
                           energy_per_atom=energy, converged=True)

    path = tmp_path / "fuse.db"
    records = RunRecords(path)
    low, high = scaled(1.0), scaled(1.0016)   # 0.16% apart: not the same input
    first = records.add_queued(low, 0, 0)
    second = records.add_queued(high, 0, 1)
    records.record_result(second, result(high, -3.5))      # recorded first
    records.record_result(first, result(low, -3.4))
    between = scaled(1.0008)                  # within 0.1% of both
    assert records.identity().relaxed_input(between) == second
    rebuilt = RunIdentity.from_rows(RunRecords(path).rows(status="relaxed"))
    assert rebuilt.relaxed_input(between) == second
