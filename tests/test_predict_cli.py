"""``hpcnnp predict`` against the real n2p2's nnp-dataset / nnp-predict outputs.

The reference files live in ../shared/refdata (``refdata`` fixture); everything is
written into pytest's tmp_path.  Reference-derived columns (positions, lattice,
reference energies/forces after n2p2's unit round trip, indices) must be
byte-identical; NNP numbers agree to 1e-10 (energies, relative) and 1e-8 (forces,
absolute).
"""

from __future__ import annotations

import math
import shutil
from fractions import Fraction

import numpy as np
import pytest

from hpcnnp.cli import main
from hpcnnp.io import n2p2

CASES = ["H2O_RPBE-D3", "Cu2S_PBE", "synth5_A"]
N_STRUCTURES = {"H2O_RPBE-D3": 2, "Cu2S_PBE": 2, "synth5_A": 3}


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

def _run(capsys, *argv):
    rc = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def _split(path):
    """(header lines, data lines) of an n2p2 table file."""
    lines = path.read_text().splitlines()
    head = [ln for ln in lines if ln.startswith("#")]
    data = [ln for ln in lines if not ln.startswith("#")]
    return head, data


def _compare_table(ours, ref, exact_cols, rel=None, abs_=None, conf_col=None, conf=None):
    """Compare one data line: same width and tokens; exact_cols byte-identical,
    the other columns numerically close."""
    assert len(ours) == len(ref), (ours, ref)
    a, b = ours.split(), ref.split()
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        if i == conf_col:
            assert int(x) == conf
        elif i in exact_cols:
            assert x == y, (i, ours, ref)
        elif x != y:
            fx, fy = float(x), float(y)
            if rel is not None:
                assert abs(fx - fy) <= rel * abs(fy), (i, ours, ref)
            else:
                assert abs(fx - fy) <= abs_, (i, ours, ref)


@pytest.fixture(scope="module")
def predicted(refdata, tmp_path_factory):
    """Run hpcnnp predict --per-structure once per case; {case: output folder}."""
    out = {}
    for case in CASES:
        folder = tmp_path_factory.mktemp(case)
        rc = main(["predict", "--potential", str(refdata / case / "potential"),
                   "--data", str(refdata / case / "input.data"),
                   "--output-dir", str(folder), "--per-structure", "--quiet"])
        assert rc == 0
        out[case] = folder
    return out


# ---------------------------------------------------------------------------------------
# nnp-dataset files
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_energy_comp(case, refdata, predicted):
    ours_h, ours = _split(predicted[case] / "energy.comp")
    ref_h, ref = _split(refdata / case / "nnp-dataset" / "energy.comp")
    assert ours_h == ref_h                               # header byte for byte
    assert len(ours) == len(ref) == N_STRUCTURES[case]
    normalized = len(ref[0].split()) == 6
    exact = {0, 1, 2, 4} if normalized else {0, 1, 2}
    for a, b in zip(ours, ref):
        _compare_table(a, b, exact, rel=1e-10)
    assert ours[0] == ref[0]                             # one full line byte for byte


@pytest.mark.parametrize("case", CASES)
def test_forces_comp(case, refdata, predicted):
    ours_h, ours = _split(predicted[case] / "forces.comp")
    ref_h, ref = _split(refdata / case / "nnp-dataset" / "forces.comp")
    assert ours_h == ref_h
    assert len(ours) == len(ref)
    normalized = len(ref[0].split()) == 6
    exact = {0, 1, 2, 4} if normalized else {0, 1, 2}
    for a, b in zip(ours, ref):
        _compare_table(a, b, exact, abs_=1e-8)
    assert ours[0] == ref[0]


@pytest.mark.parametrize("case", CASES)
def test_output_data(case, refdata, predicted):
    ours = (predicted[case] / "output.data").read_text().splitlines()
    ref = (refdata / case / "nnp-dataset" / "output.data").read_text().splitlines()
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        key = b.split()[0]
        if key in ("begin", "comment", "lattice", "charge", "end"):
            assert a == b                                # incl. wrapped cell, comment
        elif key == "atom":
            # positions (wrapped by n2p2), element, charge, 0.0: byte for byte
            assert len(a) == len(b) and a.split()[:7] == b.split()[:7], (a, b)
            fa = np.array(a.split()[7:], float)
            fb = np.array(b.split()[7:], float)
            assert np.abs(fa - fb).max() <= 1e-8
        else:
            assert key == "energy" and len(a) == len(b)
            ea, eb = float(a.split()[1]), float(b.split()[1])
            assert abs(ea - eb) <= 1e-10 * abs(eb)
    # and the file reads back as n2p2 data
    images = n2p2.read_data(predicted[case] / "output.data")
    assert len(images) == N_STRUCTURES[case]


# ---------------------------------------------------------------------------------------
# nnp-predict files (one structure per reference folder, conf = 1 there)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name,exact,tol", [
    ("energy.out", {1, 2, 5}, dict(rel=1e-10)),
    ("nnatoms.out", {1, 2, 3, 4, 5}, dict(abs_=1e-10)),
    ("nnforces.out", {1, 2, 3, 4}, dict(abs_=1e-8)),
])
def test_per_structure_files(case, name, exact, tol, refdata, predicted):
    ours_h, ours = _split(predicted[case] / name)
    by_conf = {}
    for line in ours:
        by_conf.setdefault(int(line.split()[0]), []).append(line)
    assert sorted(by_conf) == list(range(1, N_STRUCTURES[case] + 1))
    for k in range(1, N_STRUCTURES[case] + 1):
        ref_h, ref = _split(refdata / case / "nnp-predict" / f"predict_{k}" / name)
        assert ours_h == ref_h
        assert len(by_conf[k]) == len(ref)
        for a, b in zip(by_conf[k], ref):
            _compare_table(a, b, exact, conf_col=0, conf=k, **tol)
            assert a[10] == " " and a[:10].strip() == str(k)   # conf is %10zu


@pytest.mark.parametrize("case", CASES)
def test_per_structure_output_data_equals_nnp_predict(case, refdata, predicted):
    """nnp-predict's output.data of structure k is block k of ours (reference parts)."""
    ours = list(n2p2.iter_data(predicted[case] / "output.data"))
    for k in range(N_STRUCTURES[case]):
        ref = n2p2.read_data(refdata / case / "nnp-predict" / f"predict_{k + 1}" /
                             "output.data")[0]
        assert np.array_equal(ours[k].positions, ref.positions)
        assert np.array_equal(ours[k].cell.array, ref.cell.array)
        assert np.allclose(ours[k].get_forces(), ref.get_forces(), rtol=0, atol=1e-8)


def test_big_box_energy(refdata, tmp_path, capsys):
    """The 1728-atom periodic box of synth5_A (energy and forces vs the dumps)."""
    case = refdata / "synth5_A"
    rc, out, err = _run(capsys, "--potential", case / "potential", "--data",
                        case / "big1728" / "input.data", "--output-dir", tmp_path, "-q")
    assert rc == 0, err
    ref_e = float(next(ln for ln in (case / "big1728" / "ref.energy").read_text()
                       .splitlines() if not ln.startswith("#")).split()[2])
    atoms = n2p2.read_data(tmp_path / "output.data")[0]
    assert math.isclose(atoms.get_potential_energy(), ref_e, rel_tol=1e-10)
    ref_f = np.array([ln.split()[3:6] for ln in (case / "big1728" / "ref.forces")
                      .read_text().splitlines() if not ln.startswith("#")], float)
    assert np.abs(atoms.get_forces() - ref_f).max() < 1e-8


# ---------------------------------------------------------------------------------------
# log, extrapolation, progress, options
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_error_table_matches_nnp_dataset_log(case, refdata, tmp_path, capsys):
    rc, out, err = _run(capsys, "-p", refdata / case / "potential", "-d",
                        refdata / case / "input.data", "-o", tmp_path, "-q")
    assert rc == 0
    log = (refdata / case / "nnp-dataset" / "nnp-dataset.log.0000").read_text()
    rows = [ln for ln in log.splitlines() if ln.startswith(("ENERGY", "FORCES"))]
    assert len(rows) == 2
    for row in rows:
        assert row in out.splitlines()


def test_extrapolation_warnings(refdata, tmp_path, capsys):
    case = refdata / "synth5_A"
    rc, out, err = _run(capsys, "-p", case / "potential", "-d", case / "input.data",
                        "-o", tmp_path, "-q", "--show-warnings")
    assert rc == 0
    lines = [ln for ln in err.splitlines() if ln.startswith("### NNP EXTRAPOLATION")]
    rows = (tmp_path / "extrapolation.csv").read_text().splitlines()
    assert rows[0] == "structure,atom,element,sf,type,value,min,max"
    assert len(lines) == len(rows) - 1 > 0
    # README: warnings expected for structures 2 and 3 (0-based 1 and 2)
    assert {int(r.split(",")[0]) for r in rows[1:]} >= {1, 2}
    assert f"Extrapolation warnings: {len(lines)} " in out
    # first warning line is consistent with the CSV row
    s, a, el, sf = rows[1].split(",")[:4]
    assert f"STRUCTURE: {int(s):6d} ATOM: {int(a):9d} ELEMENT: {el:>2s} " \
           f"SYMFUNC: {int(sf):4d}" in lines[0]
    # without --show-warnings: counted, not printed
    rc, out2, err2 = _run(capsys, "-p", case / "potential", "-d", case / "input.data",
                          "-o", tmp_path, "-q")
    assert "EXTRAPOLATION WARNING" not in err2
    assert f"Extrapolation warnings: {len(lines)} " in out2


def test_library_summary(refdata, tmp_path):
    from hpcnnp.predict import predict_dataset

    case = refdata / "synth5_A"
    s = predict_dataset(case / "potential", case / "input.data", tmp_path)
    assert (s.n_structures, s.n_atoms, s.forces) == (3, 324, True)
    assert math.isclose(s.energy_errors["RMSE"], 4.20764e2, rel_tol=1e-5)
    assert math.isclose(s.force_errors["RMSE"], 5.46525, rel_tol=1e-5)
    rows = (tmp_path / "extrapolation.csv").read_text().splitlines()
    assert s.extrapolation.n_warnings == len(rows) - 1
    assert not (tmp_path / "energy.out").exists()        # only with per_structure


def test_progress_lines(refdata, tmp_path, capsys):
    case = refdata / "Cu2S_PBE"
    rc, out, err = _run(capsys, "-p", case / "potential", "-d", case / "input.data",
                        "-o", tmp_path, "--progress-every", 1)
    assert rc == 0
    prog = [ln for ln in err.splitlines() if "structures/s" in ln]
    assert len(prog) == 2 and "1/2 structures" in prog[0] and "ETA" in prog[0]
    rc, out, err = _run(capsys, "-p", case / "potential", "-d", case / "input.data",
                        "-o", tmp_path, "--progress-every", 1, "--no-count")
    prog = [ln for ln in err.splitlines() if "structures/s" in ln]
    assert len(prog) == 2 and "ETA" not in prog[0]


def test_no_forces(refdata, tmp_path, capsys):
    case = refdata / "Cu2S_PBE"
    rc, out, err = _run(capsys, "-p", case / "potential", "-d", case / "input.data",
                        "-o", tmp_path, "-q", "--no-forces")
    assert rc == 0
    assert not (tmp_path / "forces.comp").exists()
    atoms = n2p2.read_data(tmp_path / "output.data")
    assert all(not a.get_forces().any() for a in atoms)
    assert "FORCES" not in out


def test_defaults_work_in_current_folder(refdata, tmp_path, capsys, monkeypatch):
    """--potential . and --data input.data by default, as n2p2's tools."""
    case = refdata / "H2O_RPBE-D3"
    for f in (case / "potential").iterdir():
        shutil.copy(f, tmp_path)
    shutil.copy(case / "input.data", tmp_path)
    monkeypatch.chdir(tmp_path)
    rc, out, err = _run(capsys, "-q")
    assert rc == 0
    ours_h, ours = _split(tmp_path / "energy.comp")
    ref_h, ref = _split(case / "nnp-dataset" / "energy.comp")
    assert ours_h == ref_h
    for a, b in zip(ours, ref):
        _compare_table(a, b, {0, 1, 2, 4}, rel=1e-10)


def test_help_has_text_for_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = capsys.readouterr().out
    from hpcnnp.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["predict"]
    for action in sub._actions:
        assert action.help, action.option_strings
    assert "--per-structure" in text and "--show-warnings" in text


# ---------------------------------------------------------------------------------------
# bad input: one-line error, exit 2, nothing left behind
# ---------------------------------------------------------------------------------------

def _only(folder, names=()):
    return sorted(p.name for p in folder.iterdir()) == sorted(names)


def test_missing_potential(refdata, tmp_path, capsys):
    out_dir = tmp_path / "out"
    rc, out, err = _run(capsys, "-p", tmp_path / "nope", "-d",
                        refdata / "synth5_A" / "input.data", "-o", out_dir)
    assert rc == 2
    assert "nope" in err and "not found" in err and len(err.strip().splitlines()) == 1
    assert not out_dir.exists() or _only(out_dir)


def test_missing_data(refdata, tmp_path, capsys):
    rc, out, err = _run(capsys, "-p", refdata / "synth5_A" / "potential", "-d",
                        tmp_path / "missing.data", "-o", tmp_path)
    assert rc == 2
    assert "missing.data" in err and "not found" in err
    assert _only(tmp_path)


def test_truncated_input(refdata, tmp_path, capsys):
    lines = (refdata / "synth5_A" / "input.data").read_text().splitlines(True)
    cut = 150                                          # inside structure 2
    bad = tmp_path / "truncated.data"
    bad.write_text("".join(lines[:cut]))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "energy.comp").write_text("old\n")      # must survive unchanged
    rc, out, err = _run(capsys, "-p", refdata / "synth5_A" / "potential", "-d", bad,
                        "-o", out_dir)
    assert rc == 2
    assert f"truncated.data:{cut}:" in err             # file and line
    assert "truncated" in err and len(err.strip().splitlines()) == 1
    assert _only(out_dir, ["energy.comp"])
    assert (out_dir / "energy.comp").read_text() == "old\n"


def test_bad_atom_line(refdata, tmp_path, capsys):
    lines = (refdata / "synth5_A" / "input.data").read_text().splitlines(True)
    tokens = lines[5].split()
    assert tokens[0] == "atom"
    tokens[4] = "Xx"
    lines[5] = " ".join(tokens) + "\n"
    bad = tmp_path / "bad.data"
    bad.write_text("".join(lines))
    out_dir = tmp_path / "out"
    rc, out, err = _run(capsys, "-p", refdata / "synth5_A" / "potential", "-d", bad,
                        "-o", out_dir)
    assert rc == 2 and "bad.data:6:" in err
    assert not out_dir.exists()                 # nothing written, not even the folder


def test_element_not_in_potential(refdata, tmp_path, capsys):
    text = (refdata / "Cu2S_PBE" / "input.data").read_text()
    bad = tmp_path / "wrong.data"
    bad.write_text(text)
    rc, out, err = _run(capsys, "-p", refdata / "H2O_RPBE-D3" / "potential", "-d", bad,
                        "-o", tmp_path / "o")
    assert rc == 2 and "wrong.data:" in err and "not one of the potential" in err


# ---------------------------------------------------------------------------------------
# n2p2 arithmetic helpers
# ---------------------------------------------------------------------------------------

def test_fma_correctly_rounded():
    from hpcnnp.predict import fma

    rng = np.random.default_rng(1)
    a = rng.normal(size=2000) * 10.0 ** rng.integers(-5, 5, 2000)
    b = rng.normal(size=2000) * 10.0 ** rng.integers(-5, 5, 2000)
    c = -a * b * (1 + rng.normal(size=2000) * 1e-12)   # heavy cancellation
    c[::3] = rng.normal(size=len(c[::3]))
    got = fma(a, b, c)
    for x, y, z, g in zip(a.tolist(), b.tolist(), c.tolist(), got.tolist()):
        want = float(Fraction(x) * Fraction(y) + Fraction(z))
        assert g == want
        assert fma(x, y, z) == want                     # scalar path


def test_remap_reproduces_n2p2(refdata):
    from hpcnnp.predict import n2p2_remap

    for case in ("synth5_A",):                          # fully triclinic cells
        ref = n2p2.read_data(refdata / case / "nnp-dataset" / "output.data")
        for k, atoms in enumerate(n2p2.iter_data(refdata / case / "input.data")):
            if atoms.pbc.all():
                wrapped = n2p2_remap(atoms.positions, atoms.cell.array)
                assert np.array_equal(wrapped, ref[k].positions)
                plain = n2p2_remap(atoms.positions, atoms.cell.array, contract=False)
                assert np.abs(plain - wrapped).max() < 1e-14


def test_count_structures(refdata, tmp_path):
    from hpcnnp.predict import count_structures

    assert count_structures(refdata / "synth5_A" / "input.data") == 3
    assert count_structures(refdata / "H2O_RPBE-D3" / "input.data") == 2  # " begin"
    p = tmp_path / "x.data"
    p.write_text("begin\nend\nbeginx\n  begin\nend\nbegin")
    assert count_structures(p, chunk_size=3) == 3
