"""SevenNet tier: names and options (always), a clear line when sevenn is missing, and
with sevenn 0.12.1: known single points, a rattled-diamond relaxation, failures
recorded not raised, the batched path (torch-sim's SevenNet model) against the ASE
path, and a short ``ase-fuse run --calculator sevennet``."""

import builtins
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.db import connect

from ase_fuse.calculators import sevennet as sv
from ase_fuse.calculators.guards import GuardFailure
from ase_fuse.calculators.stacks import build_stack, check_stages, stage_options
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.errors import InputError


def _importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


HAVE_SEVENN = _importable("sevenn")
HAVE_TORCH_SIM = _importable("torch_sim")
needs_sevenn = pytest.mark.skipif(not HAVE_SEVENN, reason="sevenn is not installed "
                                  "(pip install 'ase-fuse[sevennet]')")
needs_batched = pytest.mark.skipif(not (HAVE_SEVENN and HAVE_TORCH_SIM),
                                   reason="sevenn or torch-sim is not installed")

# SevenNet-0 (11 Jul 2024) single points, eV/atom, measured with sevenn 0.12.1's own
# SevenNetCalculator (float32): diamond Si a = 5.43 A, rock-salt NaCl a = 5.64 A
SI_SEVENNET_0 = -5.4008
NACL_SEVENNET_0 = -3.3827


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    if not _importable("torch"):
        yield
        return
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def si2(a=5.43):
    return bulk("Si", "diamond", a=a)


def nacl(a=5.64):
    return bulk("NaCl", "rocksalt", a=a)


def rattled_si(n, seed=0, amplitude=0.1):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = bulk("Si", "diamond", a=5.40 + 0.03 * k, cubic=True)
        atoms.rattle(amplitude, rng=rng)
        out.append(atoms)
    return out


def polonium():   # Po (Z = 84) is not among SevenNet-0's 89 elements
    return Atoms("Po", cell=np.eye(3) * 3.35, pbc=True)


# -- names and options: no sevenn needed -----------------------------------------------
def test_module_and_stacks_import_neither_torch_nor_sevenn():
    code = ("import sys; from ase_fuse.calculators.stacks import build_stack; "
            "build_stack('chgnet+sevennet'); build_stack('proxy+sevennet', 'Si'); "
            "print('torch' in sys.modules, 'sevenn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("given, name", [
    ("SevenNet-0", "SevenNet-0"), ("sevennet-0", "SevenNet-0"), ("7net-0", "SevenNet-0"),
    ("7net-0_11Jul2024", "SevenNet-0"), ("7net-0_22May2024", "SevenNet-0-22May2024"),
    ("SEVENNET-L3I5", "SevenNet-l3i5"), ("7net-mf-0", "SevenNet-MF-0")])
def test_checkpoint_names(given, name):
    assert sv.checkpoint_name(given) == name


def test_stacks_name_their_checkpoint():
    assert [t.name for t in build_stack("sevennet").tiers] == ["sevennet-0"]
    assert [t.name for t in build_stack("proxy+sevennet", "NaCl").tiers] == [
        "proxy", "sevennet-0"]
    screen, refine = build_stack("chgnet+sevennet").tiers
    assert (screen.name, screen.fmax, screen.steps) == ("chgnet-screen", 0.2, 300)
    assert (refine.name, refine.fmax, refine.steps, refine.optimizer) == (
        "sevennet-0", 0.05, 2000, "BFGS")
    options = stage_options({"sevennet.model": "SevenNet-l3i5", "chgnet.fmax": 0.3})
    check_stages("chgnet+sevennet", options)
    relaxer = build_stack("chgnet+sevennet", **options)
    assert [(t.name, t.fmax) for t in relaxer.tiers] == [("chgnet-screen", 0.3),
                                                         ("sevennet-l3i5", 0.05)]
    mf = build_stack("sevennet", sevennet={"model": "SevenNet-MF-0", "modal": "r2scan"})
    assert mf.tiers[0].name == "sevennet-mf-0-r2scan"


@pytest.mark.parametrize("options, field, words", [
    ({"model": "SevenNet-9"}, "model", "SevenNet-l3i5"),
    ({"modal": "PBE"}, "modal", "one fidelity"),
    ({"model": "SevenNet-MF-0", "modal": "HSE"}, "modal", "R2SCAN"),
    ({"device": "tpu"}, "device", "cuda:N"),
])
def test_bad_options_name_the_field(options, field, words):
    with pytest.raises(InputError) as info:
        build_stack("sevennet", sevennet=options)
    assert info.value.field == field and words in str(info.value)


def test_stage_options_take_model_only_where_it_means_something():
    assert stage_options({"sevennet.model": "7net-l3i5"}) == {
        "sevennet": {"model": "7net-l3i5"}}
    with pytest.raises(InputError, match="chgnet.model: unknown option"):
        stage_options({"chgnet.model": "x"})
    with pytest.raises(InputError, match="no sevennet stage"):
        check_stages("proxy+chgnet", stage_options({"sevennet.fmax": 0.1}))


@pytest.fixture
def hide_sevenn(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kw):
        if name == "sevenn" or name.startswith("sevenn."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kw)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(sv, "_NETWORKS", {})
    monkeypatch.setattr(sv, "_TORCHSIM_MODELS", {})
    for name in [m for m in sys.modules if m == "sevenn" or m.startswith("sevenn.")]:
        monkeypatch.delitem(sys.modules, name)


def test_missing_sevenn_is_one_line_naming_the_fix(hide_sevenn):
    with pytest.raises(InputError) as info:
        sv.sevennet_calculator()
    text = str(info.value)
    assert "sevenn is not installed" in text and "\n" not in text
    assert "pip install 'ase-fuse[sevennet]'" in text and info.value.field == "calculator"


def test_missing_sevenn_fails_the_relaxation_not_the_program(hide_sevenn):
    result = build_stack("sevennet").relax(si2())
    assert not result.ok and result.failed.startswith("sevennet-0: ")
    assert "could not create calculator" in result.failed
    assert "sevenn is not installed" in result.failed


# -- the ASE path ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def calc():
    if not HAVE_SEVENN:
        pytest.skip("sevenn is not installed (pip install 'ase-fuse[sevennet]')")
    return sv.sevennet_calculator()


@needs_sevenn
def test_known_single_points(calc):
    for atoms, expected in ((si2(), SI_SEVENNET_0), (nacl(), NACL_SEVENNET_0)):
        atoms.calc = calc
        assert atoms.get_potential_energy() / len(atoms) == pytest.approx(expected, abs=2e-4)
        assert np.abs(atoms.get_forces()).max() < 1e-3       # symmetric: no forces
        stress = atoms.get_stress()
        assert stress.shape == (6,) and stress[0] < 0          # compressed against PBE
        assert np.allclose(stress[:3], stress[0], atol=1e-5)


@needs_sevenn
def test_network_is_loaded_once_and_shared(calc):
    assert sv.sevennet_calculator().model is calc.model
    assert sv.load_sevennet_network("7net-0") is calc.model


@needs_sevenn
@pytest.mark.parametrize("model, expected", [("SevenNet-0-22May2024", -5.4107),
                                             ("SevenNet-l3i5", -5.4219),
                                             ("SevenNet-MF-0", -5.3756)])
def test_each_shipped_checkpoint_loads(model, expected):
    atoms = si2()
    atoms.calc = sv.sevennet_calculator(model)
    assert atoms.get_potential_energy() / 2 == pytest.approx(expected, abs=5e-4)


@needs_sevenn
def test_rattled_diamond_relaxes_to_diamond():
    stack = build_stack("sevennet")
    diamond = stack.relax(si2())
    result = stack.relax(rattled_si(1)[0])
    assert diamond.ok and result.ok and result.converged
    assert result.tiers[0].steps > 0 and result.tiers[0].fmax < 0.05
    assert abs(result.energy_per_atom - diamond.energy_per_atom) < 0.020
    assert result.atoms.calc.__class__.__name__ == "SinglePointCalculator"


@needs_sevenn
def test_bad_geometries_are_recorded_before_the_network_sees_them(calc, monkeypatch):
    def forbidden(*args, **kw):
        raise AssertionError("SevenNet called on a geometry the guards must stop")

    monkeypatch.setattr(calc.model, "forward", forbidden)
    relaxer = TieredRelaxer([Tier(calc, name="sevennet-0")])
    close = Atoms("Si2", positions=[[0, 0, 0], [0.3, 0, 0]], cell=[5, 5, 5], pbc=True)
    flat = Atoms("Si2", positions=[[0, 0, 0], [1, 1, 0]], cell=[[4, 0, 0], [0, 4, 0],
                                                                 [0, 0, 1e-6]], pbc=True)
    lonely = Atoms("Si2", positions=[[0, 0, 0], [7, 7, 7]], cell=[14, 14, 14], pbc=True)
    reasons = [relaxer.relax(atoms).failed for atoms in (close, flat, lonely)]
    assert "too close" in reasons[0]
    assert "collapsed" in reasons[1]
    assert "isolated" in reasons[2]
    for atoms in (lonely, polonium()):        # the calculator itself refuses them too
        atoms.calc = calc
        with pytest.raises(GuardFailure):
            atoms.get_potential_energy()


@needs_sevenn
def test_unknown_element_and_crashing_network_fail_the_structure(calc, monkeypatch):
    result = build_stack("sevennet").relax(polonium())
    assert not result.ok and "not trained on Po" in result.failed

    def crash(*args, **kw):
        raise RuntimeError("network exploded")

    monkeypatch.setattr(calc.model, "forward", crash)
    result = TieredRelaxer([Tier(calc, name="sevennet-0")]).relax(si2())
    assert not result.ok and "calculator error" in result.failed
    assert "network exploded" in result.failed


# -- the batched path ----------------------------------------------------------------------
@needs_batched
def test_batched_relaxation_agrees_with_the_ase_path():
    from ase_fuse.calculators.batched import BatchedRelaxer
    structures = [si2(a=5.55), nacl(a=5.50)]
    batched = BatchedRelaxer("sevennet", fmax=0.05, steps=300, batch_size=2)
    results = batched.relax_many(structures)
    ase_path = TieredRelaxer([sv.sevennet_tier(fmax=0.05, steps=300, optimizer="FIRE")])
    for atoms, result in zip(structures, results):
        reference = ase_path.relax(atoms)
        assert result.ok and reference.ok and result.converged
        assert abs(result.energy_per_atom - reference.energy_per_atom) < 0.005
    assert batched.model_calls < sum(r.steps for r in results)


@needs_batched
def test_backend_single_points_equal_the_calculator(calc):
    structures = [si2(), nacl()] + rattled_si(1, seed=3)
    out = sv.sevennet_backend()(structures)
    for atoms, result in zip(structures, out):
        atoms = atoms.copy()
        atoms.calc = calc
        assert result["energy"] == pytest.approx(atoms.get_potential_energy(), abs=1e-4)
        assert np.allclose(result["forces"], atoms.get_forces(), atol=1e-4)
        assert np.allclose(result["stress"], atoms.get_stress(voigt=False), atol=1e-5)


@needs_batched
def test_a_batch_of_rattled_si_relaxes_and_bad_members_fail_alone():
    batch = rattled_si(3, seed=1) + [polonium()]
    relaxer = build_stack("sevennet", batch_size=4, sevennet={"steps": 300})
    results = relaxer.relax_many(batch)
    diamond = build_stack("sevennet").relax(si2())
    for result in results[:3]:
        assert result.ok and result.converged, result.failed
        assert abs(result.energy_per_atom - diamond.energy_per_atom) < 0.020
        assert [t.name for t in result.tiers] == ["sevennet-0"]
    assert not results[3].ok and "not trained on Po" in results[3].failed


# -- the command line ------------------------------------------------------------------------
@needs_sevenn
@pytest.mark.parametrize("extra", [[], ["--batch-size", "2"]])
def test_cli_run_with_the_sevennet_stack(tmp_path, extra):
    if extra and not HAVE_TORCH_SIM:
        pytest.skip("torch-sim is not installed")
    from ase_fuse.cli import main
    out = tmp_path / "run"
    args = ["run", "Si2", "--calculator", "sevennet", "--stack-options",
            "sevennet.steps=60", "--max-atoms", "2", "--initial-population", "2",
            "--hop-after", "0", "--steps", "1", "--seed", "1", "-q", "-o", str(out)]
    assert main(args + extra) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 1
    assert -5.45 < summary["best_energy_per_atom"] < -4.8      # a Si2 cell, SevenNet-0
    with connect(str(out / "fuse.db")) as db:
        assert db.metadata["settings"]["relaxer"].startswith("sevennet-0(")
        assert sum(row.get("status") == "relaxed" for row in db.select()) >= 2
