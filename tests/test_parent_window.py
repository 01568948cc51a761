"""A relaxed structure past the volume window does not end the search.

Race piece 3 (alpha-quartz, seed 0): CHGNet relaxed an SiO2 structure to 4.57 times
its atoms' sphere volume, past the candidate window's top (4.0).  Every candidate a
cell-keeping move made from it was refused for its volume, and the run ended at step
16 with "no valid move candidate after 50 tries", 470 s of its 600 s unused.  Moves
now check candidates against the window widened to hold the parent's own volume
(``limits_for_parent``), and a step whose moves all fail falls back to a new
structure (moves 13/14) before it gives up.
"""

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from ase.spacegroup import crystal

from ase_fuse import FuseBasinHopping
from ase_fuse.calculators.stacks import build_stack
from ase_fuse.checks import (PARENT_WINDOW_CAP, Limits, check_structure,
                             limits_for_parent, volume_ratio)
from ase_fuse.composition import Composition
from ase_fuse.errors import GenerationError
from ase_fuse.moves import MoveContext, MoveSelector

SIO2 = Composition("SiO2")


def alpha_quartz():
    """alpha-quartz, P3_221 (154): a = 4.916, c = 5.405 A; Si (0.4697, 0, 0),
    O (0.4135, 0.2669, 0.1191) (Levien, Prewitt and Weidner, Am. Mineral. 65, 920
    (1980)), shifted by z + 2/3 onto the International Tables origin that ASE uses
    (Si on 3a (x, 0, 2/3)); Si-O 1.605 A."""
    return crystal(["Si", "O"], basis=[(0.4697, 0.0, 2 / 3), (0.4135, 0.2669, 0.1191 + 2 / 3)],
                   spacegroup=154, cellpar=[4.916, 4.916, 5.405, 90, 90, 120])


def at_ratio(atoms, ratio, composition=SIO2):
    """``atoms`` with its cell scaled (atoms with it) to ``ratio`` times the sphere
    volume."""
    out = atoms.copy()
    scale = (ratio / volume_ratio(atoms, composition)) ** (1.0 / 3.0)
    out.set_cell(out.cell.array * scale, scale_atoms=True)
    return out


def test_quartz_relaxed_open_is_outside_the_plain_window():
    quartz = alpha_quartz()
    assert quartz.get_chemical_formula() == "O6Si3"
    assert volume_ratio(quartz, SIO2) < 4.0      # the measured cell is inside it
    open_quartz = at_ratio(quartz, 4.6)
    assert volume_ratio(open_quartz, SIO2) == pytest.approx(4.6)
    assert "volume ratio 4.60 outside" in check_structure(open_quartz, SIO2, Limits())


def test_window_widens_to_hold_the_parent_and_no_further_than_the_cap():
    limits = Limits()
    inside = at_ratio(alpha_quartz(), 3.0)
    assert limits_for_parent(limits, inside, SIO2) is limits
    wide = limits_for_parent(limits, at_ratio(alpha_quartz(), 4.6), SIO2)
    assert wide.volume_window[0] == limits.volume_window[0]
    assert wide.volume_window[1] == pytest.approx(4.6 * 1.25, abs=1e-3)
    assert limits.volume_window == (0.5, 4.0)            # the caller's left alone
    capped = limits_for_parent(limits, at_ratio(alpha_quartz(), 30.0), SIO2)
    assert capped.volume_window[1] == pytest.approx(4.0 * PARENT_WINDOW_CAP)
    squeezed = limits_for_parent(limits, at_ratio(alpha_quartz(), 0.42), SIO2)
    assert squeezed.volume_window[0] == pytest.approx(0.42 / 1.25, abs=1e-3)


def test_cell_keeping_moves_work_on_an_open_relaxed_parent():
    parent = at_ratio(alpha_quartz(), 4.6)
    context = MoveContext(composition=SIO2, max_atoms=18)
    selector = MoveSelector({1: 1.0})                    # swap two atoms: same cell
    candidate, move = selector.propose(parent, context, np.random.default_rng(0))
    assert move.number == 1
    assert volume_ratio(candidate, SIO2) == pytest.approx(4.6)
    # the plain window would have refused it: what ended the quartz run
    assert "volume ratio" in check_structure(candidate, SIO2, context.check_limits())


def test_only_restricts_the_draw_and_ignores_zero_weights():
    selector = MoveSelector({1: 1.0})
    rng = np.random.default_rng(1)
    drawn = {selector.draw(rng, only=(13, 14)).number for _ in range(40)}
    assert drawn == {13, 14}
    with pytest.raises(GenerationError):   # beyond the cap, move 1 cannot help
        selector.propose(at_ratio(alpha_quartz(), 30.0),
                         MoveContext(composition=SIO2, max_atoms=18), rng, max_tries=5)


class OpenRelaxer:
    """The proxy stack, its results then scaled to ``ratio`` times the sphere volume
    (a calculator that relaxes SiO2 into an open framework)."""

    def __init__(self, ratio):
        self.inner = build_stack("proxy", "SiO2")
        self.ratio = ratio

    def __repr__(self):
        return f"OpenRelaxer({self.ratio})"

    def relax(self, atoms):
        result = self.inner.relax(atoms)
        if result.atoms is not None and result.ok:
            scaled = at_ratio(result.atoms, self.ratio)
            scaled.calc = SinglePointCalculator(scaled, **result.atoms.calc.results)
            result.atoms = scaled
            result.volume = result.atoms.get_volume()
        return result


def _moves(folder):
    from ase.db import connect
    with connect(str(folder / "fuse.db"), use_lock_file=False) as con:
        return [row.get("move") for row in con.select("step>0")]


def test_search_goes_on_from_an_open_relaxed_structure(tmp_path):
    search = FuseBasinHopping("SiO2", relaxer=OpenRelaxer(4.6), max_atoms=9,
                              initial_population=2, seed=3, move_weights={1: 1.0},
                              directory=tmp_path, logfile=None)
    search.run(steps=3)
    assert search.nsteps == 3
    assert set(_moves(tmp_path)) == {1}


def test_search_falls_back_to_new_structures_past_the_cap(tmp_path):
    log = tmp_path / "log.txt"
    search = FuseBasinHopping("SiO2", relaxer=OpenRelaxer(30.0), max_atoms=9,
                              initial_population=2, seed=3, move_weights={1: 1.0},
                              directory=tmp_path, logfile=str(log))
    search.run(steps=2)
    assert search.nsteps == 2
    assert set(_moves(tmp_path)) <= {13, 14} and _moves(tmp_path)
    assert "a new structure (moves 13/14) instead" in log.read_text()
