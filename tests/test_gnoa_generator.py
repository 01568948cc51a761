"""GnoaGenerator: sorted pool, extxyz/db output with energies, generate(), rerank, bad input."""

import numpy as np
import pytest
from ase.db import connect
from ase.io import read

from ase_fuse.errors import GenerationError, InputError
from ase_fuse.generators.gnoa import GnoaGenerator, rerank
from ase_fuse.generators.gnoa.models import FunctionModel

pytest.importorskip("pyxtal")

GROUPS = range(1, 75)  # triclinic to orthorhombic: quick to set up


def _density_model():
    """A cheap stand-in energy: denser is lower (energy = volume per atom / 10)."""
    return FunctionModel(lambda atoms: atoms.get_volume() / len(atoms) / 10.0)


def _generator(**options):
    settings = dict(max_atoms=8, formula_units=[1, 2], model="proxy", optimizer="random",
                    evaluations=60, space_groups=GROUPS, seed=3, progress=False)
    settings.update(options)
    return GnoaGenerator("NaCl", **settings)


def test_extxyz_output_and_sorted_result(tmp_path):
    path = tmp_path / "pool.extxyz"
    gen = _generator(output=path)
    best = gen.generate_many(5)
    energies = [a.info["predicted_energy"] for a in best]
    assert len(best) == 5 and energies == sorted(energies)
    pool_energies = [a.info["predicted_energy"] for a in gen.pool]
    assert energies == pool_energies[:5] and pool_energies == sorted(pool_energies)
    written = read(path, index=":")
    assert len(written) == len(gen.pool) > 5
    assert sorted(a.info["predicted_energy"] for a in written) == pytest.approx(pool_energies)
    for atoms in written:
        assert atoms.info["origin"] == "gnoa"
        assert 1 <= atoms.info["spacegroup"] < 75
        assert gen.composition.formula_units_of(atoms) in (1, 2)
    # the energies are the proxy's energies of the structures written
    from ase_fuse.generators.gnoa.models import ProxyModel
    again = ProxyModel("NaCl").predict(written[:5])
    assert np.allclose(again, [a.info["predicted_energy"] for a in written[:5]], atol=1e-8)


def test_db_output(tmp_path):
    path = tmp_path / "pool.db"
    gen = _generator(output=path, model=_density_model(), formula_units=1)
    gen.generate_many(3)
    with connect(path) as db:
        rows = list(db.select())
    assert len(rows) == len(gen.pool) > 0
    for row in rows:
        assert row.origin == "gnoa"
        assert row.predicted_energy == pytest.approx(row.volume / row.natoms / 10.0)


def test_seeded_repeatable_and_generate_walks_the_pool():
    first = _generator(model=_density_model(), optimizer="pso")
    second = _generator(model=_density_model(), optimizer="pso")
    a = [x.info["predicted_energy"] for x in first.generate_many(10)]
    b = [x.info["predicted_energy"] for x in second.generate_many(10)]
    assert a == b
    walked = [first.generate() for _ in range(4)]
    assert [x.info["predicted_energy"] for x in walked] == a[:4]
    only_z2 = first.generate(formula_units=2)
    capped = _generator(model=_density_model(), formula_units=range(1, 9))
    assert capped.z_values == [1, 2, 3, 4]  # 8 atoms at most
    assert first.composition.formula_units_of(only_z2) == 2


def test_generate_runs_only_the_requested_z_and_runs_dry():
    gen = _generator(model=_density_model(), formula_units=[1, 2], evaluations=20)
    atoms = gen.generate(formula_units=1)
    assert gen.composition.formula_units_of(atoms) == 1
    assert set(gen.results) == {1}
    with pytest.raises(GenerationError, match="no more valid structures"):
        for _ in range(100):
            gen.generate(formula_units=1)


def test_progress_goes_to_stderr(capsys):
    _generator(model=_density_model(), formula_units=1, progress=True).generate_many(1)
    out, err = capsys.readouterr()
    assert out == ""
    assert "gnoa NaCl z=1: 60/60 evaluations" in err
    _generator(model=_density_model(), formula_units=1, progress=False).generate_many(1)
    assert capsys.readouterr().err == ""


def test_tpe_generator_uses_its_overhead_timing():
    gen = _generator(model=_density_model(), optimizer="tpe", formula_units=1,
                     evaluations=40)
    gen.generate_many(1)
    result = gen.results[1]
    assert len(result.losses) == 40
    assert 0.0 < result.overhead_share < 1.0


def test_rerank_with_a_cheap_potential():
    gen = _generator(model=_density_model(), formula_units=1)
    pool = gen.generate_many(12)
    from ase_fuse.calculators import ProxyPotential
    top, rest = rerank(pool, ProxyPotential.for_composition(gen.composition), top=5)
    assert len(top) == 5 and len(rest) == len(pool) - 5
    scores = [a.info["rerank_energy"] for a in top + rest]
    assert scores == sorted(scores)
    check = top[0].copy()
    check.calc = ProxyPotential.for_composition(gen.composition)
    assert scores[0] == pytest.approx(check.get_potential_energy() / len(check))
    # a callable works too, and the input pool is untouched
    top2, _ = rerank(pool, lambda atoms: -atoms.get_volume(), top=1)
    assert top2[0].get_volume() == max(a.get_volume() for a in pool)
    assert "rerank_energy" not in pool[0].info


@pytest.mark.parametrize("options, field", [
    ({"optimizer": "simplex"}, "optimizer"),
    ({"model": "alignn"}, "model"),
    ({"space_groups": []}, "space_groups"),
    ({"formula_units": [5]}, "formula_units"),
    ({"evaluations": 0}, "evaluations"),
])
def test_bad_input(options, field):
    with pytest.raises(InputError) as error:
        _generator(**options)
    assert str(error.value).startswith(f"{field}: ")


def test_registry_finds_it_without_heavy_imports():
    import subprocess
    import sys
    code = ("import sys; from ase_fuse.generators import registry; "
            "cls = registry.get('gnoa'); "
            "print(cls.__name__, [m for m in ('torch', 'chgnet', 'hyperopt') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "GnoaGenerator []"
