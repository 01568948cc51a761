"""Feeding the basin-hopping search from GN-OA: ranked initial population and the pool.

A tiny GN-OA run (proxy energy model, a few dozen evaluations) of NaCl makes the
ML pool; the search relaxes with the proxy stack.
"""

import numpy as np
import pytest
from ase.db import connect

from ase_fuse import FuseBasinHopping
from ase_fuse.calculators import ProxyPotential
from ase_fuse.composition import Composition
from ase_fuse.errors import InputError
from ase_fuse.search_setup import GENERATOR_POOL_OFFSET, initial_structures, load_pool

pytest.importorskip("pyxtal")

GNOA_OWN = {"model": "proxy", "evaluations": 40, "progress": False,
            "formula_units": [1, 2], "space_groups": range(1, 75)}
#: a search's options: these tests check the ranked pool, so no random starts
#: (random_share has its own tests below)
GNOA = dict(GNOA_OWN, random_share=0)


def _quick_relaxer():
    """A short proxy relaxation: the tests check the pool, not the minima."""
    from ase_fuse.calculators import Tier, TieredRelaxer
    return TieredRelaxer([Tier(ProxyPotential.for_composition("NaCl"), fmax=0.2, steps=15,
                               name="proxy")])


def _search(tmp_path, name, **kw):
    options = dict(relaxer=_quick_relaxer(), max_atoms=4, initial_population=2, seed=3,
                   directory=tmp_path / name, logfile=None)
    options.update(kw)
    return FuseBasinHopping("NaCl", **options)


def _rows(opt, **select):
    with connect(opt.records.path, use_lock_file=False) as db:
        return list(db.select(**select))


def test_population_is_the_proxy_ranked_ml_pool():
    comp = Composition("NaCl")
    rng = np.random.default_rng(0)
    population, pool = initial_structures(comp, 4, "gnoa", dict(GNOA), None, 8, rng)
    assert len(population) == 4 and len(pool) > 4
    assert all(a.info["origin"] == "gnoa" for a in population + pool)
    # the rank is the proxy's single-point energy, recomputed here independently
    calc = ProxyPotential.for_composition(comp)
    for atoms in population[:2] + pool[:2]:
        probe = atoms.copy()
        probe.calc = calc
        assert probe.get_potential_energy() / len(probe) == pytest.approx(
            atoms.info["rerank_energy"], abs=1e-8)
    energies = [a.info["rerank_energy"] for a in population + pool]
    assert energies == sorted(energies)
    # the pool carries unique indices the driver keeps across restarts
    indices = [a.info["pool_index"] for a in pool]
    assert len(set(indices)) == len(indices) and min(indices) == GENERATOR_POOL_OFFSET
    # same seed, same population
    again, _ = initial_structures(comp, 4, "gnoa", dict(GNOA), None, 8,
                                  np.random.default_rng(0))
    assert [a.info["rerank_energy"] for a in again] == energies[:4]


def test_relax_rerank_and_bad_rerank_option():
    comp = Composition("NaCl")
    options = dict(GNOA, rerank="relax", rerank_steps=20)
    population, pool = initial_structures(comp, 2, "gnoa", options, None, 8,
                                          np.random.default_rng(0))
    single, _ = initial_structures(comp, 2, "gnoa", dict(GNOA), None, 8,
                                   np.random.default_rng(0))
    # a relaxation only lowers the proxy energy of the best single-point structures
    assert population[0].info["rerank_energy"] <= single[0].info["rerank_energy"] + 1e-9
    assert population[0].info["origin"] == "gnoa"
    with pytest.raises(InputError, match="rerank: must be one of"):
        initial_structures(comp, 2, "gnoa", dict(GNOA, rerank="dft"), None, 8,
                           np.random.default_rng(0))


def test_too_few_ml_structures_are_topped_up_by_fuse():
    comp = Composition("NaCl")
    options = dict(GNOA, evaluations=2, formula_units=[1])
    population, pool = initial_structures(comp, 5, "gnoa", options, None, 8,
                                          np.random.default_rng(1))
    origins = [a.info["origin"] for a in population]
    assert len(population) == 5 and pool == []
    assert 1 <= origins.count("gnoa") <= 2
    assert origins.count("fuse") == 5 - origins.count("gnoa")


def test_search_starts_from_ml_pool_and_moves_13_14_consume_it(tmp_path):
    opt = _search(tmp_path, "gnoa", generator="gnoa", generator_options=dict(GNOA),
                  move_weights={13: 1, 14: 1})
    opt.run(steps=0)
    initial = _rows(opt, step=0)
    assert len(initial) == 2 and {r.origin for r in initial} == {"gnoa"}
    start = len(opt.context.pool)
    assert start > 0
    opt.run(steps=5)
    from_pool = [r for r in _rows(opt) if r.step > 0 and r.data["origin"].get("source") == "pool"]
    assert from_pool, "moves 13/14 never drew from the ML pool"
    assert all(r.data["origin"]["made_by"] == "gnoa" for r in from_pool)
    assert all(r.move in (13, 14) for r in from_pool)
    assert len(opt.context.pool) == start - len(from_pool)
    # a restart gets the generator's unused pool back, consumed ones still consumed
    left = sorted(a.info["pool_index"] for a in opt.context.pool)
    again = _search(tmp_path, "gnoa", generator="gnoa", generator_options=dict(GNOA),
                    move_weights={13: 1, 14: 1}, restart=True)
    assert sorted(a.info["pool_index"] for a in again.context.pool) == left


@pytest.mark.parametrize("suffix", ["extxyz", "db"])
def test_pool_file_feeds_fuse_search_and_restart_keeps_it_consumed(tmp_path, suffix):
    from ase_fuse.generators.gnoa import GnoaGenerator
    path = tmp_path / f"pool.{suffix}"
    GnoaGenerator("NaCl", max_atoms=4, seed=2, output=path, **GNOA_OWN).run()
    pool = load_pool(path, Composition("NaCl"))
    assert len(pool) > 5 and {a.info["origin"] for a in pool} == {"gnoa"}
    assert [a.info["pool_index"] for a in pool] == list(range(len(pool)))

    opt = _search(tmp_path, "run", pool=str(path), move_weights={13: 1, 14: 1},
                  generator="fuse")
    opt.run(steps=4)
    used = [r for r in _rows(opt) if r.step > 0 and r.data["origin"].get("source") == "pool"]
    assert used and all(r.data["origin"]["made_by"] == "gnoa" for r in used)
    left = {a.info["pool_index"] for a in opt.context.pool}
    assert len(left) == len(pool) - len(used)

    again = _search(tmp_path, "run", pool=str(path), move_weights={13: 1, 14: 1},
                    generator="fuse", restart=True)
    assert {a.info["pool_index"] for a in again.context.pool} == left
    again.run(steps=3)
    assert {a.info["pool_index"] for a in again.context.pool} <= left


def test_unreadable_pool_is_a_one_line_error(tmp_path):
    bad = tmp_path / "pool.db"
    bad.write_text("not a database")
    with pytest.raises(InputError, match="pool|structures"):
        load_pool(bad, Composition("NaCl"))


def test_rank_for_search_drops_duplicates_and_caps_the_pool():
    from ase.build import bulk

    from ase_fuse.generators.gnoa.seeding import rank_for_search
    rocksalt = bulk("NaCl", "rocksalt", a=5.64)
    squeezed = bulk("NaCl", "rocksalt", a=5.2)
    structures = []
    for atoms in (rocksalt, rocksalt, squeezed, rocksalt.repeat((2, 1, 1))):
        atoms = atoms.copy()
        atoms.info.update(origin="gnoa", spacegroup=225)
        structures.append(atoms)
    population, pool = rank_for_search(structures, Composition("NaCl"), 1, pool_size=1)
    # the copy of rocksalt is dropped; the doubled cell differs in size, so it stays
    assert len(population) == 1 and len(pool) == 1
    kept = population + pool
    calc = ProxyPotential.for_composition("NaCl")
    energies = []
    for atoms in structures[1:]:
        atoms.calc = calc
        energies.append(atoms.get_potential_energy() / len(atoms))
    assert population[0].info["rerank_energy"] == pytest.approx(min(energies))
    assert all(a.calc is None for a in kept)


def test_population_holds_distinct_structures_near_copies_go_to_the_pool():
    from ase.build import bulk

    from ase_fuse.generators.gnoa.seeding import rank_for_search, split_seeding_options
    copies = []
    for k, a in enumerate((5.60, 5.62, 5.64, 5.66)):  # one structure, four draws
        atoms = bulk("NaCl", "rocksalt", a=a) * (2, 1, 1)
        atoms.rattle(0.02, seed=k)
        atoms.info.update(origin="gnoa", spacegroup=225, predicted_energy=-5.0 + 0.01 * k)
        copies.append(atoms)
    cscl = bulk("NaCl", "cesiumchloride", a=3.4)
    cscl.info.update(origin="gnoa", spacegroup=221, predicted_energy=-4.0)
    structures = copies + [cscl]
    population, pool = rank_for_search(structures, Composition("NaCl"), 2, rerank="none")
    assert [len(a) for a in population] == [4, 2]          # rock salt, then CsCl
    assert population[0].info["predicted_energy"] == pytest.approx(-5.0)
    assert len(pool) == 3                                  # the near-copies
    plain, _ = rank_for_search(structures, Composition("NaCl"), 2, rerank="none",
                               distinct="fingerprint")
    assert [len(a) for a in plain] == [4, 4]
    with pytest.raises(InputError, match="distinct"):
        split_seeding_options({"distinct": "bogus"})


def _origin_name(atoms):
    origin = atoms.info.get("origin")
    return origin["name"] if isinstance(origin, dict) else origin


def test_a_search_starts_gnoa_on_the_proxy_unless_told(monkeypatch):
    from ase_fuse import generators
    from ase_fuse.config import DEFAULTS
    from ase_fuse.generators.gnoa import GnoaGenerator
    from ase_fuse.search_setup import search_options
    assert DEFAULTS["generator"] == "gnoa"
    seen = []

    class Spy(GnoaGenerator):
        def __init__(self, composition, **options):
            seen.append(options)
            super().__init__(composition, **options)
    real_get = generators.get
    monkeypatch.setattr(generators, "get",
                        lambda name: Spy if name == "gnoa" else real_get(name))
    few = {"progress": False, "formula_units": [1], "space_groups": range(1, 75)}
    population, _ = initial_structures(Composition("NaCl"), 2, "gnoa", dict(few), None,
                                       4, np.random.default_rng(0))
    assert seen[-1]["model"] == "proxy" and seen[-1]["evaluations"] == 200
    # random_share="auto": half the population of a small-cell search is random
    # symmetric starts, a ranked one first
    assert [_origin_name(a) for a in population] == ["gnoa", "symmetric"]
    population, _ = initial_structures(Composition("NaCl"), 2, "gnoa",
                                       dict(few, evaluations=30, random_share=0), None,
                                       4, np.random.default_rng(0))
    assert seen[-1]["model"] == "proxy" and seen[-1]["evaluations"] == 30  # user wins
    assert [_origin_name(a) for a in population] == ["gnoa", "gnoa"]
    assert search_options(GnoaGenerator, {"model": "chgnet"})["model"] == "chgnet"
    # standalone (ase-fuse generate, or the class itself) keeps its own defaults
    assert GnoaGenerator("NaCl", max_atoms=4, progress=False).evaluations == 5000


def test_default_generator_without_its_package_warns_and_starts_from_fuse(monkeypatch):
    from ase_fuse.generators.gnoa import GnoaGenerator
    monkeypatch.setattr(GnoaGenerator, "unavailable",
                        classmethod(lambda cls: "needs a package that is missing"))
    with pytest.warns(UserWarning, match="GN-OA needs a package.*FUSE"):
        population, pool = initial_structures(Composition("NaCl"), 3, "gnoa", None, None,
                                              8, np.random.default_rng(0))
    assert len(population) == 3 and pool == []
    assert all(a.info["origin"] == "fuse" for a in population)


def test_options_of_a_missing_generator_are_still_checked(monkeypatch):
    """Falling back for want of a package must not let bad options through."""
    from ase_fuse.errors import InputError
    from ase_fuse.generators.gnoa import GnoaGenerator
    monkeypatch.setattr(GnoaGenerator, "unavailable",
                        classmethod(lambda cls: "needs a package that is missing"))
    for options, field in (({"max_trie": 3}, "generator_options"),
                           ({"evaluations": "abc"}, "evaluations"),
                           ({"rerank": "sideways"}, "rerank")):
        with pytest.raises(InputError, match=f"^{field}: "):
            initial_structures(Composition("NaCl"), 3, "gnoa", options, None, 8,
                               np.random.default_rng(0))


def _counting_matcher(monkeypatch):
    import ase_fuse.identity as identity
    calls = []
    real = identity.structure_matcher

    def counting(**overrides):
        matcher = real(**overrides)
        fit = matcher.fit

        def counted(a, b, *args, **kw):
            calls.append(1)
            return fit(a, b, *args, **kw)
        matcher.fit = counted
        return matcher
    monkeypatch.setattr(identity, "structure_matcher", counting)
    return calls


def test_exact_copies_are_told_by_fingerprint_and_the_matcher_calls_are_bounded(
        monkeypatch):
    from ase.build import bulk

    from ase_fuse.generators.gnoa.seeding import distinct_first
    calls = _counting_matcher(monkeypatch)
    rocksalt = bulk("NaCl", "rocksalt", a=5.64)
    copies = [rocksalt.copy() for _ in range(4)]          # GN-OA repeats its best point
    cscl = bulk("NaCl", "cesiumchloride", a=3.4)
    ranked = distinct_first(copies + [cscl], 2)
    assert [len(a) for a in ranked[:2]] == [2, 2]
    assert ranked[1] is cscl       # CsCl second, the copies after it
    assert calls == []      # copies and a far-off structure: the fingerprints settle both
    # near-copies need the matcher, but only ``fits`` times; the rest by fingerprint
    rattled = []
    for k in range(6):
        atoms = bulk("NaCl", "rocksalt", a=5.64) * (2, 1, 1)
        atoms.rattle(0.25, seed=k)
        rattled.append(atoms)
    distinct_first(rattled, 6, fits=3)
    assert 0 < len(calls) <= 3


def test_spacegroup_order_puts_one_structure_per_space_group_first():
    from ase.build import bulk

    from ase_fuse.generators.gnoa.seeding import rank_for_search, split_seeding_options
    structures = []
    # by predicted energy: CsCl, CsCl (a different cell), zinc blende, rock salt
    for k, (kind, a, group) in enumerate((("cesiumchloride", 3.3, 221),
                                          ("cesiumchloride", 3.6, 221),
                                          ("zincblende", 6.0, 216),
                                          ("rocksalt", 5.64, 225))):
        atoms = bulk("NaCl", kind, a=a)
        atoms.info.update(origin="gnoa", spacegroup=group, predicted_energy=-5.0 + k)
        structures.append(atoms)
    by_energy, pool = rank_for_search(structures, Composition("NaCl"), 4, rerank="none",
                                      distinct="fingerprint")
    assert [a.info["spacegroup"] for a in by_energy] == [221, 221, 216, 225]
    by_group, pool_too = rank_for_search(structures, Composition("NaCl"), 4,
                                         rerank="none", distinct="fingerprint",
                                         order="spacegroup")
    assert [a.info["spacegroup"] for a in by_group] == [221, 216, 225, 221]
    assert by_group[3].cell[0, 1] == pytest.approx(by_energy[1].cell[0, 1])
    assert len(pool) == len(pool_too) == 0
    _, seeding = split_seeding_options({"order": "spacegroup"})
    assert seeding["order"] == "spacegroup"
    with pytest.raises(InputError, match="^order: must be one of energy, spacegroup"):
        split_seeding_options({"order": "random"})


def _four_nacl_cells():
    from ase.build import bulk
    structures = []
    for k, (kind, a) in enumerate((("cesiumchloride", 3.3), ("zincblende", 6.0),
                                   ("rocksalt", 5.64), ("cesiumchloride", 3.7))):
        atoms = bulk("NaCl", kind, a=a)
        atoms.info.update(origin="gnoa", predicted_energy=-5.0 + k)
        structures.append(atoms)
    return structures


def test_random_share_interleaves_random_structures_with_the_ranked_ones():
    from ase_fuse.generators.gnoa.seeding import seed_population
    ranking = {"rerank": "none", "distinct": "fingerprint"}
    ranked, pool = seed_population(_four_nacl_cells(), Composition("NaCl"), 4, 8,
                                   np.random.default_rng(3), **ranking)
    mixed, mixed_pool = seed_population(_four_nacl_cells(), Composition("NaCl"), 4, 8,
                                        np.random.default_rng(3), random_share=0.5,
                                        **ranking)
    kinds = [a.info["origin"] if isinstance(a.info["origin"], str)
             else a.info["origin"]["name"] for a in mixed]
    assert kinds == ["gnoa", "symmetric", "gnoa", "symmetric"]
    # the ranked ones keep their order; the two displaced lead the extra pool
    assert [a.info["predicted_energy"] for a in ranked] == [-5.0, -4.0, -3.0, -2.0]
    assert [mixed[0].info["predicted_energy"], mixed[2].info["predicted_energy"]] == \
        [-5.0, -4.0]
    assert [a.info["predicted_energy"] for a in mixed_pool] == [-3.0, -2.0]
    assert pool == []
    for atoms in mixed[1::2]:
        assert atoms.get_chemical_formula(empirical=True) == "ClNa"
        assert len(atoms) <= 8
    again, _ = seed_population(_four_nacl_cells(), Composition("NaCl"), 4, 8,
                               np.random.default_rng(3), random_share=0.5, **ranking)
    for one, two in zip(mixed, again):  # the same seed, the same population
        assert np.allclose(one.positions, two.positions)
        assert np.allclose(one.cell.array, two.cell.array)


def test_random_share_reaches_the_search_from_generator_options():
    rng = np.random.default_rng(5)
    options = dict(GNOA, random_share=0.4)
    population, _ = initial_structures(Composition("NaCl"), 5, "gnoa", options, None, 8,
                                       rng)
    names = [a.info["origin"]["name"] if isinstance(a.info.get("origin"), dict)
             else a.info.get("origin") for a in population]
    assert len(population) == 5
    assert names.count("symmetric") == 2
    assert names[0] != "symmetric"
