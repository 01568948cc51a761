"""Issue 17 in the search: every relaxed row is labelled (distinct / duplicate_of /
times_found / spacegroup), labels survive a restart, an input equal to one already
relaxed reuses its result, walkers get one list, and the report and landscape plot
show the distinct structures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read

from ase_fuse import FuseBasinHopping
from ase_fuse.calculators.tiers import RelaxResult, Tier, TieredRelaxer
from ase_fuse.cli import main
from ase_fuse.identity import Entry, MatcherComparator, default_comparator
from ase_fuse.records import RunRecords
from ase_fuse.results import distinct

SMALL = ["--calculator", "emt", "--max-atoms", "4", "--initial-population", "4", "-q"]


class CountingRelaxer:
    """EMT relaxations, counted."""

    def __init__(self):
        self.inner = TieredRelaxer([Tier(EMT(), fmax=0.05, steps=150)])
        self.calls = 0

    def relax(self, atoms):
        self.calls += 1
        return self.inner.relax(atoms)


def search(folder, seed=3, composition="Ag", **kw):
    options = dict(relaxer=TieredRelaxer([Tier(EMT(), fmax=0.05, steps=150)]), max_atoms=4,
                   initial_population=4, seed=seed, directory=folder, logfile=None)
    options.update(kw)
    return FuseBasinHopping(composition, **options)


def labels(db):
    rows = sorted(RunRecords(db).rows(status="relaxed"), key=lambda r: r.id)
    return [(r.id, r.get("distinct"), r.get("duplicate_of"), r.get("times_found"),
             r.get("spacegroup")) for r in rows]


def test_every_relaxed_row_is_labelled_and_duplicates_really_match(tmp_path):
    opt = search(tmp_path / "run")
    opt.run(steps=20)
    opt.close()
    rows = {r.id: r for r in RunRecords(tmp_path / "run" / "fuse.db").rows(status="relaxed")}
    assert len(rows) >= 20
    firsts = {i for i, r in rows.items() if r.get("distinct") == 1}
    later = [r for r in rows.values() if r.get("distinct") == 0]
    assert firsts and later, "20 Ag steps find some structure twice"
    judge = MatcherComparator()
    for row in rows.values():
        assert row.get("distinct") in (0, 1)
        if row.get("distinct") == 1:
            assert isinstance(row.get("spacegroup"), int) and 1 <= row.spacegroup <= 230
        assert row.data["input"]["numbers"].shape == (row.natoms,) or row.get("reused_from")
    for row in later:
        first = rows[row.duplicate_of]
        assert first.id < row.id or first.finished_at <= row.finished_at
        assert first.get("distinct") == 1 and row.get("times_found") is None
        assert judge.same(row.toatoms(), first.toatoms())
    for i in firsts:                       # times_found = itself + its later finds
        assert rows[i].times_found == 1 + sum(r.duplicate_of == i for r in later)
    # no two first finds are the same structure (within the energy window compared)
    # by the search's own definition: the matcher scales volumes away, the search's
    # chain also tells cells more than 10% apart in volume apart (EMT Ag has such
    # pairs: 36.5 and 42.2 A^3/atom, 2 meV/atom apart, one structure to the matcher)
    own = default_comparator()
    structures = sorted((rows[i] for i in firsts), key=lambda r: r.energy_per_atom)
    for a, b in zip(structures, structures[1:]):
        if abs(a.energy_per_atom - b.energy_per_atom) < 0.005:
            assert not own.same(a.toatoms(), b.toatoms())


def test_labels_survive_a_restart_as_the_uninterrupted_run_has_them(tmp_path):
    whole = search(tmp_path / "whole")
    whole.run(steps=24)
    whole.close()
    part = search(tmp_path / "part")
    part.run(steps=10)
    part.close()
    again = search(tmp_path / "part", restart=True)
    again.run(steps=14)
    again.close()
    assert labels(tmp_path / "part" / "fuse.db") == labels(tmp_path / "whole" / "fuse.db")


def test_an_input_relaxed_before_is_not_relaxed_again(tmp_path, monkeypatch):
    relaxer = CountingRelaxer()
    opt = search(tmp_path / "run", relaxer=relaxer, hop_after=0)
    fixed = bulk("Ag", "fcc", a=4.3).repeat((1, 1, 2))
    fixed.rattle(0.05, seed=2)

    def same_candidate(atoms, context, rng, max_tries=50):
        rng.random()                                  # the stream moves on as usual
        return fixed.copy(), opt.selector.moves[9]

    monkeypatch.setattr(opt.selector, "propose", same_candidate)
    opt.run(steps=5)
    opt.close()
    assert relaxer.calls == 4 + 1                     # population, then one relaxation
    rec = RunRecords(tmp_path / "run" / "fuse.db")
    hops = sorted((r for r in rec.rows(status="relaxed") if r.step >= 1),
                  key=lambda r: r.step)
    assert len(hops) == 5 and hops[0].get("reused_from") is None
    for row in hops[1:]:
        assert row.reused_from == hops[0].id and row.relax_time == 0.0
        assert row.energy_per_atom == hops[0].energy_per_atom
        assert row.duplicate_of in (hops[0].id, hops[0].get("duplicate_of"))
    assert main(["report", str(tmp_path / "run"), "--no-files"]) == 0
    # a permuted, shifted copy of the input counts as the same input
    moved = fixed[np.random.default_rng(0).permutation(len(fixed))]
    moved.translate(0.3 * moved.cell[0])
    moved.wrap()
    assert rec.relaxed_input_like(moved) == hops[0].id
    # after a restart the inputs are known from the db
    again = search(tmp_path / "run", relaxer=relaxer, hop_after=0, restart=True)
    assert again.records.relaxed_input_like(moved) == hops[0].id
    again.close()


def test_a_relaxation_that_cannot_be_labelled_keeps_its_result(tmp_path, monkeypatch):
    from ase_fuse.run_identity import RunIdentity

    def cannot(*args, **kwargs):
        raise ValueError("cannot compare this cell")

    monkeypatch.setattr(RunIdentity, "label", cannot)
    rec = RunRecords(tmp_path / "fuse.db")
    atoms = bulk("Cu", "fcc", a=3.6)
    row = rec.add_queued(atoms, 0, 0)
    relaxed = atoms.copy()
    relaxed.calc = SinglePointCalculator(relaxed, energy=-3.0)
    rec.record_result(row, RelaxResult(atoms=relaxed, energy=-3.0, energy_per_atom=-3.0,
                                       converged=True))
    stored = rec.rows(status="relaxed")[0]
    assert stored.energy_per_atom == -3.0 and stored.get("distinct") is None
    assert "cannot compare" in stored.data["identity_error"]


def test_report_lists_distinct_structures_and_writes_their_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "Ag", "--steps", "20", "--seed", "3", "-o", str(out)] + SMALL) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "distinct structures:" in text and "symprec 0.1" in text
    assert "integrity: ok" in text and "rows: relaxed" in text
    polymorphs = distinct(out, n=None)
    assert polymorphs and polymorphs[0].delta_mev == 0.0
    assert [p.rank for p in polymorphs] == list(range(1, len(polymorphs) + 1))
    assert all(a.energy_per_atom <= b.energy_per_atom
               for a, b in zip(polymorphs, polymorphs[1:]))
    assert sum(p.times_found for p in polymorphs) == RunRecords(out / "fuse.db").count(
        status="relaxed")
    best = polymorphs[0]
    assert f"{best.spacegroup} ({best.spacegroup_number})" in text
    cifs = sorted((out / "top").glob("*.cif"))
    assert len(cifs) == min(10, len(polymorphs))
    assert cifs[0].name == f"01_{best.spacegroup.replace('/', '-')}_" \
                          f"{best.energy_per_atom:.4f}.cif"
    conventional = read(cifs[0])
    assert conventional.get_chemical_formula(empirical=True) == "Ag"
    p1 = read(sorted((out / "top").glob("01_*.extxyz"))[0])
    assert p1.get_potential_energy() / len(p1) == pytest.approx(best.energy_per_atom)
    assert MatcherComparator().same(conventional, p1)
    # --json, -n, --window
    assert main(["report", str(out), "--json", "-n", "2", "--no-files"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["structures"]) == min(2, len(polymorphs))
    assert data["structures"][0]["spacegroup_number"] == best.spacegroup_number
    assert main(["report", str(out), "--json", "--window", "0", "--no-files"]) == 0
    near = json.loads(capsys.readouterr().out)["structures"]
    assert all(p["delta_mev"] <= 1e-9 for p in near) and len(near) >= 1
    # bad values are one line, exit 2
    for bad in (["--window", "-1"], ["--window", "nan"], ["-n", "x"]):
        with pytest.raises(SystemExit) as err:
            main(["report", str(out)] + bad)
        assert err.value.code == 2
    # the landscape plot
    assert main(["plot", str(out), "--landscape"]) == 0
    assert (out / "landscape.png").read_bytes()[:4] == b"\x89PNG"
    # ase's own command line finds the columns by the documented query
    query = subprocess.run([sys.executable, "-m", "ase", "db", str(out / "fuse.db"),
                            "distinct=1", "-s", "energy_per_atom", "-c",
                            "id,formula,energy_per_atom,spacegroup,times_found,step"],
                           capture_output=True, text=True, timeout=300)
    assert query.returncode == 0, query.stderr
    assert f"Rows: {len(polymorphs)}" in query.stdout


def test_walkers_get_one_list_over_every_seed(tmp_path, capsys):
    group = tmp_path / "group"
    assert main(["run", "Ag", "--steps", "8", "--walkers", "2", "--seed", "2", "-o",
                 str(group)] + SMALL) == 0
    capsys.readouterr()
    both = distinct(group, n=None)
    seeds = [distinct(group / f"seed{s}", n=None) for s in (2, 3)]
    assert sum(p.times_found for p in both) == sum(p.times_found for s in seeds for p in s)
    assert len(both) <= sum(len(s) for s in seeds)
    assert len(both) >= max(len(s) for s in seeds)
    assert both[0].energy_per_atom == min(s[0].energy_per_atom for s in seeds)
    # no two in the merged list are the same by the search's own chain (a bare
    # StructureMatcher rescales volume, so it may pair EMT's loose slabs of Ag whose
    # volumes differ by 14%; the chain's volume gate keeps those apart)
    judge = default_comparator()
    for a in both:
        for b in both:
            if a is not b and abs(a.energy_per_atom - b.energy_per_atom) < 0.005:
                assert not judge.same(Entry(a.atoms, a.energy_per_atom),
                                      Entry(b.atoms, b.energy_per_atom))
    assert main(["report", str(group)]) == 0
    text = capsys.readouterr().out
    assert "== seed 2" in text and "== seed 3" in text and "== all 2 seeds" in text
    assert text.count("integrity: ok") == 2
    assert (group / "top").is_dir()
    assert main(["plot", str(group), "--landscape"]) == 0
    assert (group / "landscape.png").exists()


def test_identity_benchmark_quick(tmp_path):
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "identity.py"
    run = tmp_path / "run"
    opt = search(run, composition="Cu")
    opt.run(steps=6)
    opt.close()
    out = tmp_path / "identity.json"
    proc = subprocess.run([sys.executable, str(bench), "--quick", "--replay",
                           str(run / "fuse.db"), "--out", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| structure | atoms | link |" in proc.stdout
    result = json.loads(out.read_text())
    links = {r["link"] for r in result["pairs"]}
    assert links == {"composition", "energy", "volume", "fingerprint", "structure_matcher"}
    assert all(r["same"] for r in result["pairs"])          # a structure and its rattle
    proxy = result["proxy"]
    assert proxy["steps"] == 100 and 0 < proxy["identity_s"] < proxy["wall_s"]
    assert 1 <= proxy["distinct"] <= proxy["relaxed_rows"]
    replayed = result["replay"][0]
    assert replayed["relaxed_rows"] == RunRecords(run / "fuse.db").count(status="relaxed")
    assert replayed["distinct"] == sum(
        1 for r in RunRecords(run / "fuse.db").rows(status="relaxed") if r.get("distinct") == 1)


def test_report_leaves_out_a_row_whose_data_is_damaged(tmp_path, capsys):
    import sqlite3
    opt = search(tmp_path / "run")
    opt.run(steps=4)
    opt.close()
    db = tmp_path / "run" / "fuse.db"
    before = len(distinct(tmp_path / "run", n=None))
    con = sqlite3.connect(db)
    first = con.execute("SELECT id FROM systems WHERE data IS NOT NULL ORDER BY id").fetchone()[0]
    con.execute("UPDATE systems SET data = ? WHERE id = ?", (b"\x80not json", first))
    con.commit()
    con.close()
    assert main(["report", str(tmp_path / "run"), "--no-files"]) == 0
    assert "distinct structures:" in capsys.readouterr().out
    assert 1 <= len(distinct(tmp_path / "run", n=None)) <= before
