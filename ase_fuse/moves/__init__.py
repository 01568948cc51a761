"""FUSE's 14 basin-hopping moves.

``ALL_MOVES[number]`` is the move object; :class:`MoveSelector` draws moves by weight
and returns the first valid candidate.  Every candidate records its provenance in
``atoms.info["origin"]`` (move number, name and move-specific details).
"""

from .base import Move, MoveContext
from .blocks import Reshape, SiteMutation, SwapModules, SwapSubmodules
from .catalogue import ALL_MOVES
from .fresh import NewAnySizeStructure, NewSmallerStructure
from .selector import MoveSelector
from .supercells import DoubleCell, TripleCell
from .swaps import (CyclicSwap, CyclicSwapVacancy, MoveToVacancy, PermuteAll,
                    PermuteAllVacancy, SwapTwoAtoms)

__all__ = ["ALL_MOVES", "Move", "MoveContext", "MoveSelector", "SwapTwoAtoms",
           "MoveToVacancy", "CyclicSwap", "CyclicSwapVacancy", "PermuteAll",
           "PermuteAllVacancy", "SwapSubmodules", "SwapModules", "Reshape", "SiteMutation",
           "DoubleCell", "TripleCell", "NewSmallerStructure", "NewAnySizeStructure"]
