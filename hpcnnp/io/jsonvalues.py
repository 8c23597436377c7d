"""JSON for the metadata the package stores (H5MD parameters, data-set provenance):
numpy values, sets and paths become plain JSON values.

>>> json.dumps(info, default=json_default, sort_keys=True)      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["json_default"]


def json_default(obj):
    """``default`` hook of :func:`json.dumps`: numpy arrays -> lists, numpy scalars ->
    Python numbers or bools, sets -> sorted lists, paths -> strings; anything else ->
    its ``repr`` (so that metadata never makes a write fail)."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)
