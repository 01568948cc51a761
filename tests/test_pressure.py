"""Pressure (issue 18): cells relax under it, the search compares enthalpy H = E + PV.

The textbook transition: rock salt (B1) to caesium chloride (B2) NaCl.  A rigid-ion
model (Buckingham Na-Cl and Cl-Cl terms, the Catlow-Lewis values, with a damped
Coulomb sum between charges +-1) puts B1 lowest at zero pressure and B2 lowest at
high pressure, as experiment does (the B1-B2 transition of NaCl is at about 30 GPa;
this cheap model puts it lower).  Where this calculator puts it is found here
independently of the relaxer (a scan over the cubic lattice parameter, both phases
keeping their symmetry), and the relaxer's enthalpy ordering must flip across it.
"""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.units import GPa
from scipy.optimize import brentq, minimize_scalar

from ase_fuse import FuseBasinHopping
from ase_fuse.calculators.pair_terms import PairTerm
from ase_fuse.calculators.proxy import ProxyPotential
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.cli import main
from ase_fuse.errors import InputError
from ase_fuse.field import hull, run_field
from ase_fuse.records import RunRecords
from ase_fuse.results import distinct

TERMS = [PairTerm("buckingham", "Na", "Cl", (1170.4, 0.3159, 0.0), rmax=8.0),
         PairTerm("buckingham", "Cl", "Cl", (1227.2, 0.3214, 29.06), rmax=8.0)]


def ionic():
    return ProxyPotential(TERMS, charges={"Na": 1.0, "Cl": -1.0})


def relaxer(pressure=0.0):
    return TieredRelaxer([Tier(ionic, fmax=0.002, steps=600, optimizer="BFGS")],
                         pressure=pressure)


PHASES = {"B1": lambda a: bulk("NaCl", "rocksalt", a=a),
          "B2": lambda a: bulk("NaCl", "cesiumchloride", a=a)}
START = {"B1": 5.64, "B2": 3.35}


def scanned_enthalpy(phase, pressure):
    """min over the cubic lattice parameter of (E + PV) / N: no optimiser, no filter."""
    calc = ionic()

    def h(a):
        atoms = PHASES[phase](a)
        atoms.calc = calc
        return (atoms.get_potential_energy() + pressure * GPa * atoms.get_volume()) / len(atoms)
    a0 = START[phase]
    best = minimize_scalar(h, bounds=(0.7 * a0, 1.15 * a0), method="bounded",
                           options={"xatol": 1e-6})
    return best.fun


@pytest.fixture(scope="module")
def transition():
    """The pressure (GPa) at which this calculator's B1 and B2 enthalpies cross."""
    def gap(p):
        return scanned_enthalpy("B2", p) - scanned_enthalpy("B1", p)
    assert gap(0.0) > 0.05            # B1 well below at zero pressure (eV/atom)
    return brentq(gap, 0.0, 60.0, xtol=1e-3)


def test_enthalpy_ordering_flips_across_the_calculators_transition(transition):
    assert 3.0 < transition < 40.0
    for pressure, lower in [(transition - 3.0, "B1"), (transition + 3.0, "B2")]:
        results = {}
        for phase in PHASES:
            start = PHASES[phase](START[phase])
            start.rattle(0.01, seed=1)
            result = relaxer(pressure).relax(start)
            assert result.ok, result.failed
            assert result.pressure == pressure
            assert result.enthalpy_per_atom == pytest.approx(
                result.energy_per_atom + pressure * GPa * result.volume / len(start))
            # the relaxed cell is the scan's minimum of E + PV
            assert result.enthalpy_per_atom == pytest.approx(
                scanned_enthalpy(phase, pressure), abs=1e-3)
            results[phase] = result
        found = min(results, key=lambda k: results[k].enthalpy_per_atom)
        assert found == lower, (pressure, {k: r.enthalpy_per_atom for k, r in results.items()})
        # the energy alone still prefers B1: ranking by E would miss the transition
        assert results["B1"].energy_per_atom < results["B2"].energy_per_atom
    # a cell compresses under pressure
    low = relaxer(0.0).relax(PHASES["B1"](5.64))
    high = relaxer(transition).relax(PHASES["B1"](5.64))
    assert high.volume < 0.9 * low.volume
    assert low.enthalpy_per_atom == low.energy_per_atom


def search(tmp_path, name, pressure, **kw):
    starts = [PHASES["B1"](5.64), PHASES["B2"](3.35)]
    options = dict(relaxer=relaxer(), structures=starts, initial_population=2, max_atoms=4,
                   seed=0, symmetrize=False, directory=tmp_path / name, logfile=None,
                   pressure=pressure)
    options.update(kw)
    return FuseBasinHopping("NaCl", **options)


def test_the_search_compares_enthalpy_and_the_db_keeps_e_p_v_h(tmp_path, transition):
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    def is_phase(atoms, phase):
        to = AseAtomsAdaptor.get_structure
        return StructureMatcher().fit(to(atoms), to(PHASES[phase](START[phase])))

    user = relaxer()
    for pressure, phase in [(0.0, "B1"), (transition + 5.0, "B2")]:
        with search(tmp_path, f"p{pressure:g}", pressure, relaxer=user) as opt:
            opt.run(steps=0)
            assert is_phase(opt.best_atoms, phase), pressure
            summary = json.loads((opt.directory / "summary.json").read_text())
            rows = RunRecords(opt.records.path).relaxed_sorted()
        assert summary["pressure_GPa"] == pressure
        assert summary["best_enthalpy_per_atom"] == pytest.approx(opt.best_energy)
        best = rows[0]
        energy = best.toatoms().get_potential_energy() / best.natoms
        assert best.energy_per_atom == pytest.approx(energy)
        assert summary["best_energy_per_atom"] == pytest.approx(energy)
        if pressure:
            assert best.pressure == pressure and best.volume > 0
            assert best.enthalpy_per_atom == pytest.approx(
                energy + pressure * GPa * best.volume / best.natoms)
            assert rows[1].energy_per_atom < best.energy_per_atom   # B1: lower E, higher H
        polymorphs = distinct(opt.directory)
        assert polymorphs[0].pressure == pressure
        assert polymorphs[0].enthalpy_per_atom == pytest.approx(opt.best_energy)
    assert user.pressure == 0.0          # the caller's relaxer is not changed


def test_restart_at_another_pressure_is_refused(tmp_path):
    with search(tmp_path, "run", 10.0) as opt:
        opt.run(steps=0)
    with pytest.raises(InputError) as info:
        search(tmp_path, "run", 20.0, restart=True)
    assert "pressure" in str(info.value) and "\n" not in str(info.value)


def test_bad_pressures_and_relaxers_that_cannot_take_one_are_one_line(tmp_path):
    for bad in ("high", float("nan"), None, True):
        with pytest.raises(InputError) as info:
            search(tmp_path, "bad", bad)
        assert info.value.field == "pressure"

    class Plain:                                  # a relax() without a pressure
        def relax(self, atoms):
            raise AssertionError("not reached")
    with pytest.raises(InputError, match="takes no pressure"):
        search(tmp_path, "plain", 5.0, relaxer=Plain())
    with pytest.raises(InputError, match="built for 5 GPa"):
        search(tmp_path, "other", 0.0, relaxer=relaxer(5.0))
    internal = TieredRelaxer([Tier(EMT(), internal_relax=True)])
    with pytest.raises(InputError, match="own program"):
        internal.set_pressure(3.0)


def test_batched_relaxation_refuses_a_pressure_clearly():
    pytest.importorskip("torch_sim")
    from ase_fuse.calculators.stacks import build_stack
    from ase_fuse.search_setup import relaxer_at_pressure
    batched = build_stack("chgnet", "Si", batch_size=4)
    assert relaxer_at_pressure(batched, 0.0) is batched
    with pytest.raises(InputError) as info:
        relaxer_at_pressure(batched, 10.0)
    assert "zero pressure" in str(info.value) and "\n" not in str(info.value)


def test_cli_and_toml_runs_at_pressure(tmp_path, capsys):
    common = ["--calculator", "emt", "--max-atoms", "4", "--initial-population", "3",
              "--steps", "3", "--seed", "1", "--generator", "fuse", "--quiet"]
    assert main(["run", "Cu", "-o", str(tmp_path / "p0")] + common) == 0
    assert main(["run", "Cu", "--pressure", "50", "-o", str(tmp_path / "p50")] + common) == 0
    toml = tmp_path / "cu.toml"
    toml.write_text('composition = "Cu"\npressure = 50.0\ncalculator = "emt"\n'
                    'max_atoms = 4\ninitial_population = 3\nsteps = 3\nseed = 1\n'
                    'generator = "fuse"\n')
    assert main(["run", str(toml), "-o", str(tmp_path / "toml"), "--quiet"]) == 0
    s0, s50, st = (json.loads((tmp_path / d / "summary.json").read_text())
                   for d in ("p0", "p50", "toml"))
    assert s0["pressure_GPa"] == 0.0 and s50["pressure_GPa"] == 50.0
    assert s50["best_enthalpy_per_atom"] == pytest.approx(st["best_enthalpy_per_atom"])
    v0, v50 = (distinct(tmp_path / d)[0].volume_per_atom for d in ("p0", "p50"))
    assert v50 < 0.93 * v0                         # EMT copper compresses by ~10%
    capsys.readouterr()
    assert main(["report", str(tmp_path / "p50")]) == 0
    out = capsys.readouterr().out
    assert "at 50 GPa" in out and "H eV/atom" in out
    assert main(["run", "Cu", "--pressure", "lots", "-o", str(tmp_path / "x")] + common) == 2
    assert "pressure" in capsys.readouterr().err


def test_a_field_at_pressure_puts_enthalpy_on_the_hull(tmp_path):
    emt = TieredRelaxer([Tier(EMT(), fmax=0.02, steps=300)])
    options = dict(relaxer=emt, max_atoms=2, initial_population=3, seed=1,
                   generator="fuse", steps=2)
    records = run_field(["Cu", "Au", "CuAu"], tmp_path / "f", pressure=20.0, **options)
    for r in records:
        assert r["pressure"] == 20.0
        assert r["enthalpy_per_atom"] > r["energy_per_atom"]     # + PV, P > 0
    data = json.loads((tmp_path / "f" / "field.json").read_text())
    assert data["settings"]["pressure"] == 20.0
    # the hull is built from enthalpies: the same records with E in place of H differ
    by_energy, _ = hull([dict(r, enthalpy_per_atom=None) for r in records])
    assert [r["formation_energy_per_atom"] for r in records] != \
        [r["formation_energy_per_atom"] for r in by_energy]
    with pytest.raises(InputError, match="GPa"):
        run_field(["Cu", "Au", "CuAu"], tmp_path / "f", restart=True, pressure=0.0,
                  **options)
