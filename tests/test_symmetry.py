"""Symmetry helpers never raise: spglib's own errors become a reason to log.

A 10,000-step search met a candidate on which spglib (called inside ASE's
``refine_symmetry`` with its new error handling) raised "too close distance
between atoms" and the run died; spglib's errors are caught since.
"""

import pytest
import spglib
from ase.build import bulk

from ase_fuse.generators.gnoa.space import spacegroup_number
from ase_fuse.symmetry import SpglibError, space_group, symmetrize


@pytest.fixture
def spglib_raises(monkeypatch):
    def fail(*args, **kwargs):
        raise SpglibError("too close distance between atoms")
    monkeypatch.setattr(spglib, "get_symmetry_dataset", fail)


def test_symmetrize_returns_the_structure_and_a_reason_on_spglib_errors(spglib_raises):
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    atoms.rattle(0.01, seed=0)
    new, number, error = symmetrize(atoms, symprec=0.1)
    assert number == 0 and "too close" in error
    assert (new.positions == atoms.positions).all()


def test_space_group_lookups_survive_spglib_errors(spglib_raises):
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    assert space_group(atoms) == (None, 0)
    assert spacegroup_number(atoms) is None


def test_symmetry_helpers_without_errors():
    assert space_group(bulk("NaCl", "rocksalt", a=5.64))[1] == 225
    assert spacegroup_number(bulk("NaCl", "rocksalt", a=5.64)) == 225
    new, number, error = symmetrize(bulk("Cu", "fcc", a=3.6))
    assert (number, error) == (225, None)
