"""The proxy tier may not drag a structure into another basin (issue: time to the
right answer): rattled diamond Si went from 20.4 to 8.8 A^3/atom in the radius-based
proxy tier and CHGNet then stopped at -4.92 eV/atom instead of diamond's -5.31."""

import pytest
from ase.build import bulk

from ase_fuse.calculators.proxy import ProxyPotential
from ase_fuse.calculators.stacks import build_stack, proxy_tier
from ase_fuse.calculators.tiers import Tier, TieredRelaxer
from ase_fuse.errors import InputError


def rattled_diamond(seed=3):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)   # 5.431 A (Si, room temperature)
    atoms.rattle(0.1, seed=seed)
    return atoms


def test_unbounded_proxy_collapses_diamond():
    """The premise: without a bound the proxy changes the volume by far more than 25%."""
    atoms = rattled_diamond()
    result = TieredRelaxer([proxy_tier("Si", max_volume_change=None)]).relax(atoms)
    assert result.ok
    assert result.atoms.get_volume() / atoms.get_volume() < 0.75


def test_bound_hands_the_input_to_the_next_tier():
    atoms = rattled_diamond()
    check = Tier(ProxyPotential.for_composition("Si"), steps=0, name="check")
    result = TieredRelaxer([proxy_tier("Si"), check]).relax(atoms)
    assert result.ok
    assert "discarded" in result.tiers[0].note
    assert result.atoms.get_volume() == pytest.approx(atoms.get_volume())
    assert result.atoms.positions == pytest.approx(atoms.positions)


def test_small_volume_changes_are_kept():
    atoms = bulk("NaCl", "rocksalt", a=5.5)
    check = Tier(ProxyPotential.for_composition("NaCl"), steps=0, name="check")
    result = TieredRelaxer([proxy_tier("NaCl", max_volume_change=0.9), check]).relax(atoms)
    assert result.ok and result.tiers[0].note is None
    assert result.atoms.get_volume() != pytest.approx(atoms.get_volume())


@pytest.mark.parametrize("bad", [0, -0.1, "x", float("nan")])
def test_bad_bound(bad):
    with pytest.raises(InputError, match="max_volume_change"):
        Tier(ProxyPotential.for_composition("Si"), max_volume_change=bad)


def test_default_stack_relaxes_rattled_diamond_to_diamond():
    """Done-when line: within 20 meV/atom of CHGNet's diamond energy."""
    pytest.importorskip("chgnet")
    diamond = TieredRelaxer([build_stack("chgnet", "Si").tiers[-1]]).relax(
        bulk("Si", "diamond", a=5.43, cubic=True))
    assert diamond.ok
    for seed in (3, 4):
        result = build_stack("proxy+chgnet", "Si").relax(rattled_diamond(seed))
        assert result.ok, result.failed
        assert abs(result.energy_per_atom - diamond.energy_per_atom) < 0.020, seed


def test_batched_stack_applies_the_bound():
    pytest.importorskip("torch_sim")

    from ase_fuse.calculators.batched import BatchedRelaxer, calculator_backend
    from ase_fuse.calculators.batched_stack import BatchedStack
    seen = []

    def backend(structures):
        seen.extend(a.get_volume() for a in structures)
        return calculator_backend(lambda: ProxyPotential.for_composition("Si"))(structures)

    atoms = rattled_diamond()
    stack = BatchedStack(TieredRelaxer([proxy_tier("Si")]),
                         BatchedRelaxer(backend, fmax=0.5, steps=1, batch_size=2))
    result = stack.relax_many([atoms])[0]
    assert "discarded" in result.tiers[0].note
    assert seen[0] == pytest.approx(atoms.get_volume())   # the batch got the input
