"""Peers: our search against random search (AIRSS-style) and ASE's genetic algorithm.

Same compositions, relaxation stack (``--stack``), wall-clock budget and seeds for
every method, in one run:

=============  ===================================================================
airss          random symmetric structures (pyxtal ``from_random``: space group
               2-230 and formula units drawn at random), each relaxed; keep the best
ga             ``ase_ga``: StartGenerator, CutAndSplicePairing, Strain/Permutation/
               Rattle mutations, OFPComparator, PrepareDB/DataConnection, Population;
               fixed size: the largest formula-unit count under ``max_atoms``
               (``--ga-z`` to choose); ``--ga-population`` relaxed starts
fuse-fgen      FuseBasinHopping, FUSE random initial population
fuse-mlgen     FuseBasinHopping, GN-OA initial population (generated before the
               clock starts, time in ``generation_s``)
=============  ===================================================================

Success of a run: its lowest energy is within ``--tolerance`` eV/atom (0.01) of the
lowest energy any method found for that composition in this benchmark (the known
ground state is not available for most of the paper's compositions);
``evaluations_to_match`` is the evaluation at which that first happened.  Reported per
composition: success rate, lowest energy and mean evaluations to success per method,
and ours / best peer (success-rate ratio; ratio of lowest energies' distance to the
target, as the energy gap in meV/atom).  ase_ga draws with ``randint``, which numpy's
Generator lacks: it gets a ``RandomState`` seeded from the run's Generator.

JSON: the schema of ``benchmarks/common.py``; ``summary`` = {composition: {target,
methods: {method: {success_rate, lowest, evaluations_to_success}}, ratio}}.

    python benchmarks/peers.py --quick
    python benchmarks/peers.py --compositions CoAs2 WCl2 --budget 300 --seeds 0 1 2
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from fuse2 import COMPOSITIONS  # noqa: E402

METHODS = ["airss", "ga", "fuse-fgen", "fuse-mlgen"]
OURS = ("fuse-fgen", "fuse-mlgen")
STACKS = {"proxy+chgnet": ["proxy", "chgnet"], "chgnet": ["chgnet"], "proxy": ["proxy"],
          "emt": ["emt"]}


def _species_counts(comp, z):
    return [str(el) for el in comp.elements], [int(comp.counts[el]) * z for el in comp.elements]


def run_airss(composition, relaxer, args, seed):
    """Random symmetric structures from pyxtal, relaxed until the budget is spent."""
    from pyxtal import pyxtal
    from ase_fuse.composition import Composition
    comp = Composition(composition)
    z_values = comp.formula_units(args.max_atoms)
    rng = np.random.default_rng(seed)
    budget = common.BudgetRelaxer(relaxer, args.budget).start()
    drawn = 0
    while not budget.expired:
        z = int(rng.choice(z_values))
        group = int(rng.integers(2, 231))
        species, counts = _species_counts(comp, z)
        crystal = pyxtal()
        drawn += 1
        try:
            crystal.from_random(3, group, species, counts,
                                random_state=int(rng.integers(2 ** 31)))
        except Exception:  # pyxtal: Wyckoff-incompatible counts, placement failures
            continue
        if not crystal.valid:
            continue
        atoms = crystal.to_ase()
        if len(atoms) > args.max_atoms:
            continue
        budget.step += 1
        budget.relax(atoms)
    return common.summarize(budget.trace, args.budget, budget.elapsed, steps=budget.step), \
        None, {"drawn": drawn}


def run_ga(composition, relaxer, args, seed, directory):
    """ASE's GA (ase_ga) for bulk crystals at a fixed number of formula units."""
    from ase import Atoms
    from ase.data import atomic_numbers
    from ase_ga import set_raw_score
    from ase_ga.cutandsplicepairing import CutAndSplicePairing
    from ase_ga.data import DataConnection, PrepareDB
    from ase_ga.offspring_creator import OperationSelector
    from ase_ga.ofp_comparator import OFPComparator
    from ase_ga.population import Population
    from ase_ga.standardmutations import (PermutationMutation, RattleMutation,
                                          StrainMutation)
    from ase_ga.startgenerator import StartGenerator
    from ase_ga.utilities import CellBounds, closest_distances_generator
    from ase_fuse.composition import Composition

    comp = Composition(composition)
    z = args.ga_z or max(comp.formula_units(args.max_atoms))
    species, counts = _species_counts(comp, z)
    n_top = sum(counts)
    rs = np.random.RandomState(int(np.random.default_rng(seed).integers(2 ** 31)))
    blocks = list(zip(species, counts))
    numbers = [atomic_numbers[s] for s, n in blocks for _ in range(n)]
    blmin = closest_distances_generator(sorted(set(numbers)), ratio_of_covalent_radii=0.6)
    cellbounds = CellBounds(bounds={"phi": [20, 160], "chi": [20, 160], "psi": [20, 160],
                                    "a": [2, 40], "b": [2, 40], "c": [2, 40]})
    volume = 1.6 * comp.sphere_volume(z)
    slab = Atoms("", pbc=True)
    start = StartGenerator(slab, blocks, blmin, box_volume=volume,
                           number_of_variable_cell_vectors=3, cellbounds=cellbounds,
                           splits={(2,): 1, (1,): 1}, rng=rs)
    directory.mkdir(parents=True, exist_ok=True)
    db_file = directory / "ga.db"
    if db_file.exists():
        db_file.unlink()
    prep = PrepareDB(str(db_file), stoichiometry=numbers)
    budget = common.BudgetRelaxer(relaxer, args.budget).start()
    for _ in range(args.ga_population):
        prep.add_unrelaxed_candidate(start.get_new_candidate())
    data = DataConnection(str(db_file))

    def evaluate(atoms):
        result = budget.relax(atoms)
        if result.failed:
            if result.failed != common.BUDGET_REASON:
                data.kill_candidate(atoms.info["confid"])
            return False
        relaxed = result.atoms
        relaxed.info = atoms.info
        set_raw_score(relaxed, -float(result.energy))
        data.add_relaxed_step(relaxed)
        return True

    while data.get_number_of_unrelaxed_candidates() > 0 and not budget.expired:
        evaluate(data.get_an_unrelaxed_candidate())
    comparator = OFPComparator(n_top=n_top, dE=1.0, cos_dist_max=1e-3, rcut=10.0,
                               binwidth=0.05, pbc=[True] * 3, sigma=0.05, nsigma=4,
                               recalculate=False)
    pairing = CutAndSplicePairing(slab, n_top, blmin, p1=1.0, p2=0.0, minfrac=0.15,
                                  number_of_variable_cell_vectors=3, cellbounds=cellbounds,
                                  use_tags=False, rng=rs)
    mutation_list = [StrainMutation(blmin, stddev=0.7, cellbounds=cellbounds,
                                    number_of_variable_cell_vectors=3, use_tags=False,
                                    rng=rs),
                     RattleMutation(blmin, n_top, rattle_strength=0.8, rattle_prop=0.4,
                                    rng=rs)]
    if len(species) > 1:
        mutation_list.append(PermutationMutation(n_top, probability=0.33, blmin=blmin,
                                                 rng=rs))
    mutations = OperationSelector([1.0] * len(mutation_list), mutation_list, rng=rs)
    children = 0
    try:
        population = Population(data_connection=data, population_size=args.ga_population,
                                comparator=comparator, logfile=None, rng=rs)
        while not budget.expired:
            parents = population.get_two_candidates()
            if rs.random_sample() < 0.5:
                child, desc = pairing.get_new_individual(parents)
            else:
                child, desc = mutations.get_new_individual([parents[0]])
            if child is None:
                continue
            data.add_unrelaxed_candidate(child, description=desc)
            children += 1
            budget.step = children
            if evaluate(child):
                population.update()
        error = None
    except (ValueError, IndexError, TypeError) as err:  # too few relaxed parents
        error = f"ga stopped: {type(err).__name__}: {err}"
    return common.summarize(budget.trace, args.budget, budget.elapsed, steps=children), \
        error, {"z": z, "children": children}


def run_fuse(composition, relaxer, args, seed, directory, ml):
    structures = pool = None
    generation_s = 0.0
    if ml:
        structures, pool, generation_s = common.gnoa_structures(
            composition, args.max_atoms, args.initial_population, seed,
            model=args.gnoa_model, evaluations=args.gnoa_evaluations)
    if (directory / "fuse.db").exists():
        (directory / "fuse.db").unlink()
    numbers, _, _, error = common.run_basin_hopping(
        composition, relaxer, args.budget, seed, args.max_atoms, args.initial_population,
        directory, structures=structures, pool=pool, generation_s=generation_s)
    return numbers, error, {}


def run_method(method, composition, args, seed):
    # a formula bigger than --max-atoms is searched at one formula unit
    args = argparse.Namespace(**dict(vars(args), max_atoms=common.max_atoms_for(
        composition, args.max_atoms)))
    relaxer = common.relaxer_for(STACKS[args.stack], composition, args.quick)
    directory = Path(args.out) / "runs" / f"{composition}_{method}_s{seed}"
    if method == "airss":
        numbers, error, extra = run_airss(composition, relaxer, args, seed)
    elif method == "ga":
        numbers, error, extra = run_ga(composition, relaxer, args, seed, directory)
    else:
        numbers, error, extra = run_fuse(composition, relaxer, args, seed, directory,
                                         ml=method == "fuse-mlgen")
    return common.make_record(composition, method, seed, numbers, error=error,
                              extra=dict(extra, stack=args.stack))


def score(records, compositions, methods, tolerance):
    """Mark successes against each composition's best energy; the summary and table rows."""
    summary, rows = {}, []
    for comp in compositions:
        runs = [r for r in records if r["composition"] == comp]
        energies = [r["best_energy_per_atom"] for r in runs
                    if r["best_energy_per_atom"] is not None]
        target = min(energies, default=None)
        per_method = {}
        for r in runs:
            if target is None or r["best_energy_per_atom"] is None:
                r["matched"] = False
                continue
            r["matched"] = r["best_energy_per_atom"] <= target + tolerance
            first = next((c for c in r["curve"] if c[2] <= target + tolerance), None)
            r["evaluations_to_match"], r["time_to_match_s"] = (first[0], first[1]) \
                if first else (None, None)
        for method in methods:
            mine = [r for r in runs if r["method"] == method]
            hits = [r for r in mine if r["matched"]]
            per_method[method] = {
                "success_rate": len(hits) / len(mine) if mine else None,
                "lowest": min((r["best_energy_per_atom"] for r in mine
                               if r["best_energy_per_atom"] is not None), default=None),
                "evaluations_to_success": common.mean([r["evaluations_to_match"]
                                                       for r in hits]),
                "evaluations": common.mean([r["evaluations"] for r in mine])}
        ours = [m for m in methods if m in OURS]
        peers = [m for m in methods if m not in OURS]
        ratio = {}
        if ours and peers:
            def pick(names):
                return max(names, key=lambda m: (
                    per_method[m]["success_rate"] or 0,
                    -per_method[m]["lowest"] if per_method[m]["lowest"] is not None
                    else -np.inf))
            our, peer = pick(ours), pick(peers)
            o, p = per_method[our], per_method[peer]
            ratio = {"ours": our, "best_peer": peer,
                     "success_rate": (o["success_rate"] / p["success_rate"])
                     if p["success_rate"] else None,
                     "lowest_gap_meV": None if o["lowest"] is None or p["lowest"] is None
                     else 1000 * (o["lowest"] - p["lowest"])}
        summary[comp] = {"target": target, "methods": per_method, "ratio": ratio}
        for method in methods:
            m = per_method[method]
            rows.append([comp, method, m["success_rate"], m["lowest"], m["evaluations"],
                         m["evaluations_to_success"]])
        if ratio:
            rows.append([comp, f"ours/peer ({ratio['ours']} / {ratio['best_peer']})",
                         ratio["success_rate"], f"{common.fmt(ratio['lowest_gap_meV'], 1)} meV",
                         "", ""])
    return summary, rows


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--compositions", nargs="+")
    p.add_argument("--methods", nargs="+", choices=METHODS)
    p.add_argument("--seeds", nargs="+", type=int)
    p.add_argument("--budget", type=float, help="seconds per run (default 60, also with --quick)")
    p.add_argument("--max-atoms", type=int)
    p.add_argument("--initial-population", type=int)
    p.add_argument("--stack", default="proxy+chgnet", choices=list(STACKS))
    p.add_argument("--ga-population", type=int)
    p.add_argument("--ga-z", type=int)
    p.add_argument("--gnoa-model", default="proxy")
    p.add_argument("--gnoa-evaluations", type=int)
    p.add_argument("--tolerance", type=float, default=0.01)
    p.add_argument("--quick", action="store_true")
    common.add_fan_out_options(p)
    p.add_argument("--out", default="bench_peers", help="folder, or a .json file (tables, "
                   "plots and runs then go to the folder of that name)")
    args = p.parse_args(argv)
    args.out, args.json_out = common.json_target(args.out, "peers.json")
    quick = args.quick
    defaults = {"compositions": ["CoAs2"] if quick else COMPOSITIONS, "methods": METHODS,
                "seeds": [0] if quick else [0, 1, 2], "budget": 60.0,
                "max_atoms": 12 if quick else 50, "initial_population": 4 if quick else 25,
                "ga_population": 4 if quick else 20,
                "gnoa_evaluations": 20 if quick else 200}
    return common.fill_defaults(args, defaults)


def main(argv=None):
    args = parse_args(argv)
    common.limit_threads()
    common.run_metadata("peers.py", argv)  # commit and date as of the start
    calls = [(method, comp, args, seed) for comp in args.compositions
             for method in args.methods for seed in args.seeds]

    def arrived(index, rec, seconds):
        method, comp, _, seed = calls[index]
        print(f"{comp:12} {method:11} seed {seed}: {rec['evaluations']:4d} evaluated, "
              f"best {common.fmt(rec['best_energy_per_atom'], 4)} eV/atom "
              f"({seconds:.0f} s){' ' + rec['error'] if rec['error'] else ''}", flush=True)

    records = common.fan_out("peers", "run_method", calls, args.workers, args.scheduler,
                             local=run_method, on_result=arrived)
    summary, rows = score(records, args.compositions, args.methods, args.tolerance)
    text = common.markdown_table(["composition", "method", "success rate",
                                  "lowest E (eV/atom)", "evaluations",
                                  "evals to success"], rows)
    print()
    print(text)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "peers.md").write_text(text + "\n")
    for comp in args.compositions:
        series = {f"{r['method']} s{r['seed']}": r["curve"] for r in records
                  if r["composition"] == comp}
        summary[comp]["plot"] = common.plot_curves(
            series, Path(args.out) / f"peers_{comp}.png", "structures evaluated",
            title=comp)
    common.write_json(args.json_out, "peers.py",
                      {k: v for k, v in vars(args).items()}, records, summary, argv)
    return records, summary


if __name__ == "__main__":
    main()
