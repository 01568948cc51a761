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
