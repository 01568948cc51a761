"""Metropolis acceptance and FUSE's "melting" schedule, as pure functions.

Energies and temperatures are in eV/atom, as in the FUSE2 paper.  Downhill moves
are always accepted; uphill ones with probability ``exp(-dE / T)``.  After
``melt_threshold`` consecutive rejections the temperature rises by a random
increment (and again after every further ``melt_threshold`` rejections); it stays
raised until the next downhill step, which restores the base temperature.
"""

import math
from dataclasses import asdict, dataclass

from .config import DEFAULTS

#: eV/atom: a new energy within this of the current one is equal, not downhill.  The
#: same structure relaxed again may land a few 1e-13 below or above; a re-used
#: result (``reuse``) is exactly equal.  Both must take the same branch (the uphill
#: one, which draws from the rng), or a restart that re-uses where the first run
#: relaxed would part from the uninterrupted run's random stream.
EQUAL_ENERGY = 1e-9


@dataclass
class AcceptanceState:
    """What the acceptance rule remembers between steps (saved for restarts)."""
    base_temperature: float
    temperature: float
    rejections: int = 0          # consecutive rejections
    melts: int = 0               # how many times the temperature was raised
    steps_since_best: int = 0    # steps since the global minimum last improved

    def todict(self):
        return asdict(self)

    @classmethod
    def fromdict(cls, dct):
        return cls(**dct)


@dataclass
class AcceptanceRule:
    """Metropolis rule with melting.

    temperature: base temperature (eV/atom).
    melt_threshold: consecutive rejections before the temperature rises.
    melt_increment: (low, high) range of the random rise, as multiples of the base temperature.
    """
    temperature: float = DEFAULTS["temperature"]          # defaults: the option record
    melt_threshold: int = DEFAULTS["melt_threshold"]
    melt_increment: tuple = DEFAULTS["melt_increment"]

    def initial_state(self):
        return AcceptanceState(self.temperature, self.temperature)

    def accept(self, e_new, e_current, state, rng):
        """Decide one step.  Returns ``(accepted, downhill)``.

        ``rng.random()`` is drawn for every uphill move (and only then), so a run is
        reproducible from its seed; an energy within :data:`EQUAL_ENERGY` of the
        current one counts as uphill (it is accepted: ``exp(-dE/T) >= 1`` or close).
        """
        if e_current is None or e_new < e_current - EQUAL_ENERGY:
            return True, True
        delta = e_new - e_current
        if state.temperature <= 0:
            return False, False
        return bool(rng.random() < math.exp(-delta / state.temperature)), False

    def update(self, state, accepted, downhill, new_best, rng):
        """The state after a step (a new object; ``state`` is untouched)."""
        new = AcceptanceState(**state.todict())
        new.steps_since_best = 0 if new_best else state.steps_since_best + 1
        if downhill:
            new.temperature = state.base_temperature
            new.rejections = 0
            return new
        new.rejections = 0 if accepted else state.rejections + 1
        if not accepted and self.melt_threshold and new.rejections % self.melt_threshold == 0:
            low, high = self.melt_increment
            new.temperature = state.temperature + state.base_temperature * rng.uniform(low, high)
            new.melts += 1
        return new
