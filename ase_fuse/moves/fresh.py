"""FUSE moves 13-14: replace the structure by a new random one.

Half the time (drawn with ``rng``) a structure is popped from ``context.pool`` when
the pool holds one of a suitable size; otherwise ``context.generator`` makes one
with ``generate(formula_units=z)``.  Move 13 keeps ``z`` at most the current number
of formula units; move 14 allows any size up to ``context.max_atoms``.
"""

import numpy as np

from ase_fuse.errors import GenerationError, InputError

from .base import Move, fresh_atoms


class _NewStructure(Move):

    def _allowed_units(self, atoms, context):
        raise NotImplementedError

    def _reason(self, atoms, context):
        if context.generator is None and not self._pool_indices(atoms, context):
            return "no generator and no suitable structure in the pool"
        return None

    def _pool_indices(self, atoms, context):
        allowed = set(self._allowed_units(atoms, context))
        return [k for k, item in enumerate(context.pool)
                if context.composition.formula_units_of(item) in allowed]

    def _apply(self, atoms, context, rng):
        suitable = self._pool_indices(atoms, context)
        use_pool = bool(suitable) and (context.generator is None or rng.random() < 0.5)
        if use_pool:
            k = suitable[int(rng.integers(len(suitable)))]
            made = context.pool.pop(k)
            source = "pool"
        else:
            allowed = self._allowed_units(atoms, context)
            units = int(allowed[int(rng.integers(len(allowed)))])
            try:
                made = context.generator.generate(formula_units=units)
            except (GenerationError, InputError):
                return None
            source = "generator"
        if made is None:
            return None
        candidate = fresh_atoms(made.get_chemical_symbols(), made.cell.array, made.pbc,
                                positions=made.positions)
        units = context.composition.formula_units_of(candidate)
        details = {"source": source, "formula_units": units}
        if "origin" in made.info:
            details["made_by"] = made.info["origin"]
        return candidate, details


class NewSmallerStructure(_NewStructure):
    """Move 13: a new random structure with at most the current number of formula units."""
    number = 13
    name = "new_structure_up_to_current_size"

    def _allowed_units(self, atoms, context):
        current = context.composition.formula_units_of(atoms) or 1
        top = context.composition.formula_units(context.max_atoms)[-1]
        return np.arange(1, min(current, top) + 1)


class NewAnySizeStructure(_NewStructure):
    """Move 14: a new random structure of any size up to ``max_atoms``."""
    number = 14
    name = "new_structure_any_size"

    def _allowed_units(self, atoms, context):
        return np.array(context.composition.formula_units(context.max_atoms))
