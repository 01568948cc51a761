"""GN-OA search space: exact composition, the chosen space group, hard constraints."""

import warnings
from collections import Counter

import numpy as np
import pytest
import spglib
from ase.build import bulk, fcc111

from ase_fuse.errors import InputError
from ase_fuse.generators.gnoa.space import (SearchSpace, iter_wyckoff_combinations,
                                            vacuum_thickness)

pyxtal = pytest.importorskip("pyxtal")


def _spglib_number(atoms):
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return spglib.get_symmetry_dataset(cell, symprec=1e-3).number


@pytest.mark.parametrize("formula, z, groups", [
    ("NaCl", 4, (225, 216, 62)),
    ("NaCl", 1, (221, 123)),
    ("TiO2", 2, (136, 58, 14)),
    ("TiO2", 4, (141, 2)),
    ("SrTiO3", 1, (221, 99)),
    ("SrTiO3", 4, (62, 140)),
])
def test_only_exact_composition_and_chosen_group(formula, z, groups):
    space = SearchSpace(formula, z, space_groups=groups)
    expected = Counter({el: n * z for el, n in space.composition.counts.items()})
    rng = np.random.default_rng(7)
    found = Counter()
    for _ in range(250):
        point = space.sample(rng)
        atoms = space.decode(point)
        if atoms is None:
            continue
        assert Counter(atoms.get_chemical_symbols()) == expected
        assert _spglib_number(atoms) == point["sg"]
        assert atoms.info["spacegroup"] == point["sg"]
        found[point["sg"]] += 1
    # every requested group that has a Wyckoff combination yields something
    assert set(found) == set(space.space_groups)


def test_decode_is_deterministic():
    space = SearchSpace("TiO2", 2, space_groups=(136, 14))
    rng = np.random.default_rng(3)
    for _ in range(40):
        point = space.sample(rng)
        first, second = space.decode(dict(point)), space.decode(dict(point))
        assert (first is None) == (second is None)
        if first is not None:
            assert np.array_equal(first.positions, second.positions)
            assert np.array_equal(first.cell[:], second.cell[:])


def test_rocksalt_is_in_the_space():
    """Fm-3m with Na on 4a, Cl on 4b and the volume of a = 5.64 A is the rock-salt cell."""
    space = SearchSpace("NaCl", 4, space_groups=(225,))
    combos = space.combinations(225)
    labels = [tuple(space_label(225, sites) for sites in combo) for combo in combos]
    k = labels.index(("4a", "4b"))
    low, high = space.limits.volume_window
    low, high = low * 1.001, high * 0.999
    ratio = 5.64 ** 3 / space.composition.sphere_volume(4)
    u = np.log(ratio / low) / np.log(high / low)
    point = {"sg": 225, "wyckoff": (k + 0.5) / len(combos), "a": 0.5, "b": 0.5, "c": 0.5,
             "volume": u, "alpha": 0.5, "beta": 0.5, "gamma": 0.5}
    point.update({f"x{i}": 0.1 for i in range(3 * space.natoms)})
    atoms = space.decode(point)
    reference = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    assert atoms is not None
    assert np.allclose(atoms.cell.cellpar(), reference.cell.cellpar(), atol=1e-6)
    d = atoms.get_all_distances(mic=True)
    assert np.isclose(d[d > 0].min(), 5.64 / 2, atol=1e-6)


def space_label(sg, sites):
    from pyxtal.symmetry import Group
    group = Group(sg)
    return ",".join(group[i].get_label() for i in sites)


@pytest.mark.parametrize("sg, counts", [(225, (4, 4)), (62, (4, 8)), (136, (2, 4)),
                                        (221, (1, 1, 3))])
def test_wyckoff_combinations_match_pyxtal(sg, counts):
    from pyxtal.symmetry import Group
    group = Group(sg)
    ours = {tuple(tuple(sorted(group[i].get_label() for i in sites)) for sites in combo)
            for combo in iter_wyckoff_combinations(sg, counts)}
    theirs = {tuple(tuple(sorted(sites)) for sites in combo)
              for combo in group.list_wyckoff_combinations(list(counts))[0]}
    assert ours == theirs


def test_combinations_are_capped_and_consistent():
    space = SearchSpace("SrTiO3", 8, space_groups=(2,), max_combinations=5)
    combos = space.combinations(2)
    assert len(combos) == 5
    from pyxtal.symmetry import Group
    group = Group(2)
    for combo in combos:
        fixed = []
        for sites, n in zip(combo, space.counts):
            assert sum(group[i].multiplicity for i in sites) == n
            fixed += [i for i in sites if group[i].get_dof() == 0]
        assert len(fixed) == len(set(fixed))


def test_overlapping_atoms_are_rejected():
    space = SearchSpace("TiO2", 1, space_groups=(1,), check_symmetry=False)
    point = {"sg": 1, "wyckoff": 0.0, "a": 0.5, "b": 0.5, "c": 0.5, "volume": 0.5,
             "alpha": 0.5, "beta": 0.5, "gamma": 0.5}
    point.update({f"x{i}": 0.25 for i in range(9)})
    atoms, reason = space.explain(point)
    assert atoms is None and "closer than" in reason


def test_vacuum_slab_is_rejected():
    space = SearchSpace("TiO2", 1, space_groups=(1,), check_symmetry=False)
    # long b axis, largest volume, all atoms within a thin layer of y
    point = {"sg": 1, "wyckoff": 0.0, "a": 0.0, "b": 1.0, "c": 0.0, "volume": 1.0,
             "alpha": 0.5, "beta": 0.5, "gamma": 0.5}
    coords = [0.0, 0.0, 0.0, 0.5, 0.02, 0.0, 0.0, 0.04, 0.5]
    point.update({f"x{i}": x for i, x in enumerate(coords)})
    atoms, reason = space.explain(point)
    assert atoms is None and reason.startswith("vacuum")


def test_vacuum_thickness():
    radii = {"Cu": 1.28, "Na": 1.91, "Cl": 0.99}
    slab = fcc111("Cu", size=(1, 1, 3), vacuum=6.0)
    slab.pbc = True
    # 12 A of vacuum between the outer layers' centres, less one diameter
    assert np.isclose(vacuum_thickness(slab, radii), 12.0 - 2 * 1.28, atol=1e-6)
    assert vacuum_thickness(bulk("NaCl", "rocksalt", a=5.64), radii) < 0


def test_triclinic_only_and_bad_groups():
    assert SearchSpace("NaCl", 2, triclinic_only=True).space_groups == (1, 2)
    with pytest.raises(InputError, match="space_groups"):
        SearchSpace("NaCl", 1, space_groups=[])
    with pytest.raises(InputError, match="1-230"):
        SearchSpace("NaCl", 1, space_groups=[0, 5])
    with pytest.raises(InputError, match="no space group"):
        SearchSpace("NaCl", 1, space_groups=[225])  # 4a is the smallest site
    with pytest.raises(InputError, match="formula_units"):
        SearchSpace("NaCl", 0)


def _unpruned(number, counts):
    """Every Wyckoff combination by plain enumeration (no bound, no node cap)."""
    from ase_fuse.generators.gnoa.space import _wyckoff_sites
    sites = _wyckoff_sites(number)

    def fill(remaining, start, used):
        if remaining == 0:
            yield ()
            return
        for pos in range(start, len(sites)):
            index, mult, free = sites[pos]
            if mult > remaining or (not free and index in used):
                continue
            for rest in fill(remaining - mult, pos if free else pos + 1,
                             used if free else used | {index}):
                yield (index,) + rest

    def per_element(k, used):
        if k == len(counts):
            yield ()
            return
        for choice in fill(counts[k], 0, used):
            for rest in per_element(k + 1, used | {i for i in choice if not sites[i][2]}):
                yield (choice,) + rest

    return list(per_element(0, frozenset()))


@pytest.mark.parametrize("sg, counts", [(49, (2, 2, 6)), (65, (2, 2, 3)), (139, (2, 4, 4)),
                                        (12, (2, 2, 6)), (166, (1, 2, 3))])
def test_pruning_keeps_every_combination_in_order(sg, counts):
    assert list(iter_wyckoff_combinations(sg, counts)) == _unpruned(sg, counts)


def test_counts_that_cannot_fit_end_at_once(monkeypatch):
    # 6+6+21 atoms in Pccm (49): every multiplicity is even but one element's count is
    # odd, which took the plain enumeration a minute to prove; the bound says so first
    import ase_fuse.generators.gnoa.space as space
    calls = []
    original = space._fillable

    def counting(sites):
        can = original(sites)

        def wrapped(pos, n):
            calls.append((pos, n))
            return can(pos, n)
        return wrapped
    monkeypatch.setattr(space, "_fillable", counting)
    assert list(iter_wyckoff_combinations(49, (6, 6, 21))) == []
    assert len(calls) == 3     # the three per-element checks, nothing enumerated


def test_node_cap_keeps_a_prefix(monkeypatch):
    import ase_fuse.generators.gnoa.space as space
    full = list(iter_wyckoff_combinations(47, (4, 4, 12)))
    monkeypatch.setattr(space, "MAX_WYCKOFF_NODES", 40)
    capped = list(iter_wyckoff_combinations(47, (4, 4, 12)))
    assert 0 < len(capped) < len(full)
    assert capped == full[:len(capped)]


def test_light_wyckoff_sites_match_pyxtal_everywhere():
    """Every Wyckoff position of every group: multiplicity, free coordinates, label,
    lattice system and the decoded orbit equal PyXtal's ``Group``, bit for bit (the
    search space decodes a point to the same atoms as when it built PyXtal groups)."""
    from pyxtal.symmetry import Group

    from ase_fuse.generators.gnoa.wyckoff import lattice_system, wyckoff_sites
    rng = np.random.default_rng(3)
    checked = 0
    for number in range(1, 231):
        group, sites = Group(number), wyckoff_sites(number)
        assert lattice_system(number) == group.lattice_type
        assert len(sites) == len(group)
        for wp, site in zip(group, sites):
            assert (site.multiplicity, site.dof, site.label) == (
                wp.multiplicity, wp.get_dof(), wp.get_label())
            free = list(rng.random(site.dof))
            base = (wp.get_position_from_free_xyzs(free) if free
                    else wp.ops[0].operate(np.zeros(3)))
            expected = np.asarray(wp.apply_ops(base)) % 1.0
            assert np.array_equal(site.orbit(free) % 1.0, expected)
            checked += 1
    assert checked > 1700
    with pytest.raises(ValueError, match="1-230"):
        lattice_system(231)
