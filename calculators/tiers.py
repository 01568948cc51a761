"""Tiered relaxation: relax through a chain of calculators, cheapest first.

A :class:`Tier` is one calculator with its optimiser settings; a
:class:`TieredRelaxer` relaxes a structure through its tiers in turn, each starting
from the previous tier's geometry.  Every calculator call goes through a
:class:`~ase_fuse.calculators.guards.GuardedCalculator`, so a collapsed cell, atoms
too close, an isolated atom, NaN results, huge forces, an SCF failure, a crashing
back-end or the wall-time limit stop the relaxation with ``failed="<reason>"``
instead of raising (and before a heavy calculator sees the bad geometry).  No
later tier runs after a failure.  The input atoms are never modified; the result
carries a :class:`~ase.calculators.singlepoint.SinglePointCalculator`, never the
live calculator.
"""

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from ase import units
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import FrechetCellFilter, UnitCellFilter
from ase.optimize import BFGS, FIRE, LBFGS
from ase.optimize.fire2 import FIRE2

from ase_fuse.errors import InputError

from .guards import GuardedCalculator, GuardFailure, Guards, interrupt_at

# ASE's PreconLBFGS is left out: behind FrechetCellFilter it stopped at step 0 on
# every structure tried (benchmarks/protocol.py)
OPTIMIZERS = {"FIRE": FIRE, "FIRE2": FIRE2, "BFGS": BFGS, "LBFGS": LBFGS}


def _real(value):
    """``value`` as a finite float, or None when it is not a real number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return None
    value = float(value)
    return value if np.isfinite(value) else None


class CachedFrechetCellFilter(FrechetCellFilter):
    """ASE's ``FrechetCellFilter`` that computes its forces once per geometry, with
    the 3x3 matrix functions of :mod:`~ase_fuse.calculators.cellmath` (the same
    numbers to rounding, about 15x cheaper than scipy's).

    ASE's optimisers ask the filter for forces up to three times per step (step,
    convergence test, log); each call redoes the cell gradient, a matrix logarithm and
    a Frechet derivative (scipy), about a fifth of a one-at-a-time CHGNet relaxation
    of a 10-atom cell on one CPU thread.  Same numbers: only repeats are skipped.
    """

    #: use :mod:`~ase_fuse.calculators.cellmath` for the filter's matrix functions
    fast_math = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.fast_math:
            from .cellmath import logm, make_expm_frechet
            frechet = make_expm_frechet()
            # the filter holds them; ASE 3.27 calls them on its helper ``_utility``
            for holder in (self, getattr(self, "_utility", None)):
                if holder is not None and hasattr(holder, "logm"):
                    holder.logm, holder.expm_frechet = logm, frechet

    def get_forces(self, **kwargs):
        atoms = self.atoms
        key = (atoms.positions.tobytes(), atoms.cell.array.tobytes(), id(atoms.calc),
               tuple(sorted(kwargs.items())))
        cached = getattr(self, "_cached", None)
        if cached is None or cached[0] != key:
            forces = super().get_forces(**kwargs)
            self._cached = cached = (key, forces.copy(), np.array(self.stress))
        self.stress = cached[2].copy()
        return cached[1].copy()


CELL_FILTERS = {"frechet": CachedFrechetCellFilter, "unit": UnitCellFilter}


def _optimizer_class(optimizer):
    """The ASE optimiser class for a name in :data:`OPTIMIZERS` or a class itself."""
    from ase.optimize.optimize import Optimizer

    if isinstance(optimizer, str) and optimizer in OPTIMIZERS:
        return OPTIMIZERS[optimizer]
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer
    raise InputError(f"unknown optimizer {optimizer!r}; give one of "
                     f"{', '.join(OPTIMIZERS)} or an ase.optimize Optimizer class",
                     field="optimizer")


def _is_calculator(obj):
    return not isinstance(obj, type) and (
        hasattr(obj, "get_property") or hasattr(obj, "get_potential_energy"))


class Tier:
    """One stage of a relaxation.

    calc: an ASE calculator, or a zero-argument factory returning one (called once,
        on first use, so heavy models load lazily).
    fmax, steps: convergence criterion (eV/A) and step limit; ``steps=0`` or
        ``single_point=True`` computes a single point.
    optimizer: ``"FIRE"``, ``"FIRE2"``, ``"BFGS"`` or ``"LBFGS"``, or an ASE optimiser
        class (``ase.optimize.MDMin``, ``ase.optimize.GPMin``, your own ``Optimizer``
        subclass), called as ``cls(atoms, logfile=None, **optimizer_kwargs)``.
    cell_filter: ``"frechet"`` (``FrechetCellFilter``, the default) or ``"unit"``
        (``UnitCellFilter``: about 5x cheaper per step, as its cell update needs no
        matrix logarithm; worth it for a cheap proxy tier, where the filter costs more
        than the potential).
    relax_cell: relax the cell too (with ``cell_filter``); a calculator without
        stress falls back to positions only, with a warning.
    internal_relax: the calculator relaxes by itself in one call (VASP with NSW>0,
        GULP with ``opti``); the geometry is read back from the calculator.
    guards: :class:`~ase_fuse.calculators.guards.Guards` for this tier only (None: the
        relaxer's); e.g. a proxy tier that may start from close contacts turns the
        huge-force check off, since pushing atoms apart is its job.
    fail_force_factor: when the step limit is hit with the max force above
        ``fail_force_factor * fmax`` the tier fails (None: never; below it the tier
        is just not converged).
    max_volume_change: for a tier that is not the last, the largest relative volume
        change (0.25: -25% ... +25%) whose result is handed on; beyond it the tier's
        geometry is discarded (noted in its record) and the next tier starts from
        this tier's input.  A pair-potential proxy pulls open structures (diamond
        Si) into dense ones whose ML minimum is another basin.  None: no bound.
    """

    def __init__(self, calc, fmax=0.05, steps=500, optimizer="FIRE", relax_cell=True,
                 name=None, single_point=False, internal_relax=False,
                 fail_force_factor=10.0, optimizer_kwargs=None, guards=None,
                 cell_filter="frechet", max_volume_change=None):
        if calc is None or not (_is_calculator(calc) or callable(calc)):
            raise InputError(f"need an ASE calculator or a factory, got {calc!r}",
                             field="calc")
        self.optimizer_class = _optimizer_class(optimizer)
        if _real(fmax) is None or not fmax > 0:
            raise InputError(f"must be a positive number, got {fmax!r}", field="fmax")
        if _real(steps) is None or steps != int(steps) or steps < 0:
            raise InputError(f"must be a whole number >= 0, got {steps!r}", field="steps")
        if fail_force_factor is not None and (_real(fail_force_factor) is None
                                              or not fail_force_factor >= 1):
            raise InputError(f"must be >= 1 or None, got {fail_force_factor}",
                             field="fail_force_factor")
        self._calc = calc if _is_calculator(calc) else None
        self._factory = None if _is_calculator(calc) else calc
        self.fmax = float(fmax)
        self.steps = int(steps)
        self.optimizer = optimizer if isinstance(optimizer, str) else optimizer.__name__
        self.relax_cell = relax_cell
        self.single_point = single_point or self.steps == 0 or internal_relax
        self.internal_relax = internal_relax
        self.fail_force_factor = fail_force_factor
        self.optimizer_kwargs = dict(optimizer_kwargs or {})
        self.guards = guards
        if not isinstance(cell_filter, str) or cell_filter not in CELL_FILTERS:
            raise InputError(f"unknown cell filter {cell_filter!r}; known: "
                             f"{', '.join(CELL_FILTERS)}", field="cell_filter")
        self.cell_filter = cell_filter
        if max_volume_change is not None and (_real(max_volume_change) is None
                                              or not max_volume_change > 0):
            raise InputError(f"must be a positive fraction or None, got "
                             f"{max_volume_change!r}", field="max_volume_change")
        self.max_volume_change = max_volume_change
        self.name = name or self._default_name(calc)

    @staticmethod
    def _default_name(calc):
        if _is_calculator(calc):
            return type(calc).__name__
        return getattr(calc, "__name__", type(calc).__name__)

    @property
    def calc(self):
        """The calculator (created by the factory on first access)."""
        if self._calc is None:
            calc = self._factory()
            if not _is_calculator(calc):
                raise InputError(f"factory for tier {self.name!r} returned {calc!r}, "
                                 "not an ASE calculator", field="calc")
            self._calc = calc
        return self._calc

    def __repr__(self):
        mode = "single point" if self.single_point else \
            f"{self.optimizer} fmax={self.fmax} steps={self.steps}"
        return f"Tier({self.name!r}, {mode})"


@dataclass
class TierRecord:
    """What one tier did for one structure."""
    name: str
    energy: float = None
    energy_per_atom: float = None
    steps: int = 0
    converged: bool = False
    wall_time: float = 0.0
    failed: str = None
    fmax: float = None
    cell_relaxed: bool = False
    note: str = None        # e.g. why this tier's geometry was not handed on


@dataclass
class RelaxResult:
    """Outcome of :meth:`TieredRelaxer.relax`.

    ``atoms`` is a relaxed copy with a SinglePointCalculator.  On failure it is the
    last good geometry (the input, or the previous tier's result with that tier's
    SinglePointCalculator), ``energy`` is None and ``failed`` gives the reason
    (``"<tier name>: <reason>"``).

    ``pressure`` (GPa) is the external pressure the cell was relaxed at and
    ``volume`` the relaxed cell's (A^3); :attr:`enthalpy_per_atom` is what a search
    compares: ``(E + PV) / N``, the energy per atom itself at zero pressure.
    """
    atoms: object = None
    energy: float = None
    energy_per_atom: float = None
    converged: bool = False
    failed: str = None
    tiers: list = field(default_factory=list)
    pressure: float = 0.0
    volume: float = None

    @property
    def enthalpy(self):
        """``E + PV`` (eV); the energy at zero pressure; None on failure."""
        return enthalpy(self.energy, self.pressure, self.volume)

    @property
    def enthalpy_per_atom(self):
        value = self.enthalpy
        return None if value is None else value / len(self.atoms)

    @property
    def ok(self):
        return self.failed is None

    @property
    def wall_time(self):
        return sum(record.wall_time for record in self.tiers)

    @property
    def steps(self):
        return sum(record.steps for record in self.tiers)


def enthalpy(energy, pressure, volume):
    """``energy + pressure * volume`` in eV (``pressure`` in GPa, ``volume`` in A^3);
    ``energy`` itself at zero pressure, None when ``energy`` is None."""
    if energy is None:
        return None
    if not pressure:
        return float(energy)
    return float(energy) + float(pressure) * units.GPa * float(volume)


def check_pressure(pressure, field="pressure"):
    """``pressure`` (GPa) as a float: any finite number (negative: tension)."""
    value = _real(pressure)
    if value is None:
        raise InputError(f"must be a finite number of GPa, got {pressure!r}", field=field)
    return value


def volume_jump(tier, before, after):
    """True when ``tier`` bounds its volume change and ``after`` is beyond it."""
    bound = tier.max_volume_change
    if bound is None or not (np.all(before.pbc) and np.all(after.pbc)):
        return False
    return abs(after.get_volume() / before.get_volume() - 1.0) > bound


def volume_note(tier, before, after):
    ratio = after.get_volume() / before.get_volume()
    return (f"discarded: volume x{ratio:.2f} (bound {tier.max_volume_change:g}); the "
            "next tier starts from this tier's input")


def _max_force(forces):
    forces = np.asarray(forces).reshape(-1, 3)
    return float(np.sqrt((forces ** 2).sum(axis=1).max())) if len(forces) else 0.0


def _supports_stress(calc):
    props = getattr(calc, "implemented_properties", None)
    return props is None or "stress" in props


class TieredRelaxer:
    """Relax structures through ``tiers`` in turn.

    guards: :class:`Guards` (default thresholds when None), checked on every call.
    time_limit: seconds per relaxation (all tiers together), or None.  It is checked
        before and after every calculator call and, in the main thread, a SIGALRM
        timer also interrupts a single call that hangs (see
        :func:`~ase_fuse.calculators.guards.interrupt_at`); off the main thread only
        the between-call checks apply (give an external program its own limit).
    callback: called as ``callback(tier_index, record)`` after each tier.
    pressure: external pressure (GPa) for the cell relaxations (ASE's cell filters'
        ``scalar_pressure``); results carry it and their enthalpy ``E + PV``.  Tiers
        that relax inside their own program (``internal_relax``: VASP, GULP) are not
        told it, so a relaxer holding one refuses a non-zero pressure.
    """

    def __init__(self, tiers, guards=None, time_limit=None, callback=None, pressure=0.0):
        if isinstance(tiers, Tier):
            tiers = [tiers]
        try:
            tiers = list(tiers)
        except TypeError:  # not iterable
            tiers = []
        if not tiers or not all(isinstance(t, Tier) for t in tiers):
            raise InputError("need a non-empty list of Tier objects", field="tiers")
        if time_limit is not None and (_real(time_limit) is None or not time_limit > 0):
            raise InputError(f"must be positive seconds or None, got {time_limit}",
                             field="time_limit")
        self.tiers = tiers
        self.guards = guards if guards is not None else Guards()
        self.time_limit = time_limit
        self.callback = callback
        self.pressure = 0.0
        self.set_pressure(pressure)

    def set_pressure(self, pressure):
        """Relax at ``pressure`` GPa from now on (checked: a finite number, and no
        tier that relaxes inside its own program when it is not zero)."""
        pressure = check_pressure(pressure)
        if pressure:
            inner = [t.name for t in self.tiers if t.internal_relax]
            if inner:
                raise InputError(f"tier {inner[0]!r} relaxes inside its own program, which "
                                 "is not given the pressure; relax it with an ASE optimiser "
                                 "(or set the program's own pressure and leave pressure at 0)",
                                 field="pressure")
        self.pressure = pressure

    def __repr__(self):
        at = f" at {self.pressure:g} GPa" if self.pressure else ""
        return f"TieredRelaxer({' -> '.join(t.name for t in self.tiers)}{at})"

    def relax_many(self, structures, on_result=None, should_stop=None):
        """:meth:`relax` each structure in turn; returns the list of results.

        on_result: ``on_result(index, result)`` as each one finishes (the search
            writes it to its db at once: a run stopped or killed keeps it).
        should_stop: checked before each structure; once it returns True the rest
            are left undone (``None`` in the list).
        """
        results = [None] * len(structures)
        for index, atoms in enumerate(structures):
            if should_stop is not None and should_stop():
                break
            results[index] = self.relax(atoms)
            if on_result is not None:
                on_result(index, results[index])
        return results

    def relax(self, atoms):
        """Relax a copy of ``atoms`` through every tier; never raises for a bad structure."""
        start = time.monotonic()
        deadline = None if self.time_limit is None else start + self.time_limit
        current = atoms.copy()
        current.calc = None
        start_volume = abs(current.cell.volume) if np.all(current.pbc) else None
        result = RelaxResult(atoms=current, pressure=self.pressure)
        final = None
        for index, tier in enumerate(self.tiers):
            record, final = self._run_tier(tier, current, start_volume, deadline)
            result.tiers.append(record)
            if self.callback is not None:
                self.callback(index, record)
            if record.failed:
                result.failed = f"{tier.name}: {record.failed}"
                result.atoms = current
                return result
            if index < len(self.tiers) - 1 and volume_jump(tier, current, final):
                record.note = volume_note(tier, current, final)
                continue
            current = final
        n = len(current)
        energy = current.calc.results["energy"]
        result.atoms = current
        result.energy = energy
        result.energy_per_atom = energy / n
        result.volume = abs(float(current.cell.volume)) if np.all(current.pbc) else None
        if result.volume is None and self.pressure:
            result.failed = "enthalpy: a structure without a 3-D cell has no volume"
            result.energy = result.energy_per_atom = None
            return result
        result.converged = all(record.converged for record in result.tiers)
        return result

    # -- one tier ------------------------------------------------------------------
    def _run_tier(self, tier, atoms, start_volume, deadline):
        t0 = time.monotonic()
        record = TierRecord(name=tier.name)
        work = atoms.copy()
        try:
            if deadline is not None and t0 > deadline:
                raise GuardFailure("time-limit", "time limit exceeded before this tier")
            try:
                calc = tier.calc
            except Exception as err:  # missing program/package, bad factory: this tier
                raise GuardFailure("calculator-error", f"could not create calculator: "
                                   f"{type(err).__name__}: {err}") from err
            guards = tier.guards if tier.guards is not None else self.guards
            guarded = GuardedCalculator(calc, guards, start_volume, deadline)
            work.calc = guarded
            with interrupt_at(deadline):
                if tier.single_point:
                    self._single_point(tier, work, guarded, record)
                else:
                    self._optimise(tier, work, guarded, record, self.pressure)
                results = self._final_results(work, guarded, tier)
        except GuardFailure as failure:
            record.failed = failure.reason
            record.wall_time = time.monotonic() - t0
            return record, None
        except Exception as err:  # optimiser trouble (e.g. singular Hessian)
            record.failed = f"relaxation error: {type(err).__name__}: {err}"
            record.wall_time = time.monotonic() - t0
            return record, None
        final = work.copy()
        final.calc = SinglePointCalculator(final, **results)
        record.energy = float(results["energy"])
        record.energy_per_atom = record.energy / len(final)
        record.fmax = _max_force(results["forces"]) if "forces" in results else None
        record.wall_time = time.monotonic() - t0
        if tier.single_point:
            record.converged = True
        elif not record.converged and tier.fail_force_factor is not None \
                and record.fmax is not None \
                and record.fmax > tier.fail_force_factor * tier.fmax:
            record.failed = (f"not converged: max force {record.fmax:.3g} eV/A after "
                             f"{record.steps} steps (above {tier.fail_force_factor:g} "
                             f"x fmax {tier.fmax:g})")
            return record, None
        return record, final

    def _single_point(self, tier, work, guarded, record):
        work.get_potential_energy()
        if tier.internal_relax:
            inner = guarded.calc
            relaxed = getattr(inner, "atoms", None)
            if relaxed is not None and len(relaxed) == len(work):
                work.set_cell(relaxed.cell)
                work.positions = relaxed.positions
            guarded.results = {k: v for k, v in inner.results.items()
                               if k in ("energy", "free_energy", "forces", "stress")}
            guarded.atoms = work.copy()
            guarded.guards.check_geometry(work)
            guarded.guards.check_results(guarded.results)
        record.steps = 0

    def _optimise(self, tier, work, guarded, record, pressure=0.0):
        use_cell = tier.relax_cell and bool(np.all(work.pbc))
        if use_cell and not _supports_stress(guarded.calc):
            warnings.warn(f"tier {tier.name!r}: calculator has no stress; relaxing "
                          "positions only", RuntimeWarning, stacklevel=4)
            use_cell = False
        try:
            record.converged, record.steps = self._run_optimizer(tier, work, use_cell,
                                                                 pressure)
        except PropertyNotImplementedError:
            if not use_cell:
                raise
            warnings.warn(f"tier {tier.name!r}: calculator has no stress; relaxing "
                          "positions only", RuntimeWarning, stacklevel=4)
            record.converged, record.steps = self._run_optimizer(tier, work, False)
        record.cell_relaxed = use_cell

    @staticmethod
    def _run_optimizer(tier, work, use_cell, pressure=0.0):
        target = (CELL_FILTERS[tier.cell_filter](work, scalar_pressure=pressure * units.GPa)
                  if use_cell else work)
        optimizer = tier.optimizer_class(target, logfile=None, **tier.optimizer_kwargs)
        with warnings.catch_warnings():
            # FrechetCellFilter's matrix logarithm warns at 1e-13 accuracy, every step
            warnings.filterwarnings("ignore", message="logm result may be inaccurate")
            converged = optimizer.run(fmax=tier.fmax, steps=tier.steps)
        return bool(converged), int(optimizer.nsteps)

    @staticmethod
    def _final_results(work, guarded, tier):
        results = {"energy": float(work.get_potential_energy())}
        if "forces" in guarded.implemented_properties or "forces" in guarded.results:
            results["forces"] = np.array(work.get_forces())
        if "stress" in guarded.results or (
                np.all(work.pbc) and "stress" in guarded.implemented_properties
                and not tier.internal_relax):
            try:
                results["stress"] = np.array(work.get_stress())
            except PropertyNotImplementedError:
                pass
        return results
