"""A stack whose last tier relaxes in batches: cheap ASE tiers first, then one batch.

``proxy+chgnet`` spends nearly all its time in CHGNet; the proxy pre-relaxation is
cheap and runs one structure at a time.  :class:`BatchedStack` keeps that split: each
structure goes through the ``pre`` tiers (a :class:`TieredRelaxer`, or none), and the
survivors are then relaxed together by a :class:`BatchedRelaxer`.  Results look like
the plain stack's: one :class:`TierRecord` per tier, the first failing tier named.

``stacks.build_stack(name, batch_size=N)`` builds one for a stack ending in CHGNet
(the CLI's ``--batch-size``).
"""

from .batched import BatchedRelaxer
from .tiers import RelaxResult, TieredRelaxer, volume_jump, volume_note


class BatchedStack:
    """``pre`` tiers one at a time, then ``batched`` for all survivors at once.

    pre: a :class:`TieredRelaxer` (or None: straight to the batch).
    batched: a :class:`BatchedRelaxer` (its ``batch_size`` sets how many are in flight).
    """

    def __init__(self, pre, batched):
        from ase_fuse.errors import InputError
        if pre is not None and not isinstance(pre, TieredRelaxer):
            raise InputError(f"needs a TieredRelaxer or None, got {pre!r}", field="pre")
        if not isinstance(batched, BatchedRelaxer):
            raise InputError(f"needs a BatchedRelaxer, got {batched!r}", field="batched")
        self.pre = pre
        self.batched = batched

    @property
    def batch_size(self):
        return self.batched.batch_size

    def __repr__(self):
        names = [t.name for t in self.pre.tiers] if self.pre is not None else []
        return (f"BatchedStack({' -> '.join(names + [self.batched.name])}, "
                f"batch_size={self.batch_size})")

    def relax(self, atoms):
        """Relax one structure (a batch of one)."""
        return self.relax_many([atoms])[0]

    def relax_many(self, structures, on_result=None, should_stop=None):
        """Relax every structure; one :class:`RelaxResult` each, in input order.

        on_result / should_stop: as :meth:`BatchedRelaxer.relax_many` (a structure
        that fails its pre-relaxation is reported at once).
        """
        structures = list(structures)
        if self.pre is None:
            return self.batched.relax_many(structures, on_result=on_result,
                                           should_stop=should_stop)
        results = [None] * len(structures)
        for k, atoms in enumerate(structures):
            if should_stop is not None and should_stop():
                return results
            results[k] = self.pre.relax(atoms)
            if not results[k].ok and on_result is not None:
                on_result(k, results[k])
        first = list(results)
        going = [k for k, result in enumerate(first) if result.ok]
        last = self.pre.tiers[-1]
        for k in going:   # a proxy result beyond its volume bound is not handed on
            if volume_jump(last, structures[k], first[k].atoms):
                first[k].tiers[-1].note = volume_note(last, structures[k], first[k].atoms)
                first[k].atoms = structures[k]

        def merged(index, late):
            k = going[index]
            early = first[k]
            results[k] = RelaxResult(atoms=late.atoms, energy=late.energy,
                                     energy_per_atom=late.energy_per_atom,
                                     converged=early.converged and late.converged,
                                     failed=late.failed, tiers=early.tiers + late.tiers)
            if on_result is not None:
                on_result(k, results[k])

        for k in going:
            results[k] = None  # done only once the batched tier has it
        self.batched.relax_many([first[k].atoms for k in going], on_result=merged,
                                should_stop=should_stop)
        return results
