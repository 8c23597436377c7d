"""Periodic-cell geometry shared by every stage (structures, md, validation, analysis).

Cells are 3x3 arrays (or ``ase.Cell``) with the edge vectors a, b, c as rows, in Å.
"""

from __future__ import annotations

import numpy as np

__all__ = ["perpendicular_widths"]


def perpendicular_widths(cell):
    """Distances between opposite faces of a cell, ``w_i = V / |a_j x a_k|`` (Å).

    A sphere of radius r fits into the periodic cell without touching its own images
    iff ``2 r <= min(w)``: the minimum-image convention holds up to half the smallest
    width, and a cutoff r needs ``ceil(r / w_i)`` periodic images along axis i.

    Parameters
    ----------
    cell : (3, 3) or (..., 3, 3) array_like, Å
        Cell vectors as rows (a stack of cells gives a stack of widths).

    Returns
    -------
    (3,) or (..., 3) float64 array, Å

    Raises
    ------
    ValueError
        ``cell`` is not 3x3 (per cell).
    """
    cell = np.asarray(cell, dtype=np.float64)
    if cell.shape[-2:] != (3, 3):
        raise ValueError(f"a cell is a 3x3 array of row vectors, got shape {cell.shape}")
    # row i of the cross products: a_{i+1} x a_{i+2}
    cross = np.cross(np.roll(cell, -1, axis=-2), np.roll(cell, -2, axis=-2))
    volume = np.abs(np.linalg.det(cell))[..., None]
    return volume / np.linalg.norm(cross, axis=-1)
