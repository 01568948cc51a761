"""Plots of a run: energy against step, accepted/rejected, global minimum, move by colour."""

from pathlib import Path

import numpy as np

from .results import walker_dbs  # noqa: F401  (cli and plot_walkers use it from here)

MOVE_NAMES = {0: "initial", 1: "swap 2", 2: "to vacancy", 3: "swap i", 4: "swap i + vac",
              5: "permute", 6: "permute + vac", 7: "swap sub-mod", 8: "swap modules",
              9: "re-shape", 10: "mutation", 11: "double", 12: "triple", 13: "new (small)",
              14: "new (any)"}


def run_series(db_path):
    """Per relaxed candidate: step, energy per atom, move number, accepted (arrays).

    Rows without a whole step or a finite energy (not written by a search) are left
    out; a db that cannot be read raises :class:`InputError`.
    """
    import sqlite3

    from .errors import InputError
    from .records import RunRecords
    try:
        rows = RunRecords(db_path).rows(status="relaxed")
    except (sqlite3.Error, ValueError, KeyError, TypeError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"cannot read the rows of {db_path}: {err}", field="db") from None
    rows = [r for r in rows if isinstance(r.get("step"), int) and
            isinstance(r.get("energy_per_atom"), (int, float)) and
            np.isfinite(r.get("energy_per_atom"))]
    rows.sort(key=lambda r: (r.step, r.get("slot") if isinstance(r.get("slot"), int) else 0))
    return {
        "step": np.array([r.step for r in rows], dtype=int),
        # what the search compared: the enthalpy per atom of a run at pressure
        "energy": np.array([r.get("enthalpy_per_atom", r.energy_per_atom) for r in rows],
                           dtype=float),
        "move": np.array([r.get("move", 0) if isinstance(r.get("move", 0), int) else 0
                          for r in rows], dtype=int),
        "accepted": np.array([bool(r.get("accepted", r.step == 0)) for r in rows],
                             dtype=bool),
    }


def _output(output, default, inputs):
    """The PNG to write: ``output`` (a folder gets ``default``'s name inside it) or
    ``default``; never one of the ``inputs``, and in a format matplotlib writes."""
    from matplotlib.figure import Figure

    from .errors import InputError
    path = Path(output) if output else Path(default)
    if path.is_dir():
        path = path / Path(default).name
    if not path.suffix:
        path = path.with_suffix(".png")
    if any(path.resolve() == Path(db).resolve() for db in inputs):
        raise InputError(f"{path} is the database being plotted; choose another file",
                         field="output")
    kinds = Figure().canvas.get_supported_filetypes()
    if path.suffix[1:].lower() not in kinds:
        raise InputError(f"cannot write {path.suffix} images; use one of "
                         f"{', '.join('.' + k for k in sorted(kinds))}", field="output")
    return path


def _save(fig, output):
    """``fig.savefig(output)`` with a one-line error when the file cannot be written."""
    import matplotlib.pyplot as plt

    from .errors import InputError
    try:
        fig.savefig(output)
    except OSError as err:
        raise InputError(f"cannot write {output}: {err.strerror or err} (choose another "
                         "place with -o)", field="output") from None
    finally:
        plt.close(fig)


def plot_run(db_path, output=None):
    """Draw energy vs step to PNG; returns the file written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .errors import InputError
    if not Path(db_path).exists():
        raise InputError(f"no such file {db_path}", field="db")
    data = run_series(db_path)
    if len(data["step"]) == 0:
        raise InputError(f"{db_path} has no relaxed structures to plot", field="db")
    output = _output(output, Path(db_path).with_suffix(".png"), [db_path])
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    cmap = plt.get_cmap("tab20")
    for move in np.unique(data["move"]):
        sel = data["move"] == move
        acc, rej = sel & data["accepted"], sel & ~data["accepted"]
        colour = cmap(int(move) % 20)
        ax.scatter(data["step"][acc], data["energy"][acc], s=14, color=colour,
                   label=MOVE_NAMES.get(int(move), str(move)))
        ax.scatter(data["step"][rej], data["energy"][rej], s=14, facecolors="none",
                   edgecolors=colour, linewidths=0.8)
    best = np.minimum.accumulate(data["energy"])
    ax.step(data["step"], best, where="post", color="k", lw=1.2, label="global minimum")
    low, high = np.percentile(data["energy"], [0, 95])
    ax.set_ylim(low - 0.05 * (high - low + 1e-3), high + 0.1 * (high - low + 1e-3))
    ax.set_xlabel("step (0 = initial population)")
    ax.set_ylabel("energy (eV/atom)")
    ax.set_title(f"{Path(db_path).name}: filled = accepted, open = rejected")
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    fig.tight_layout()
    _save(fig, output)
    return output


def plot_walkers(folder, output=None):
    """Best energy vs step of every walker of a ``--walkers`` run, one line per seed,
    each relaxed candidate as a faint dot; returns the PNG written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .errors import InputError
    dbs = walker_dbs(folder)
    series = {seed: run_series(db) for seed, db in dbs.items()}
    series = {seed: data for seed, data in series.items() if len(data["step"])}
    if not series:
        raise InputError(f"{folder} has no walker with relaxed structures "
                         "(seed<S>/fuse.db)", field="db")
    output = _output(output, Path(folder) / "walkers.png", list(dbs.values()))
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    colours = plt.get_cmap("tab10")
    energies = np.concatenate([data["energy"] for data in series.values()])
    for k, (seed, data) in enumerate(series.items()):
        colour = colours(k % 10)
        ax.scatter(data["step"], data["energy"], s=6, color=colour, alpha=0.25)
        best = np.minimum.accumulate(data["energy"])
        ax.step(data["step"], best, where="post", color=colour, lw=1.4,
                label=f"seed {seed}: {best[-1]:.4f}")
    low, high = np.percentile(energies, [0, 95])
    ax.set_ylim(low - 0.05 * (high - low + 1e-3), high + 0.1 * (high - low + 1e-3))
    ax.set_xlabel("step (0 = initial population)")
    ax.set_ylabel("energy (eV/atom)")
    ax.set_title(f"{Path(folder).name}: best so far per walker (dots: every candidate)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    _save(fig, output)
    return output


def plot_landscape(source, output=None):
    """Energy against volume per atom of a run's distinct structures (a db, a run
    folder or a ``--walkers`` folder: every seed), marker area by times found, the
    lowest labelled with its space group; returns the PNG written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .errors import InputError
    from .results import _run_dbs, distinct
    polymorphs = distinct(source, n=None)
    if not polymorphs:
        raise InputError(f"{source} has no relaxed structures to plot", field="db")
    folder = Path(source) if Path(source).is_dir() else Path(source).parent
    output = _output(output, folder / "landscape.png", _run_dbs(source))
    volume = np.array([p.volume_per_atom for p in polymorphs])
    energy = np.array([p.enthalpy_per_atom for p in polymorphs])
    found = np.array([p.times_found for p in polymorphs])
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.scatter(volume, energy, s=12 + 60 * np.sqrt(found / found.max()),
               c=energy, cmap="viridis_r", edgecolors="k", linewidths=0.4)
    best = polymorphs[0]
    ax.annotate(f"{best.spacegroup} ({best.spacegroup_number}), found {best.times_found}x",
                (best.volume_per_atom, best.enthalpy_per_atom), textcoords="offset points",
                xytext=(8, 6), fontsize=8)
    ax.set_xlabel("volume per atom (A^3)")
    ax.set_ylabel(f"enthalpy at {best.pressure:g} GPa (eV/atom)" if best.pressure
                  else "energy (eV/atom)")
    ax.set_title(f"{len(polymorphs)} distinct structures (marker area: times found)")
    fig.tight_layout()
    _save(fig, output)
    return output


def plot_field(records, output, problem=None, references=None):
    """A phase field's hull: for two elements, formation energy against the second
    element's fraction with the hull line; for three, the composition triangle with
    the hull's tie lines, points coloured by energy above the hull; returns the PNG
    written, or None for one element or more than three."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .composition import Composition
    from .field import elements_of, tie_lines
    elements = elements_of(records)
    done = [r for r in records if r.get("formation_energy_per_atom") is not None]
    if problem or not done or len(elements) not in (2, 3):
        return None

    def fractions(r):
        counts = Composition(r["composition"] if isinstance(r, dict) else r).counts
        total = sum(counts.values())
        return [counts.get(el, 0) / total for el in elements]

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    if len(elements) == 2:
        x = np.array([fractions(r)[1] for r in done])
        y = np.array([r["formation_energy_per_atom"] for r in done])
        on = np.array([bool(r.get("stable")) for r in done])
        order = np.argsort(x[on])
        ax.plot(x[on][order], y[on][order], "-", color="k", lw=1, label="hull")
        ax.scatter(x[~on], y[~on], c="tab:red", s=24, label="above the hull", zorder=3)
        ax.scatter(x[on], y[on], c="tab:blue", s=36, edgecolors="k", label="on the hull",
                   zorder=4)
        for r, xi, yi in zip(done, x, y):
            ax.annotate(r["composition"], (xi, yi), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
        ax.axhline(0, color="0.7", lw=0.6)
        ax.set_xlabel(f"fraction of {elements[1]} (x in {elements[0]}(1-x){elements[1]}x)")
        ax.set_ylabel("formation energy (eV/atom)")
        ax.legend(fontsize=8)
    else:
        corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
        xy = np.array([np.array(fractions(r)) @ corners for r in done])
        above = np.array([1000 * (r.get("e_above_hull") or 0.0) for r in done])
        stable = [k for k, r in enumerate(done) if r.get("stable")]
        ax.plot(*np.vstack([corners, corners[:1]]).T, color="k", lw=1)
        for a, b in tie_lines(done, references):    # the hull's edges
            pts = np.array([np.array(fractions(a)) @ corners, np.array(fractions(b)) @ corners])
            ax.plot(pts[:, 0], pts[:, 1], color="0.5", lw=0.7, zorder=1)
        points = ax.scatter(xy[:, 0], xy[:, 1], c=above, cmap="viridis", s=40,
                            edgecolors=["k" if k in stable else "none"
                                        for k in range(len(done))], zorder=3)
        fig.colorbar(points, ax=ax, label="energy above the hull (meV/atom)")
        for r, (xi, yi) in zip(done, xy):
            ax.annotate(r["composition"], (xi, yi), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
        for el, (xi, yi) in zip(elements, corners):
            ax.annotate(el, (xi, yi), textcoords="offset points", xytext=(-4, -14),
                        fontsize=10, weight="bold")
        ax.set_aspect("equal")
        ax.axis("off")
    ax.set_title(f"{'-'.join(elements)}: {len(done)} compositions, "
                 f"{sum(bool(r.get('stable')) for r in done)} on the hull")
    fig.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    _save(fig, output)
    return str(output)
