"""GN-OA with the paper's energy model: MEGNet ``Eform_MP_2019`` on TensorFlow.

Marked ``megnet``.  They skip, saying why, where megnet or its model files are absent
(the main suite and the floor phases); CI runs them in their own virtual environment
with the models installed and fails if any of them skips (``.ci/megnet-tests``).
TensorFlow starts slowly: the model is loaded once for the module, from a copy of the
installed model folder and with every socket refused, so the load is known to be offline.
"""

import importlib.util
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk
from ase.db import connect

from ase_fuse.generators.gnoa.models import MEGNET_FILES, megnet_model_path


def _why_not_ready():
    if importlib.util.find_spec("megnet") is None:
        return ("megnet is not installed (pip install -e '.[megnet]'; CI runs these "
                "tests in .ci/megnet-tests)")
    if not megnet_model_path().exists():
        return (f"the MEGNet model files are not at {megnet_model_path()}: run "
                "`ase-fuse models install megnet` (or set ASE_FUSE_MODELS)")
    if importlib.util.find_spec("pyxtal") is None:
        return "GN-OA needs pyxtal"
    return None


pytestmark = [pytest.mark.megnet,
              pytest.mark.skipif(_why_not_ready() is not None,
                                 reason=_why_not_ready() or "ready")]

NACL_README = -2.104  # eV/atom, rock salt a = 5.64 A, quoted in README.md
GNOA = dict(optimizer="tpe", evaluations=30, formula_units=[1, 2], progress=False,
            space_groups=range(1, 75))


class NetworkUsed(RuntimeError):
    pass


@pytest.fixture(scope="module")
def offline_load(tmp_path_factory):
    """``(model, attempts)``: MEGNet loaded from a folder holding only its own files,
    with socket connections and name look-ups refused (and counted)."""
    installed = megnet_model_path()
    folder = tmp_path_factory.mktemp("models") / "mvl_models"
    copy = megnet_model_path(folder)
    copy.parent.mkdir(parents=True)
    for path in installed.parent.glob(installed.name + "*"):  # .hdf5 and its .json
        shutil.copy(path, copy.parent / path.name)
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[1:] if args and isinstance(args[0], socket.socket) else args)
        raise NetworkUsed("MEGNet tried to use the network")

    from ase_fuse.generators.gnoa.models import MEGNetModel
    with pytest.MonkeyPatch.context() as patch:
        for name in ("connect", "connect_ex"):
            patch.setattr(socket.socket, name, refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        patch.setattr(socket, "create_connection", refuse)
        with pytest.raises(NetworkUsed):  # the refusal itself works
            socket.create_connection(("pypi.org", 443), timeout=1)
        attempts.clear()
        model = MEGNetModel(folder=folder, threads=1)
    return model, attempts, folder


@pytest.fixture(scope="module")
def megnet(offline_load):
    return offline_load[0]


def test_model_loads_offline_from_the_model_folder_alone(offline_load):
    model, attempts, folder = offline_load
    assert attempts == []
    assert model.path == folder / MEGNET_FILES["Eform_MP_2019"]
    assert sorted(p.name for p in model.path.parent.iterdir()) == \
        ["formation_energy.hdf5", "formation_energy.hdf5.json"]


def test_rock_salt_nacl_is_the_readme_value(megnet):
    energies = megnet.predict([bulk("NaCl", "rocksalt", a=5.64),
                               bulk("NaCl", "rocksalt", a=5.64, cubic=True)])
    assert energies == pytest.approx([NACL_README, NACL_README], abs=5e-4)
    assert megnet.predict([]).shape == (0,)


def test_named_model_reads_the_installed_folder(megnet):
    from ase_fuse.generators.gnoa.models import MEGNetModel, make_model
    named = make_model("megnet", "NaCl")
    assert isinstance(named, MEGNetModel) and named.path == megnet_model_path()
    cscl = bulk("NaCl", "cesiumchloride", a=3.4)
    assert named.predict([cscl]) == pytest.approx(megnet.predict([cscl]), abs=1e-6)


def _run(model, seed, composition="SrTiO3"):
    from ase_fuse.generators.gnoa import GnoaGenerator
    gen = GnoaGenerator(composition, max_atoms=10, model=model, seed=seed,
                        **dict(GNOA, evaluations=80))
    return gen, gen.run()


def _same(first, second):
    return len(first) == len(second) and all(
        a.get_chemical_symbols() == b.get_chemical_symbols()
        and np.array_equal(a.cell.array, b.cell.array)
        and np.array_equal(a.positions, b.positions) for a, b in zip(first, second))


def test_gnoa_with_megnet_exact_composition_and_seeded(megnet):
    gen, pool = _run(megnet, seed=5)
    assert len(pool) >= 10
    for atoms in pool:
        z = atoms.info["formula_units"]
        assert z in (1, 2)
        counts = {s: atoms.get_chemical_symbols().count(s) for s in set(atoms.symbols)}
        assert counts == {"Sr": z, "Ti": z, "O": 3 * z}
    energies = [a.info["predicted_energy"] for a in pool]
    assert energies == sorted(energies)
    # the energies are MEGNet's formation energies of the structures kept
    assert megnet.predict(pool[:5]) == pytest.approx(energies[:5], abs=1e-5)
    _, again = _run(megnet, seed=5)
    assert _same(pool, again)
    assert [a.info["predicted_energy"] for a in again] == pytest.approx(energies, abs=1e-6)
    _, other = _run(megnet, seed=6)
    assert not _same(pool, other)


def test_search_with_megnet_gnoa_feeds_its_pool_to_moves_13_14(megnet, tmp_path):
    from ase_fuse import FuseBasinHopping
    from ase_fuse.calculators import ProxyPotential, Tier, TieredRelaxer
    relaxer = TieredRelaxer([Tier(ProxyPotential.for_composition("NaCl"), fmax=0.2,
                                  steps=15, name="proxy")])
    # random_share=0: the whole start is MEGNet's ranked pool (the "auto" default would
    # make half of this 4-atom population random symmetric starts)
    options = dict(GNOA, model=megnet, evaluations=40, random_share=0)
    opt = FuseBasinHopping("NaCl", relaxer=relaxer, max_atoms=4, initial_population=2,
                           seed=3, directory=tmp_path / "run", logfile=None,
                           generator="gnoa", generator_options=options,
                           move_weights={13: 1, 14: 1})
    opt.run(steps=0)
    start = list(opt.context.pool)
    assert start and all(a.info["origin"] == "gnoa" for a in start)
    # the pool is MEGNet's: its predicted energies are MEGNet's
    assert megnet.predict(start[:3]) == pytest.approx(
        [a.info["predicted_energy"] for a in start[:3]], abs=1e-5)
    opt.run(steps=5)
    with connect(opt.records.path, use_lock_file=False) as db:
        rows = list(db.select())
    assert {r.origin for r in rows if r.step == 0} == {"gnoa"}
    from_pool = [r for r in rows if r.step > 0 and r.data["origin"].get("source") == "pool"]
    assert from_pool, "moves 13/14 never drew from the MEGNet GN-OA pool"
    assert all(r.move in (13, 14) and r.data["origin"]["made_by"] == "gnoa"
               for r in from_pool)
    assert len(opt.context.pool) == len(start) - len(from_pool)


def test_tensorflow_imported_with_keras_3_is_one_clear_line(tmp_path):
    """megnet's models need tf-keras: a process that imported TensorFlow without
    TF_USE_LEGACY_KERAS=1 gets a line saying so, not Keras 3's error about 'lr'."""
    code = ("import os; os.environ.pop('TF_USE_LEGACY_KERAS', None); import tensorflow\n"
            "from ase_fuse.errors import InputError\n"
            "from ase_fuse.generators.gnoa.models import MEGNetModel\n"
            "try:\n    MEGNetModel()\nexcept InputError as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300).stdout.strip().splitlines()
    assert out[-1] == ("model: tensorflow was imported before MEGNet without "
                       "TF_USE_LEGACY_KERAS=1; set it before importing tensorflow")
