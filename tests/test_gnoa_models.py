"""GN-OA energy models: CHGNet batching, calculator/proxy wrappers, clear install errors."""

import sys
import tarfile
import textwrap

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from ase_fuse.errors import InputError
from ase_fuse.generators.gnoa.models import (CalculatorModel, MatGLModel, MEGNetModel,
                                             ProxyModel, make_model, megnet_model_path)
from ase_fuse.generators.gnoa.models_install import install_megnet_models


def _nacl(a=5.64):
    return bulk("NaCl", "rocksalt", a=a)


@pytest.fixture(scope="module")
def chgnet_model():
    pytest.importorskip("chgnet")
    import torch
    torch.set_num_threads(1)
    from ase_fuse.generators.gnoa.models import CHGNetModel
    return CHGNetModel(batch_size=4)


def test_chgnet_nacl_finite_and_batched_equals_single(chgnet_model):
    rattled = _nacl().repeat((2, 1, 1))
    rattled.rattle(0.05, seed=1)
    structures = [_nacl(), _nacl(5.9), rattled, bulk("Cu", "fcc", a=3.61)]
    batched = chgnet_model.predict(structures)
    single = np.array([chgnet_model.predict([s])[0] for s in structures])
    assert batched.shape == (4,)
    assert np.all(np.isfinite(batched))
    assert np.allclose(batched, single, atol=1e-4)
    # compressed rock salt is a different structure: a different energy
    assert abs(batched[0] - batched[1]) > 1e-3
    assert chgnet_model.predict([]).shape == (0,)


def test_calculator_model_is_energy_per_atom():
    cu = bulk("Cu", "fcc", a=3.7).repeat(2)
    reference = cu.copy()
    reference.calc = EMT()
    expected = reference.get_potential_energy() / len(cu)
    assert np.isclose(CalculatorModel(EMT()).predict([cu])[0], expected)
    assert cu.calc is None  # the input is not modified


def test_proxy_model_prefers_the_right_lattice_constant_scale():
    model = ProxyModel("NaCl")
    e = model.predict([_nacl(5.64), _nacl(9.0)])
    assert np.all(np.isfinite(e))
    assert e[0] < e[1]  # bound rock salt below an expanded one


def test_make_model():
    fake = CalculatorModel(EMT())
    assert make_model(fake, "Cu") is fake
    assert isinstance(make_model(EMT(), "Cu"), CalculatorModel)
    with pytest.raises(InputError, match="model: unknown model 'alignn'"):
        make_model("alignn", "NaCl")


# MEGNet itself (TensorFlow): tests/test_gnoa_megnet.py, run by .ci/megnet-tests


def _one_line(error):
    text = str(error.value)
    assert "\n" not in text
    return text


def test_missing_megnet_model_is_one_clear_line(tmp_path):
    with pytest.raises(InputError) as error:
        MEGNetModel(folder=tmp_path)
    text = _one_line(error)
    assert text.startswith("model: MEGNet model Eform_MP_2019 not found")
    assert "pip install tensorflow-cpu tf-keras megnet" in text
    assert "ase-fuse models install megnet" in text


def test_missing_matgl_folder_is_one_clear_line(tmp_path):
    with pytest.raises(InputError) as error:
        MatGLModel(tmp_path / "M3GNet-MP-2018.6.1-Eform")
    assert "not found" in _one_line(error)


def test_megnet_install_reports_pip_failure(tmp_path):
    with pytest.raises(InputError) as error:
        install_megnet_models(tmp_path / "models", pip=[sys.executable, "-c",
                                                        "import sys; sys.exit('no network')"])
    assert _one_line(error) == "pip: pip download of megnet==1.3.2 failed: no network"
    with pytest.raises(InputError, match="could not run pip"):
        install_megnet_models(tmp_path / "models", pip=[str(tmp_path / "no-such-pip")])
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        install_megnet_models(a_file)


def test_megnet_install_extracts_mvl_models(tmp_path):
    """A stand-in pip that 'downloads' a small sdist: only mvl_models/ is extracted."""
    source = tmp_path / "src" / "megnet-1.3.2"
    (source / "mvl_models" / "mp-2019.4.1").mkdir(parents=True)
    (source / "mvl_models" / "mp-2019.4.1" / "formation_energy.hdf5").write_text("{}")
    (source / "setup.py").write_text("")
    archive = tmp_path / "megnet-1.3.2.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="megnet-1.3.2")
    fake_pip = tmp_path / "fake_pip.py"
    fake_pip.write_text(textwrap.dedent(f"""
        import shutil, sys
        args = sys.argv[1:]
        assert args[:2] == ["download", "--no-deps"] and "megnet==1.3.2" in args
        shutil.copy({str(archive)!r}, args[args.index("--dest") + 1])
    """))
    out = install_megnet_models(tmp_path / "models", pip=[sys.executable, str(fake_pip)])
    assert out == tmp_path / "models" / "mvl_models"
    assert megnet_model_path(out).read_text() == "{}"  # where MEGNetModel looks
    assert not (tmp_path / "models" / "setup.py").exists()
