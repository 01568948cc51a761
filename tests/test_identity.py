"""Structure identity (issue 17): comparators on pairs that must match and pairs that
must not, the chain's order, and the distinct set's bounded comparisons.  Fixtures
are built from published cells and Wyckoff sites (cited per structure)."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.spacegroup import crystal

from ase_fuse.identity import (ChainedComparator, CompositionComparator, DistinctSet,
                               EnergyComparator, Entry, FingerprintComparator,
                               MatcherComparator, VolumeComparator, default_comparator,
                               distance_fingerprint, input_comparator)
from ase_fuse.symmetry import space_group, symmetrize


def rutile():   # P4_2/mnm, a 4.594, c 2.959 A, O 4f x 0.3048 (Baur 1961)
    return crystal(["Ti", "O"], [(0, 0, 0), (0.3048, 0.3048, 0)], spacegroup=136,
                   cellpar=[4.594, 4.594, 2.959, 90, 90, 90])


def anatase():  # I4_1/amd (origin 1), a 3.785, c 9.514 A, O 8e z 0.2081 (Horn 1972)
    return crystal(["Ti", "O"], [(0, 0, 0), (0, 0, 0.2081)], spacegroup=141,
                   cellpar=[3.785, 3.785, 9.514, 90, 90, 90])


def graphite_ab():  # P6_3/mmc, a 2.464, c 6.711 A, C 2b and 2c (Bernal stacking)
    return crystal(["C", "C"], [(0, 0, 0.25), (1 / 3, 2 / 3, 0.25)], spacegroup=194,
                   cellpar=[2.464, 2.464, 6.711, 90, 90, 120])


def graphite_aa():  # P6/mmm, a 2.464, c 3.356 A: the same sheets stacked AA
    return crystal(["C"], [(1 / 3, 2 / 3, 0)], spacegroup=191,
                   cellpar=[2.464, 2.464, 3.3555, 90, 90, 120])


def alpha_mn():  # I-43m, a 8.911 A, 58 atoms (Bradley & Thewlis 1927; Lawson 1994)
    return crystal(["Mn"] * 4, [(0, 0, 0), (0.3179, 0.3179, 0.3179),
                                (0.3571, 0.3571, 0.0347), (0.0896, 0.0896, 0.2819)],
                   spacegroup=217, cellpar=[8.911, 8.911, 8.911, 90, 90, 90])


def beta_mn():   # P4_132, a 6.315 A, 20 atoms: 8c x 0.0636, 12d y 0.2022 (Shoemaker 1978)
    return crystal(["Mn", "Mn"], [(0.0636, 0.0636, 0.0636), (0.125, 0.2022, 0.4522)],
                   spacegroup=213, cellpar=[6.315, 6.315, 6.315, 90, 90, 90])


def zincblende():
    return bulk("ZnS", "zincblende", a=5.41)


def wurtzite():  # a 3.82, c 6.26 A, u 3/8 (ase.build's ideal)
    return bulk("ZnS", "wurtzite", a=3.82, c=6.26)


def nacl():
    return bulk("NaCl", "rocksalt", a=5.64)


def permuted(atoms, seed=0):
    return atoms[np.random.default_rng(seed).permutation(len(atoms))]


def shifted(atoms, shift=(0.13, 0.27, 0.41)):
    new = atoms.copy()
    new.translate(np.asarray(shift) @ atoms.cell.array)
    new.wrap()
    return new


def rotated(atoms):
    new = atoms.copy()
    new.rotate(37, "z", rotate_cell=True)
    new.rotate(21, "x", rotate_cell=True)
    return new


def rattled(atoms, stdev=0.01, seed=1):
    new = atoms.copy()
    new.rattle(stdev=stdev, seed=seed)
    return new


def p1_and_symmetrised(atoms):
    rough = rattled(atoms, 0.02, seed=4)
    tidy, number, error = symmetrize(rough, symprec=0.1)
    assert error is None and number > 1
    return rough, tidy


SAME = {
    "supercell": lambda: (nacl(), nacl().repeat((2, 1, 1))),
    "conventional cell": lambda: (nacl(), bulk("NaCl", "rocksalt", a=5.64, cubic=True)),
    "permuted atoms": lambda: (rutile(), permuted(rutile())),
    "origin shift": lambda: (wurtzite(), shifted(wurtzite())),
    "rotated cell": lambda: (anatase(), rotated(anatase())),
    "small rattle": lambda: (rutile(), rattled(rutile())),
    "P1 vs symmetrised": lambda: p1_and_symmetrised(zincblende()),
    "all at once": lambda: (graphite_ab(),
                            rattled(rotated(shifted(permuted(graphite_ab().repeat((1, 2, 1))))),
                                    0.005)),
}

DIFFERENT = {
    "wurtzite vs zincblende": lambda: (wurtzite(), zincblende()),
    "rutile vs anatase": lambda: (rutile(), anatase()),
    "graphite AB vs AA": lambda: (graphite_ab(), graphite_aa()),
    "alpha vs beta Mn": lambda: (alpha_mn(), beta_mn()),
}


def test_fixtures_have_their_published_symmetry_and_size():
    assert space_group(rutile())[1] == 136 and len(rutile()) == 6
    assert space_group(anatase())[1] == 141 and len(anatase()) == 12
    assert space_group(graphite_ab())[1] == 194 and len(graphite_ab()) == 4
    assert space_group(graphite_aa())[1] == 191 and len(graphite_aa()) == 2
    assert space_group(alpha_mn())[1] == 217 and len(alpha_mn()) == 58
    assert space_group(beta_mn())[1] == 213 and len(beta_mn()) == 20
    assert space_group(wurtzite())[1] == 186 and space_group(zincblende())[1] == 216


@pytest.mark.parametrize("case", sorted(SAME))
def test_pairs_that_must_match(case):
    a, b = SAME[case]()
    chain = default_comparator()
    assert chain.same(a, b) and chain.same(b, a)
    assert chain.looks_like(a, b)                       # ase-ga's name
    # every link agrees on its own, the fingerprint included
    for link in chain.comparators:
        assert link.same(a, b), link


@pytest.mark.parametrize("case", sorted(DIFFERENT))
def test_pairs_that_must_not_match(case):
    a, b = DIFFERENT[case]()
    assert not default_comparator().same(a, b)
    assert not MatcherComparator().same(a, b)          # the final judge alone, too


def test_the_chain_stops_at_the_first_no_cheapest_first():
    a, b = nacl(), bulk("KCl", "rocksalt", a=6.29)
    chain = default_comparator()
    assert not chain.same(a, b)
    assert chain.calls["composition"] == 1 and chain.calls["structure_matcher"] == 0
    a, b = rutile(), rutile()
    a.calc = SinglePointCalculator(a, energy=-9.0 * len(a))
    b.calc = SinglePointCalculator(b, energy=-8.9 * len(b))      # 100 meV/atom apart
    chain = default_comparator()
    assert not chain.same(a, b)
    assert chain.calls["energy"] == 1 and chain.calls["volume"] == 0
    assert chain.same(rutile(), rutile()) and chain.calls["structure_matcher"] == 1


def test_links_decide_on_what_they_see():
    small, large = nacl(), nacl()
    large.set_cell(large.cell * 1.1, scale_atoms=True)          # 33% more volume
    assert not VolumeComparator(0.1).same(small, large)
    assert VolumeComparator(0.5).same(small, large)
    assert FingerprintComparator().same(small, large)            # scaled distances
    assert MatcherComparator().same(small, large)                # pymatgen scales too
    assert CompositionComparator().same(nacl(), nacl().repeat(2))
    assert not CompositionComparator().same(nacl(), bulk("Na", "bcc", a=4.23))
    assert EnergyComparator(0.01).same(Entry(nacl(), -3.0), Entry(nacl(), -3.009))
    assert not EnergyComparator(0.01).same(Entry(nacl(), -3.0), Entry(nacl(), -3.02))
    assert EnergyComparator().same(Entry(nacl(), None), Entry(nacl(), -3.0))


def test_fingerprint_is_a_unit_vector_invariant_to_cell_choice():
    f = distance_fingerprint(rutile())
    assert f.shape == (3 * 60,) and np.linalg.norm(f) == pytest.approx(1.0)
    for other in (permuted(rutile()), shifted(rutile()), rotated(rutile()),
                  rutile().repeat((1, 1, 2))):
        assert distance_fingerprint(other) @ f == pytest.approx(1.0, abs=1e-9)
    assert distance_fingerprint(anatase()) @ f < 0.99


def test_inputs_match_only_when_nearly_identical():
    base = rutile()
    chain = input_comparator()
    assert chain.same(base, permuted(shifted(base)))
    assert not chain.same(base, rattled(base, 0.05))            # would relax elsewhere
    assert not chain.same(base, base.repeat((1, 1, 2)))         # another cell size


def test_distinct_set_counts_finds_and_keeps_the_first():
    found = DistinctSet()
    for k, atoms in enumerate([rutile(), anatase(), permuted(rutile()),
                               rutile().repeat((1, 1, 2)), rattled(anatase())]):
        found.add(atoms, energy=-9.0 + 0.001 * (k % 2), label=k)
    assert len(found) == 2
    first, second = found.groups
    assert (first.label, first.count, first.members) == (0, 3, [2, 3])
    assert (second.label, second.count, second.members) == (1, 2, [4])
    assert found.group_of(1) is second and found.group_of(2) is None


def test_comparisons_per_structure_are_bounded_by_the_energy_bins():
    found = DistinctSet(ChainedComparator(CompositionComparator(), EnergyComparator(0.01),
                                          MatcherComparator()), width=0.01)
    energies = np.arange(200) * 0.05                  # 50 meV/atom apart: own bins
    for k, energy in enumerate(energies):
        found.add(nacl(), energy=float(energy), label=k)
    assert len(found) == 200
    assert found.comparisons <= 2 * 200               # not 200 * 199 / 2
    group = found.find(nacl(), energy=float(energies[57]) + 0.002)
    assert group is not None and group.label == 57


def test_distinct_set_refuses_an_unknown_coordinate():
    with pytest.raises(ValueError, match="coordinate"):
        DistinctSet(coordinate="density")
