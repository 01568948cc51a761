"""The search options as command-line flags, shared by ``ase-fuse run`` and
``ase-fuse field`` (its own module: neither command imports the other)."""


def add_option_flags(p, skip=()):
    """One flag per search option of :data:`config.OPTIONS` (``--no-X`` for a
    switch); ``skip``: option names left out."""
    from .config import OPTIONS
    for option in OPTIONS:
        if option.name in skip:
            continue
        flag = "--" + option.name.replace("_", "-")
        if option.type is bool:
            group = p.add_mutually_exclusive_group()
            group.add_argument(flag, dest=option.name, action="store_true",
                               default=None, help=option.help)
            group.add_argument("--no-" + option.name.replace("_", "-"), dest=option.name,
                               action="store_false", help="do not " + option.help)
        elif option.type == "list":
            p.add_argument(flag, dest=option.name, nargs="+", default=None,
                           help=option.help)
        else:
            p.add_argument(flag, dest=option.name, default=None,
                           help=f"{option.help} (default {option.default})")
