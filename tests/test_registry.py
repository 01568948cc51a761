"""Generator registry: entry-point lookup, unknown names and broken plugins."""

import importlib
import warnings

import pytest

from ase_fuse import generators
from ase_fuse.errors import InputError
from ase_fuse.generators import registry
from ase_fuse.generators.fuse import FuseGenerator


def test_available_lists_builtin_generators():
    names = generators.available()
    assert "fuse" in names and "gnoa" in names
    assert names == sorted(names)


def test_get_fuse():
    assert generators.get("fuse") is FuseGenerator
    assert generators.FuseGenerator is FuseGenerator  # lazy package attribute


def test_unknown_name_lists_known_ones():
    with pytest.raises(InputError) as err:
        generators.get("no-such-generator")
    text = str(err.value)
    assert text.startswith("generator:")
    assert "no-such-generator" in text and "fuse" in text and "gnoa" in text


def test_describe_has_a_row_for_fuse():
    rows = {name: (target, doc) for name, target, doc in generators.describe()}
    assert rows["fuse"][0] == "ase_fuse.generators.fuse:FuseGenerator"
    assert rows["fuse"][1] == FuseGenerator.__doc__.strip().splitlines()[0]


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch):
    """A fake installed distribution registering a generator that cannot be imported."""
    info = tmp_path / "broken_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[ase_fuse.generators]\nbroken = no_such_module_xyz:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return "broken"


def test_broken_plugin_warns_and_others_still_load(broken_plugin):
    assert broken_plugin in registry.available()
    with pytest.warns(RuntimeWarning, match="broken") as record:
        loaded = registry.load_all()
    assert any("no_such_module_xyz" in str(w.message) for w in record)
    assert loaded["fuse"] is FuseGenerator
    assert broken_plugin not in loaded


def test_broken_plugin_get_names_it(broken_plugin):
    with pytest.raises(InputError, match="broken") as err:
        registry.get(broken_plugin)
    assert "no_such_module_xyz" in str(err.value)
    assert registry.get("fuse") is FuseGenerator  # the others are unaffected


def test_broken_plugin_listed_as_broken(broken_plugin):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rows = {name: doc for name, _, doc in registry.describe()}
    assert rows[broken_plugin].startswith("BROKEN")
    assert "fuse" in rows and not rows["fuse"].startswith("BROKEN")


# -- the generator protocol (generators/base.py) ---------------------------------------
PLUGIN = '''
import numpy as np
from ase.build import bulk
from ase_fuse.generators.base import StructureGenerator


class PoolMaker(StructureGenerator):
    """A third-party generator with a ranked pool: rattled rock-salt NaCl cells."""

    name = "poolmaker"

    def __init__(self, composition, max_atoms=8, rng=None, samples=12):
        self.rng = rng or np.random.default_rng(0)
        self.samples = int(samples)
        self.calls = 0

    def _one(self, k):
        atoms = bulk("NaCl", "rocksalt", a=5.3 + 0.05 * k)
        atoms.rattle(0.05, seed=int(self.rng.integers(1 << 30)))
        atoms.info["origin"] = self.name
        atoms.info["score"] = float(k)
        return atoms

    def generate(self, formula_units=None):
        return self._one(0)

    def ranked_pool(self):
        self.calls += 1
        return [self._one(k) for k in range(self.samples)]


class NoGenerate:
    """Not a generator: no generate method."""

    def generate_many(self, n):
        return []
'''


@pytest.fixture
def pool_plugin(tmp_path, monkeypatch):
    """An installed plugin distribution with a pool generator and a malformed one."""
    (tmp_path / "pool_plugin_xyz.py").write_text(PLUGIN)
    info = tmp_path / "pool_plugin_xyz-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pool-plugin-xyz\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[ase_fuse.generators]\npoolmaker = pool_plugin_xyz:PoolMaker\n"
        "notagenerator = pool_plugin_xyz:NoGenerate\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield
    import sys
    sys.modules.pop("pool_plugin_xyz", None)


def test_builtin_generators_meet_the_protocol():
    from ase_fuse.generators.base import StructureGenerator, has_pool, protocol_problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an optional extra missing
        loaded = registry.load_all()
    assert {"fuse", "mix", "gnoa"} <= set(loaded)
    for name, cls in loaded.items():
        assert protocol_problem(cls) is None, name
        assert issubclass(cls, StructureGenerator), name
    assert has_pool(loaded["gnoa"]) and not has_pool(loaded["fuse"])


def test_a_class_without_generate_is_refused_in_one_line_and_skipped(pool_plugin):
    with pytest.raises(InputError) as err:
        registry.get("notagenerator")
    assert "notagenerator" in str(err.value) and "generate" in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    with pytest.warns(RuntimeWarning, match="notagenerator"):
        loaded = registry.load_all()
    assert "notagenerator" not in loaded and "poolmaker" in loaded


def test_a_plugin_pool_feeds_the_population_and_moves_13_14(pool_plugin, tmp_path):
    from ase.db import connect

    from ase_fuse import FuseBasinHopping
    from ase_fuse.calculators import ProxyPotential, Tier, TieredRelaxer

    relaxer = TieredRelaxer([Tier(ProxyPotential.for_composition("NaCl"), fmax=0.2,
                                  steps=15, name="proxy")])
    options = dict(relaxer=relaxer, max_atoms=8, initial_population=2, hop_after=0, seed=3,
                   generator="poolmaker", move_weights={13: 1, 14: 1}, logfile=None,
                   directory=tmp_path / "run", symmetrize=False)
    # the pool hook's re-ranking options are valid for a plugin with the hook
    opt = FuseBasinHopping("NaCl", generator_options={"samples": 10, "rerank": "none",
                                                      "distinct": "fingerprint"}, **options)
    opt.run(steps=0)
    with connect(opt.records.path, use_lock_file=False) as db:
        initial = list(db.select(step=0))
    assert len(initial) == 2 and {r.origin for r in initial} == {"poolmaker"}
    start = len(opt.context.pool)
    assert start == 8  # 10 made, the best 2 are the population
    opt.run(steps=4)
    with connect(opt.records.path, use_lock_file=False) as db:
        from_pool = [r for r in db.select() if r.step > 0
                     and r.data["origin"].get("source") == "pool"]
    assert from_pool and all(r.data["origin"]["made_by"] == "poolmaker" for r in from_pool)
    assert len(opt.context.pool) == start - len(from_pool)
    # an option neither the plugin nor its pool hook takes is named
    with pytest.raises(InputError, match="nonsense"):
        FuseBasinHopping("NaCl", generator_options={"nonsense": 1},
                         **dict(options, directory=tmp_path / "other")).run(steps=0)
