#!/usr/bin/env python3
"""Print the lowest versions setup.cfg allows, as pip pins: ``name>=X`` -> ``name==X``.

The floors live in one place, setup.cfg's ``>=`` bounds; CI (``.ci/run``) installs
this output in a fresh virtual environment and runs the fast tests there, so a floor
that is wrong (too old to import, to install next to the others, or to pass) fails CI.

    python .ci/floors.py           # install_requires and the extras CI tests
    python .ci/floors.py --base    # install_requires and the test runner (pytest, hypothesis)

Every requirement printed must carry a ``>=`` bound; one without is an error, and so
is a package whose floor differs between two of the chosen extras.  Markers are kept
(``tomli==2.0; python_version < "3.11"``); other bounds (``<0.4``) are dropped, the
pin satisfies them or the floor is wrong.  Only the standard library: this runs
before anything is installed.
"""

import argparse
import configparser
import re
import sys
from pathlib import Path

SETUP_CFG = Path(__file__).resolve().parents[1] / "setup.cfg"

# The extras whose floors CI installs together.  Left out: megnet (TensorFlow),
# matgl (DGL) and gpaw (compiles against libxc): none installs from wheels in minutes.
FLOOR_EXTRAS = ("test", "ml", "chgnet", "dask", "batched", "tblite")
# What --base takes from [test]: the test runner, not the optional packages.
RUNNER = ("pytest", "hypothesis")

LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._\-]*)(?P<extras>\[[^\]]*\])?"
                  r"\s*(?P<spec>[^;]*?)\s*(?P<marker>;.*)?$")


def requirement_lines(text):
    """Non-empty lines of a setup.cfg list value, comments dropped."""
    return [ln.strip() for ln in text.splitlines()
            if ln.strip() and not ln.strip().startswith("#")]


def floor_pin(line):
    """``(key, pin)`` for one requirement line: key is the lower-cased project name."""
    match = LINE.match(line)
    if not match:
        raise ValueError(f"cannot read requirement {line!r}")
    floors = [part.strip()[2:].strip() for part in match["spec"].split(",")
              if part.strip().startswith(">=")]
    if len(floors) != 1:
        raise ValueError(f"{line!r}: every dependency needs exactly one '>=' floor")
    pin = f"{match['name']}{match['extras'] or ''}=={floors[0]}"
    if match["marker"]:
        pin += "; " + match["marker"][1:].strip()
    return re.sub(r"[-_.]+", "-", match["name"]).lower(), pin


def floors(setup_cfg=SETUP_CFG, extras=FLOOR_EXTRAS, only=None):
    """The pins for install_requires plus ``extras``, in setup.cfg's order, deduplicated.

    ``only``: if given, take from the extras just these project names.
    """
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(setup_cfg)
    lines = requirement_lines(cfg["options"]["install_requires"])
    available = cfg["options.extras_require"]
    for extra in extras:
        if extra not in available:
            raise ValueError(f"setup.cfg has no extra [{extra}]")
        lines += [(extra, ln) for ln in requirement_lines(available[extra])]
    pins = {}
    for line in lines:
        extra, line = line if isinstance(line, tuple) else (None, line)
        key, pin = floor_pin(line)
        if extra is not None and only is not None and key not in only:
            continue
        if pins.setdefault(key, pin) != pin:
            raise ValueError(f"{key}: floors differ between extras ({pins[key]!r}, {pin!r})")
    return list(pins.values())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", action="store_true",
                        help="install_requires and the test runner only: "
                             + ", ".join(RUNNER))
    args = parser.parse_args(argv)
    try:
        pins = floors(extras=("test",), only=RUNNER) if args.base else floors()
    except ValueError as err:
        print(f"floors.py: {err}", file=sys.stderr)
        return 2
    print("\n".join(pins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
