"""Moves 13-14: a fresh random structure from the pool or the generator."""

import json

import numpy as np
import pytest
from ase.build import bulk

from ase_fuse.checks import check_structure
from ase_fuse.errors import GenerationError
from ase_fuse.generators.fuse import FuseGenerator
from ase_fuse.moves import ALL_MOVES
from moves_helpers import assert_untouched, context, nacl, same_candidate, snapshot


class FakeGenerator:
    """Rock-salt NaCl with ``z`` formula units (primitive cell repeated z times)."""

    def __init__(self, fail=False):
        self.calls = []
        self.fail = fail

    def generate(self, formula_units=None):
        self.calls.append(formula_units)
        if self.fail:
            raise GenerationError("fake generator gave up")
        atoms = bulk("NaCl", "rocksalt", a=5.64).repeat((formula_units or 1, 1, 1))
        atoms.info["origin"] = "fake"
        return atoms


def pool_item(z):
    atoms = bulk("NaCl", "rocksalt", a=5.64).repeat((z, 1, 1))
    atoms.info["origin"] = {"tag": f"pool-{z}"}
    return atoms


@pytest.mark.parametrize("number, top", [(13, 4), (14, 10)])
def test_generator_sizes(number, top):
    atoms = nacl()  # 4 formula units
    gen = FakeGenerator()
    ctx = context("NaCl", max_atoms=20, generator=gen)
    before = snapshot(atoms)
    seen = set()
    for seed in range(80):
        new = ALL_MOVES[number].apply(atoms, ctx, np.random.default_rng(seed))
        z = ctx.composition.formula_units_of(new)
        assert 1 <= z <= top
        assert gen.calls[-1] == z
        origin = new.info["origin"]
        assert origin == {"move": number, "name": ALL_MOVES[number].name,
                          "source": "generator", "formula_units": z, "made_by": "fake"}
        json.dumps(origin)
        seen.add(z)
    assert_untouched(atoms, before)
    assert seen == set(range(1, top + 1))


def test_pool_pops_a_suitable_structure():
    atoms = nacl()
    pool = [pool_item(6), pool_item(2), pool_item(5)]  # only z = 2 fits move 13 (z <= 4)
    ctx = context("NaCl", max_atoms=20, pool=pool)
    new = ALL_MOVES[13].apply(atoms, ctx, np.random.default_rng(0))
    assert new.info["origin"]["source"] == "pool"
    assert new.info["origin"]["made_by"] == {"tag": "pool-2"}
    assert len(pool) == 2 and [len(a) for a in pool] == [12, 10]
    assert np.allclose(new.get_scaled_positions(),
                       pool_item(2).get_scaled_positions(wrap=True))
    # nothing suitable left and no generator: move 13 cannot apply, move 14 can
    assert isinstance(ALL_MOVES[13].applicable(atoms, ctx), str)
    assert ALL_MOVES[14].applicable(atoms, ctx) is None
    assert ALL_MOVES[14].apply(atoms, ctx, np.random.default_rng(0)) is not None
    assert len(pool) == 1


def test_pool_and_generator_share_the_work():
    atoms = nacl()
    sources = []
    for seed in range(40):
        ctx = context("NaCl", max_atoms=20, generator=FakeGenerator(),
                      pool=[pool_item(1), pool_item(3)])
        new = ALL_MOVES[13].apply(atoms, ctx, np.random.default_rng(seed))
        sources.append(new.info["origin"]["source"])
        again_ctx = context("NaCl", max_atoms=20, generator=FakeGenerator(),
                            pool=[pool_item(1), pool_item(3)])
        assert same_candidate(new, ALL_MOVES[13].apply(atoms, again_ctx,
                                                       np.random.default_rng(seed)))
    assert 8 <= sources.count("pool") <= 32  # about half of 40


def test_no_source_gives_a_reason_and_failures_give_none():
    atoms = nacl()
    ctx = context("NaCl")
    for number in (13, 14):
        assert "no generator" in ALL_MOVES[number].applicable(atoms, ctx)
        assert ALL_MOVES[number].apply(atoms, ctx, np.random.default_rng(0)) is None
    failing = context("NaCl", generator=FakeGenerator(fail=True))
    assert ALL_MOVES[14].apply(atoms, failing, np.random.default_rng(0)) is None


def test_with_the_fuse_generator():
    atoms = nacl()
    ctx = context("NaCl", max_atoms=16)
    ctx.generator = FuseGenerator(ctx.composition, max_atoms=16,
                                  rng=np.random.default_rng(7))
    for seed in range(3):
        new = ALL_MOVES[14].apply(atoms, ctx, np.random.default_rng(seed))
        assert new is not None
        assert check_structure(new, ctx.composition, ctx.check_limits()) is None
        assert ctx.composition.formula_units_of(new) == new.info["origin"]["formula_units"]
        json.dumps(new.info["origin"])
