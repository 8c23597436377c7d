"""The corrupt-input corpus: every damaged input file of ``predict``, ``scale`` and
``train`` ends in one line naming the file (and the line where there is one), exit
status 2, no traceback, and no output file and no temporary file written.

The commands run in this process (``hpcnnp.cli.main``; fast): what they print on
standard error is what a user sees."""

import os
import re
import shutil

import pytest
from _reliability import one_clear_line, temp_files

from hpcnnp.cli import main


class _Proc:
    """What :func:`one_clear_line` needs of a finished command."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def hpcnnp(capsys, monkeypatch):
    def run(*args, cwd=None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        rc = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return _Proc(rc, out, err)
    return run

# --------------------------------------------------------------------- corruptions
# each: (id, file, function text -> text (or bytes -> bytes), expected fragment)


def _lines(text):
    return text.splitlines(keepends=True)


def _first_atom_index(text):
    return next(i for i, ln in enumerate(_lines(text)) if ln.startswith("atom"))


def _edit_atom(text, fn):
    lines = _lines(text)
    i = _first_atom_index(text)
    lines[i] = fn(lines[i])
    return "".join(lines)


def _atom_fields(fn):
    def edit(line):
        f = line.split()
        fn(f)
        return " ".join(f) + "\n"
    return edit


def _set_field(k, value):
    return lambda t: _edit_atom(t, _atom_fields(lambda f: f.__setitem__(k, value)))


def _sub(pattern, repl):
    return lambda t: re.sub(pattern, repl, t, count=1)


DATA = [
    ("truncated", lambda t: "".join(_lines(t)[: len(_lines(t)) // 2 + 3]), "truncated"),
    ("no-begin", lambda t: t.split("\n", 1)[1], ""),
    ("short-atom-line",
     lambda t: _edit_atom(t, _atom_fields(lambda f: f.__delitem__(slice(6, None)))), ""),
    ("bad-number", _set_field(1, "1.0x"), "1.0x"),
    ("unknown-element", _set_field(4, "Xx"), "Xx"),
    ("element-not-in-potential", _set_field(4, "Zr"), "Zr"),
    ("two-lattice-lines", _sub(r"lattice[^\n]*\n(?=atom)", ""), "lattice"),
    ("double-end", lambda t: t.replace("end\n", "end\nend\n", 1), ""),
    ("bad-energy", _sub(r"energy +\S+", "energy abc"), "energy"),
    ("garbage", lambda t: bytes(range(256)) * 40, ""),
    ("empty", lambda t: "", ""),
    ("overlapping-atoms", None, "closer than 0.1"),
]

NN = [
    ("no-elements", lambda t: re.sub(r"(?m)^elements .*\n", "", t), "elements"),
    ("unknown-sf-type", _sub(r"(?m)^(symfunction_short \S+) 2 ", r"\1 99 "), "99"),
    ("short-sf-line", _sub(r"(?m)^(symfunction_short \S+ 2 \S+) .*$", r"\1"),
     "symmetry function type 2"),
    ("element-count",
     lambda t: t.replace("number_of_elements 2", "number_of_elements 3"), "number_of_elements"),
    ("garbage", lambda t: bytes(range(256)) * 4, ""),
]

SCALING = [
    ("truncated", lambda t: "".join(_lines(t)[: len(_lines(t)) // 2]), ""),
    ("bad-number", _sub(r"(?m)^(\s*\d+\s+\d+\s+)\S+", r"\g<1>nope"), "nope"),
    ("empty", lambda t: "", ""),
]

WEIGHTS = [
    ("truncated", lambda t: "".join(_lines(t)[: len(_lines(t)) // 2]), ""),
    ("bad-number", lambda t: re.sub(r"(?m)^(\s*)-?\d\S*", r"\1w", t, count=1), ""),
]


def _overlap(text):
    """Two atoms of structure 1 at the same place."""
    lines = _lines(text)
    i = _first_atom_index(text)
    a, b = lines[i].split(), lines[i + 1].split()
    b[1:4] = a[1:4]
    lines[i + 1] = " ".join(b) + "\n"
    return "".join(lines)


def _damage(path, fn):
    raw = path.read_bytes()
    if fn is None:
        path.write_text(_overlap(raw.decode()))
        return
    try:
        out = fn(raw.decode())
    except TypeError:
        out = fn(raw)
    path.write_bytes(out if isinstance(out, bytes) else out.encode())


def _check(proc, path, fragment, out_dir):
    line = one_clear_line(proc, path.name)
    assert proc.returncode == 2, proc.returncode
    assert fragment in line, (fragment, line)
    if out_dir.exists():              # nothing but a log may have been started
        assert not [p for p in os.listdir(out_dir) if not p.startswith("nnp-train.log")], \
            os.listdir(out_dir)
    assert temp_files(path.parent) == []


@pytest.fixture
def copies(small_potential, tmp_path):
    pot = tmp_path / "pot"
    shutil.copytree(small_potential["pot"], pot)
    data = tmp_path / "input.data"
    shutil.copy(small_potential["data"], data)
    return pot, data


def _cases(*groups):
    """pytest parameters (file name, damage, fragment) with ids FILE-CASE."""
    return [pytest.param(name, fn, fragment, id=f"{name}-{case}")
            for name, cases in groups for case, fn, fragment in cases]


@pytest.mark.parametrize("name, fn, fragment", _cases(
    ("input.data", DATA), ("input.nn", NN), ("scaling.data", SCALING),
    ("weights.003.data", WEIGHTS)))
def test_predict_corrupt_input(hpcnnp, copies, tmp_path, name, fn, fragment):
    pot, data = copies
    path = data if name == "input.data" else pot / name
    _damage(path, fn)
    proc = hpcnnp("predict", "-q", "-p", pot, "-d", data, "-o", tmp_path / "out")
    _check(proc, path, fragment, tmp_path / "out")


@pytest.mark.parametrize("case, fn, fragment",
                         [c for c in DATA if c[0] != "overlapping-atoms"],
                         ids=[c[0] for c in DATA if c[0] != "overlapping-atoms"])
def test_scale_corrupt_data(hpcnnp, train_dir, case, fn, fragment):
    _damage(train_dir / "input.data", fn)
    proc = hpcnnp("scale", "-q", "--progress-interval", "0", "-o", "stats", cwd=train_dir)
    _check(proc, train_dir / "input.data", fragment, train_dir / "stats")
    assert not (train_dir / "stats" / "scaling.data").exists()


@pytest.mark.parametrize("name, fn, fragment", _cases(
    ("input.data", DATA), ("input.nn", NN), ("scaling.data", SCALING)))
def test_train_corrupt_input(hpcnnp, train_dir, name, fn, fragment):
    _damage(train_dir / name, fn)
    proc = hpcnnp("train", "-q", "--no-plots", "-o", "out", cwd=train_dir)
    _check(proc, train_dir / name, fragment, train_dir / "out")
