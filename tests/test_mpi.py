"""hpcnnp.mpi: launcher detection, consistency check, collective errors.

Serial behaviour in-process; the parallel rules under ``mpiexec -n 2``
(tests/_mpi_module_check.py): an error on every rank is one message, an error on one
rank aborts the job with one line naming the rank (no hang), ranks with different
inputs stop at once naming the rank and the difference.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from hpcnnp import mpi
from hpcnnp.errors import HpcnnpError

HERE = Path(__file__).resolve().parent


def test_serial_without_launcher(monkeypatch):
    for var in mpi.LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)
    assert not mpi.launched()
    assert mpi.world() is None
    assert mpi.rank_size(None) == (0, 1)
    monkeypatch.setenv("PMI_SIZE", "4")
    assert mpi.launched() and mpi.launcher_size() == 4
    monkeypatch.setenv("HPCNNP_MPI", "0")
    assert not mpi.launched()


def test_serial_helpers_are_transparent():
    assert mpi.run_collectively(None, "x", lambda a: a + 1, 1) == 2
    mpi.check_consistency(None, {"--epochs": 3})
    mpi.agree(None, None)
    with pytest.raises(HpcnnpError, match="boom"):
        mpi.agree(None, HpcnnpError("boom"))
    with pytest.raises(HpcnnpError, match="boom"):
        mpi.collective(None, _raise, HpcnnpError("boom"))


def _raise(exc):
    raise exc


def test_file_digest(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("x" * 100)
    b.write_text("x" * 99 + "y")
    assert mpi.FileDigest(str(a)).describe() != mpi.FileDigest(str(b)).describe()
    assert mpi.FileDigest(str(tmp_path / "c")).describe()[1] == "file not found"
    assert "folder" in mpi.FileDigest(str(tmp_path)).describe()[1]


def test_large_file_digest_is_sampled(tmp_path, monkeypatch):
    monkeypatch.setattr(mpi, "FULL_HASH_LIMIT", 1000)
    monkeypatch.setattr(mpi, "_BLOCK", 100)
    path = tmp_path / "big"
    data = bytearray(b"a" * 100_000)
    path.write_bytes(bytes(data))
    before = mpi.FileDigest(str(path)).describe()
    data[-1:] = b"b"                       # the last block is always read
    path.write_bytes(bytes(data))
    assert mpi.FileDigest(str(path)).describe() != before


def test_options_items():
    import argparse
    ns = argparse.Namespace(epochs=3, output_dir="x", func=print)
    assert mpi.options_items(ns) == {"--epochs": 3, "--output-dir": "x"}


def _run(mpiexec, *args, timeout=120):
    return subprocess.run([mpiexec, "-n", "2", sys.executable,
                           str(HERE / "_mpi_module_check.py"), *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.mpi
def test_consistent_ranks_run(mpiexec):
    proc = _run(mpiexec, "ok")
    assert proc.returncode == 0, proc.stderr
    assert "rank 0 OK" in proc.stdout and "rank 1 OK" in proc.stdout


@pytest.mark.mpi
def test_different_option_named_with_rank(mpiexec):
    proc = _run(mpiexec, "option")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("hpcnnp check: error: MPI ranks disagree on --epochs: "
                                   "rank 0 has 3, rank 1 has 4 (all ranks must be started "
                                   "with the same inputs and options; a stale copy of a "
                                   "file on one node?)")


@pytest.mark.mpi
def test_different_file_named_with_rank(mpiexec, tmp_path):
    path = tmp_path / "input.nn"
    path.write_text("elements Li\n")
    (tmp_path / "input.nn.other").write_text("elements Li O\n")
    proc = _run(mpiexec, "file", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "MPI ranks disagree on input.nn" in lines[0]
    assert "rank 0 has 12 bytes" in lines[0] and "rank 1 has 14 bytes" in lines[0]


@pytest.mark.mpi
def test_error_on_every_rank_is_one_message(mpiexec):
    proc = _run(mpiexec, "all")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "hpcnnp check: error: input.data:7: bad atom line"


@pytest.mark.mpi
def test_agreed_error_names_the_rank(mpiexec):
    proc = _run(mpiexec, "agree")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("hpcnnp check: error: rank 1: cannot read "
                                   "weights.003.data")


@pytest.mark.mpi
def test_error_on_one_rank_aborts_without_hang(mpiexec):
    proc = _run(mpiexec, "one", timeout=60)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[0] == ("hpcnnp check: error on MPI rank 1 (aborting the job): "
                        "input.data:7: bad atom line")
    assert len(lines) <= 3, proc.stderr          # MPICH adds one "Abort(2) ..." line
    assert "Traceback" not in proc.stderr


@pytest.mark.mpi
def test_bug_on_one_rank_shows_its_traceback_and_aborts(mpiexec):
    proc = _run(mpiexec, "bug", timeout=60)
    assert proc.returncode != 0
    assert "unexpected error on MPI rank 1" in proc.stderr
    assert "RuntimeError: injected bug" in proc.stderr
