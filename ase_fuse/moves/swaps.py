"""FUSE moves 1-6: swapping atoms, and moving atoms into vacant space.

Atoms keep their order and species; a swap exchanges positions, so the species
found at a site changes while the candidate's symbol list stays that of the input.
"""

import numpy as np

from .base import Move, fresh_atoms
from .vacancies import pick_vacant, vacant_points

_MAX_DRAWS = 20


def _rebuilt(atoms, positions):
    return fresh_atoms(atoms.get_chemical_symbols(), atoms.cell.array, atoms.pbc,
                       positions=positions)


def _cycle_members(symbols, size, rng):
    """``size`` distinct atom indices in random order, at least two species among them."""
    n = len(symbols)
    first = int(rng.integers(n))
    others = np.flatnonzero(symbols != symbols[first])
    second = int(rng.choice(others))
    rest = np.setdiff1d(np.arange(n), [first, second])
    extra = rng.choice(rest, size=size - 2, replace=False)
    members = np.concatenate([[first, second], extra]).astype(int)
    return members[rng.permutation(size)]


def _cycled(positions, members):
    """Positions with ``members[k]`` moved to where ``members[k + 1]`` was (cyclically)."""
    new = positions.copy()
    new[members] = positions[np.roll(members, -1)]
    return new


def _to_vacancies(atoms, positions, chosen, context, rng):
    """Put the atoms ``chosen`` onto distinct vacant points of ``atoms``; None if too few."""
    points = pick_vacant(atoms, context.vacancy_distance, len(chosen), rng)
    if points is None:
        return None
    new = positions.copy()
    new[chosen] = points
    return new


class _NeedsTwoSpecies(Move):
    min_atoms = 2

    def never_applies(self, composition):
        if composition.is_element:
            return f"{composition.formula} is an element: nothing to swap"
        return None

    def _reason(self, atoms, context):
        reason = self.never_applies(context.composition)
        if reason is not None:
            return reason
        if len(atoms) < self.min_atoms:
            return f"needs at least {self.min_atoms} atoms, have {len(atoms)}"
        return None


class _NeedsVacancy(Move):
    def _vacancy_reason(self, atoms, context):
        if len(vacant_points(atoms, context.vacancy_distance)) == 0:
            return f"no point further than {context.vacancy_distance} A from every atom"
        return None


class SwapTwoAtoms(_NeedsTwoSpecies):
    """Move 1: exchange the positions of two atoms of different species."""
    number = 1
    name = "swap_two_atoms"

    def _apply(self, atoms, context, rng):
        symbols = np.array(atoms.get_chemical_symbols())
        first = int(rng.integers(len(atoms)))
        second = int(rng.choice(np.flatnonzero(symbols != symbols[first])))
        members = np.array([first, second])
        new = _cycled(atoms.positions, members)
        return _rebuilt(atoms, new), {"atoms": members,
                                      "species": symbols[members].tolist()}


class MoveToVacancy(_NeedsVacancy):
    """Move 2: move one atom to a point further than vacancy_distance from every atom."""
    number = 2
    name = "move_to_vacancy"

    def _reason(self, atoms, context):
        if len(atoms) == 0:
            return "no atoms"
        return self._vacancy_reason(atoms, context)

    def _apply(self, atoms, context, rng):
        atom = int(rng.integers(len(atoms)))
        new = _to_vacancies(atoms, atoms.positions, [atom], context, rng)
        if new is None:
            return None
        return _rebuilt(atoms, new), {"atom": atom, "from": atoms.positions[atom],
                                      "to": new[atom]}


class CyclicSwap(_NeedsTwoSpecies):
    """Move 3: cyclically permute the positions of i atoms (2 < i < n), two species or more."""
    number = 3
    name = "cyclic_swap"
    min_atoms = 4

    def _members(self, atoms, rng):
        symbols = np.array(atoms.get_chemical_symbols())
        size = int(rng.integers(3, len(atoms)))
        return _cycle_members(symbols, size, rng)

    def _apply(self, atoms, context, rng):
        members = self._members(atoms, rng)
        return _rebuilt(atoms, _cycled(atoms.positions, members)), {"atoms": members}


class CyclicSwapVacancy(CyclicSwap, _NeedsVacancy):
    """Move 4: as move 3, but some of the i atoms go into vacant space instead."""
    number = 4
    name = "cyclic_swap_vacancy"

    def _reason(self, atoms, context):
        return super()._reason(atoms, context) or self._vacancy_reason(atoms, context)

    def _apply(self, atoms, context, rng):
        members = self._members(atoms, rng)
        count = int(rng.integers(1, len(members)))
        moved = rng.choice(members, size=count, replace=False)
        cycled = _cycled(atoms.positions, members)
        new = _to_vacancies(atoms, cycled, moved, context, rng)
        if new is None:
            return None
        return _rebuilt(atoms, new), {"atoms": members, "to_vacancy": np.sort(moved)}


class PermuteAll(_NeedsTwoSpecies):
    """Move 5: a random permutation of all positions (species over sites)."""
    number = 5
    name = "permute_all"

    def _permutation(self, atoms, rng):
        symbols = np.array(atoms.get_chemical_symbols())
        for _ in range(_MAX_DRAWS):
            perm = rng.permutation(len(atoms))
            if np.any(symbols[perm] != symbols):
                return perm
        return None

    def _apply(self, atoms, context, rng):
        perm = self._permutation(atoms, rng)
        if perm is None:
            return None
        return _rebuilt(atoms, atoms.positions[perm]), {"permutation": perm}


class PermuteAllVacancy(PermuteAll, _NeedsVacancy):
    """Move 6: as move 5, with some atoms put into vacant space."""
    number = 6
    name = "permute_all_vacancy"

    def _reason(self, atoms, context):
        return super()._reason(atoms, context) or self._vacancy_reason(atoms, context)

    def _apply(self, atoms, context, rng):
        perm = self._permutation(atoms, rng)
        if perm is None:
            return None
        count = int(rng.integers(1, max(1, len(atoms) // 2) + 1))
        moved = rng.choice(len(atoms), size=count, replace=False)
        new = _to_vacancies(atoms, atoms.positions[perm], moved, context, rng)
        if new is None:
            return None
        return _rebuilt(atoms, new), {"permutation": perm, "to_vacancy": np.sort(moved)}
