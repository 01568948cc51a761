"""Named relaxation stacks: ready-made :class:`TieredRelaxer` chains.

=====================  =======================================================
``proxy``              proxy pair potential only (needs a composition)
``chgnet``             CHGNet (BFGS to max force 0.05 eV/A or 2000 steps)
``proxy+chgnet``       proxy pre-relaxation, then CHGNet (the default)
``proxy+chgnet+gpaw``  ... then a GPAW PBE relaxation
``gulp+vasp``          staged GULP, then staged VASP (the paper's DFT route)
``proxy+vasp``         proxy pre-relaxation, then staged VASP
``tblite``             GFN2-xTB tight binding (tblite; optional package)
``proxy+tblite``       proxy pre-relaxation, then GFN2-xTB
``sevennet``           SevenNet-0 (sevenn; BFGS to 0.05 eV/A or 2000 steps)
``proxy+sevennet``     proxy pre-relaxation, then SevenNet-0
``chgnet+sevennet``    CHGNet screening (0.2 eV/A, 300 steps), then SevenNet-0
``emt``                ASE's EMT (metals; for tests)
=====================  =======================================================

``build_stack(name, composition, **overrides)``: ``guards``, ``time_limit`` and
``callback`` go to the relaxer; ``batch_size=N`` (N > 1) relaxes the final CHGNet
tier of ``chgnet`` or ``proxy+chgnet``, or the final SevenNet tier of a SevenNet
stack, in batches of N
(:class:`~ase_fuse.calculators.batched_stack.BatchedStack`: torch-sim, the
``[batched]`` extra; that stage's :data:`BATCHED_KEYS` apply); ``proxy``, ``chgnet``, ``gpaw``, ``vasp``, ``gulp``,
``tblite``, ``sevennet`` and ``emt`` take a dict of options for that stage (e.g.
``chgnet={"steps": 500}``; ``sevennet={"model": "SevenNet-l3i5"}`` picks the checkpoint).
Any calculator object can be used with :func:`stack_from_calculator`.
"""

from ase_fuse.config import DEFAULTS
from ase_fuse.errors import InputError

from .tiers import Tier, TieredRelaxer

DEFAULT = DEFAULTS["calculator"]  # the option record's
RELAXER_KEYS = ("guards", "time_limit", "callback")
BATCHABLE = ("chgnet", "proxy+chgnet", "sevennet", "proxy+sevennet", "chgnet+sevennet")
BATCHED_CHGNET_KEYS = ("fmax", "steps", "device")
#: what the batched final stage takes, per stage
BATCHED_KEYS = {"chgnet": BATCHED_CHGNET_KEYS,
                "sevennet": BATCHED_CHGNET_KEYS + ("model", "modal")}
STAGE_KEYS = ("proxy", "chgnet", "gpaw", "vasp", "gulp", "tblite", "sevennet", "emt")
#: options a stage takes beyond the Tier's (the SevenNet checkpoint and its fidelity)
STAGE_EXTRA_KEYS = {"sevennet": ("model", "modal")}


#: what a stage's options may set (the Tier's own keywords; VASP, GULP and GPAW take
#: their own, checked when the stage is built)
TIER_OPTION_KEYS = ("fmax", "steps", "optimizer", "relax_cell", "cell_filter",
                    "fail_force_factor", "max_volume_change", "single_point")


def stage_options(options):
    """``{"chgnet.fmax": 0.1}`` or ``{"chgnet": {"fmax": 0.1}}`` (TOML) ->
    ``{"chgnet": {"fmax": 0.1}}``, checked: a known stage and, for the stages built on
    one :class:`Tier`, a keyword the tier takes.  Raises InputError naming the problem."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise InputError(f"expected STAGE.KEY=VALUE pairs, got {options!r}",
                         field="stack_options")
    out = {}
    for key, value in options.items():
        if isinstance(value, dict):
            pairs = [(str(key), str(k), v) for k, v in value.items()]
        else:
            stage, dot, name = str(key).partition(".")
            if not dot or not stage or not name:
                raise InputError(f"{key!r}: expected STAGE.KEY (e.g. chgnet.fmax)",
                                 field="stack_options")
            pairs = [(stage, name, value)]
        for stage, name, value in pairs:
            if stage not in STAGE_KEYS:
                raise InputError(f"unknown stage {stage!r}; known: {', '.join(STAGE_KEYS)}",
                                 field="stack_options")
            known = TIER_OPTION_KEYS + STAGE_EXTRA_KEYS.get(stage, ())
            if stage not in ("vasp", "gulp", "gpaw") and name not in known:
                raise InputError(f"{stage}.{name}: unknown option; known: "
                                 f"{', '.join(known)}", field="stack_options")
            out.setdefault(stage, {})[name] = value
    return out


def check_stages(name, options):
    """Refuse options (``{"chgnet": {...}}``) for a stage the stack ``name`` lacks; a
    user's ``--stack-options`` must say something about the stack it runs."""
    if name not in STACKS:
        raise InputError(f"unknown stack {name!r}; known: {', '.join(STACKS)}",
                         field="stack")
    used = {key for part in STACKS[name] for key in STAGE_OF.get(part, ())}
    for key, value in (options or {}).items():
        if value and key not in used:
            raise InputError(f"stack {name!r} has no {key} stage (its stages: "
                             f"{', '.join(sorted(used))})", field="stack_options")


def _composition(composition, stack):
    from ase_fuse.composition import Composition
    if composition is None:
        raise InputError(f"stack {stack!r} needs a composition", field="composition")
    return composition if isinstance(composition, Composition) else Composition(composition)


PROXY_VOLUME_BOUND = 0.25  # benchmarks/proxy_tier.py: see benchmarks/README.md


def proxy_tier(composition, fmax=0.1, steps=1000, optimizer="FIRE", name="proxy",
               potential=None, max_volume_change=PROXY_VOLUME_BOUND, **tier_kw):
    """Proxy pre-relaxation tier (``potential`` options go to ``for_composition``).

    max_volume_change: a proxy result whose volume moved by more than this fraction
    is not handed on (the next tier starts from the input): the radius-based pair
    potential pulls open structures such as diamond Si into dense ones, whose ML
    minimum is another basin (``benchmarks/proxy_tier.py``).  None: no bound.
    """
    from .guards import Guards
    from .proxy import ProxyPotential
    calc = ProxyPotential.for_composition(composition, **(potential or {}))
    # candidates may start with close contacts: huge repulsive forces are expected here
    tier_kw.setdefault("guards", Guards(max_force=None))
    # the proxy costs far less than FrechetCellFilter's matrix logarithm (17 vs 3 ms
    # per step for 24 atoms): the cheap filter makes proxy relaxations ~4x faster
    tier_kw.setdefault("cell_filter", "unit")
    return Tier(calc, fmax=fmax, steps=steps, optimizer=optimizer, name=name,
                max_volume_change=max_volume_change, **tier_kw)


def _proxy(composition, stack, opts):
    return [proxy_tier(_composition(composition, stack), **opts.get("proxy", {}))]


def _chgnet(composition, stack, opts):
    from .chgnet import chgnet_tier
    return [chgnet_tier(**opts.get("chgnet", {}))]


def _gpaw(composition, stack, opts):
    from .gpaw import gpaw_tier
    return [gpaw_tier(**opts.get("gpaw", {}))]


def _vasp(composition, stack, opts):
    from .vasp import vasp_tiers
    return vasp_tiers(**opts.get("vasp", {}))


def _gulp(composition, stack, opts):
    from .gulp import gulp_tiers
    return gulp_tiers(_composition(composition, stack).elements, **opts.get("gulp", {}))


def _tblite(composition, stack, opts):
    from .tblite import tblite_tier
    return [tblite_tier(**opts.get("tblite", {}))]


#: the CHGNet screening stage before SevenNet: the loose pre-relaxation of the race
#: protocol (``chgnet-pre`` in benchmarks/common.py); SevenNet tightens to 0.05 eV/A
CHGNET_SCREEN = {"fmax": 0.2, "steps": 300, "name": "chgnet-screen"}


def _chgnet_screen(composition, stack, opts):
    from .chgnet import chgnet_tier
    return [chgnet_tier(**{**CHGNET_SCREEN, **opts.get("chgnet", {})})]


def _sevennet(composition, stack, opts):
    from .sevennet import sevennet_tier
    return [sevennet_tier(**opts.get("sevennet", {}))]


def _emt(composition, stack, opts):
    from ase.calculators.emt import EMT
    kw = dict(opts.get("emt", {}))
    kw.setdefault("name", "emt")
    return [Tier(EMT, **kw)]


STACKS = {
    "proxy": (_proxy,),
    "chgnet": (_chgnet,),
    "proxy+chgnet": (_proxy, _chgnet),
    "proxy+chgnet+gpaw": (_proxy, _chgnet, _gpaw),
    "gulp+vasp": (_gulp, _vasp),
    "proxy+vasp": (_proxy, _vasp),
    "tblite": (_tblite,),
    "proxy+tblite": (_proxy, _tblite),
    "sevennet": (_sevennet,),
    "proxy+sevennet": (_proxy, _sevennet),
    "chgnet+sevennet": (_chgnet_screen, _sevennet),
    "emt": (_emt,),
}


STAGE_OF = {_proxy: ("proxy",), _chgnet: ("chgnet",), _gpaw: ("gpaw",), _vasp: ("vasp",),
            _gulp: ("gulp",), _tblite: ("tblite",), _emt: ("emt",),
            _chgnet_screen: ("chgnet",), _sevennet: ("sevennet",)}


def available_stacks():
    """Names accepted by :func:`build_stack`."""
    return list(STACKS)


def build_stack(name=DEFAULT, composition=None, batch_size=0, **overrides):
    """The :class:`TieredRelaxer` called ``name`` (see the module doc); with
    ``batch_size`` > 1 a :class:`BatchedStack` whose final ML tier relaxes in batches."""
    if name not in STACKS:
        raise InputError(f"unknown stack {name!r}; known: {', '.join(STACKS)}",
                         field="stack")
    unknown = set(overrides) - set(RELAXER_KEYS) - set(STAGE_KEYS)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(sorted(unknown))}; known: "
                         f"{', '.join(RELAXER_KEYS + STAGE_KEYS)}", field="stack")
    for key in STAGE_KEYS:
        if key in overrides and not isinstance(overrides[key], dict):
            raise InputError(f"must be a dict of options, got {overrides[key]!r}",
                             field=key)
    batch_size = _batch_size(batch_size, name)
    relaxer_kw = {key: overrides[key] for key in RELAXER_KEYS if key in overrides}
    if batch_size > 1:
        return _batched_stack(name, composition, batch_size, overrides, relaxer_kw)
    tiers = []
    for part in STACKS[name]:
        try:
            tiers += part(composition, name, overrides)
        except TypeError as err:  # an option the stage's builder does not take
            stage = STAGE_OF.get(part, ("stage",))[0]
            raise InputError(f"{stage}: {err}", field="stack_options") from None
    return TieredRelaxer(tiers, **relaxer_kw)


def _batch_size(value, name):
    if isinstance(value, bool) or value is None or value != int(value) or value < 0:
        raise InputError(f"must be a whole number >= 0, got {value!r}", field="batch_size")
    value = int(value)
    if value > 1 and name not in BATCHABLE:
        raise InputError(f"stack {name!r} cannot batch; batching works for "
                         f"{', '.join(BATCHABLE)}", field="batch_size")
    return value


def _batched_stack(name, composition, batch_size, overrides, relaxer_kw):
    import importlib.util
    if importlib.util.find_spec("torch_sim") is None:
        raise InputError("batching needs torch-sim: pip install 'ase-fuse[batched]'",
                         field="batch_size")
    from .batched import BatchedRelaxer
    from .batched_stack import BatchedStack
    stage = STAGE_OF[STACKS[name][-1]][0]          # the final ML stage batches
    options = dict(overrides.get(stage, {}))
    unknown = set(options) - set(BATCHED_KEYS[stage])
    if unknown:
        raise InputError(f"batched {stage} takes {', '.join(BATCHED_KEYS[stage])}; not "
                         f"{', '.join(sorted(unknown))}", field=stage)
    model, label = stage, stage
    if stage == "sevennet":   # the checkpoint picks the backend and names the tier
        from .sevennet import sevennet_backend
        model = sevennet_backend(device=options.get("device", "cpu"),
                                 **{key: options.pop(key) for key in ("model", "modal")
                                    if key in options})
        label = model.__name__
    batched = BatchedRelaxer(model, batch_size=batch_size, name=label,
                             guards=relaxer_kw.get("guards"), **options)
    parts = STACKS[name][:-1]          # every stage before the batched one, one at a time
    pre = None
    if parts:
        tiers = [tier for part in parts for tier in part(composition, name, overrides)]
        pre = TieredRelaxer(tiers, **relaxer_kw)
    return BatchedStack(pre, batched)


def stack_from_calculator(calc, guards=None, time_limit=None, callback=None, **tier_kw):
    """A one-tier relaxer around any ASE calculator (or factory); ``tier_kw`` go to Tier."""
    return TieredRelaxer([Tier(calc, **tier_kw)], guards=guards, time_limit=time_limit,
                         callback=callback)
