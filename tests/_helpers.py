"""Helpers shared by the test folders: the environment of a child process and the MPI
launcher (tests/ is on sys.path through tests/conftest.py, so ``from _helpers import
...`` works in every folder).

The venv's ``lib/`` holds the mpich wheel's libmpi, which the C core, the LAMMPS
plugin and n2p2's tools load: every child process gets it first on LD_LIBRARY_PATH.
"""

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _prepend(env, key, path):
    env[key] = os.pathsep.join(p for p in (str(path), env.get(key)) if p)


def subprocess_env(*, repo_path=False, **extra):
    """Environment of a child process.

    Parameters
    ----------
    repo_path : bool
        Put this checkout first on PYTHONPATH (for children that must import this
        working tree, e.g. when the suite is pointed at another checkout).
    **extra
        Variables to set (values converted with ``str``).

    Returns
    -------
    dict
        ``os.environ`` with the venv's ``lib/`` first on LD_LIBRARY_PATH.
    """
    env = dict(os.environ)
    _prepend(env, "LD_LIBRARY_PATH", Path(sys.prefix) / "lib")
    if repo_path:
        _prepend(env, "PYTHONPATH", REPO)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def mpiexec_path():
    """The MPI launcher beside the interpreter (the mpich wheel's), else the one on
    PATH; None when there is none."""
    exe = Path(sys.executable).with_name("mpiexec")
    return str(exe) if exe.exists() else shutil.which("mpiexec")


def rejected(load, path, text, error, match=None):
    """Write *text* to *path* and read it with ``load(path)``, which must raise *error*
    (with a message matching the regular expression *match*, if given); returns the
    exception, for its message, path and line."""
    import pytest

    Path(path).write_text(text)
    with pytest.raises(error, match=match) as info:
        load(path)
    return info.value


def random_observations(rng, n, m, count):
    """``count`` random (Jacobian ``H`` (n, m), error ``xi`` (m,)) pairs of a Kalman
    filter test, drawn in this order from ``rng``."""
    for _ in range(count):
        yield rng.standard_normal((n, m)), rng.standard_normal(m)
