"""Fetch the MEGNet model files (``mvl_models/``) from megnet's source distribution.

The pretrained MEGNet models ship inside the megnet sdist, not its wheel, so
:func:`install_megnet_models` runs ``pip download --no-deps --no-binary :all:
megnet==1.3.2`` into a temporary folder and extracts ``mvl_models/`` to ``dest``.
"""

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from ase_fuse.errors import InputError

MEGNET_VERSION = "1.3.2"


def install_megnet_models(dest=None, version=MEGNET_VERSION, pip=None):
    """Download megnet's sdist and extract its ``mvl_models`` folder into ``dest``.

    ``dest`` defaults to the parent of
    :func:`~ase_fuse.generators.gnoa.models.default_megnet_folder`.  ``pip`` is the
    command prefix to run (default ``python -m pip``).  Returns the path of the
    extracted ``mvl_models`` folder; raises InputError with one line when pip or the
    archive fails.
    """
    if dest is None:
        from .models import default_megnet_folder
        dest = default_megnet_folder().parent
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise InputError(f"{dest} exists and is not a folder", field="dest")
    pip = list(pip) if pip is not None else [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory() as tmp:
        # --no-build-isolation: pip only reads the sdist's metadata; an isolated
        # build env would try (and fail) to install megnet's old build requirements
        command = pip + ["download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
                         f"megnet=={version}", "--dest", tmp]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as err:
            raise InputError(f"could not run pip: {err}", field="pip") from None
        if done.returncode != 0:
            last = (done.stderr or done.stdout or "").strip().splitlines()
            why = last[-1] if last else f"exit status {done.returncode}"
            raise InputError(f"pip download of megnet=={version} failed: {why}",
                             field="pip")
        archives = sorted(Path(tmp).glob("megnet-*.tar.gz"))
        if not archives:
            raise InputError(f"pip gave no megnet source archive in {tmp}", field="pip")
        return _extract_models(archives[0], dest)


def _extract_models(archive, dest):
    dest.mkdir(parents=True, exist_ok=True)
    found = False
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            if "mvl_models" not in parts or ".." in parts:
                continue
            start = parts.index("mvl_models")
            target = dest.joinpath(*parts[start:])
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src:
                    target.write_bytes(src.read())
                found = True
    if not found:
        raise InputError(f"{Path(archive).name} holds no mvl_models folder", field="pip")
    return dest / "mvl_models"
