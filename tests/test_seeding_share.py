"""The seeding options that need no PyXtal: interleaving, checks, the fallback."""

import numpy as np
import pytest
from ase.build import bulk

from ase_fuse.composition import Composition
from ase_fuse.errors import InputError
from ase_fuse.generators.gnoa.seeding import (AUTO_SHARE_MAX_ATOMS, interleave,
                                              resolved_share, seed_population,
                                              split_seeding_options)


def test_interleave_spreads_the_second_list_evenly_first_list_leading():
    assert interleave([1, 2, 3], ["a", "b", "c"]) == [1, "a", 2, "b", 3, "c"]
    assert interleave([1, 2, 3, 4], ["a"]) == [1, 2, 3, 4, "a"]
    assert interleave([1, 2, 3, 4, 5, 6], ["a", "b"]) == [1, 2, 3, "a", 4, 5, 6, "b"]
    mixed = interleave(list(range(15)), list("abcdefghij"))  # 10 of 25
    assert mixed[0] == 0 and len(mixed) == 25
    assert [x for x in mixed if isinstance(x, int)] == list(range(15))
    assert "".join(x for x in mixed if isinstance(x, str)) == "abcdefghij"
    for start in range(0, 25, 5):  # any 5 in a row hold 2 of the 10
        assert sum(isinstance(x, str) for x in mixed[start:start + 5]) == 2
    assert interleave([], ["a"]) == ["a"] and interleave([1], []) == [1]


def test_auto_share_is_half_on_small_cells_and_none_on_larger_ones():
    assert resolved_share("auto", 6) == 0.5
    assert resolved_share("auto", AUTO_SHARE_MAX_ATOMS) == 0.5
    assert resolved_share("auto", AUTO_SHARE_MAX_ATOMS + 1) == 0.0
    assert resolved_share("auto", 50) == 0.0
    assert resolved_share(0.2, 50) == 0.2 and resolved_share(0, 6) == 0.0  # yours win
    _, seeding = split_seeding_options({"random_share": "auto"})
    assert seeding["random_share"] == "auto"


def test_auto_share_on_a_larger_cell_keeps_the_ranked_population():
    """Above the size, "auto" is no share: no PyXtal is asked, nothing displaced."""
    cells = []
    for k, a in enumerate((5.64, 5.8, 6.0)):
        atoms = bulk("NaCl", "rocksalt", a=a)
        atoms.info.update(origin="gnoa", predicted_energy=-5.0 + k)
        cells.append(atoms)
    population, pool = seed_population(cells, Composition("NaCl"), 2, 20,
                                       np.random.default_rng(0), random_share="auto",
                                       rerank="none", distinct="fingerprint")
    assert [a.info["predicted_energy"] for a in population] == [-5.0, -4.0]
    assert [a.info["predicted_energy"] for a in pool] == [-3.0]


@pytest.mark.parametrize("value", [1.5, -0.1, "half", "AUTO", True, None])
def test_random_share_must_be_a_share(value):
    with pytest.raises(InputError, match="^random_share: must be a number from 0 to 1"):
        split_seeding_options({"random_share": value})
    _, seeding = split_seeding_options({"random_share": 0.25})
    assert seeding["random_share"] == 0.25


def test_random_share_without_structures_keeps_the_ranked_population(monkeypatch):
    import ase_fuse.generators.symmetric as symmetric

    def missing():
        raise InputError("the symmetric generator needs pyxtal", field="generator")
    monkeypatch.setattr(symmetric, "_require_pyxtal", missing)
    cells = []
    for k, a in enumerate((5.64, 5.8, 6.0)):
        atoms = bulk("NaCl", "rocksalt", a=a)
        atoms.info.update(origin="gnoa", predicted_energy=-5.0 + k)
        cells.append(atoms)
    with pytest.warns(RuntimeWarning, match="random_share: no random structures"):
        population, pool = seed_population(cells, Composition("NaCl"), 3, 8,
                                           np.random.default_rng(0), random_share=0.5,
                                           rerank="none", distinct="fingerprint")
    assert [a.info["predicted_energy"] for a in population] == [-5.0, -4.0, -3.0]
    assert pool == []
