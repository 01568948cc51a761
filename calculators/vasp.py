"""VASP adapter: the FUSE2 paper's staged PBE relaxations through ASE's ``Vasp``.

Two stages, each a full VASP relaxation (NSW=220, IBRION=2, ISIF=3) run in one
calculator call (a ``Tier(..., internal_relax=True)``): KSPACING 0.5 then 0.3 1/A.
ENCUT is 1.3 x the largest ENMAX of the POTCARs, read from the POTCAR files under
``$VASP_PP_PATH/potpaw_PBE`` when present (else ``encut=`` must be given, or the
small built-in table is used).  Spin polarisation (ISPIN=2, high-spin MAGMOM)
is switched on when a magnetic element is present.

VASP needs ``command=`` or ``$ASE_VASP_COMMAND``/``$VASP_COMMAND``; when it is absent
or fails the relaxation gives a failed result, not an exception.
"""

import os
import re
from pathlib import Path

from ase.calculators.vasp import Vasp
from ase.calculators.vasp.create_input import get_pp_setup

from ase_fuse.errors import InputError

from .tiers import Tier

ENCUT_FACTOR = 1.3
KSPACINGS = (0.5, 0.3)
MAGNETIC = frozenset("V Cr Mn Fe Co Ni Cu Mo Ru Rh W Os Ir Ce Pr Nd Sm Eu Gd Tb Dy Ho "
                     "Er Tm Yb".split())
HIGH_SPIN = 5.0
LOW_SPIN = 0.6
# ENMAX (eV) of common PBE POTCARs, used only when no POTCAR file can be read
ENMAX_TABLE = {"H": 250.0, "Li_sv": 499.0, "B": 319.0, "C": 400.0, "N": 400.0,
               "O": 400.0, "F": 400.0, "Na_pv": 260.0, "Mg": 200.0, "Al": 240.0,
               "Si": 245.0, "P": 255.0, "S": 259.0, "Cl": 262.0, "Ca_sv": 267.0}

_ENMAX = re.compile(r"ENMAX\s*=\s*([0-9.]+)")


def potcar_name(symbol, setups="recommended"):
    """POTCAR folder name (``"Ca_sv"``) for ``symbol`` under ASE's ``setups`` choice."""
    table, _ = get_pp_setup(setups)
    suffix = table.get(symbol)
    return symbol + suffix if isinstance(suffix, str) else symbol


def potcar_path(symbol, setups="recommended", pp_path=None, pp_folder="potpaw_PBE"):
    """Path of the POTCAR ASE would use for ``symbol`` (it may not exist)."""
    root = pp_path if pp_path is not None else os.environ.get("VASP_PP_PATH")
    if not root:
        return None
    return Path(root) / pp_folder / potcar_name(symbol, setups) / "POTCAR"


def read_enmax(path):
    """Largest ``ENMAX = ...`` value in a POTCAR file."""
    values = [float(v) for v in _ENMAX.findall(Path(path).read_text(errors="replace"))]
    if not values:
        raise InputError(f"no ENMAX in {path}", field="POTCAR")
    return max(values)


def max_enmax(symbols, setups="recommended", pp_path=None):
    """Largest ENMAX over ``symbols``: POTCAR files first, then the built-in table."""
    found = []
    for symbol in sorted(set(symbols)):
        path = potcar_path(symbol, setups, pp_path)
        name = potcar_name(symbol, setups)
        if path is not None and path.is_file():
            found.append(read_enmax(path))
        elif name in ENMAX_TABLE:
            found.append(ENMAX_TABLE[name])
        else:
            raise InputError(f"no POTCAR for {name} under $VASP_PP_PATH/potpaw_PBE and "
                             "no tabulated ENMAX; set VASP_PP_PATH or pass encut=",
                             field="encut")
    return max(found)


def is_magnetic(symbols):
    return any(symbol in MAGNETIC for symbol in symbols)


def stage_parameters(stage=1, ediffg=None):
    """INCAR settings of the paper's stage ``stage`` (1: KSPACING 0.5, 2: KSPACING 0.3)."""
    if stage not in (1, 2):
        raise InputError(f"must be 1 or 2, got {stage}", field="stage")
    return dict(xc="PBE", prec="Accurate", kspacing=KSPACINGS[stage - 1], kgamma=True,
                ediff=1e-5, ediffg=ediffg if ediffg is not None else -0.05,
                nsw=220, ibrion=2, isif=3, ismear=0, sigma=0.05, lreal="Auto",
                lwave=False, lcharg=False, nelm=100)


class StagedVasp(Vasp):
    """ASE ``Vasp`` that fills ENCUT and spin settings from the atoms it is given."""

    def __init__(self, setups="recommended", pp_path=None, **kwargs):
        self._auto_encut = kwargs.get("encut") is None
        self._auto_spin = kwargs.get("ispin") is None and kwargs.get("magmom") is None
        self._pp_path = pp_path
        if pp_path is not None:  # an absolute pp folder overrides $VASP_PP_PATH in ASE
            kwargs.setdefault("pp", str(Path(pp_path).resolve() / "potpaw_PBE"))
        super().__init__(setups=setups, **kwargs)

    def complete_for(self, atoms):
        """Set ENCUT (1.3 x max ENMAX) and ISPIN/MAGMOM for ``atoms`` when not given."""
        symbols = atoms.get_chemical_symbols()
        changes = {}
        if self._auto_encut:
            enmax = max_enmax(symbols, self.input_params.get("setups") or "recommended",
                              self._pp_path)
            changes["encut"] = round(ENCUT_FACTOR * enmax, 1)
        if self._auto_spin and is_magnetic(symbols):
            changes["ispin"] = 2
            changes["magmom"] = [HIGH_SPIN if s in MAGNETIC else LOW_SPIN for s in symbols]
        if self._auto_spin and not is_magnetic(symbols):
            changes["ispin"] = 1
            changes["magmom"] = None
        if changes:
            self.set(**changes)

    def write_input(self, atoms, properties=None, system_changes=None):
        self.complete_for(atoms)
        Path(self.directory).mkdir(parents=True, exist_ok=True)
        super().write_input(atoms, properties, system_changes)


def vasp_calculator(stage=1, directory="vasp", command=None, setups="recommended",
                    pp_path=None, **overrides):
    """An ASE ``Vasp`` calculator for stage 1 or 2 of the paper's relaxation."""
    params = stage_parameters(stage)
    params.update(overrides)
    return StagedVasp(setups=setups, pp_path=pp_path, directory=str(directory),
                      command=command, **params)


def vasp_tiers(directory="vasp", command=None, stages=(1, 2), **overrides):
    """Tiers for the staged VASP relaxation (each stage relaxes inside VASP)."""
    tiers = []
    for stage in stages:
        stage_dir = Path(directory) / f"stage{stage}"
        tiers.append(Tier(lambda stage=stage, stage_dir=stage_dir: vasp_calculator(
            stage, stage_dir, command, **overrides),
            name=f"vasp-k{KSPACINGS[stage - 1]}", internal_relax=True))
    return tiers
