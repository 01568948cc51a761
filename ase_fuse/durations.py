"""Durations as people write them: ``90``, ``90s``, ``30m``, ``2h``, ``1h30m``, ``1.5h``."""

import math
import re
from numbers import Real

from .errors import InputError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)")


def parse_duration(value, field="time_limit"):
    """Seconds (float) from a number or a text like ``"1h30m"``; None stays None.

    Raises InputError naming ``field`` for anything else, zero or negative.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InputError(f"must be a duration (90s, 30m, 2h), got {value!r}", field=field)
    if isinstance(value, Real):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        if text in ("", "none", "off"):
            return None
        pos, seconds = 0, 0.0
        while pos < len(text):
            match = _PART.match(text, pos)
            if match is None:
                raise InputError(f"must be a duration such as 90s, 30m, 2h or 1h30m, "
                                 f"got {value!r}", field=field)
            seconds += float(match.group(1)) * _UNITS[match.group(2) or "s"]
            pos = match.end()
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"must be a positive, finite duration, got {value!r}", field=field)
    return seconds
