"""benchmarks/race.py (ase-fuse against AIRSS, same clock), airss.py and race_refs.py.

The hit logic, the readers of both contestants' raw outputs and the merge are tested
on structures and files written here (no CHGNet, nothing from ../shared); the quick
mode runs the real race in a subprocess with the proxy potential and a 20 s budget (``--quick``).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import ase.db
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import airss  # noqa: E402
import common  # noqa: E402
import race  # noqa: E402
import race_refs  # noqa: E402
import race_report  # noqa: E402


def test_reference_table_is_the_issue_s_and_built_ones_are_what_it_says():
    rows = race_refs.REFERENCES
    assert len(rows) >= 12 and len(set(race_refs.KEYS)) == len(rows)
    assert all(nprim <= 10 for _, _, _, nprim, _ in rows)
    assert sum(8 <= nprim <= 10 for _, _, _, nprim, _ in rows) >= 4
    assert race_refs.max_atoms_for(2) == 6 and race_refs.max_atoms_for(10) == 20
    for key in race_refs.BUILDERS:  # the shared CIFs are checked on load in a race
        atoms, info = race_refs.load(key, folder="/nonexistent")
        assert info["nprim"] == race_refs.primitive_sites(atoms)
    with pytest.raises(FileNotFoundError):
        race_refs.load("quartz", folder="/nonexistent")


def test_a_hit_is_a_structure_match_or_2_meV_below_the_reference():
    reference = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    check = race.HitCheck([reference, None], energy_per_atom=-3.0)
    same = bulk("NaCl", "rocksalt", a=5.9) * (1, 1, 2)  # other volume, supercell
    same.rattle(0.02, seed=3)
    wrong = bulk("NaCl", "cesiumchloride", a=3.3)
    assert check.kind(reference) == "match"
    assert check.kind(same, energy=-2.5) == "match"
    assert check.kind(wrong) is None
    assert check.kind(wrong, energy=-3.0015) is None  # 1.5 meV below: not enough
    assert check.kind(wrong, energy=-3.002) == "energy"
    assert race.HitCheck([reference], None).kind(wrong, energy=-9.0) is None


def test_variant_flags_the_race_sets_itself_are_refused():
    assert race.parse_variant('chgnet-only=--calculator chgnet') == \
        ("chgnet-only", ["--calculator", "chgnet"])
    assert race.parse_variant("pop10=--initial-population 10 --rmax=50")[1] == \
        ["--initial-population", "10", "--rmax=50"]
    for bad in ("noequals", "x=--seed 3", "y=--time-limit=5", "ase-fuse=-q"):
        with pytest.raises(SystemExit):
            race.parse_variant(bad)


def _relaxed(atoms, energy_per_atom):
    out = atoms.copy()
    out.calc = SinglePointCalculator(out, energy=energy_per_atom * len(out))
    return out


def _fake_runs(folder, started):
    """A fuse.db and an airss.jsonl as the contestants write them."""
    rocksalt = bulk("NaCl", "rocksalt", a=5.7)
    cscl = bulk("NaCl", "cesiumchloride", a=3.3)
    fuse = folder / "ase-fuse"
    fuse.mkdir(parents=True)
    db = ase.db.connect(str(fuse / "fuse.db"))
    tiers = [{"name": "proxy", "steps": 40, "wall_time": 0.1, "converged": True},
             {"name": "chgnet", "steps": 25, "wall_time": 2.0, "converged": True}]
    for t, atoms, e, status in [(5.0, cscl, -3.1, "relaxed"), (9.0, cscl, None, "failed"),
                                (12.0, rocksalt, -3.2, "relaxed"),
                                (99.0, rocksalt, -3.3, "relaxed")]:
        kv = {"energy_per_atom": e} if e is not None else {"reason": "chgnet: exploded"}
        db.write(_relaxed(atoms, e) if e else atoms, status=status,
                 finished_at=started + t, step=0, data={"tiers": tiers}, **kv)
    db.write(cscl, status="queued", step=1)  # not finished: not counted
    # an input equal to the first, its result re-used: no relaxation, counted apart
    db.write(_relaxed(cscl, -3.1), status="relaxed", finished_at=started + 14.0, step=2,
             energy_per_atom=-3.1, reused_from=1, data={"tiers": []})
    (fuse / "run.json").write_text(json.dumps({"started_at": started, "wall_s": 61.0}))
    rnd = folder / "airss"
    rnd.mkdir()
    (rnd / "airss_meta.json").write_text("{}")
    lines = []
    for i, (t, atoms, e) in enumerate([(3.0, cscl, -3.0), (20.0, cscl, -3.25)]):
        lines.append(json.dumps({
            "i": i, "t": t, "finished_at": started + t, "energy_per_atom": e,
            "ml_steps": 30 + i, "steps": 30 + i, "failed": None,
            "tiers": [{"name": "chgnet", "steps": 30 + i, "wall_time": 1.0}],
            "extxyz": airss.as_extxyz(atoms)}))
    (rnd / "airss.jsonl").write_text("\n".join(lines) + "\n{\"i\": 2, \"t\"")  # killed
    (rnd / "run.json").write_text(json.dumps({"started_at": started, "wall_s": 60.5}))
    return rocksalt


def test_analyse_counts_only_the_budget_and_finds_the_first_hit(tmp_path):
    started = time.time() - 1000
    rocksalt = _fake_runs(tmp_path, started)
    info = {"key": "nacl", "formula": "NaCl", "nprim": 2, "max_atoms": 6}
    ref = {"energy_per_atom": -3.2}
    check = race.HitCheck([rocksalt], ref["energy_per_atom"])
    fuse = race.analyse("ase-fuse", tmp_path / "ase-fuse", info, 0, ref, check, budget=60)
    assert common.validate_record(fuse) == []
    assert (fuse["evaluations"], fuse["failed"], fuse["cut_relaxations"]) == (2, 1, 1)
    assert fuse["hit"] and fuse["hit_kind"] == "match"
    assert fuse["time_to_hit_s"] == pytest.approx(12.0, abs=1e-3)
    assert fuse["ml_steps"] == [25, 25, 25]  # proxy steps are not ML steps
    assert fuse["ml_steps_mean"] == 25 and fuse["best_energy_per_atom"] == -3.2
    assert fuse["reused"] == 1 and fuse["structures_relaxed"] == 2
    rnd = race.analyse("airss", tmp_path / "airss", info, 0, ref, check, budget=60)
    assert rnd["structures_relaxed"] == 2 and rnd["ml_steps"] == [30, 31]
    assert rnd["hit_kind"] == "energy"  # -3.25 <= -3.2 - 0.002
    assert rnd["time_to_hit_s"] == pytest.approx(20.0, abs=1e-3)
    assert rnd["curve"] == [[1, 3.0, -3.0], [2, 20.0, -3.25]]
    short = race.analyse("airss", tmp_path / "airss", info, 0, ref, check, budget=10)
    assert not short["hit"] and short["structures_relaxed"] == 1
    missing = race.analyse("airss", tmp_path / "nothing", info, 0, ref, check, budget=10)
    assert missing["error"] and missing["evaluations"] == 0

    records = [fuse, rnd, short]
    for r, seed in zip(records, (0, 0, 1)):
        r["seed"] = seed
    summary = race_report.summarize(records)
    assert summary["references"]["nacl"]["airss"]["hits"] == 1
    assert summary["references"]["nacl"]["airss"]["runs"] == 2
    assert summary["contestants"]["ase-fuse"]["median_time_to_first_hit_s"] == \
        pytest.approx(12.0, abs=1e-3)
    text = race_report.table(records, summary)
    assert "| nacl | 2 | airss | 1/2 |" in text and "Summary: ase-fuse 1/1" in text
    assert "| re-used |" in text and "| nacl | 2 | ase-fuse | 1/1 | 12.000 | 2.000 | 1.000 |" \
        in text
    png = race_report.plot(records, tmp_path / "hits.png", 60)
    assert Path(png).stat().st_size > 1000


def test_merge_joins_pieces(tmp_path):
    def piece(name, key, method, seed, hit):
        rec = common.make_record("NaCl", method, seed, {
            "evaluations": 1, "attempted": 1, "failed": 0, "steps": 1, "wall_s": 1.0,
            "budget_s": 5.0, "generation_s": 0.0, "time_per_structure_s": 1.0,
            "time_per_structure_by_tier_s": {}, "cut_relaxations": 0, "cut_relax_s": 0.0,
            "best_energy_per_atom": -1.0, "best_formula": "NaCl",
            "evaluations_to_match": 1 if hit else None,
            "time_to_match_s": 2.0 if hit else None, "steps_to_match": None,
            "curve": [[1, 2.0, -1.0]]}, matched=hit, reference=key, nprim=2,
            max_atoms=6, reference_energy=-1.0, hit=hit, hit_kind="match" if hit else None,
            time_to_hit_s=2.0 if hit else None, structures_relaxed=1, ml_steps=[3],
            ml_steps_mean=3.0, ml_steps_p90=3.0)
        path = tmp_path / f"{name}.json"
        common.write_json(path, "race.py", {"conditions": {"budget_s": 5.0}}, [rec])
        return path
    a = piece("a", "nacl", "ase-fuse", 0, True)
    b = piece("b", "si", "airss", 1, False)
    records, summary = race.main(["--merge", str(a), str(b), "--out", str(tmp_path / "m")])
    assert sorted((r["reference"], r["method"]) for r in records) == \
        [("nacl", "ase-fuse"), ("si", "airss")]
    payload = json.loads((tmp_path / "m" / "race.json").read_text())
    assert [m["file"] for m in payload["settings"]["merged"]] == [str(a), str(b)]
    assert summary["contestants"]["ase-fuse"]["hits"] == 1
    assert (tmp_path / "m" / "race_hits.png").is_file()
    # --only / --seeds keep just those runs of the pieces (a table of one default's
    # runs, taken from pieces that raced more)
    kept, _ = race.main(["--merge", str(a), str(b), "--only", "si", "--out",
                         str(tmp_path / "k")])
    assert [(r["reference"], r["seed"]) for r in kept] == [("si", 1)]
    kept, _ = race.main(["--merge", str(a), str(b), "--seeds", "0", "--out",
                         str(tmp_path / "s")])
    assert [(r["reference"], r["seed"]) for r in kept] == [("nacl", 0)]
    payload = json.loads((tmp_path / "s" / "race.json").read_text())
    assert payload["settings"]["kept"] == {"only": list(race.race_refs.KEYS), "seeds": [0]}


@pytest.mark.slow
def test_quick_race_runs_both_contestants_and_writes_the_json(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = tmp_path / "race"
    proc = subprocess.run([sys.executable, str(BENCH / "race.py"), "--quick", "--out",
                           str(out)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Summary:" in proc.stdout
    payload = json.loads((out / "race.json").read_text())
    assert payload["schema"] == common.SCHEMA
    for key in ("date", "commit", "argv", "script"):
        assert key in payload["meta"]
    conditions = payload["settings"]["conditions"]
    assert conditions["budget_s"] == 20 and conditions["torch_threads"] == 1
    assert "StructureMatcher" in conditions["hit"]
    records = payload["records"]
    assert [(r["reference"], r["method"], r["seed"]) for r in records] == \
        [("nacl", "ase-fuse", 0), ("nacl", "airss", 0)]
    cores = {r["run"]["core"] for r in records}
    assert len(cores) == min(2, len(os.sched_getaffinity(0)))
    for r in records:
        assert common.validate_record(r) == []
        assert r["structures_relaxed"] >= 1, r  # both contestants produced rows
        assert r["curve"][-1][1] <= 20 and r["reference_energy"] is not None
        assert len(r["ml_steps"]) == r["attempted"]
        if r["hit"]:
            assert r["hit_kind"] in ("match", "energy") and r["time_to_hit_s"] <= 20
    summary = payload["summary"]
    assert set(summary["contestants"]) == {"ase-fuse", "airss"}
    assert Path(summary["plot"]).stat().st_size > 1000
    assert (out / "runs" / "nacl_s0" / "airss" / "airss.jsonl").is_file()
    assert (out / "runs" / "nacl_s0" / "ase-fuse" / "fuse.db").is_file()
    # the stored outputs re-score to the same records without running anything
    again, _ = race.main(["--quick", "--analyse", "--out", str(out)])
    assert [(r["hit"], r["time_to_hit_s"], r["structures_relaxed"]) for r in again] == \
        [(r["hit"], r["time_to_hit_s"], r["structures_relaxed"]) for r in records]


def test_median_ratio_interval_brackets_the_ratio_and_is_seeded():
    def rec(key, method, seed, t):
        return {"reference": key, "method": method, "seed": seed, "hit": t is not None,
                "time_to_hit_s": t, "ml_steps": [10], "structures_relaxed": 1, "nprim": 2,
                "reference_energy": -1.0, "best_energy_per_atom": -1.0}
    records = []
    for k, (fast, slow) in enumerate([(10, 20), (30, 60), (5, 50), (40, 40)]):
        for seed in (0, 1):
            records += [rec(f"r{k}", "ase-fuse", seed, fast + seed),
                        rec(f"r{k}", "airss", seed, slow + seed)]
    records += [rec("missed", "ase-fuse", 0, None), rec("missed", "airss", 0, 7.0)]
    # per reference the seeds' mean: 10.5/20.5, 30.5/60.5, 5.5/50.5, 40.5/40.5
    assert race_report.median_ratio(
        {"a": {"x": [10, None], "y": [20]}, "b": {"x": [None], "y": [1]}}) == 0.5
    got = race_report.median_ratio_interval(records, ["ase-fuse", "airss"], draws=300)
    assert got["ratio"] == pytest.approx(np.median([10.5, 30.5, 5.5, 40.5])
                                         / np.median([20.5, 60.5, 50.5, 40.5]))
    assert got["low"] <= got["ratio"] <= got["high"] and got["low"] < got["high"]
    assert got["draws"] == 300 and got["level"] == 0.9
    assert race_report.median_ratio_interval(records, ["ase-fuse", "airss"],
                                             draws=300) == got
    summary = race_report.summarize(records)
    assert summary["median_ratio_interval"]["ratio"] == pytest.approx(got["ratio"])
    assert "bootstrap interval" in race_report.table(records, summary)
    fixed = race_report.median_ratio_interval(records, ["ase-fuse", "airss"], draws=300,
                                              references=False)
    assert fixed["ratio"] == got["ratio"]
    # seeds differ by 1 s only, so with the references fixed the ratio barely moves
    assert fixed["high"] - fixed["low"] < 0.1 < got["high"] - got["low"]
    assert "with the seeds only" in race_report.table(records, summary)


def test_hit_watch_checks_new_rows_near_the_reference_once():
    from race_watch import HitWatch

    class Check:
        calls = []

        def kind(self, atoms, energy):
            self.calls.append(energy)
            return "match" if energy < -1.95 else None

    table = {"a": [], "b": []}

    def reader(name):
        return lambda folder, started: [dict(r, atoms=lambda: None) for r in table[name]]

    check = Check()
    watch = HitWatch({"a": reader("a"), "b": reader("b")}, check, budget=100,
                     reference_energy=-2.0, window=0.15)
    running = [{"name": "a", "folder": None, "started_at": 0.0},
               {"name": "b", "folder": None, "started_at": 0.0}]
    table["a"] = [{"t": 1.0, "ok": True, "energy": -1.0},      # far above: not checked
                  {"t": 2.0, "ok": True, "energy": -1.9},      # checked, no hit
                  {"t": 3.0, "ok": False, "energy": None}]     # failed: not checked
    table["b"] = [{"t": 1.5, "ok": True, "energy": -1.97}]     # a hit
    assert not watch.all_hit(running)
    assert check.calls == [-1.9, -1.97] and watch.hits == {"b": 1.5}
    table["a"].append({"t": 4.0, "ok": True, "energy": -1.99})
    table["a"].append({"t": 500.0, "ok": True, "energy": -2.5})  # past the budget
    assert watch.all_hit(running)
    assert check.calls == [-1.9, -1.97, -1.99] and watch.hits == {"b": 1.5, "a": 4.0}


def test_race_stops_both_contestants_once_the_watch_sees_their_hits(tmp_path):
    class Watch:
        every = 0.2

        def all_hit(self, running):
            return True

    entries = [(name, [sys.executable, "-c", "import time; time.sleep(60)"],
                tmp_path / name) for name in ("ase-fuse", "airss")]
    cores = (sorted(os.sched_getaffinity(0)) * 2)[:2]
    started = time.time()
    race.race(entries, budget=60, cores=cores, kill_after=70, watch=Watch())
    assert time.time() - started < 30
    for name in ("ase-fuse", "airss"):
        meta = json.loads((tmp_path / name / "run.json").read_text())
        assert meta["stopped_on_hits"] is True and meta["killed"] is False
