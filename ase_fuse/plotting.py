"""Plots of a run: energy against step, accepted/rejected, global minimum, move by colour."""

from pathlib import Path

import numpy as np

MOVE_NAMES = {0: "initial", 1: "swap 2", 2: "to vacancy", 3: "swap i", 4: "swap i + vac",
              5: "permute", 6: "permute + vac", 7: "swap sub-mod", 8: "swap modules",
              9: "re-shape", 10: "mutation", 11: "double", 12: "triple", 13: "new (small)",
              14: "new (any)"}


def run_series(db_path):
    """Per relaxed candidate: step, energy per atom, move number, accepted (arrays)."""
    from .records import RunRecords
    rows = RunRecords(db_path).rows(status="relaxed")
    rows.sort(key=lambda r: (r.step, r.slot))
    return {
        "step": np.array([r.step for r in rows]),
        "energy": np.array([r.energy_per_atom for r in rows]),
        "move": np.array([r.get("move", 0) for r in rows]),
        "accepted": np.array([bool(r.get("accepted", r.step == 0)) for r in rows]),
    }


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
    output = Path(output) if output else Path(db_path).with_suffix(".png")
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
    fig.savefig(output)
    plt.close(fig)
    return output


def walker_dbs(folder):
    """``{seed: db path}`` of a ``--walkers`` run folder (``seed<S>/fuse.db``)."""
    out = {}
    for db in Path(folder).glob("seed*/fuse.db"):
        name = db.parent.name[4:]
        if name.isdigit():
            out[int(name)] = db
    return dict(sorted(out.items()))


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
    output = Path(output) if output else Path(folder) / "walkers.png"
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
    fig.savefig(output)
    plt.close(fig)
    return output
