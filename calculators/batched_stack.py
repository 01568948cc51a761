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
from .tiers import RelaxResult, TieredRelaxer


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

    def relax_many(self, structures):
        """Relax every structure; one :class:`RelaxResult` each, in input order."""
        structures = list(structures)
        if self.pre is None:
            return self.batched.relax_many(structures)
        first = [self.pre.relax(atoms) for atoms in structures]
        going = [k for k, result in enumerate(first) if result.ok]
        second = self.batched.relax_many([first[k].atoms for k in going])
        results = list(first)
        for k, late in zip(going, second):
            early = first[k]
            results[k] = RelaxResult(atoms=late.atoms, energy=late.energy,
                                     energy_per_atom=late.energy_per_atom,
                                     converged=early.converged and late.converged,
                                     failed=late.failed, tiers=early.tiers + late.tiers)
        return results
