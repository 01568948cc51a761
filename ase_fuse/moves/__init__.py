"""FUSE's 14 basin-hopping moves (filled in by ase_fuse.moves.* modules)."""
