"""Shared helpers: formal charges, provenance, composition, distance checks."""

from __future__ import annotations

from collections import Counter

import numpy as np

from hpcnnp.geometry import perpendicular_widths
from hpcnnp.units import ELEMENT_ORDER, FORMAL_CHARGES

__all__ = [
    "FORMAL_CHARGES", "set_formal_charges", "total_charge", "provenance",
    "composition", "formula", "min_distance", "short_pairs",
]

def set_formal_charges(atoms, overrides=None):
    """Store formal charges as initial charges (``overrides``: index -> q)."""
    q = np.array([FORMAL_CHARGES[s] for s in atoms.get_chemical_symbols()], float)
    if overrides:
        for i, v in overrides.items():
            q[i] = v
    atoms.set_initial_charges(q)
    return atoms


def total_charge(atoms):
    """Sum of the formal charges (per-atom initial charges if set)."""
    q = atoms.get_initial_charges()
    if len(q) and np.any(q != 0):
        return float(q.sum())
    return float(sum(FORMAL_CHARGES[s] for s in atoms.get_chemical_symbols()))


def composition(atoms):
    """Element -> count (dict, ordered Li La Zr Co O then others)."""
    c = Counter(atoms.get_chemical_symbols())
    out = {e: c[e] for e in ELEMENT_ORDER if c.get(e)}
    out.update({e: n for e, n in sorted(c.items()) if e not in out})
    return out


def formula(atoms_or_comp):
    comp = atoms_or_comp if isinstance(atoms_or_comp, dict) else composition(atoms_or_comp)
    return "".join(f"{e}{n}" for e, n in comp.items() if n)


def provenance(atoms, builder, parameters, reference, structure_class, **extra):
    """Record how a structure was made in ``atoms.info``."""
    info = atoms.info
    parent = {k: info[k] for k in ("builder", "structure_class") if k in info}
    for k in list(info):
        if k not in ("supercell",):
            del info[k]
    info["builder"] = builder
    info["parameters"] = {k: (list(v) if isinstance(v, tuple) else v)
                          for k, v in parameters.items()}
    info["reference"] = reference
    info["structure_class"] = structure_class
    info["formula"] = formula(atoms)
    info["natoms"] = len(atoms)
    info["formal_charge_total"] = total_charge(atoms)
    if parent:
        info["parent"] = parent
    info.update(extra)
    return atoms


def _nl(atoms, cutoff):
    i, j, S, d = periodic_pairs(atoms.positions, atoms.cell, float(cutoff), atoms.pbc)
    return i, j, d


def min_distance(atoms, cutoff=3.0):
    """Smallest interatomic distance (periodic, cell list); inf if > cutoff."""
    i, j, d = _nl(atoms, cutoff)
    return float(d.min()) if len(d) else float("inf")


def short_pairs(atoms, rmin):
    """Pairs (i < j) closer than ``rmin`` (Å), with their distances."""
    return _nl(atoms, rmin)


def min_distance_by_pair(atoms, cutoff=3.0):
    """{(el1, el2): smallest distance} for element pairs found within cutoff."""
    i, j, d = _nl(atoms, cutoff)
    sym = np.array(atoms.get_chemical_symbols())
    out = {}
    for a, b, r in zip(sym[i], sym[j], d):
        key = tuple(sorted((a, b)))
        if r < out.get(key, np.inf):
            out[key] = float(r)
    return out


def is_cation(sym):
    return FORMAL_CHARGES.get(sym, 0) > 0


def unique_periodic(frac, numbers, tol=1e-3):
    """Indices of the unique atoms among fractional coords (periodic, same species).

    ``tol`` is in fractional units.  Positions are wrapped into [0, 1).
    """
    from scipy.spatial import cKDTree
    f = np.mod(np.asarray(frac, float), 1.0)
    f[f > 1 - 1e-12] = 0.0
    keep = np.ones(len(f), bool)
    tree = cKDTree(f, boxsize=1.0 + 1e-12)
    for i, j in sorted(tree.query_pairs(tol)):
        if keep[i] and keep[j] and numbers[i] == numbers[j]:
            keep[j] = False
    return np.flatnonzero(keep)


def periodic_pairs(positions, cell, rcut, pbc=(True, True, True)):
    """All pairs closer than ``rcut`` in a periodic cell of any shape.

    Fast cell-list-like search with scipy's cKDTree on the atoms plus the
    periodic images that lie within ``rcut`` of the cell (ghost atoms).

    Returns
    -------
    i, j : int arrays (i <= j; i == j only for self-images)
    S : (M, 3) int array, lattice shift of atom j
    d : (M,) distances, |r_j + S @ cell - r_i|
    """
    from scipy.spatial import cKDTree
    cell = np.asarray(cell, float)
    pos = np.asarray(positions, float)
    n = len(pos)
    frac = np.linalg.solve(cell.T, pos.T).T
    pbc = np.asarray(pbc, bool)
    base = np.where(pbc, np.floor(frac), 0.0)
    frac = frac - base
    cart = frac @ cell
    w = perpendicular_widths(cell)
    pad = rcut / w
    nrep = np.where(pbc, np.ceil(pad).astype(int), 0)
    gpos, gidx, gsh = [cart], [np.arange(n)], [np.zeros((n, 3), int)]
    for s1 in range(-nrep[0], nrep[0] + 1):
        for s2 in range(-nrep[1], nrep[1] + 1):
            for s3 in range(-nrep[2], nrep[2] + 1):
                if s1 == s2 == s3 == 0:
                    continue
                sh = np.array([s1, s2, s3])
                f = frac + sh
                m = np.all((f > -pad) & (f < 1 + pad), axis=1)
                if m.any():
                    gpos.append(f[m] @ cell)
                    gidx.append(np.flatnonzero(m))
                    gsh.append(np.tile(sh, (m.sum(), 1)))
    allpos = np.vstack(gpos)
    idx = np.concatenate(gidx)
    sh = np.vstack(gsh)
    tree = cKDTree(allpos)
    p = tree.query_pairs(rcut, output_type="ndarray")
    if len(p) == 0:
        z = np.zeros(0, int)
        return z, z, np.zeros((0, 3), int), np.zeros(0)
    a, b = p[:, 0], p[:, 1]
    real_a = a < n
    real_b = b < n
    m = real_a | real_b
    a, b = a[m], b[m]
    # make the first index a real atom
    swap = ~(a < n)
    a2 = np.where(swap, b, a)
    b2 = np.where(swap, a, b)
    i = idx[a2]
    j = idx[b2]
    S = sh[b2] - sh[a2]
    # canonical: i < j, or i == j with positive shift
    keep = (i < j) | ((i == j) & ((S[:, 0] > 0) | ((S[:, 0] == 0) & (S[:, 1] > 0))
                                  | ((S[:, 0] == 0) & (S[:, 1] == 0) & (S[:, 2] > 0))))
    i, j, S = i[keep], j[keep], S[keep]
    D = (frac[j] + S - frac[i]) @ cell
    d = np.sqrt(np.einsum("ij,ij->i", D, D))
    # express S for the original (unwrapped) positions
    S = S - base[j].astype(int) + base[i].astype(int)
    return i, j, S, d
