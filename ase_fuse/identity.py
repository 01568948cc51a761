"""Whether two structures are the same: pymatgen's ``StructureMatcher`` with the
settings used everywhere in ase-fuse (the GN-OA population's distinct check, the
benchmarks' hit and distinct counts), stated in one place."""

#: ``ltol``/``stol``/``angle_tol`` are pymatgen's defaults; ``attempt_supercell`` lets
#: a cell match its supercell (the search compares cells of different formula units)
MATCHER_SETTINGS = {"ltol": 0.2, "stol": 0.3, "angle_tol": 5, "primitive_cell": True,
                    "scale": True, "attempt_supercell": True}


def structure_matcher(**overrides):
    """A pymatgen ``StructureMatcher`` with :data:`MATCHER_SETTINGS` (``overrides`` on
    top; pymatgen is imported here, on first use)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    return StructureMatcher(**dict(MATCHER_SETTINGS, **overrides))
