"""Running the real n2p2 (a measuring instrument, never a dependency) from tests.

n2p2's tools (``nnp-dataset``, ``nnp-predict``, ``nnp-scaling``) built from source as
``../shared/environment.md`` describes are looked up in ``$HPCNNP_N2P2_BIN``, on the
``PATH`` and in ``n2p2/bin`` beside the repository (or beside its parent folder, for
worktrees); the ``n2p2`` fixture (conftest.py) gives their folder and skips the test
with a clear reason when they are absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from _helpers import subprocess_env

REPO = Path(__file__).resolve().parents[1]


def n2p2_bin():
    """Folder with n2p2's tools, or None."""
    candidates = []
    if os.environ.get("HPCNNP_N2P2_BIN"):
        candidates.append(Path(os.environ["HPCNNP_N2P2_BIN"]))
    which = shutil.which("nnp-dataset")
    if which:
        candidates.append(Path(which).parent)
    candidates += [REPO.parent / "n2p2" / "bin", REPO.parent.parent / "n2p2" / "bin"]
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("nnp-dataset", "nnp-predict",
                                                       "nnp-scaling")):
            return folder
    return None


def run(bin_dir, tool, folder, *args, timeout=600):
    """Run an n2p2 tool in *folder* (one process, no MPI launcher); raise with the end
    of its output when it fails."""
    res = subprocess.run([str(Path(bin_dir) / tool), *map(str, args)], cwd=folder,
                         env=subprocess_env(),
                         capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{tool} failed in {folder} (exit {res.returncode}):\n"
                           + res.stdout[-3000:] + res.stderr[-3000:])
    return res


def nnatoms(path):
    """Atomic energies (column 7, physical units, without offsets) of nnp-predict's
    ``nnatoms.out``."""
    import numpy as np

    table = np.loadtxt(path, comments="#", ndmin=2)
    return table[:, 6]
