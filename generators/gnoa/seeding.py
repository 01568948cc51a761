"""Turning a GN-OA pool into a basin-hopping start: re-rank, de-duplicate, split.

The ML model's predicted energies are a rough guide; before the search starts the
pool is re-ranked with the cheap proxy potential (single point by default, or a
short proxy relaxation with ``rerank="relax"``), near-duplicates are dropped, the
``n`` best become the initial population and the next ``pool_size`` the pool that
moves 13/14 draw from.  ``random_share`` hands a share of the population's slots
to random symmetric structures (PyXtal, as an AIRSS-style search draws them),
interleaved with the ranked ones: see :func:`seed_population`.
"""

import warnings

import numpy as np

from ase_fuse.errors import InputError
from ase_fuse.generators.base import POOL_OPTIONS, whole

RERANK_MODES = ("single", "relax", "none")
SEEDING_KEYS = POOL_OPTIONS  # the pool hook's options, any generator with the hook
DISTINCT_MODES = ("structure", "fingerprint")
#: the order the population is relaxed in: best re-rank energy first, or one
#: structure per space group first (then the rest, each part by energy): the proxy
#: ranks high-coordination cells first, and ZnS's zincblende came 14th by energy, 6th
#: this way (``benchmarks/start_order.py``)
ORDER_MODES = ("energy", "spacegroup")
#: ``random_share="auto"``: :data:`AUTO_SHARE` of the population random when the
#: search's cells hold at most :data:`AUTO_SHARE_MAX_ATOMS` atoms, none above.  In the
#: lever-10 races (``benchmarks/README.md``) random starts brought the first hit sooner
#: on 5 of 6 references searched with at most 12 atoms (Si 11x, ZnS 2x, rutile 1.9x)
#: and later on all 3 with 14-20 (La2CuO4 3.3x, quartz 2.1x, corundum 3.2x), where the
#: ranked starts it displaced or delayed were the ones that hit.
AUTO_SHARE, AUTO_SHARE_MAX_ATOMS = 0.5, 12


def resolved_share(random_share, max_atoms):
    """The share of random starts ``random_share`` means for cells of ``max_atoms``."""
    if random_share == "auto":
        return AUTO_SHARE if max_atoms <= AUTO_SHARE_MAX_ATOMS else 0.0
    return float(random_share)


def split_seeding_options(options):
    """``(generator_options, seeding_options)``: the seeding keys taken out."""
    options = dict(options or {})
    seeding = {k: options.pop(k) for k in SEEDING_KEYS if k in options}
    mode = seeding.get("rerank", "single")
    if mode in (None, False):
        seeding["rerank"] = "none"
    elif mode not in RERANK_MODES:
        raise InputError(f"must be one of {', '.join(RERANK_MODES)}, got {mode!r}",
                         field="rerank")
    distinct = seeding.get("distinct", "structure")
    if distinct not in DISTINCT_MODES:
        raise InputError(f"must be one of {', '.join(DISTINCT_MODES)}, got {distinct!r}",
                         field="distinct")
    order = seeding.get("order", "energy")
    if order not in ORDER_MODES:
        raise InputError(f"must be one of {', '.join(ORDER_MODES)}, got {order!r}",
                         field="order")
    share = seeding.get("random_share", 0.0)
    if share != "auto" and (isinstance(share, bool)
                            or not isinstance(share, (int, float, np.integer, np.floating))
                            or not 0.0 <= float(share) <= 1.0):
        raise InputError(f"must be a number from 0 to 1 or 'auto', got {share!r}",
                         field="random_share")
    steps = seeding.get("rerank_steps", 50)
    size = seeding.get("pool_size", 500)
    for name, value in (("rerank_steps", steps), ("pool_size", size)):
        whole(value, name, 0)             # nan, inf, "" and -1 are one error line each
    return options, seeding


def _fingerprint(atoms, energy):
    """Cheap duplicate key: size, space group, energy (0.1 meV) and volume per atom."""
    return (len(atoms), int(atoms.info.get("spacegroup", 0)),
            round(float(energy), 4), round(atoms.get_volume() / len(atoms), 2))


def rank_for_search(structures, composition, n, rerank="single", rerank_steps=50,
                    pool_size=500, rerank_calculator=None, distinct="structure",
                    order="energy"):
    """``(population, pool)`` from ML structures, best first, duplicates dropped.

    ``rerank``: ``"single"`` proxy single point, ``"relax"`` a proxy relaxation of
    ``rerank_steps`` FIRE steps of the best ``4 n`` by single point (their relaxed
    geometries are handed on), ``"none"`` keeps the predicted order.  Every
    structure keeps ``info["origin"]`` and gets ``info["rerank_energy"]``.
    ``distinct``: ``"structure"`` (default) keeps only structures pymatgen's
    ``StructureMatcher`` tells apart in the population (an optimiser's best points
    are often one structure many times over: GN-OA's top 10 relaxed to a single
    structure for 6 of 16 compositions in ``benchmarks/generation_quality.py``); the
    near-copies move to the pool.  ``"fingerprint"``: size, space group, energy and
    volume only.  ``order``: ``"energy"`` (default) relaxes the population best
    first; ``"spacegroup"`` puts the first structure of each space group
    (``info["spacegroup"]``) ahead of the others, see :func:`one_per_spacegroup_first`.
    """
    structures = [a.copy() for a in structures]
    if not structures:
        return [], []
    if rerank == "none":
        energies = np.array([a.info.get("predicted_energy", 0.0) for a in structures],
                            dtype=float)
    else:
        calc = rerank_calculator
        if calc is None:
            from ase_fuse.calculators import ProxyPotential
            calc = ProxyPotential.for_composition(composition)
        from .models import CalculatorModel
        energies = np.asarray(CalculatorModel(calc).predict(structures), dtype=float)
    energies = np.where(np.isfinite(energies), energies, np.inf)
    ranking = list(np.argsort(energies, kind="stable"))
    if rerank == "relax":
        ranking, energies, structures = _relax_best(structures, energies, ranking, 4 * n,
                                                    calc, rerank_steps)
    ranked, seen = [], set()
    for k in ranking:
        if not np.isfinite(energies[k]):
            continue
        atoms = structures[k]
        key = _fingerprint(atoms, energies[k])
        if key in seen:
            continue
        seen.add(key)
        atoms.info["rerank_energy"] = float(energies[k])
        atoms.calc = None
        ranked.append(atoms)
    if distinct == "structure":
        ranked = distinct_first(ranked, n)
    population = ranked[:n]
    if order == "spacegroup":
        population = one_per_spacegroup_first(population)
    return population, ranked[n:n + int(pool_size)]


def seed_population(pool, composition, n, max_atoms, rng, random_share=0.0,
                    **seeding):
    """``(population, extra_pool)`` for a search from a generator's ranked ``pool``:
    :func:`rank_for_search` with ``seeding``, then ``round(random_share * n)`` of the
    population's slots (``"auto"``: :func:`resolved_share`) given to random symmetric
    structures (:class:`~ase_fuse.generators.symmetric.SymmetricGenerator`, from ``rng``),
    interleaved evenly with the ranked ones (:func:`interleave`, a ranked one first).
    The ranked structures they displace go to the front of the extra pool.  The
    proxy's ranking favours dense, high-coordination cells; a random start is what
    hit Si, ZnS and Cu2O within seconds in the race (``benchmarks/race.py``).  When
    PyXtal cannot make them (missing, or no valid structure) the ranked population
    stays whole, with a warning."""
    population, extra = rank_for_search(pool, composition, n, **seeding)
    k = min(int(round(resolved_share(random_share, max_atoms) * n)), len(population))
    if k == 0:
        return population, extra
    from ase_fuse.errors import GenerationError
    from ase_fuse.generators.symmetric import SymmetricGenerator
    try:
        randoms = SymmetricGenerator(composition, max_atoms=max_atoms,
                                     rng=rng).generate_many(k)
    except (InputError, GenerationError) as err:
        warnings.warn(f"random_share: no random structures ({err}); the population is "
                      "all ranked ones", RuntimeWarning, stacklevel=2)
        return population, extra
    kept, displaced = population[:len(population) - k], population[len(population) - k:]
    size = int(seeding.get("pool_size", 500))
    return interleave(kept, randoms), (displaced + extra)[:max(size, len(displaced))]


def interleave(first, second):
    """``first`` and ``second`` merged evenly, each in its order, ``first`` leading:
    slot ``i`` takes from ``second`` when ``floor((i + 1) k / t) > floor(i k / t)``,
    ``k = len(second)`` of ``t`` in all (for equal lengths they alternate)."""
    total, k = len(first) + len(second), len(second)
    a, b = iter(first), iter(second)
    return [next(b) if (i + 1) * k // total > i * k // total else next(a)
            for i in range(total)]


def one_per_spacegroup_first(structures):
    """``structures`` reordered: the first of each space group (``info["spacegroup"]``,
    0 when unknown) in their order, then the others in theirs."""
    seen, first, rest = set(), [], []
    for atoms in structures:
        group = int(atoms.info.get("spacegroup", 0) or 0)
        (rest if group in seen else first).append(atoms)
        seen.add(group)
    return first + rest


#: cosine distances of :func:`ase_fuse.identity.distance_fingerprint` that settle a
#: pair without pymatgen: at most ``SAME`` is one structure (GN-OA's pool repeats its
#: best points exactly), above ``APART`` two (a volume-free fingerprint this far apart
#: was a StructureMatcher match for 35 of 1770 pairs of Si's pool); in between the
#: matcher decides.  A non-match costs the matcher 2-9 ms, and scanning Si's pool of
#: near-copies took 26 s of a 31 s start before this filter.  Past ``fits`` matcher
#: calls (4 n by default) the fingerprints alone decide, at ``FINGERPRINT_SAME``: a
#: count, not a clock, so the same seed gives the same population on any machine.
FINGERPRINT_SAME, FINGERPRINT_APART = 0.02, 0.3


def distinct_first(ranked, n, scan=None, fits=None):
    """``ranked`` reordered: up to ``n`` mutually distinct structures, best first,
    then everything else in its order.  A pair is told apart by its distance
    fingerprints when they settle it (:data:`FINGERPRINT_SAME`,
    :data:`FINGERPRINT_APART`), else by pymatgen's ``StructureMatcher`` for the
    first ``fits`` (4 n) such pairs.  At most ``scan`` (20 n) candidates are
    compared; short of ``n`` distinct ones the population is filled from the rest
    by rank."""
    from pymatgen.io.ase import AseAtomsAdaptor

    from ase_fuse.identity import distance_fingerprint, structure_matcher
    matcher = structure_matcher()
    scan = 20 * n if scan is None else scan
    budget = [4 * n if fits is None else int(fits)]
    chosen, kept, rest = [], [], []

    def same(structure, fingerprint, other):
        other_structure, other_fingerprint = other
        if fingerprint.shape == other_fingerprint.shape and fingerprint.size:
            distance = 1.0 - float(fingerprint @ other_fingerprint)
            if distance <= FINGERPRINT_SAME:
                return True
            if distance > FINGERPRINT_APART or budget[0] <= 0:
                return False
        budget[0] -= 1
        try:
            return matcher.fit(structure, other_structure)
        except (ValueError, RuntimeError):  # pymatgen gives up on odd cells
            return False

    for k, atoms in enumerate(ranked):
        if len(chosen) >= n or k >= scan:
            rest.extend(range(k, len(ranked)))
            break
        structure = AseAtomsAdaptor.get_structure(atoms)
        fingerprint = distance_fingerprint(atoms)
        if any(same(structure, fingerprint, other) for other in kept):
            rest.append(k)
            continue
        chosen.append(k)
        kept.append((structure, fingerprint))
    return [ranked[k] for k in chosen] + [ranked[k] for k in rest]


def _relax_best(structures, energies, order, count, calc, steps):
    from ase_fuse.calculators import Tier, TieredRelaxer
    relaxer = TieredRelaxer([Tier(calc, fmax=0.1, steps=max(int(steps), 1),
                                  name="rerank")])
    energies = energies.copy()
    head = order[:count]
    for k in head:
        if not np.isfinite(energies[k]):
            continue
        result = relaxer.relax(structures[k])
        if result.failed:
            energies[k] = np.inf
            continue
        relaxed = result.atoms
        relaxed.info = dict(structures[k].info)
        structures[k] = relaxed
        energies[k] = result.energy_per_atom
    head = sorted(head, key=lambda k: energies[k])
    return head + order[count:], energies, structures
