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
