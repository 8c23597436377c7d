"""Small writers shared by the analyses: CSV tables, HDF5 groups, figure set-up."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
from matplotlib.figure import Figure

from hpcnnp.fileio import atomic_open, atomic_path

__all__ = ["write_csv", "write_h5", "new_figure", "save_figure"]


def write_csv(path, columns, header=""):
    """Write equal-length 1-D arrays as CSV columns (``columns``: name -> array).

    ``header`` lines are written first, each prefixed with ``# ``.
    """
    path = Path(path)
    names = list(columns)
    data = np.column_stack([np.asarray(columns[k], dtype=np.float64) for k in names])
    lines = [f"# {h}" for h in header.splitlines() if h] + [",".join(names)]
    with atomic_open(path) as fh:
        fh.write("\n".join(lines) + "\n")
        np.savetxt(fh, data, delimiter=",", fmt="%.10g")
    return path


def write_h5(path, group, results, attrs=None):
    """Store the array/number entries of ``results`` under ``group`` in HDF5 ``path``.

    Lists of dicts and other objects are stored as JSON string attributes.  An
    existing group of that name is replaced; other groups in the file are kept.
    """
    with h5py.File(path, "a") as f:
        if group in f:
            del f[group]
        g = f.create_group(group)
        for k, v in results.items():
            if isinstance(v, (np.ndarray, int, float, np.number)) or (
                    isinstance(v, (list, tuple)) and v and
                    all(isinstance(x, (int, float, np.number)) for x in v)):
                arr = np.asarray(v)
                if arr.dtype.kind in "iufb":
                    g.create_dataset(k, data=arr)
                    continue
            g.attrs[k] = json.dumps(v, default=lambda o: o.tolist()
                                    if isinstance(o, np.ndarray) else str(o))
        for k, v in (attrs or {}).items():
            g.attrs[k] = v
    return path


def new_figure(*args, **kw):
    """A matplotlib figure on the non-interactive Agg canvas (no display, no pyplot,
    no global state)."""
    return Figure(*args, **kw)


def save_figure(fig, path, dpi=130):
    """Write ``fig`` as PNG atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return path
