"""What a search writes besides its db: ``best.cif``, ``current.cif``, ``summary.json``,
the trajectory of new minima, the generator's unused pool, and the log lines.

:class:`RunOutputs` is mixed into :class:`~ase_fuse.basinhopping.FuseBasinHopping`;
it reads the search's state (``best_atoms``, ``records``, ``acceptance`` ...) and
never changes it.
"""

import json
import sys
import time

GENERATOR_POOL_FILE = "generator_pool.extxyz"  # a generator's unused structures


class RunOutputs:
    """Output files and log lines of a search (a mixin of FuseBasinHopping)."""

    def _save_generator_pool(self, pool):
        """Keep the generator's unused structures (GN-OA's pool) for a restart."""
        if not pool:
            return
        from ase.io import write
        path = self.directory / GENERATOR_POOL_FILE
        tmp = path.with_name(path.name + ".tmp.extxyz")
        write(tmp, pool, format="extxyz")
        tmp.replace(path)

    def _load_generator_pool(self):
        path = self.directory / GENERATOR_POOL_FILE
        if not path.exists():
            return []
        from ase.io import read
        return read(path, index=":", format="extxyz")

    # -- outputs --------------------------------------------------------------------
    def _new_best(self):
        self.best_atoms.write(self.directory / "best.cif")
        self._write_summary()

    def _traj_write_image(self, description):
        """Trajectory observer: append each new global minimum once."""
        if self.best_atoms is None or self.best_id == self._last_written_best:
            return
        with self._opentraj() as traj:
            traj.write(self.best_atoms)
        self._last_written_best = self.best_id

    def write_outputs(self):
        """current.cif and summary.json; a run stopped before its first relaxation
        finished still gets its summary (no best yet, 0 evaluated)."""
        if self.atoms is not None:
            self.atoms.write(self.directory / "current.cif")
        self._write_summary()

    def _write_summary(self, step=None):
        """summary.json, as of ``step`` (default: the steps completed so far)."""
        pressure = getattr(self, "pressure", 0.0)
        summary = {"composition": self.composition.formula, "seed": self.seed,
                   "steps": self.nsteps if step is None else step,
                   "pressure_GPa": pressure,
                   # what the search compares: (E + PV) / N, the energy at 0 GPa
                   "best_enthalpy_per_atom": self.best_energy,
                   "best_energy_per_atom": self.best_energy if not pressure
                   else _energy_per_atom(self.best_atoms),
                   "best_row": self.best_id, "best_formula": self.best_atoms.get_chemical_formula()
                   if self.best_atoms is not None else None,
                   "current_enthalpy_per_atom": self.current_energy,
                   "current_energy_per_atom": self.current_energy if not pressure
                   else _energy_per_atom(self.atoms),
                   "temperature": self.acceptance.temperature,
                   "evaluated": self.records.count(status="relaxed"),
                   "failed": self.records.count(status="failed"),
                   "invalid": self.records.count(status="invalid"),
                   "converged": self.converged(), "db": self.records.path}
        credit = getattr(self, "credit", None)
        if credit is not None:             # learned move weights: what each move earned
            summary["moves"] = {str(n): row for n, row in credit.table().items()}
        tmp = self.directory / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1))
        tmp.replace(self.directory / "summary.json")

    # -- logging ----------------------------------------------------------------------
    def _log_line(self, text):
        self.logfile.write(text + "\n")
        if self._logfile_arg == "-":
            sys.stdout.flush()  # progress must show at once, also through a pipe

    def _log_header(self):
        quantity = "H (eV/atom)" if getattr(self, "pressure", 0.0) else "E (eV/atom)"
        self._log_line(f"{'step':>6} {'move':<18} {quantity:>12} {'best':>10} "
                       f"{'T':>7} {'acc':>4} {'time':>9}")

    def _log_step(self, step, move, energy, accepted):
        e = f"{energy:12.4f}" if energy is not None else f"{'failed':>12}"
        self._log_line(f"{step:6d} {move.number:>2} {move.name:<15.15} {e} "
                       f"{self.best_energy:10.4f} {self.acceptance.temperature:7.4f} "
                       f"{'yes' if accepted else 'no':>4} {time.strftime('%H:%M:%S'):>9}")


def _energy_per_atom(atoms):
    """The energy per atom of a relaxed structure's SinglePointCalculator, or None."""
    if atoms is None or atoms.calc is None:
        return None
    return float(atoms.get_potential_energy()) / len(atoms)
