"""Analyses under ``mpiexec -n 2``: same results as one rank; the CLI in parallel."""

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.mpi
def test_two_ranks_equal_one_rank(mpiexec, walk_h5):
    """Every analysis: bit-identical on both ranks and equal to a serial run."""
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable,
                           str(HERE / "_mpi_analysis_check.py"), str(walk_h5)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "OK", proc.stdout + proc.stderr[-2000:]


@pytest.mark.mpi
def test_cli_under_mpiexec_matches_serial(mpiexec, walk_h5, tmp_path):
    args = ["analyze", str(walk_h5), "--segregation", "Co", "--li-density", "--grid",
            "10", "10", "16", "--rdf", "Li-O", "--msd", "Li", "--clusters", "Co"]
    cmd = [sys.executable, "-m", "hpcnnp.cli"]
    par = subprocess.run([mpiexec, "-n", "2"] + cmd + args + ["-o", str(tmp_path / "par")],
                         capture_output=True, text=True, timeout=300)
    assert par.returncode == 0, par.stderr[-3000:]
    ser = subprocess.run(cmd + args + ["-o", str(tmp_path / "ser")], capture_output=True,
                         text=True, timeout=300)
    assert ser.returncode == 0, ser.stderr[-3000:]
    for name in ("segregation_Co.csv", "rdf.csv", "msd_Li.csv", "clusters_Co.csv"):
        assert (tmp_path / "par" / name).read_text() == (tmp_path / "ser" / name).read_text()
    assert "2 MPI rank(s)" in (tmp_path / "par" / "summary.md").read_text()
