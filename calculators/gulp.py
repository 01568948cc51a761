"""GULP adapter: staged ``opti conp`` relaxations with a force-field library chosen by element.

ASE's ``GULP`` calculator writes the ``.gin`` file and reads the relaxed cell back;
GULP optimises by itself in one call, so each stage is a
``Tier(..., internal_relax=True)``.  The library is the first ``.lib`` file (in
:data:`PREFERRED` order, then alphabetical) under ``lib_dir`` (default
``$GULP_LIB``) whose species cover every element; shell-model species are declared
with ``shel`` automatically.  The executable comes from ``command=``,
``$ASE_GULP_COMMAND`` or ``gulp`` on PATH.
"""

import os
import re
import shutil
from pathlib import Path

from ase_fuse.errors import InputError

from .tiers import Tier

PREFERRED = ("bush.lib", "catlow.lib", "lewis.lib", "streitz.lib", "khan.lib")
STAGES = {
    1: ("opti conj conp", ["maxcyc 1000"]),
    2: ("opti bfgs conp", ["maxcyc 1000", "switch_minimiser rfo gnorm 0.01"]),
}
_LABEL = re.compile(r"^([A-Z][a-z]?)(?:[0-9_][A-Za-z0-9_]*)?$")
_SECTION = re.compile(r"^[a-z]")


def library_species(path):
    """``(elements, shell_elements)`` declared in a GULP library's ``species`` sections."""
    elements, shells = set(), set()
    in_species = False
    for raw in Path(path).read_text(errors="replace").splitlines():
        line = raw.split("#")[0].rstrip()
        if not line.strip():
            continue
        tokens = line.split()
        if _SECTION.match(line):
            in_species = tokens[0].lower().startswith("spec")
            continue
        if in_species and len(tokens) >= 2:
            match = _LABEL.match(tokens[0])
            if match:
                elements.add(match.group(1))
                if tokens[1].lower().startswith("shel"):
                    shells.add(match.group(1))
    return elements, shells


def gulp_library_dir(lib_dir=None):
    return Path(lib_dir) if lib_dir else (Path(os.environ["GULP_LIB"])
                                         if os.environ.get("GULP_LIB") else None)


def choose_library(elements, lib_dir=None, library=None):
    """Path of the library to use for ``elements`` (see module doc).

    ``library`` (a path, or a file name inside ``lib_dir``) forces the choice.
    """
    elements = set(elements)
    folder = gulp_library_dir(lib_dir)
    if library is not None:
        path = Path(library)
        if not path.is_file() and folder is not None:
            path = folder / library
        if not path.is_file():
            raise InputError(f"GULP library {library!r} not found", field="library")
        return path
    if folder is None or not folder.is_dir():
        raise InputError("no GULP library folder: set $GULP_LIB or pass lib_dir= or "
                         "library=", field="library")
    candidates = sorted(folder.glob("*.lib"),
                        key=lambda p: (PREFERRED.index(p.name) if p.name in PREFERRED
                                       else len(PREFERRED), p.name))
    for path in candidates:
        covered, _ = library_species(path)
        if elements <= covered:
            return path
    raise InputError(f"no library in {folder} covers {', '.join(sorted(elements))} "
                     f"(tried {', '.join(p.name for p in candidates) or 'none'})",
                     field="library")


def gulp_command(command=None):
    """Shell command to run GULP, or None when no executable is found."""
    if command:
        return command
    if os.environ.get("ASE_GULP_COMMAND"):
        return os.environ["ASE_GULP_COMMAND"]
    exe = shutil.which("gulp")
    return f"{exe} < PREFIX.gin > PREFIX.got" if exe else None


def gulp_settings(elements, stage=1, lib_dir=None, library=None):
    """``(keywords, options, shel)`` the adapter uses for ``elements`` at ``stage``."""
    if stage not in STAGES:
        raise InputError(f"must be one of {sorted(STAGES)}, got {stage}", field="stage")
    path = choose_library(elements, lib_dir, library)
    _, shells = library_species(path)
    keywords, options = STAGES[stage]
    # the library goes in as an option so ASE does not insist on $GULP_LIB
    return keywords, [f"library {path.resolve()}"] + list(options), \
        sorted(shells & set(elements))


def gulp_calculator(elements, stage=1, lib_dir=None, library=None, directory="gulp",
                    command=None):
    """ASE ``GULP`` calculator for one stage; InputError when GULP is not available."""
    from ase.calculators.gulp import GULP

    keywords, options, shel = gulp_settings(elements, stage, lib_dir, library)
    command = gulp_command(command)
    if command is None:
        raise InputError("no gulp executable: put gulp on PATH, set $ASE_GULP_COMMAND "
                         "or pass command=", field="command")
    Path(directory).mkdir(parents=True, exist_ok=True)
    return GULP(keywords=keywords, options=options, shel=shel, library=None,
                directory=str(directory), command=command)


def gulp_tiers(elements, lib_dir=None, library=None, directory="gulp", command=None,
               stages=(1, 2)):
    """Staged GULP relaxation tiers (each stage relaxes inside GULP)."""
    elements = sorted(set(elements))
    gulp_settings(elements, stages[0], lib_dir, library)  # fail early on a bad library
    return [Tier(lambda stage=stage: gulp_calculator(
        elements, stage, lib_dir, library, Path(directory) / f"stage{stage}", command),
        name=f"gulp-{stage}", internal_relax=True) for stage in stages]
