"""Random packing with minimum-distance constraints (own implementation).

The packer places atoms uniformly at random in the (any-shape, periodic) cell
and then removes every overlap by iterative pairwise displacement (a
steepest-descent minimisation of sum over pairs of max(0, d_ij - r_ij)^2, the
same objective packmol minimises), using a Verlet neighbour list with skin
built by a KD-tree over the atoms and their periodic images (O(N log N)).  Converged
structures satisfy r_ij >= d_ij for every pair (minimum image, all periodic
images).  This is a **packing**, not a melt-quench: it has the right
composition and density but no chemical short-range order.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ._common import FORMAL_CHARGES, periodic_pairs

__all__ = ["PACK_MIN_DIST", "pair_min_distance", "random_packing"]

#: Minimum distances (Å) used by the packer.  cation-O pairs use the cation
#: row (all >= 1.6 Å; ~0.3 Å below the crystal bond lengths), O-O >= 2.2 Å,
#: cation-cation >= 2.2-2.8 Å (shorter than in the crystals, which are >= 2.36 Å
#: for Li-Li in LLZO and 2.82 Å for Co-Co in LCO).
PACK_MIN_DIST = {
    "cation-O": {"Li": 1.75, "Co": 1.75, "Zr": 1.9, "La": 2.15},
    "O-O": 2.2,
    "Li-Li": 2.2,
    "Li-M": 2.3,
    "M-M": 2.8,
}


def pair_min_distance(a, b, table=None):
    t = PACK_MIN_DIST if table is None else table
    ca = FORMAL_CHARGES.get(a, 0) > 0
    cb = FORMAL_CHARGES.get(b, 0) > 0
    if ca and not cb:
        return t["cation-O"].get(a, 1.8)
    if cb and not ca:
        return t["cation-O"].get(b, 1.8)
    if not ca and not cb:
        return t["O-O"]
    if a == "Li" and b == "Li":
        return t["Li-Li"]
    if a == "Li" or b == "Li":
        return t["Li-M"]
    return t["M-M"]


def _dmin_matrix(species, table):
    n = len(species)
    M = np.zeros((n, n))
    for i, a in enumerate(species):
        for j, b in enumerate(species):
            M[i, j] = pair_min_distance(a, b, table)
    return M


def random_packing(symbols, cell, seed=0, table=None, margin=0.05, max_iter=5000,
                   fixed=None, positions=None, skin=1.0):
    """Pack ``symbols`` randomly into the periodic ``cell``.

    Parameters
    ----------
    symbols : list of str
    cell : (3, 3) array
    seed : int
        Seed of numpy's default_rng (deterministic output).
    table : dict, optional
        Minimum-distance table (default :data:`PACK_MIN_DIST`).
    margin : float
        The relaxation targets d_ij + margin so that the result has r >= d_ij.
    fixed : bool array, optional
        Atoms that must not move (their ``positions`` must be given).
    positions : (N, 3) array, optional
        Start positions (default: uniform random).

    Returns
    -------
    ase.Atoms with ``info["packing"]`` = dict(iterations, min_ratio, ...).
    """
    rng = np.random.default_rng(seed)
    cell = np.asarray(cell, float)
    n = len(symbols)
    species, kind = np.unique(np.asarray(symbols), return_inverse=True)
    dmin = _dmin_matrix(list(species), table)
    target = dmin + margin
    rcut = float(dmin.max() + margin)
    if positions is None:
        pos = rng.random((n, 3)) @ cell
    else:
        pos = np.array(positions, float)
    mobile = np.ones(n, bool) if fixed is None else ~np.asarray(fixed, bool)
    atoms = Atoms(symbols=list(symbols), positions=pos, cell=cell, pbc=True)
    it = 0
    ref = None
    pi = pj = S = None
    converged = False
    step_cap = 0.5
    while it < max_iter:
        if ref is None or np.max(np.linalg.norm(pos - ref, axis=1)) > 0.5 * skin:
            pi, pj, S, _ = periodic_pairs(pos, cell, rcut + skin)
            movable = mobile[pi] | mobile[pj]  # fixed-fixed pairs are left alone
            pi, pj, S = pi[movable], pj[movable], S[movable]
            shift = S @ cell
            tpair = target[kind[pi], kind[pj]]
            ref = pos.copy()
        D = pos[pj] - pos[pi] + shift
        r = np.sqrt(np.einsum("ij,ij->i", D, D))
        ov = tpair - r
        bad = ov > 0
        worst = float(ov.max()) if len(ov) else -1.0
        if worst <= 0.5 * margin:  # every pair at >= d_ij + margin/2
            converged = True
            break
        u = D[bad] / np.maximum(r[bad], 1e-6)[:, None]
        o = ov[bad][:, None]
        both = (mobile[pi[bad]] & mobile[pj[bad]])[:, None]
        # each mobile partner moves half (all if the other is fixed)
        wi = np.where(both, 0.5, 1.0) * mobile[pi[bad]][:, None]
        wj = np.where(both, 0.5, 1.0) * mobile[pj[bad]][:, None]
        vi = -wi * o * u
        vj = wj * o * u
        disp = np.empty_like(pos)
        for k in range(3):
            disp[:, k] = (np.bincount(pi[bad], vi[:, k], minlength=n)
                          + np.bincount(pj[bad], vj[:, k], minlength=n))
        # random direction for (nearly) coincident atoms
        tiny = r[bad] < 1e-3
        if tiny.any():
            disp[pj[bad][tiny]] += rng.normal(size=(tiny.sum(), 3)) * 0.3
        disp *= 0.6
        norm = np.linalg.norm(disp, axis=1)
        big = norm > step_cap
        disp[big] *= (step_cap / norm[big])[:, None]
        pos = pos + disp
        it += 1
    if not converged:
        raise RuntimeError(
            f"random packing did not converge in {max_iter} iterations "
            f"(largest overlap {worst:.3f} Å); lower the density or the "
            "minimum distances")
    atoms.positions = pos
    atoms.wrap()
    atoms.info["packing"] = dict(iterations=it, margin=margin,
                                 min_distance_table=_table_dict(species, dmin))
    return atoms


def _table_dict(species, dmin):
    out = {}
    for i, a in enumerate(species):
        for j, b in enumerate(species):
            if i <= j:
                out[f"{a}-{b}"] = float(dmin[i, j])
    return out
