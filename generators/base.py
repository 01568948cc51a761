"""The generator protocol: what the search (and ``ase-fuse generate``) needs of a
structure generator, built-in or a third-party plugin.

A generator is a class taking ``(composition, max_atoms=..., rng=..., **options)``
with

- ``generate(formula_units=None)``: one structure (``ase.Atoms``);
- ``generate_many(n, formula_units=None)``: a list of ``n`` (the base class loops
  over ``generate``);
- optionally ``ranked_pool()``: every structure it made, best first (GN-OA's
  optimisation pool, or a diffusion model's samples ranked by its own score).  When a
  generator has this hook the search re-ranks the pool with the proxy, takes the best
  as its initial population and hands the rest to moves 13/14 (``pool_options``
  below set that re-ranking), whichever plugin it comes from;
- optionally a class attribute ``search_options`` (a dict): the options the search
  gives it unless the user's ``generator_options`` say otherwise, for a generator
  whose standalone defaults are too slow for a start (GN-OA's);
- optionally a classmethod ``unavailable()``: why it cannot run here (a missing
  package) or None.  Such a generator's constructor checks its options first and then
  raises :class:`ase_fuse.errors.GeneratorUnavailable`; the search warns and starts
  from FUSE structures, so the default generator never makes a run fail for want of
  an optional package, while bad options are still refused.

Subclassing :class:`StructureGenerator` is the plain way; a class that only has the
methods (duck typing) passes :func:`protocol_problem` too.
"""

import abc

#: the options of the pool hook's re-ranking, given with the generator's own options
#: (``--generator-options rerank=relax,pool_size=200``) and taken out before the
#: constructor sees them (``ase_fuse.generators.gnoa.seeding``)
POOL_OPTIONS = ("rerank", "rerank_steps", "pool_size", "rerank_calculator", "distinct",
                "order", "random_share")


class StructureGenerator(abc.ABC):
    """Base class of structure generators (see the module docstring)."""

    #: the registered name, for messages
    name = None

    @abc.abstractmethod
    def generate(self, formula_units=None):
        """One valid structure of the composition."""

    def generate_many(self, n, formula_units=None):
        """A list of ``n`` valid structures."""
        return [self.generate(formula_units) for _ in range(int(n))]

    def ranked_pool(self):
        """Every structure made, best first, or None for a generator without a pool
        (the default): override it to feed the search's pool."""
        return None

    @classmethod
    def __subclasshook__(cls, other):
        if cls is StructureGenerator:
            return all(callable(getattr(other, m, None)) for m in ("generate",
                                                                   "generate_many"))
        return NotImplemented


def has_pool(cls):
    """Whether generator class ``cls`` overrides the ``ranked_pool`` hook."""
    hook = getattr(cls, "ranked_pool", None)
    return callable(hook) and hook is not StructureGenerator.ranked_pool


def protocol_problem(obj):
    """None when ``obj`` is a usable generator class, else what is missing (one line)."""
    if not isinstance(obj, type):
        return f"is a {type(obj).__name__}, not a generator class"
    missing = [m for m in ("generate", "generate_many") if not callable(getattr(obj, m, None))]
    if missing:
        return f"has no {' or '.join(missing)} method (see ase_fuse.generators.base)"
    if getattr(obj, "__abstractmethods__", None):
        return f"leaves {', '.join(sorted(obj.__abstractmethods__))} abstract"
    hook = getattr(obj, "ranked_pool", None)
    if hook is not None and not callable(hook):
        return "has a ranked_pool that is not a method"
    return None


# -- the argument checks every generator shares ------------------------------------------
def whole(value, field, minimum=1, maximum=None):
    """``value`` as an int, or one InputError line naming ``field``."""
    import numpy as np

    from ase_fuse.errors import InputError
    ok = isinstance(value, (int, float, np.integer, np.floating)) \
        and not isinstance(value, bool) and np.isfinite(value) \
        and float(value).is_integer() and minimum <= value \
        and (maximum is None or value <= maximum)
    if not ok:
        span = f">= {minimum}" if maximum is None else f"in {minimum}-{maximum}"
        raise InputError(f"must be a whole number {span}, got {value!r}", field=field)
    return int(value)


def make_rng(rng, seed, default_seed=None):
    """The generator's random stream: ``rng`` (a numpy Generator) or one made from
    ``seed`` (or ``default_seed``); giving both is an error."""
    import numpy as np

    from ase_fuse.errors import InputError
    if rng is not None and seed is not None:
        raise InputError("give rng or seed, not both", field="seed")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise InputError(f"must be a numpy.random.Generator, got {type(rng).__name__}",
                         field="rng")
    if rng is not None:
        return rng
    seed = default_seed if seed is None else whole(seed, "seed", 0)
    return np.random.default_rng(seed)


def formula_unit_list(value, composition, max_atoms, field="formula_units"):
    """A sorted list of valid formula-unit counts from an int or an iterable of them
    (each whole, at least 1, and within ``max_atoms``)."""
    import numpy as np

    from ase_fuse.errors import InputError
    values = [value] if np.isscalar(value) else list(value)
    if not values:
        raise InputError("give at least one number of formula units", field=field)
    out = set()
    for z in values:
        z = whole(z, field)
        n = z * composition.atoms_per_formula_unit
        if n > max_atoms:
            raise InputError(f"{z} formula units of {composition.formula} is {n} atoms, "
                             f"more than max_atoms={max_atoms}", field=field)
        out.add(z)
    return sorted(out)
