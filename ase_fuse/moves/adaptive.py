"""Move weights that learn: each move's credit per unit of relaxation cost.

FUSE draws its 14 moves with fixed weights; its authors name learned weights as
future work.  :class:`MoveCredit` keeps, per move, how many steps it made, the reward
they earned (:data:`REWARD_NEW_BEST` for a new global minimum,
:data:`REWARD_ACCEPTED` for any other accepted candidate) and what their relaxations
cost (1 + the ML steps of the non-proxy tiers: a deterministic stand-in for CPU
time, so the same seed gives the same run, wall-clock noise or not).

A candidate that is no new structure (an input relaxed before, whose result was
re-used, or a repeat of a structure already found) earns nothing even if accepted:
otherwise the moves that mostly reproduce known structures cheaply (the sub-module
and module swaps on small cells, raced) would take the weight.

A move's rate is its reward per cost, shrunk toward the run's overall rate by
``pseudo`` steps of average cost (a move seldom tried stays near the mean).  Its
factor is that rate over the overall rate, held in ``[low, high]`` so that no move
is ever starved (exploration) or takes over; the selector draws with ``prior
weight x factor``.  Until some step earns a reward every factor is 1: the user's
weights, unchanged.

The state is a small dict saved with the search state at each step
(:meth:`todict`/:meth:`fromdict`), so a restart continues with the same factors.
"""

import numpy as np

REWARD_NEW_BEST = 1.0
REWARD_ACCEPTED = 0.25


def ml_steps(tiers):
    """Optimiser steps of a relaxation's non-proxy tiers (``tiers``: the dicts a
    record stores, or RelaxResult tier objects)."""
    total = 0
    for tier in tiers or ():
        name = tier.get("name") if isinstance(tier, dict) else getattr(tier, "name", None)
        steps = tier.get("steps") if isinstance(tier, dict) else getattr(tier, "steps", 0)
        if name != "proxy" and isinstance(steps, (int, float, np.integer)):
            total += int(steps)
    return total


class MoveCredit:
    """Reward and cost per move number, and the weight factors they give."""

    def __init__(self, numbers, pseudo=3.0, low=0.25, high=4.0):
        if not (pseudo > 0 and 0 < low <= 1 <= high):
            raise ValueError(f"need pseudo > 0 and 0 < low <= 1 <= high, got "
                             f"{pseudo}, {low}, {high}")
        self.numbers = [int(n) for n in numbers]
        self.pseudo, self.low, self.high = float(pseudo), float(low), float(high)
        self.tries = {n: 0 for n in self.numbers}
        self.reward = {n: 0.0 for n in self.numbers}
        self.cost = {n: 0.0 for n in self.numbers}

    def record(self, number, ml_steps, accepted, new_best, new_structure=True):
        """Count one step of move ``number`` whose relaxation took ``ml_steps``;
        ``new_structure``: its candidate relaxed to a structure not found before
        (otherwise it earns no reward)."""
        number = int(number)
        if number not in self.tries:
            raise KeyError(f"move {number} is not one of {self.numbers}")
        self.tries[number] += 1
        self.cost[number] += 1.0 + max(float(ml_steps), 0.0)
        if new_structure:
            self.reward[number] += (REWARD_NEW_BEST if new_best else
                                    REWARD_ACCEPTED if accepted else 0.0)

    def factors(self):
        """One factor per move number, in ``numbers`` order (all 1 before a reward)."""
        steps = sum(self.tries.values())
        total_reward = sum(self.reward.values())
        if steps == 0 or total_reward <= 0:
            return np.ones(len(self.numbers))
        total_cost = sum(self.cost.values())
        rate = total_reward / total_cost
        prior_cost = self.pseudo * total_cost / steps
        out = []
        for n in self.numbers:
            mine = (self.reward[n] + rate * prior_cost) / (self.cost[n] + prior_cost)
            out.append(min(max(mine / rate, self.low), self.high))
        return np.array(out)

    def todict(self):
        return {"numbers": list(self.numbers), "pseudo": self.pseudo, "low": self.low,
                "high": self.high,
                "moves": {str(n): [self.tries[n], self.reward[n], self.cost[n]]
                          for n in self.numbers}}

    @classmethod
    def fromdict(cls, state):
        credit = cls(state["numbers"], state["pseudo"], state["low"], state["high"])
        for key, (tries, reward, cost) in state["moves"].items():
            n = int(key)
            credit.tries[n], credit.reward[n], credit.cost[n] = int(tries), float(reward), \
                float(cost)
        return credit

    def table(self):
        """``{move: {"tries", "reward", "cost", "factor"}}`` for reports and summaries."""
        factors = self.factors()
        return {n: {"tries": self.tries[n], "reward": round(self.reward[n], 6),
                    "cost": round(self.cost[n], 6), "factor": round(float(f), 6)}
                for n, f in zip(self.numbers, factors)}
