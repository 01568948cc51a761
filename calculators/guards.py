"""Per-step guards for relaxations: catch a bad geometry BEFORE the calculator sees it.

A cell can collapse (or explode) during an optimisation, and a graph network such as
CHGNet then builds an enormous neighbour graph (tens of GB).  :class:`GuardedCalculator`
wraps any ASE calculator: every call first checks the geometry against
:class:`Guards` (cell volume, shortest distance, isolated atoms, wall-time deadline)
and only then asks the wrapped calculator; afterwards it checks the results (finite
energy, finite and bounded forces, finite stress).  A violation raises
:class:`GuardFailure`, which :class:`~ase_fuse.calculators.tiers.TieredRelaxer`
turns into a failed result.  Because the optimiser reaches the calculator only
through this wrapper, every optimiser step is guarded.
"""

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from ase.calculators.calculator import (Calculator, PropertyNotImplementedError,
                                        SCFError, all_changes)
from ase.data import covalent_radii
from ase.neighborlist import neighbor_list

from ase_fuse.errors import InputError

from .neighbours import neighbour_pairs


class GuardFailure(Exception):
    """A guard tripped.  ``kind`` is a short tag (``"collapsed"``, ``"nan-energy"``...)."""

    def __init__(self, kind, reason):
        self.kind = kind
        self.reason = reason
        super().__init__(f"{kind}: {reason}")


@dataclass
class Guards:
    """Thresholds checked on every calculator call of a relaxation.

    volume_per_atom_window: absolute ``(lo, hi)`` in A^3/atom, or None.
    volume_ratio_window: ``(lo, hi)`` ratio to the volume at the start of the
        relaxation, or None.
    min_distance: shortest allowed interatomic distance in A (None: off).
    min_distance_factor: if set, shortest allowed distance is this fraction of the
        sum of the two atoms' covalent radii (checked in addition to ``min_distance``).
    isolated_cutoff: an atom with no neighbour within this distance (A) fails (None: off).
    max_force: any force component norm above this (eV/A) fails (None: off).
    """
    volume_per_atom_window: tuple = None
    volume_ratio_window: tuple = (0.2, 5.0)
    min_distance: float = 0.5
    min_distance_factor: float = None
    isolated_cutoff: float = 6.0
    max_force: float = 1.0e3

    def __post_init__(self):
        for field in ("volume_per_atom_window", "volume_ratio_window"):
            window = getattr(self, field)
            if window is None:
                continue
            if len(window) != 2 or not 0 <= window[0] < window[1]:
                raise InputError(f"must be (lo, hi) with 0 <= lo < hi, got {window}",
                                 field=field)
        for field in ("min_distance", "min_distance_factor", "isolated_cutoff", "max_force"):
            value = getattr(self, field)
            if value is not None and not value > 0:
                raise InputError(f"must be positive or None, got {value}", field=field)

    # -- geometry --------------------------------------------------------------
    def check_geometry(self, atoms, start_volume=None):
        """Raise :class:`GuardFailure` if ``atoms`` is not a geometry worth computing."""
        n = len(atoms)
        if n == 0:
            raise GuardFailure("empty", "no atoms")
        if not np.all(np.isfinite(atoms.positions)) or not np.all(np.isfinite(atoms.cell[:])):
            raise GuardFailure("nan-geometry", "non-finite positions or cell")
        periodic = bool(np.all(atoms.pbc))
        if periodic:
            volume = abs(atoms.cell.volume)
            per_atom = volume / n
            if self.volume_per_atom_window is not None:
                lo, hi = self.volume_per_atom_window
                if per_atom < lo:
                    raise GuardFailure("collapsed", f"cell collapsed: volume per atom "
                                       f"{per_atom:.3g} A^3 below {lo}")
                if per_atom > hi:
                    raise GuardFailure("exploded", f"cell exploded: volume per atom "
                                       f"{per_atom:.3g} A^3 above {hi}")
            if self.volume_ratio_window is not None and start_volume:
                lo, hi = self.volume_ratio_window
                ratio = volume / start_volume
                if ratio < lo:
                    raise GuardFailure("collapsed", f"cell collapsed: volume {ratio:.3g} "
                                       f"x the starting volume (below {lo})")
                if ratio > hi:
                    raise GuardFailure("exploded", f"cell exploded: volume {ratio:.3g} "
                                       f"x the starting volume (above {hi})")
        self._check_distances(atoms)

    def _check_distances(self, atoms):
        limits = []
        radii = covalent_radii[atoms.numbers]
        if self.min_distance is not None:
            limits.append(self.min_distance)
        if self.min_distance_factor is not None:
            limits.append(self.min_distance_factor * 2 * radii.max())
        cutoff = max(limits + [self.isolated_cutoff or 0.0])
        if cutoff <= 0:
            return
        if periodic_cell_too_small(atoms):
            raise GuardFailure("collapsed", "cell collapsed: degenerate cell")
        i, j, d = pair_distances(atoms, cutoff)
        if limits and len(d):
            limit = np.zeros(len(d))
            if self.min_distance is not None:
                limit[:] = self.min_distance
            if self.min_distance_factor is not None:
                limit = np.maximum(limit, self.min_distance_factor * (radii[i] + radii[j]))
            bad = np.flatnonzero(d < limit)
            if len(bad):
                k = bad[np.argmin(d[bad] / limit[bad])]
                raise GuardFailure("too-close", f"atoms {i[k]} and {j[k]} too close: "
                                   f"{d[k]:.3f} A < {limit[k]:.3f} A")
        if self.isolated_cutoff is not None:
            near = d <= self.isolated_cutoff
            has_neighbour = np.zeros(len(atoms), bool)
            has_neighbour[i[near]] = True
            has_neighbour[j[near]] = True
            lonely = np.flatnonzero(~has_neighbour)
            if len(lonely):
                raise GuardFailure("isolated", f"atom {lonely[0]} isolated: no neighbour "
                                   f"within {self.isolated_cutoff} A")

    # -- results ---------------------------------------------------------------
    def check_results(self, results):
        """Raise :class:`GuardFailure` for non-finite or huge results."""
        energy = results.get("energy")
        if energy is not None and not np.isfinite(energy):
            raise GuardFailure("nan-energy", f"non-finite energy {energy}")
        forces = results.get("forces")
        if forces is not None:
            forces = np.asarray(forces)
            if not np.all(np.isfinite(forces)):
                raise GuardFailure("nan-forces", "non-finite forces")
            if self.max_force is not None and len(forces):
                fmax = float(np.sqrt((forces ** 2).sum(axis=1).max()))
                if fmax > self.max_force:
                    raise GuardFailure("huge-forces", f"huge forces: max {fmax:.3g} eV/A "
                                       f"above {self.max_force}")
        stress = results.get("stress")
        if stress is not None and not np.all(np.isfinite(stress)):
            raise GuardFailure("nan-stress", "non-finite stress")


@contextmanager
def interrupt_at(deadline):
    """Raise ``GuardFailure("time-limit")`` when ``time.monotonic()`` passes ``deadline``,
    even in the middle of one calculator call that hangs.

    Uses ``SIGALRM`` (``signal.setitimer(ITIMER_REAL)``), so it only works in the main
    thread of a POSIX process; elsewhere (worker threads, Windows) it does nothing and
    the deadline is only checked between calls (by :class:`GuardedCalculator`).  Python
    runs the handler between bytecodes: a call stuck inside compiled code (a Fortran
    SCF loop) is interrupted when it next returns to Python.  An alarm already set by
    the caller is put back (less the time spent) on exit.
    """
    usable = (deadline is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise GuardFailure("time-limit", "time limit exceeded (call interrupted)")

    started = time.monotonic()
    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, old_interval = signal.setitimer(
        signal.ITIMER_REAL, max(deadline - started, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay > 0:
            left = max(old_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


def periodic_cell_too_small(atoms):
    """True when a periodic cell is (nearly) degenerate, so neighbour lists would blow up."""
    if not np.any(atoms.pbc):
        return False
    lengths = atoms.cell.lengths()
    if np.any(lengths[atoms.pbc] < 1e-3):
        return True
    if np.all(atoms.pbc):
        return abs(atoms.cell.volume) < 1e-3 * len(atoms)
    return False


def pair_distances(atoms, cutoff, max_work=4_000_000):
    """Half list ``(i, j, d)`` of pairs (own periodic images included) within ``cutoff``.

    Dense and vectorised over pairs x image shifts (fast for the small cells of a
    structure search); falls back to ASE's binned neighbour list when that would
    need more than ``max_work`` distances.
    """
    pairs = neighbour_pairs(atoms.positions, atoms.cell.array, atoms.pbc, cutoff,
                            max_work=max_work)
    if pairs is not None:
        i, j, d = pairs
        return i, j, np.linalg.norm(d, axis=1)
    i, j, d, shift = neighbor_list("ijdS", atoms, cutoff)
    # keep i < j, and each self-image pair once (lexicographically positive shift)
    first = np.where(shift[:, 0] != 0, shift[:, 0],
                     np.where(shift[:, 1] != 0, shift[:, 1], shift[:, 2]))
    half = (i < j) | ((i == j) & (first > 0))
    return i[half], j[half], d[half]


class GuardedCalculator(Calculator):
    """Wrap ``calc``: check geometry and deadline before every call, results after.

    ``start_volume`` is the cell volume the ratio window refers to; ``deadline`` is a
    ``time.monotonic()`` value after which no further call is made.
    """

    #: answer later questions for the same geometry from what the wrapped
    #: calculator already computed (see :meth:`_take_computed`)
    take_computed = True

    def __init__(self, calc, guards=None, start_volume=None, deadline=None):
        super().__init__()
        self.calc = calc
        self.guards = guards or Guards()
        self.start_volume = start_volume
        self.deadline = deadline
        self.calls = 0
        self._checked = False
        self.implemented_properties = list(getattr(calc, "implemented_properties", ()))

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise GuardFailure("time-limit", "time limit exceeded")
        if system_changes or not self._checked:
            self.guards.check_geometry(self.atoms, self.start_volume)
            self._checked = True
        self.calls += 1
        wanted = [p for p in properties if p in self.implemented_properties]
        try:
            atoms = self.atoms.copy()
            for name in wanted:
                self.results[name] = self.calc.get_property(name, atoms)
            if self.take_computed:
                self._take_computed()
        except GuardFailure:
            raise
        except SCFError as err:
            raise GuardFailure("scf", f"SCF not converged: {err}") from err
        except PropertyNotImplementedError:
            raise
        except Exception as err:  # any back-end error (CalculatorError...) is a failure
            raise GuardFailure("calculator-error", f"calculator error: "
                               f"{type(err).__name__}: {err}") from err
        if "energy" in self.results and "free_energy" not in self.results:
            self.results["free_energy"] = self.results["energy"]
        self.guards.check_results(self.results)
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise GuardFailure("time-limit", "time limit exceeded")

    def _take_computed(self):
        """Take what the wrapped calculator computed besides what was asked, for the
        same geometry (an ML model gives energy, forces and stress in one pass): the
        optimiser's next questions are answered here, with one geometry check and
        one result check per step instead of one per property."""
        inner = getattr(self.calc, "results", None)
        if not isinstance(inner, dict) or getattr(self.calc, "atoms", None) is None:
            return
        for name in self.implemented_properties:
            if name not in self.results and name in inner:
                value = inner[name]
                self.results[name] = value.copy() if isinstance(value, np.ndarray) else value
