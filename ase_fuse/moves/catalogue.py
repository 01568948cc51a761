"""FUSE's 14 moves, one object each: ``ALL_MOVES[number]``."""

from .blocks import Reshape, SiteMutation, SwapModules, SwapSubmodules
from .fresh import NewAnySizeStructure, NewSmallerStructure
from .supercells import DoubleCell, TripleCell
from .swaps import (CyclicSwap, CyclicSwapVacancy, MoveToVacancy, PermuteAll,
                    PermuteAllVacancy, SwapTwoAtoms)

ALL_MOVES = {move.number: move for move in (
    SwapTwoAtoms(), MoveToVacancy(), CyclicSwap(), CyclicSwapVacancy(), PermuteAll(),
    PermuteAllVacancy(), SwapSubmodules(), SwapModules(), Reshape(), SiteMutation(),
    DoubleCell(), TripleCell(), NewSmallerStructure(), NewAnySizeStructure())}

#: the moves that replace the structure by a new one (the search falls back to them
#: when no other move gives a valid candidate from the current structure)
NEW_STRUCTURE_MOVES = (NewSmallerStructure.number, NewAnySizeStructure.number)
