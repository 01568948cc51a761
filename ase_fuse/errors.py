"""Exceptions that carry one clear line for the user.

Every public entry point (Python API, CLI, TOML input) raises :class:`InputError`
(or a subclass) for bad input.  The CLI prints ``str(error)`` on one line and exits
with status 2; nothing else is shown.
"""


class InputError(ValueError):
    """Bad user input.  ``field`` names the option or argument at fault."""

    def __init__(self, message, field=None):
        self.field = field
        text = f"{field}: {message}" if field else str(message)
        super().__init__(text)


class CompositionError(InputError):
    """A formula that cannot be parsed or used."""


class GeneratorUnavailable(InputError):
    """A generator that cannot run on this machine (a missing optional package).

    Raised after the generator's options were checked, so a search that falls back
    to another generator has still refused bad options."""


class GenerationError(RuntimeError):
    """A generator could not make a valid structure within its bounded tries."""
