"""Periodic-cell geometry shared by the analyses (any cell shape, Å).

Cells are 3x3 arrays with the edge vectors a, b, c as rows; fractional coordinates
are ``s = r @ inv(box)``, so that ``r = s @ box``.
"""

from __future__ import annotations

import numpy as np

from hpcnnp.geometry import perpendicular_widths

__all__ = ["perpendicular_widths", "is_orthorhombic", "fractional", "volume",
           "pairs_within", "normal_axis"]


def volume(box):
    """Cell volume |det box| (Å^3); works on (3, 3) and (n, 3, 3)."""
    return np.abs(np.linalg.det(box))


def is_orthorhombic(box, tol=1e-10):
    box = np.asarray(box)
    return bool(np.all(np.abs(box - np.diag(np.diag(box))) <= tol * np.abs(box).max()))


def fractional(positions, box):
    """Fractional coordinates ``positions @ inv(box)``; (N, 3) or (n, N, 3)."""
    return positions @ np.linalg.inv(box)


def _wrap01(s):
    s = s - np.floor(s)
    s[s >= 1.0] = 0.0
    return s


def pairs_within(box, r, pos_a, pos_b=None):
    """Minimum-image pairs closer than ``r`` (Å).

    Parameters
    ----------
    box : (3, 3) array, Å
    r : float, Å
        Must not exceed half the smallest perpendicular width of the cell (then
        every pair has one minimum image and is found once).
    pos_a : (Na, 3) array, Å
    pos_b : (Nb, 3) array, optional
        Without it: unordered pairs i < j within ``pos_a``.  With it: every pair
        (i in a, j in b) -- include both directions yourself if a and b are the same
        atoms.

    Returns
    -------
    i, j : int arrays; d : float array (Å)
    """
    from scipy.spatial import cKDTree

    box = np.asarray(box, dtype=np.float64)
    same = pos_b is None
    sa = _wrap01(fractional(np.asarray(pos_a, dtype=np.float64), box))
    sb = sa if same else _wrap01(fractional(np.asarray(pos_b, dtype=np.float64), box))
    if is_orthorhombic(box):
        lengths = np.diag(box).copy()
        xa = sa * lengths
        xa[xa >= lengths] = 0.0
        ta = cKDTree(xa, boxsize=lengths)
        if same:
            p = ta.query_pairs(r, output_type="ndarray")
            i, j = p[:, 0], p[:, 1]
            d = xa[j] - xa[i]
            d -= lengths * np.round(d / lengths)
            return i, j, np.sqrt(np.einsum("ij,ij->i", d, d))
        xb = sb * lengths
        xb[xb >= lengths] = 0.0
        m = ta.sparse_distance_matrix(cKDTree(xb, boxsize=lengths), r,
                                      output_type="ndarray")
        return m["i"].astype(np.int64), m["j"].astype(np.int64), m["v"]
    # triclinic: ghost images of b within r of the cell
    pad = r / perpendicular_widths(box)
    shifts = np.array([(x, y, z) for x in (-1, 0, 1) for y in (-1, 0, 1)
                       for z in (-1, 0, 1)], dtype=np.float64)
    gs, gi = [], []
    for sh in shifts:
        f = sb + sh
        keep = np.all((f > -pad) & (f < 1 + pad), axis=1)
        gs.append(f[keep])
        gi.append(np.flatnonzero(keep))
    ghost = np.concatenate(gs) @ box
    gidx = np.concatenate(gi)
    m = cKDTree(sa @ box).sparse_distance_matrix(cKDTree(ghost), r, output_type="ndarray")
    i, j, d = m["i"].astype(np.int64), gidx[m["j"]], m["v"]
    if same:
        keep = i < j
        i, j, d = i[keep], j[keep], d[keep]
    return i, j, d


def normal_axis(box, normal, tol=1e-6):
    """Cell vector that crosses planes with this normal, and its component along it.

    A family of periodic planes with unit normal n is compatible with the cell when n
    is perpendicular to two cell vectors (the planes contain them); the third, a_k,
    then spans one period along n: ``x . n = s_k (a_k . n)`` with s_k the fractional
    coordinate, and the period is |a_k . n| = V / |a_i x a_j|.

    Returns
    -------
    k : int
        Index of that cell vector.
    proj : float
        a_k . n (Å, signed).
    n : (3,) unit normal

    Raises
    ------
    ValueError
        The normal is not perpendicular to two cell vectors.
    """
    n = np.asarray(normal, dtype=np.float64)
    norm = np.linalg.norm(n)
    if not norm > 0:
        raise ValueError(f"plane normal {list(normal)} has zero length")
    n = n / norm
    box = np.asarray(box, dtype=np.float64)
    proj = box @ n
    rel = np.abs(proj) / np.linalg.norm(box, axis=1)
    k = int(np.argmax(rel))
    others = [i for i in range(3) if i != k]
    if np.any(rel[others] > tol):
        raise ValueError(f"plane normal {np.round(n, 6).tolist()} is not perpendicular to "
                         "two cell vectors; periodic planes must contain two cell vectors")
    return k, float(proj[k]), n
