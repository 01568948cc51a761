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
    summary = {"references": per_ref, "contestants": overall, "both_found": both}
    if len(names) == 2 and both:
        summary["median_ratio_interval"] = median_ratio_interval(records, names)
        summary["median_ratio_interval_seeds"] = median_ratio_interval(
            records, names, references=False)
    return summary


def median_ratio(times):
    """``median(first) / median(second)`` over the references both hit, from
    ``{reference: {contestant: [hit times of its runs, None for a miss]}}`` and the
    contestants' order; None when no reference is hit by both."""
    pairs = [[np.mean([t for t in runs if t is not None]) for runs in per.values()]
             for per in times.values()
             if all(any(t is not None for t in runs) for runs in per.values())]
    if not pairs:
        return None
    first, second = np.array(pairs).T
    return float(np.median(first) / np.median(second))


def median_ratio_interval(records, names, draws=2000, seed=0, level=0.9,
                          references=True):
    """How far chance moves the goal's number, the ratio of the two contestants'
    median first-hit times: a bootstrap over references (drawn with replacement;
    ``references=False`` keeps the set fixed, as the goal names it) and, within
    each, over each contestant's runs (seeds, misses included).
    Returns ``{"ratio", "low", "high", "level", "draws"}``; seeded, so the same
    records give the same interval."""
    times = {}
    for r in records:
        per = times.setdefault(r["reference"], {name: [] for name in names})
        if r["method"] in per:
            per[r["method"]].append(r["time_to_hit_s"] if r["hit"] else None)
    times = {key: per for key, per in times.items() if all(per.values())}
    rng = np.random.default_rng(seed)
    keys = list(times)
    ratios = []
    for _ in range(int(draws)):
        sample = {}
        drawn = rng.choice(len(keys), size=len(keys)) if references else range(len(keys))
        for k, key in enumerate(drawn):
            runs = times[keys[key]]
            sample[k] = {name: [runs[name][i] for i in rng.choice(len(runs[name]),
                                                                   size=len(runs[name]))]
                         for name in names}
        ratio = median_ratio(sample)
        if ratio is not None:
            ratios.append(ratio)
    tail = 50.0 * (1.0 - level)
    return {"ratio": median_ratio(times), "level": level, "draws": len(ratios),
            "low": float(np.percentile(ratios, tail)) if ratios else None,
            "high": float(np.percentile(ratios, 100.0 - tail)) if ratios else None}


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
    interval = summary.get("median_ratio_interval")
    seeds = summary.get("median_ratio_interval_seeds") or {}
    if interval and interval["ratio"] is not None and interval["low"] is not None:
        first, second = summary["contestants"]
        line += (f" Ratio {first}/{second} of the medians {interval['ratio']:.2f}; "
                 f"{100 * interval['level']:.0f}% bootstrap interval "
                 f"{interval['low']:.2f}-{interval['high']:.2f} with references and "
                 "seeds redrawn")
        if seeds.get("low") is not None:
            line += f", {seeds['low']:.2f}-{seeds['high']:.2f} with the seeds only"
        line += f" ({interval['draws']} draws)."
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
