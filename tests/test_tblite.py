"""tblite tier: options checked up front, a clear error when tblite is missing, and
(when tblite is importable) a GFN2-xTB single point and relaxation of a periodic cell."""

import builtins

import numpy as np
import pytest
from ase.build import bulk

from ase_fuse.calculators import tblite as tb
from ase_fuse.calculators.stacks import build_stack
from ase_fuse.calculators.tiers import TieredRelaxer
from ase_fuse.errors import InputError

try:
    import tblite.ase  # noqa: F401
    HAVE_TBLITE = True
except ImportError:
    HAVE_TBLITE = False
needs_tblite = pytest.mark.skipif(not HAVE_TBLITE, reason="tblite is not installed")


def si_diamond(a=5.431):  # Si lattice constant, Kittel
    return bulk("Si", "diamond", a=a)


@pytest.fixture
def hide_tblite(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kw):
        if name == "tblite" or name.startswith("tblite."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kw)
    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_missing_tblite_is_one_clear_line(hide_tblite):
    with pytest.raises(InputError) as info:
        tb.tblite_calculator()
    text = str(info.value)
    assert "tblite is not installed" in text and "\n" not in text
    assert info.value.field == "calculator"


def test_missing_tblite_fails_the_relaxation_not_the_program(hide_tblite):
    relaxer = TieredRelaxer([tb.tblite_tier()])
    result = relaxer.relax(si_diamond())
    assert not result.ok
    assert "could not create calculator" in result.failed
    assert "tblite is not installed" in result.failed


@pytest.mark.parametrize("kwargs, field", [
    ({"method": "GFN3"}, "method"),
    ({"smearing": 0.1}, "tblite"),
    ({"accuracy": -1.0}, "accuracy"),
    ({"max_iterations": 0}, "max_iterations"),
    ({"electronic_temperature": "hot"}, "electronic_temperature"),
])
def test_bad_options(kwargs, field):
    with pytest.raises(InputError) as info:
        tb.tblite_tier(**kwargs)
    assert info.value.field == field


def test_named_stacks():
    assert [t.name for t in build_stack("tblite").tiers] == ["tblite-GFN2-xTB"]
    relaxer = build_stack("proxy+tblite", "Si", tblite={"method": "GFN1-xTB"})
    assert [t.name for t in relaxer.tiers] == ["proxy", "tblite-GFN1-xTB"]


@needs_tblite
def test_gfn2_single_point_periodic_si():
    atoms = si_diamond()
    atoms.calc = tb.tblite_calculator("GFN2-xTB")
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    assert np.isfinite(energy) and energy < 0
    # perfect diamond: every atom sits on an inversion centre, so forces vanish
    assert np.abs(forces).max() < 1e-3
    # cubic symmetry: equal diagonal stress, no shear
    assert np.allclose(stress[:3], stress[0], atol=1e-5)
    assert np.abs(stress[3:]).max() < 1e-5


@needs_tblite
def test_gfn2_relaxation_lowers_energy_of_strained_si():
    strained = bulk("Si", "diamond", a=5.431 * 1.04, cubic=True)
    strained.rattle(0.05, seed=1)
    relaxer = TieredRelaxer([tb.tblite_tier(fmax=0.05, steps=8,
                                            tier_options={"fail_force_factor": None})])
    reference = strained.copy()
    reference.calc = tb.tblite_calculator()
    start_energy = reference.get_potential_energy()
    result = relaxer.relax(strained)
    assert result.ok, result.failed
    assert result.energy < start_energy
    # the 4% stretched cell shrinks back towards the xTB equilibrium
    assert abs(result.atoms.cell.volume) < abs(strained.cell.volume)
