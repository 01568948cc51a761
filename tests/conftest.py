"""Shared crystal fixtures, built from published lattice constants with ASE.

Every fixture returns a fresh ``ase.Atoms`` (function scope), so a test may change it.

- ``rutile``: TiO2, P4_2/mnm (136), a = 4.594, c = 2.959 A, O at 4f (x, x, 0), x = 0.3048.
- ``garnet``: grossular Ca3Al2Si3O12, Ia-3d (230), a = 11.85 A, Ca 24c (1/8, 0, 1/4),
  Al 16a (0, 0, 0), Si 24d (3/8, 0, 1/4), O 96h (-0.0351, 0.0472, 0.6532); 160 atoms.
- ``quartz``: alpha-SiO2, P3_121 (152), a = 4.913, c = 5.405 A; the published
  Si (0.4697, 0, 0), O (0.4135, 0.2669, 0.1191) taken to ASE's P3_121 setting by
  z -> 1/3 - z: Si 3a (0.4697, 0, 1/3), O 6c (0.4135, 0.2669, 0.2142); 9 atoms,
  hexagonal cell, Si-O 1.60 and 1.61 A.
- ``rocksalt``: NaCl, a = 5.64 A (conventional cubic cell, 8 atoms).
- ``copper``: fcc Cu, a = 3.61 A (conventional cubic cell, 4 atoms).
- ``triclinic``: a P-1 (2) cell, a, b, c = 5.2, 6.3, 7.1 A, angles 78, 84, 102 degrees,
  with Ca, Si and two O in general positions (8 atoms).
"""

import pytest
from ase.build import bulk
from ase.spacegroup import crystal


def make_rutile():
    return crystal(["Ti", "O"], basis=[(0, 0, 0), (0.3048, 0.3048, 0)], spacegroup=136,
                   cellpar=[4.594, 4.594, 2.959, 90, 90, 90])


def make_garnet():
    return crystal(["Ca", "Al", "Si", "O"],
                   basis=[(0.125, 0, 0.25), (0, 0, 0), (0.375, 0, 0.25),
                          (-0.0351, 0.0472, 0.6532)],
                   spacegroup=230, cellpar=[11.85, 11.85, 11.85, 90, 90, 90])


def make_quartz():
    return crystal(["Si", "O"], basis=[(0.4697, 0, 1 / 3), (0.4135, 0.2669, 1 / 3 - 0.1191)],
                   spacegroup=152, cellpar=[4.913, 4.913, 5.405, 90, 90, 120])


def make_triclinic():
    return crystal(["Ca", "Si", "O", "O"],
                   basis=[(0.11, 0.23, 0.31), (0.62, 0.71, 0.18), (0.38, 0.12, 0.64),
                          (0.83, 0.44, 0.91)],
                   spacegroup=2, cellpar=[5.2, 6.3, 7.1, 78, 84, 102])


@pytest.fixture
def rutile():
    return make_rutile()


@pytest.fixture
def garnet():
    return make_garnet()


@pytest.fixture
def quartz():
    return make_quartz()


@pytest.fixture
def rocksalt():
    return bulk("NaCl", "rocksalt", a=5.64, cubic=True)


@pytest.fixture
def copper():
    return bulk("Cu", "fcc", a=3.61, cubic=True)


@pytest.fixture
def triclinic():
    return make_triclinic()


def rattled_copper_cells(n, seed=0, a0=3.5, da=0.05, amplitude=0.1):
    """``n`` cubic fcc Cu cells, lattice constant ``a0 + k*da``, rattled by ``amplitude``."""
    import numpy as np
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=a0 + da * k, cubic=True)
        atoms.rattle(amplitude, rng=rng)
        out.append(atoms)
    return out


@pytest.fixture
def torch_one_thread():
    """torch on one thread for the test, restored after (batched tests)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
