"""The race's tables: per reference and contestant, the summary line, the hit plot.

Reads the records of ``race.py`` (one per reference, contestant and seed).
"""

from pathlib import Path

import numpy as np

import common


def percentile90(values):
    return float(np.percentile(values, 90)) if len(values) else None


def contestants_of(records):
    return list(dict.fromkeys(r["method"] for r in records))


def summarize(records):
    """Per reference and contestant, and per contestant over all references."""
    names = contestants_of(records)
    refs = list(dict.fromkeys(r["reference"] for r in records))
    per_ref = {}
    for key in refs:
        per_ref[key] = {}
        for name in names:
            mine = [r for r in records if r["reference"] == key and r["method"] == name]
            if not mine:
                continue
            hits = [r for r in mine if r["hit"]]
            steps = [s for r in mine for s in r["ml_steps"]]
            per_ref[key][name] = {
                "hits": len(hits), "runs": len(mine),
                "seeds_hit": [r["seed"] for r in hits],
                "time_to_first_hit_s": common.mean([r["time_to_hit_s"] for r in hits]),
                "structures_relaxed": common.mean([r["structures_relaxed"] for r in mine]),
                # inputs equal to one relaxed before, whose result was taken (ase-fuse)
                "reused": common.mean([r.get("reused", 0) for r in mine]),
                "ml_steps_mean": float(np.mean(steps)) if steps else None,
                "ml_steps_p90": percentile90(steps),
                "reference_energy": mine[0]["reference_energy"],
                "lowest": min((r["best_energy_per_atom"] for r in mine
                               if r["best_energy_per_atom"] is not None), default=None)}
    both = [key for key in refs
            if len(per_ref[key]) == len(names) and all(per_ref[key][n]["hits"]
                                                       for n in names)]
    overall = {}
    for name in names:
        mine = [r for r in records if r["method"] == name]
        times = [per_ref[key][name]["time_to_first_hit_s"] for key in both]
        overall[name] = {"hits": sum(r["hit"] for r in mine), "runs": len(mine),
                         "references_hit": sum(1 for key in refs if name in per_ref[key]
                                               and per_ref[key][name]["hits"]),
                         "median_time_to_first_hit_s": float(np.median(times))
                         if times else None}
    return {"references": per_ref, "contestants": overall, "both_found": both}


def table(records, summary):
    rows = []
    nprim = {r["reference"]: r["nprim"] for r in records}
    for key, by_name in summary["references"].items():
        for name, s in by_name.items():
            rows.append([key, nprim[key], name, f"{s['hits']}/{s['runs']}",
                         s["time_to_first_hit_s"], s["structures_relaxed"],
                         s["reused"], s["ml_steps_mean"], s["ml_steps_p90"]])
    text = common.markdown_table(["reference", "prim sites", "contestant", "hits",
                                  "s to first hit", "structures relaxed", "re-used",
                                  "ML steps/structure", "p90"], rows)
    parts = []
    for name, s in summary["contestants"].items():
        parts.append(f"{name} {s['hits']}/{s['runs']} runs hit "
                     f"({s['references_hit']} references)")
    medians = ", ".join(f"{name} {common.fmt(s['median_time_to_first_hit_s'], 1)} s"
                        for name, s in summary["contestants"].items())
    line = (f"Summary: {'; '.join(parts)}. Median time to first hit over the "
            f"{len(summary['both_found'])} references both found: {medians}.")
    return text + "\n\n" + line


def plot(records, path, budget):
    """Fraction of runs with a hit against wall time, one line per contestant."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name in contestants_of(records):
        mine = [r for r in records if r["method"] == name]
        times = sorted(r["time_to_hit_s"] for r in mine if r["hit"])
        xs = [0.0] + times + [budget]
        ys = [0.0] + [(k + 1) / len(mine) for k in range(len(times))] + \
            [len(times) / len(mine)]
        ax.step(xs, ys, where="post", label=f"{name} ({len(times)}/{len(mine)})")
    ax.set_xlabel("wall time since process start (s)")
    ax.set_ylabel("fraction of runs with a hit")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, budget)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
