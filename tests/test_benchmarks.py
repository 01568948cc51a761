"""The search benchmarks (benchmarks/fuse2.py, peers.py, recovery.py) and their helpers.

The scripts run in a subprocess with tiny budgets and cheap calculators (proxy, EMT);
everything they read (reference CIFs, probe structures, a paper table) is written here
with ASE, so nothing from ../shared is needed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.spacegroup import crystal

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import fuse2  # noqa: E402
import recovery  # noqa: E402


def run_script(name, *args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(BENCH / name), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def check_payload(path, script):
    payload = json.loads(Path(path).read_text())
    assert payload["schema"] == common.SCHEMA
    meta = payload["meta"]
    assert meta["script"] == script
    for key in ("date", "machine", "commit", "python"):
        assert key in meta
    for record in payload["records"]:
        assert common.validate_record(record) == [], record
        assert record["evaluations"] <= record["attempted"]
        assert record["failed"] == record["attempted"] - record["evaluations"]
        bests = [point[2] for point in record["curve"]]
        assert bests == sorted(bests, reverse=True)  # best so far never rises
        assert [p[0] for p in record["curve"]] == list(range(1, record["evaluations"] + 1))
        if record["evaluations"]:
            assert record["best_energy_per_atom"] == pytest.approx(bests[-1])
            assert record["time_per_structure_s"] > 0
        else:
            assert record["best_energy_per_atom"] is None
    return payload


# -- helpers -----------------------------------------------------------------------
def test_summarize_excludes_budget_cuts_and_finds_first_match():
    trace = [
        {"t": 1.0, "step": 0, "energy": -1.0, "failed": None, "formula": "Cu",
         "tiers": [("a", 0.5), ("b", 1.5)], "matched": False},
        {"t": 2.0, "step": 0, "energy": None, "failed": "b: not converged", "formula": "Cu",
         "tiers": [("a", 1.0)], "matched": False},
        {"t": 3.0, "step": 1, "energy": -1.5, "failed": None, "formula": "Cu2",
         "tiers": [("a", 0.5), ("b", 0.5)], "matched": True},
        {"t": 4.0, "step": 2, "energy": -1.2, "failed": None, "formula": "Cu",
         "tiers": [("a", 0.5), ("b", 0.5)], "matched": True},
        {"t": 5.0, "step": 3, "energy": None, "failed": common.BUDGET_REASON, "formula": "Cu",
         "tiers": [("a", 0.7)], "matched": False},
        {"t": 5.0, "step": 3, "energy": None, "failed": common.BUDGET_REASON, "formula": "Cu",
         "tiers": [], "matched": False},
    ]
    n = common.summarize(trace, budget_s=5, wall_s=5.2, steps=3)
    assert (n["evaluations"], n["attempted"], n["failed"]) == (3, 4, 1)
    assert n["time_per_structure_s"] == pytest.approx((2 + 1 + 1 + 1) / 4)
    assert n["time_per_structure_by_tier_s"] == pytest.approx({"a": 2.5 / 4, "b": 2.5 / 4})
    assert (n["cut_relaxations"], n["cut_relax_s"]) == (1, pytest.approx(0.7))
    assert n["best_energy_per_atom"] == -1.5 and n["best_formula"] == "Cu2"
    assert n["curve"] == [[1, 1.0, -1.0], [2, 3.0, -1.5], [3, 4.0, -1.5]]
    assert (n["evaluations_to_match"], n["time_to_match_s"], n["steps_to_match"]) == (2, 3.0, 1)


class FakeClock:
    now = 0.0

    def __call__(self):
        return self.now


class SleepyRelaxer:
    """Stand-in relaxer: advances a fake clock, then succeeds or fails."""

    def __init__(self, clock, cost, fail=None):
        self.clock, self.cost, self.fail = clock, cost, fail
        self.time_limit, self.calls, self.limits = None, 0, []

    def relax(self, atoms):
        from ase.calculators.singlepoint import SinglePointCalculator
        from ase_fuse.calculators import RelaxResult
        from ase_fuse.calculators.tiers import TierRecord
        self.calls += 1
        self.limits.append(self.time_limit)
        self.clock.now += self.cost
        out = atoms.copy()
        record = TierRecord(name="fake", wall_time=self.cost)
        if self.fail:
            record.failed = self.fail
            return RelaxResult(atoms=out, failed=f"fake: {self.fail}", tiers=[record])
        out.calc = SinglePointCalculator(out, energy=-1.0 * len(out))
        return RelaxResult(atoms=out, energy=-1.0 * len(out), energy_per_atom=-1.0,
                           tiers=[record])


def test_budget_relaxer_refuses_after_the_budget_and_passes_the_time_left(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(common.time, "perf_counter", clock)
    inner = SleepyRelaxer(clock, cost=2.0)
    budget = common.BudgetRelaxer(inner, budget_s=5.0).start()
    atoms = bulk("Cu", "fcc", a=3.6)
    results = [budget.relax(atoms) for _ in range(6)]
    assert inner.calls == 3  # started at 0, 2 and 4 s; later calls refused
    assert inner.limits == [5.0, 3.0, 1.0]  # the time left (at least 1 s)
    assert [r.failed for r in results[3:]] == [common.BUDGET_REASON] * 3
    n = common.summarize(budget.trace, 5.0, budget.elapsed)
    assert n["evaluations"] == n["attempted"] == 3
    assert n["curve"] == [[1, 2.0, -1.0], [2, 4.0, -1.0], [3, 6.0, -1.0]]

    clock.now = 0.0
    cut = common.BudgetRelaxer(SleepyRelaxer(clock, 2.0, fail="time-limit"), 1.0).start()
    assert cut.relax(atoms).failed == common.BUDGET_REASON  # cut at the end: not a failure
    clock.now = 0.0
    early = common.BudgetRelaxer(SleepyRelaxer(clock, 0.5, fail="time-limit"), 60).start()
    assert early.relax(atoms).failed == "fake: time-limit"  # a real per-structure limit


def test_structure_match_tells_rocksalt_from_cesium_chloride():
    conventional = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    primitive = bulk("NaCl", "rocksalt", a=5.64)
    primitive.rattle(0.01, seed=1)
    cscl = bulk("NaCl", "cesiumchloride", a=3.3)
    assert common.structure_match(primitive, conventional)
    assert not common.structure_match(cscl, conventional)


def test_markdown_table_and_paper_tables(tmp_path):
    text = common.markdown_table(["a", "b"], [["x", 1.23456], ["y", None]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x | 1.235 |", "| y | - |"]
    md = tmp_path / "tables.md"
    md.write_text("# t\n\n## Table 1 and 3: speed\n| composition | fgen-SPP | mlgen |\n"
                  "|---|---|---|\n| CoAs2 | 0.4 | 3.9 |\n\n## Table 2: energy\n"
                  "| composition | fgen |\n|---|---|\n| CoAs2 | -5.55 |\n")
    tables = fuse2.parse_paper_tables(md)
    assert fuse2.paper_lookup(tables, "Table 1")["CoAs2"] == {"fgen-SPP": 0.4, "mlgen": 3.9}
    assert fuse2.paper_lookup(tables, "Table 2")["CoAs2"] == {"fgen": -5.55}


def test_experiment_stages():
    assert fuse2.stages_of("fgen", "chgnet") == ["chgnet"]
    assert fuse2.stages_of("mlgen-proxy", "gpaw") == ["proxy", "gpaw"]
    assert fuse2.stages_of("fgen-chgnet", "chgnet") == ["chgnet-pre", "chgnet"]
    tiers = common.relaxer_for(["proxy", "emt"], "Cu").tiers
    assert [t.name for t in tiers] == ["proxy", "emt"]


def test_out_is_a_folder_or_a_json_file():
    assert common.json_target("res", "x.json") == ("res", str(Path("res") / "x.json"))
    assert common.json_target("a/results.json", "x.json") == ("a/results", "a/results.json")


def _fake_fuse2_file(path, composition, runs, bar=None):
    """A fuse2.json as a run would write it: runs = [(method, seed, [energies])]."""
    records = []
    for method, seed, energies in runs:
        trace = [{"t": 1.0 + i, "step": i, "n": 4, "energy": e, "failed": None,
                  "formula": "Co2As4", "tiers": [("proxy", 2.0)], "matched": False}
                 for i, e in enumerate(energies)]
        records.append(common.make_record(composition, method, seed,
                                          common.summarize(trace, 10, 10)))
    summary = {"bar": {composition: bar}, "probes": {composition: {"a.cif": bar}}} \
        if bar is not None else {}
    common.write_json(path, "fuse2.py", {}, records, summary)


def test_fuse2_merge_joins_files_and_scores_seeds_against_an_earlier_bar(tmp_path):
    _fake_fuse2_file(tmp_path / "a.json", "CoAs2",
                     [("fgen", 0, [-5.0, -5.6]), ("fgen", 1, [-5.2]),
                      ("mlgen", 0, [-5.71])])
    _fake_fuse2_file(tmp_path / "b.json", "Mn", [("fgen", 0, [-9.0])])
    _fake_fuse2_file(tmp_path / "bar.json", "CoAs2", [("fgen", 7, [-1.0])], bar=-5.7)
    out = tmp_path / "merged"
    records, summary = fuse2.main(["--merge", str(tmp_path / "a.json"),
                                   str(tmp_path / "b.json"), "--bar-from",
                                   str(tmp_path / "bar.json"), "--paper", "",
                                   "--out", str(tmp_path / "merged.json")])
    assert (tmp_path / "merged.json").is_file() and not (out / "fuse2.json").exists()
    # the bar file's own records are not merged, only its bar
    assert sorted((r["composition"], r["method"], r["seed"]) for r in records) == \
        [("CoAs2", "fgen", 0), ("CoAs2", "fgen", 1), ("CoAs2", "mlgen", 0), ("Mn", "fgen", 0)]
    assert summary["bar"] == {"CoAs2": -5.7}
    matched = {(r["method"], r["seed"]): r["matched"] for r in records
               if r["composition"] == "CoAs2"}
    assert matched == {("fgen", 0): False, ("fgen", 1): False, ("mlgen", 0): True}
    assert summary["reached_bar"]["CoAs2"]["mlgen"] == [1, 1]
    assert summary["reached_bar"]["CoAs2"]["fgen"] == [0, 2]
    assert summary["reached_bar"]["Mn"]["fgen"] is None  # no bar known for Mn
    assert summary["lowest"]["CoAs2"]["fgen"] == pytest.approx(-5.6)
    text = (out / "fuse2.md").read_text()
    assert "| CoAs2 | 0/2 | 1/1 |" in text and "| Mn | - | - |" in text
    payload = check_payload(tmp_path / "merged.json", "fuse2.py")
    assert [m["file"] for m in payload["settings"]["merged"]] == \
        [str(tmp_path / "a.json"), str(tmp_path / "b.json")]


def test_reference_listing_follows_manifest_and_select(tmp_path):
    bulk("Cu", "fcc", a=3.615).write(tmp_path / "Cu_fcc.cif")
    bulk("NaCl", "rocksalt", a=5.64, cubic=True).write(tmp_path / "NaCl_rocksalt.cif")
    (tmp_path / "MANIFEST.tsv").write_text("file\tformula\nNaCl_rocksalt.cif\tNa4Cl4\n"
                                           "Cu_fcc.cif\tCu1\n")
    paths = recovery.list_references(tmp_path)
    assert [p.name for p in paths] == ["NaCl_rocksalt.cif", "Cu_fcc.cif"]
    assert [p.name for p in recovery.selected(paths, ["nacl"])] == ["NaCl_rocksalt.cif"]
    atoms, formula, nprim = recovery.load_reference(tmp_path / "NaCl_rocksalt.cif")
    assert (formula, nprim, len(atoms)) == ("NaCl", 2, 8)


# -- the scripts, end to end -------------------------------------------------------
@pytest.mark.slow
def test_fuse2_quick_writes_tables_json_and_plots(tmp_path):
    probes = tmp_path / "probes" / "CoAs2"
    probes.mkdir(parents=True)
    pyrite_like = crystal(["Co", "As"], basis=[(0, 0, 0), (0.38, 0.38, 0.38)],
                          spacegroup=205, cellpar=[5.6, 5.6, 5.6, 90, 90, 90])
    pyrite_like.write(probes / "a.cif")
    paper = tmp_path / "tables.md"
    paper.write_text("## Table 1: speed\n| composition | mlgen |\n|---|---|\n"
                     "| CoAs2 | 3.9 |\n")
    out = tmp_path / "out"
    stdout = run_script("fuse2.py", "--quick", "--final", "proxy", "--compositions", "CoAs2",
                        "--experiments", "fgen", "mlgen", "fgen-proxy", "--budget", 3,
                        "--max-atoms", 9, "--initial-population", 2,
                        "--gnoa-evaluations", 5, "--probes", tmp_path / "probes",
                        "--paper", paper, "--out", out, cwd=tmp_path)
    payload = check_payload(out / "fuse2.json", "fuse2.py")
    records = payload["records"]
    assert sorted((r["method"], r["seed"]) for r in records) == \
        [("fgen", 0), ("fgen-proxy", 0), ("mlgen", 0)]
    assert all(r["composition"] == "CoAs2" and r["budget_s"] == 3 for r in records)
    mlgen = next(r for r in records if r["method"] == "mlgen")
    assert mlgen["generation_s"] > 0 and mlgen["extra"]["stages"] == ["proxy"]
    summary = payload["summary"]
    bar = summary["bar"]["CoAs2"]
    assert bar == pytest.approx(summary["probes"]["CoAs2"]["a.cif"])
    for r in records:
        if r["best_energy_per_atom"] is not None:
            assert r["matched"] == (r["best_energy_per_atom"] <= bar + 0.005)
    if summary["speedup"]["CoAs2"]["fgen"] is not None:
        assert summary["speedup"]["CoAs2"]["fgen"] == pytest.approx(1.0)
    assert "(3.9)" in stdout  # the paper's number beside ours
    assert (out / "fuse2.md").read_text().startswith("### Speed-up")
    assert all(Path(p).stat().st_size > 1000 for p in summary["plots"])


def test_fan_out_keeps_the_calls_order_in_process_and_on_dask(tmp_path):
    pytest.importorskip("distributed")
    calls = [(3, 1), (2, 5), (7, 0)]
    seen = []
    local = common.fan_out("common", "mean", [([a, b],) for a, b in calls],
                           on_result=lambda i, r, s: seen.append(i))
    assert local == [2.0, 3.5, 3.5] and seen == [0, 1, 2]
    pooled = common.fan_out("common", "mean", [([a, b],) for a, b in calls], workers=2)
    assert pooled == local


def test_fuse2_runs_fan_out_over_dask_workers(tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    stdout = run_script("fuse2.py", "--final", "proxy", "--compositions", "CoAs2",
                        "--experiments", "fgen", "fgen-proxy", "--seeds", 0, 1,
                        "--budget", 2, "--max-atoms", 6, "--initial-population", 2,
                        "--workers", 2, "--paper", "", "--out", out, cwd=tmp_path)
    payload = check_payload(out / "fuse2.json", "fuse2.py")
    records = payload["records"]
    # in the loops' order whatever order the workers finished in
    assert [(r["method"], r["seed"]) for r in records] == \
        [("fgen", 0), ("fgen", 1), ("fgen-proxy", 0), ("fgen-proxy", 1)]
    assert all(r["evaluations"] >= 1 and r["budget_s"] == 2 for r in records)
    assert len({r["extra"]["db"] for r in records}) == 4
    assert stdout.count("CoAs2 ") >= 4


@pytest.mark.slow
def test_peers_quick_scores_methods_against_the_common_target(tmp_path):
    out = tmp_path / "results.json"  # the form: --out results.json
    run_script("peers.py", "--quick", "--stack", "proxy", "--budget", 4,
               "--methods", "airss", "ga", "fuse-fgen", "--max-atoms", 9,
               "--initial-population", 3, "--ga-population", 3, "--out", out, cwd=tmp_path)
    payload = check_payload(out, "peers.py")
    assert (tmp_path / "results" / "peers.md").is_file()
    records = payload["records"]
    assert sorted(r["method"] for r in records) == ["airss", "fuse-fgen", "ga"]
    summary = payload["summary"]["CoAs2"]
    energies = [r["best_energy_per_atom"] for r in records
                if r["best_energy_per_atom"] is not None]
    assert energies, "no method relaxed anything"
    assert summary["target"] == pytest.approx(min(energies))
    assert any(r["matched"] for r in records)
    for r in records:
        if r["matched"]:
            assert r["best_energy_per_atom"] <= summary["target"] + 0.01
            assert 1 <= r["evaluations_to_match"] <= r["evaluations"]
    rates = [summary["methods"][m]["success_rate"] for m in ("airss", "ga", "fuse-fgen")]
    assert all(0 <= x <= 1 for x in rates) and max(rates) == 1
    assert summary["ratio"]["ours"] == "fuse-fgen"
    assert summary["ratio"]["best_peer"] in ("airss", "ga")


@pytest.mark.slow
@pytest.mark.parametrize("fan_out", [[], ["--workers", 1]], ids=["in-process", "dask"])
def test_recovery_finds_fcc_copper_with_emt(tmp_path, fan_out):
    if fan_out:
        pytest.importorskip("distributed")
    refs = tmp_path / "refs"
    refs.mkdir()
    bulk("Cu", "fcc", a=3.615, cubic=True).write(refs / "Cu_fcc.cif")
    bulk("NaCl", "rocksalt", a=5.64, cubic=True).write(refs / "NaCl_rocksalt.cif")
    out = tmp_path / "out"
    run_script("recovery.py", refs, "--select", "Cu", "--stack", "emt", "--factor", 4,
               "--seeds", 0, "--budget", 20, "--initial-population", 6, "--out", out,
               *fan_out, cwd=tmp_path)
    payload = check_payload(out / "recovery.json", "recovery.py")
    (record,) = payload["records"]
    assert record["composition"] == "Cu" and record["extra"]["max_atoms"] == 4
    assert record["extra"]["nprim"] == 1
    assert record["matched"] and 1 <= record["extra"]["matched_rank"] <= 5
    assert 1 <= record["evaluations_to_match"] <= record["evaluations"]
    summary = payload["summary"]["Cu_fcc.cif"]
    assert summary["seeds_matched"] == 1
    assert summary["success_curve"][-1][2] == 1.0
    assert np.isfinite(summary["reference_energy"])
    assert Path(payload["summary"]["plot"]).exists()


def test_generation_quality_counts_distinct_structures():
    import generation_quality
    rocksalt = bulk("NaCl", "rocksalt", a=5.64)
    bigger = rocksalt * (2, 1, 1)
    bigger.rattle(0.01, seed=0)
    cscl = bulk("NaCl", "cesiumchloride", a=3.4)
    assert generation_quality.distinct_count([rocksalt, bigger, None]) == 1
    assert generation_quality.distinct_count([rocksalt, cscl, bigger]) == 2
    assert generation_quality.distinct_count([]) == 0


def test_batched_benchmark_compares_loop_batches_and_workers(tmp_path):
    pytest.importorskip("torch_sim")
    pytest.importorskip("chgnet")
    pytest.importorskip("distributed")
    out = tmp_path / "batched.json"
    text = run_script("batched.py", "--n", "2", "--max-atoms", "12", "--steps", "40",
                      "--fmax", "0.5", "--batch-sizes", "2", "--workers", "2",
                      "--out", out, cwd=tmp_path)
    report = json.loads(out.read_text())
    rows = [(r["mode"], r["batch_size"], r.get("workers")) for r in report["runs"]]
    assert rows == [("ase-loop", 1, None), ("batched", 2, None),
                    ("ase-loop", 1, 2), ("batched", 2, 2)]
    assert report["worker_threads"] == [1, 1]
    for row in report["runs"][1:]:
        assert row["speedup"] > 0
        assert row["relaxed"] == 2
        # both paths run the same FIRE: converged energies agree
        if row["max_dE_meV_per_atom"] is not None:
            assert row["max_dE_meV_per_atom"] < 5
    assert "batched x2" in text


def test_field_quick_compares_with_a_reference_hull(tmp_path):
    reference = tmp_path / "ref.json"
    reference.write_text(json.dumps({"source": "a test's own", "phases": {
        "CuAu": {"structure": "L1_0", "formation_energy_per_atom": -0.008,
                 "e_above_hull": 0.0},
        "Cu3Au": {"structure": "L1_2", "e_above_hull": 0.05}}}))
    out = tmp_path / "field"
    stdout = run_script("field.py", "--quick", "--workers", 0, "--reference", reference,
                        "--out", out, cwd=tmp_path)
    assert "| CuAu |" in stdout and "hull membership agrees on" in stdout
    payload = check_payload(out / "field.json", "field.py")
    summary = payload["summary"]
    rows = {r["composition"]: r for r in summary["rows"]}
    assert set(rows) == {"Cu", "Au", "CuAu", "Cu3Au"}
    assert rows["CuAu"]["reference_stable"] is True
    assert rows["Cu3Au"]["reference_stable"] is False
    assert summary["hull_membership_known"] == 2
    # EMT puts both on its hull (tests/test_field.py): one agrees, one does not
    assert summary["hull_membership_agrees"] == sum(
        rows[k]["stable"] == rows[k]["reference_stable"] for k in ("CuAu", "Cu3Au"))
    assert (out / "run" / "field.png").exists()
