"""Helpers of the reliability suite (the fixtures -- a small potential with its data
set, a small tmpfs for disk-full cases, a read-only mount -- are in conftest.py): the
``hpcnnp`` command in a subprocess of this checkout (PYTHONPATH = the repository, so
that the suite can also be pointed at an older checkout).

The suite checks what a user sees when things go wrong: one clear line naming the
file and the problem, exit status != 0, no traceback, nothing half-written under a
final name, no temporary file and no process left behind.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import REPO, mpiexec_path, subprocess_env  # noqa: F401 (REPO: the suite's)


def env(**extra):
    """Environment of the subprocesses: this checkout first on the path, one thread, no
    fault injection unless asked for (``extra``)."""
    e = subprocess_env(repo_path=True, OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1,
                       HPCNNP_MPI_ERROR_GRACE=5)
    for k in [k for k in e if k.startswith("HPCNNP_TRAIN_")]:
        e.pop(k)
    e.update({k: str(v) for k, v in extra.items()})
    return e


def hpcnnp(*args, cwd=None, ranks=1, timeout=300, extra_env=None, **kw):
    """``hpcnnp ARGS`` in a subprocess; returns the CompletedProcess (text)."""
    cmd = [sys.executable, "-m", "hpcnnp.cli", *map(str, args)]
    if ranks > 1:
        exe = mpiexec_path()
        if exe is None:
            pytest.skip("mpiexec not found")
        pytest.importorskip("mpi4py")
        cmd = [exe, "-n", str(ranks)] + cmd
    return subprocess.run(cmd, cwd=cwd, env=env(**(extra_env or {})), capture_output=True,
                          text=True, timeout=timeout, **kw)


def one_clear_line(proc, *fragments):
    """Exit status != 0, stderr is a single line without traceback containing
    every fragment; returns that line."""
    err = proc.stderr.strip()
    assert proc.returncode not in (0, None), (proc.returncode, proc.stdout, err)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def temp_files(folder):
    """hpcnnp's temporary files below ``folder``."""
    return sorted(str(p) for p in Path(folder).rglob("*")
                  if p.name.startswith(".") and (".tmp" in p.name))
