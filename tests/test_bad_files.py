"""Structure and database files that are wrong in some way (issue 15, items 4 and 6).

Each is refused with one line naming the file and the reason, exit status 2, and is
left byte for byte as it was.  Fixtures are built here with ASE.
"""

import errno
import hashlib
from pathlib import Path

import pytest
from ase import Atoms
from ase.io import write
from ase.spacegroup import crystal

from ase_fuse.cli import main
from ase_fuse.composition import Composition
from ase_fuse.errors import InputError
from ase_fuse.search_setup import load_pool, read_structures

RUN = ["--calculator", "proxy", "--steps", "1", "--initial-population", "1", "--seed", "1",
       "-q"]


def rocksalt():
    return crystal(["Na", "Cl"], [(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225,
                   cellpar=[5.64, 5.64, 5.64, 90, 90, 90])


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def one_line_error(capsys, code, *words):
    """The command's stderr: exactly one ``ase-fuse: error:`` line holding ``words``."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ase-fuse: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def files(tmp_path):
    """``{kind: path}``: a cell over the atom limit, a half-occupied CIF, a molecule."""
    out = {}
    out["big"] = tmp_path / "big.extxyz"
    write(out["big"], rocksalt().repeat(2))                     # 64 atoms
    whole = tmp_path / "whole.cif"
    write(whole, rocksalt())
    lines = whole.read_text().splitlines()
    # the atom_site rows of Na: last column (occupancy) 1.0000 -> 0.5000
    half = [line.rsplit(" ", 1)[0] + " 0.5000" if line.split()[:1] == ["Na"] else line
            for line in lines]
    assert half != lines
    out["partial"] = tmp_path / "partial.cif"
    out["partial"].write_text("\n".join(half) + "\n")
    out["molecule"] = tmp_path / "molecule.xyz"
    write(out["molecule"], Atoms("NaCl", positions=[[0, 0, 0], [2.8, 0, 0]]), format="xyz")
    return out


REASONS = {"big": ("64 atoms", "max_atoms=8"), "partial": ("partial occupancy", "Na 0.5"),
           "molecule": ("no 3-D periodic cell",)}


@pytest.mark.parametrize("kind", sorted(REASONS))
@pytest.mark.parametrize("flag", ["--structures", "--pool"])
def test_cli_refuses_a_misfit_structure_file(tmp_path, capsys, files, kind, flag):
    path = files[kind]
    before = digest(path)
    code = main(["run", "NaCl", "--max-atoms", "8", flag, str(path),
                 "-o", str(tmp_path / "run")] + RUN)
    field = flag[2:]
    line = one_line_error(capsys, code, f"error: {field}: ", str(path), *REASONS[kind])
    other = "pool" if field == "structures" else "structures"
    assert f"{other}:" not in line
    assert digest(path) == before
    assert not list((tmp_path / "run").glob("*.traj"))           # nothing was relaxed


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_api_refuses_the_same_files(files, kind):
    comp = Composition("NaCl")
    for call, field in ((lambda p: read_structures([p], comp, max_atoms=8), "structures"),
                        (lambda p: load_pool(str(p), comp, max_atoms=8), "pool")):
        with pytest.raises(InputError) as info:
            call(files[kind])
        assert info.value.field == field and str(files[kind]) in str(info.value)


def test_fitting_structures_are_all_kept_not_filtered():
    cells = [rocksalt(), rocksalt().repeat((2, 1, 1))]
    assert [len(a) for a in read_structures(cells, Composition("NaCl"), max_atoms=16)] \
        == [8, 16]
    with pytest.raises(InputError, match=r"Atoms #2: 16 atoms, more than max_atoms=8"):
        read_structures(cells, Composition("NaCl"), max_atoms=8)


def test_a_multi_structure_file_names_the_structure(tmp_path):
    path = tmp_path / "two.extxyz"
    write(path, [rocksalt(), rocksalt().repeat((2, 1, 1))])
    with pytest.raises(InputError, match=r"two.extxyz \(structure 2 of 2\): 16 atoms"):
        read_structures([str(path)], Composition("NaCl"), max_atoms=8)


# -- databases --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_db(tmp_path_factory):
    """A real run's fuse.db (proxy, 2 steps)."""
    folder = tmp_path_factory.mktemp("good") / "run"
    assert main(["run", "NaCl", "--max-atoms", "4", "--initial-population", "2",
                 "--steps", "2", "--calculator", "proxy", "--seed", "1", "-q",
                 "-o", str(folder)]) == 0
    return folder / "fuse.db"


def bad_dbs(run_db, folder):
    """``{kind: path}`` of files named fuse.db that are not a usable database."""
    data = run_db.read_bytes()
    out = {}
    for kind, content in (("truncated", data[:len(data) // 3]),
                          ("header only", data[:100]),
                          ("garbage", bytes(range(256)) * 8),
                          ("empty", b""),
                          ("text", b"data_x\n_cell_length_a 5\n"),
                          # header byte 20 (reserved bytes per page) set to 1: every
                          # page is misread and sqlite's check reports many lines
                          ("reserved bytes", data[:20] + b"\x01" + data[21:]),
                          # fuzz finds: a vertical tab in the schema's SQL (sqlite quotes
                          # it back: a line break for str.splitlines) and a byte that is
                          # not UTF-8 in an index name (sqlite's text undecodable)
                          ("control character", data.replace(b"species_index ON",
                                                             b"species\x0bindex ON", 1)),
                          ("not utf-8", data.replace(b"number_index", b"\x80umber_index", 1))):
        path = folder / kind.replace(" ", "_") / "fuse.db"
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        out[kind] = path
    return out


@pytest.mark.parametrize("command", ["report", "plot", "run", "run --restart"])
def test_a_bad_db_is_one_line_and_left_alone(tmp_path, capsys, run_db, command):
    for kind, path in bad_dbs(run_db, tmp_path).items():
        before = digest(path)
        if command.startswith("run"):
            argv = ["run", "NaCl", "--max-atoms", "4", "-o", str(path.parent)] + RUN \
                + command.split()[1:]
        else:
            argv = [command, str(path)]
        code = main(argv)
        one_line_error(capsys, code, "db: ", str(path))
        assert digest(path) == before, kind
        assert sorted(p.name for p in path.parent.iterdir() if p.suffix in
                      (".traj", ".cif", ".png")) == [], kind


def test_report_and_plot_of_a_structure_file(tmp_path, capsys, files):
    path = files["partial"]
    before = digest(path)
    for command in ("report", "plot"):
        code = main([command, str(path)])
        one_line_error(capsys, code, "not an ase.db", str(path))
    assert digest(path) == before


def test_pool_db_that_is_not_a_db_is_not_written(tmp_path, capsys, run_db):
    for kind, path in bad_dbs(run_db, tmp_path).items():
        pool = path.with_name("pool.db")
        path.rename(pool)
        before = digest(pool)
        code = main(["run", "NaCl", "--max-atoms", "4", "--pool", str(pool),
                     "-o", str(tmp_path / "run" / kind)] + RUN)
        one_line_error(capsys, code, "pool: ", str(pool))
        assert digest(pool) == before, kind


@pytest.mark.parametrize("flag", ["--structures", "--pool"])
def test_empty_and_binary_structure_files(tmp_path, capsys, flag):
    empty = tmp_path / "empty.extxyz"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.extxyz"
    blank.write_bytes(b"\n\n\n")
    binary = tmp_path / "binary.cif"
    binary.write_bytes(bytes(range(256)) * 4)
    for path, words in ((empty, "is empty"), (blank, "holds no structure"),
                        (binary, "cannot read structure file")):
        before = digest(path)
        code = main(["run", "NaCl", "--max-atoms", "8", flag, str(path),
                     "-o", str(tmp_path / "run")] + RUN)
        one_line_error(capsys, code, f"{flag[2:]}: ", str(path), words)
        assert digest(path) == before


def test_unknown_generator_option_is_named_with_the_valid_ones(tmp_path, capsys):
    from ase_fuse.generators import available
    names = available()
    assert {"fuse", "gnoa"} <= set(names)
    for name in names:
        code = main(["run", "NaCl", "--max-atoms", "4", "--generator", name,
                     "--generator-options", "max_trie=3", "-o", str(tmp_path / name)] + RUN)
        line = one_line_error(capsys, code, "generator_options", "'max_trie'", name, "valid:")
        valid = line.split("valid:")[1]
        assert "rng" not in valid and "max_atoms" not in valid   # the search's own
        if name == "fuse":
            assert "did you mean 'max_tries'" in line and "site_fill" in valid
        if name == "gnoa":
            assert "evaluations" in valid and "rerank" in valid  # seeding keys too
        assert not (tmp_path / name / "best.cif").exists()


def test_bad_gnoa_option_values_are_one_line(tmp_path, capsys):
    for option, field in (("evaluations=abc", "evaluations"), ("space_groups=500", "space_groups"),
                          ("triclinic_only=3", "triclinic_only"),
                          ("formula_units=x", "formula_units")):
        code = main(["run", "NaCl", "--max-atoms", "4", "--generator", "gnoa",
                     "--generator-options", f"{option},model=proxy",
                     "-o", str(tmp_path / field)] + RUN)
        one_line_error(capsys, code, f"{field}: ")


def test_plot_into_a_read_only_folder(tmp_path, capsys, run_db, monkeypatch):
    from matplotlib.figure import Figure
    # tests run as root, where chmod does not stop a write: the OS error a read-only
    # file system gives is raised by the write itself
    def refuse(self, fname, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(fname))
    monkeypatch.setattr(Figure, "savefig", refuse)
    before = digest(run_db)
    code = main(["plot", str(run_db)])
    one_line_error(capsys, code, "output: ", "Read-only file system", "-o")
    monkeypatch.undo()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["plot", str(run_db), "-o", str(blocker / "e.png")])
    one_line_error(capsys, code, "output: ", str(blocker / "e.png"))
    for target, words in ((run_db, "the database being plotted"), (tmp_path / "e.xyz", ".xyz")):
        code = main(["plot", str(run_db), "-o", str(target)])
        one_line_error(capsys, code, "output: ", words)
    assert digest(run_db) == before
    assert main(["plot", str(run_db), "-o", str(tmp_path)]) == 0   # a folder: a PNG in it
    assert (tmp_path / "fuse.png").read_bytes()[:4] == b"\x89PNG"


def test_generate_below_one_grid_is_exit_2(tmp_path, capsys):
    code = main(["generate", "Na", "--max-atoms", "1", "-o", str(tmp_path / "x.extxyz")])
    one_line_error(capsys, code, "max_atoms: ", "no sub-module grid")
    assert not (tmp_path / "x.extxyz").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "", -1, 2.5, True])
def test_bad_pool_sizes_are_one_line(value):
    # fuzz find (floor env): pool_size=nan / inf / "" raised ValueError / OverflowError
    from ase_fuse.errors import InputError
    from ase_fuse.generators.gnoa.seeding import split_seeding_options
    for key in ("pool_size", "rerank_steps"):
        with pytest.raises(InputError) as err:
            split_seeding_options({key: value})
        assert err.value.field == key and len(str(err.value).splitlines()) == 1
