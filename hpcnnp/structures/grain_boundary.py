"""Symmetric tilt grain boundaries by a coincident-site-lattice construction.

Construction
============
1. The primitive cell of the crystal is oriented to the boundary plane (hkl)
   (see :func:`hpcnnp.structures.surfaces.oriented_cell`): lab z = plane
   normal, x = tilt axis [uvw] (the shortest lattice vector along it), y in
   the plane.
2. Grain 1 is a stack of m complete periods d of (hkl) planes cut at height
   z0 (so it has the bulk composition); grain 2 is its mirror image in the
   plane z = m d.  A mirror in the plane is a symmetric tilt about [uvw]
   (the lattice is centrosymmetric, so mirror = 180° rotation about the
   normal); the two in-plane lattices coincide exactly, and the cell
   ``[a1, a2, (0, 0, 2 m d)]`` is periodic with two mirror-symmetric
   boundaries (at m d and at 0 = 2 m d).  Finally everything is shifted by
   m d / 2 so that both planes lie inside the cell.
3. Sigma is **computed** from the two grain lattices: with integer
   coordinates x in the basis of grain 1, x is a coincident site iff
   x L1 L2^-1 is integer; Sigma = D^3 / (number of coincident sites among the
   D^3 points x in [0, D)^3), D being the common denominator of L1 L2^-1,
   i.e. the number of lattice sites per coincident site (= CSL cell volume /
   primitive cell volume).  Cubic (bcc LLZO): Σ13 (230)/[001],
   Σ17 (530)/[001], Σ33 (52-2)/[011], Σ19 (32-5)/[111].
4. Clean-up: pairs closer than the thresholds (default: cation-cation and
   O-O < 1.8 Å, cation-O < 1.5 Å) are resolved greedily, shortest first:
   two atoms of the same element are merged into one at their midpoint
   (the mirror pair of an atom next to the plane becomes one atom on the
   plane); otherwise the atom of the lower-priority element is removed
   (Li first, then O, Co, La, Zr).  Repeated until no such pair is left.
5. Charge neutrality is restored with Li+ and O2- vacancies at the
   boundaries ("compensate by removing Li/O"): a negative excess -Q is
   removed with ceil(Q/2) O (+ 1 Li if Q is odd), a positive excess Q with
   Q Li.  The atoms removed are those of that element within ``gb_width`` of
   a boundary plane with the shortest distance to a like-charged neighbour.
6. The cut height z0 is scanned (mid-points between atomic planes) and the
   one that removes the fewest atoms is used (ties: larger minimum distance).

All of this is done on the smallest bicrystal (one CSL cell in-plane); the
result is then repeated in-plane, so both boundaries are identical in every
replica and the removal pattern is periodic.
"""

from __future__ import annotations

from fractions import Fraction
from functools import reduce
from math import gcd

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from ._common import (FORMAL_CHARGES, formula, periodic_pairs, provenance, total_charge)
from .surfaces import (_cut_heights, _layer_positions, _material, _perp2, _wrap_inplane,
                       oriented_cell)

__all__ = ["grain_boundary", "sigma_from_lattices", "GB_OVERLAP", "SIGMA_TILTS"]

#: Σ -> (tilt axis [uvw], boundary plane (hkl)) of the symmetric tilt boundaries of
#: cubic (bcc) LLZO built by :func:`grain_boundary` (step 3 of the module docstring)
SIGMA_TILTS = {13: ((0, 0, 1), (2, 3, 0)), 17: ((0, 0, 1), (5, 3, 0)),
               33: ((0, 1, 1), (5, 2, -2)), 19: ((1, 1, 1), (3, 2, -5))}

#: Default overlap thresholds (Å) of the boundary clean-up.
GB_OVERLAP = {"cation-cation": 1.8, "anion-anion": 1.8, "cation-anion": 1.5}

#: Removal priority: lower is removed first.
_PRIORITY = {"Li": 0, "O": 1, "Co": 2, "La": 3, "Zr": 4}


def _lcm(a, b):
    return a * b // gcd(a, b)


def sigma_from_lattices(L1, L2, max_den=120):
    """Sigma of two lattices (rows = basis vectors) by counting coincident sites.

    Returns the index of L1 ∩ L2 in L1 (number of L1 sites per coincident
    site).  Raises ValueError if the lattices are not commensurate (no CSL
    with denominator <= max_den).
    """
    L1 = np.asarray(L1, float)
    L2 = np.asarray(L2, float)
    K = L1 @ np.linalg.inv(L2)  # x (L1 coords) -> x @ K (L2 coords)
    fr = [[Fraction(float(v)).limit_denominator(max_den) for v in row] for row in K]
    if max(abs(float(f) - v) for row, rk in zip(fr, K) for f, v in zip(row, rk)) > 1e-5:
        raise ValueError("lattices are not commensurate (no coincidence site lattice)")
    D = reduce(_lcm, (f.denominator for row in fr for f in row), 1)
    Ki = np.array([[int(f * D) for f in row] for row in fr], dtype=np.int64)
    g = np.arange(D)
    X = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    Y = X @ Ki
    n_coinc = int(np.all(Y % D == 0, axis=1).sum())
    s = Fraction(D ** 3, n_coinc)
    assert s.denominator == 1
    return int(s)


def _cubic_tilt_angles(cell, plane, axis):
    """Tilt angles (deg) about ``axis`` equivalent to the mirror in ``plane`` (cubic)."""
    c = np.asarray(cell, float)
    if not np.allclose(c, np.eye(3) * c[0, 0], atol=1e-6):
        return None
    n = np.asarray(plane, float)
    n /= np.linalg.norm(n)
    t = np.asarray(axis, float)
    t /= np.linalg.norm(t)
    mirrors = [np.array(v, float) for v in ((1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0),
                                            (1, -1, 0), (1, 0, 1), (1, 0, -1), (0, 1, 1),
                                            (0, 1, -1))]
    out = set()
    for m in mirrors:
        m /= np.linalg.norm(m)
        if abs(m @ t) > 1e-8:
            continue
        a = np.degrees(np.arccos(np.clip(abs(m @ n), 0, 1)))
        for th in (2 * a, 180 - 2 * a):
            th = th % 180
            if th > 1e-6:
                out.add(round(th, 3))
    return sorted(out)


def _kind(sym):
    return "cation" if FORMAL_CHARGES.get(sym, 0) > 0 else "anion"


def _threshold_table(species, overlap):
    n = len(species)
    T = np.zeros((n, n))
    for i, a in enumerate(species):
        for j, b in enumerate(species):
            ka, kb = _kind(a), _kind(b)
            key = "cation-anion" if ka != kb else f"{ka}-{ka}"
            T[i, j] = overlap[key]
    return T


def _cleanup(pos, num, q, cell, planes_z, overlap, gb_width):
    """Resolve close pairs, then restore neutrality with Li/O vacancies."""
    pos = pos.copy()
    sym = np.array([chemical_symbols[z] for z in num])
    species = sorted(set(sym))
    sidx = np.array([species.index(s) for s in sym])
    thr = _threshold_table(species, overlap)
    rmax = float(thr.max())
    alive = np.ones(len(num), bool)
    merged = removed_overlap = 0
    removed_by_el = {}
    for _ in range(20):
        idx = np.flatnonzero(alive)
        i, j, S, d = periodic_pairs(pos[idx], cell, rmax)
        i, j = idx[i], idx[j]
        bad = d < thr[sidx[i], sidx[j]]
        if not bad.any():
            break
        order = np.argsort(d[bad])
        for k in order:
            a, b = i[bad][k], j[bad][k]
            if not (alive[a] and alive[b]):
                continue
            if sym[a] == sym[b]:
                # merge: keep a at the midpoint (minimum image)
                pos[a] = pos[a] + 0.5 * (pos[b] + S[bad][k] @ cell - pos[a])
                alive[b] = False
                merged += 1
                removed_by_el[sym[b]] = removed_by_el.get(sym[b], 0) + 1
            else:
                victim = a if _PRIORITY.get(sym[a], 5) < _PRIORITY.get(sym[b], 5) else b
                alive[victim] = False
                removed_overlap += 1
                removed_by_el[sym[victim]] = removed_by_el.get(sym[victim], 0) + 1
    # neutrality
    Q = int(round(q[alive].sum()))
    comp_removed = {}
    need = {}
    if Q < 0:
        need["O"] = (-Q + 1) // 2
        if (-Q) % 2:
            need["Li"] = 1
    elif Q > 0:
        need["Li"] = Q
    if need:
        idx = np.flatnonzero(alive)
        i, j, S, d = periodic_pairs(pos[idx], cell, 4.0)
        i, j = idx[i], idx[j]
        like = np.sign(q[i]) == np.sign(q[j])
        nn = np.full(len(num), np.inf)
        np.minimum.at(nn, i[like], d[like])
        np.minimum.at(nn, j[like], d[like])
        Lz = cell[2, 2]
        dz = np.min([np.abs((pos[:, 2] - z + Lz / 2) % Lz - Lz / 2) for z in planes_z], axis=0)
        for el, cnt in need.items():
            cand = np.flatnonzero(alive & (sym == el) & (dz <= gb_width))
            if len(cand) < cnt:
                cand = np.flatnonzero(alive & (sym == el))
            pick = cand[np.lexsort((dz[cand], nn[cand]))[:cnt]]
            alive[pick] = False
            comp_removed[el] = int(cnt)
    return pos, alive, dict(merged=merged, removed_overlap=removed_overlap,
                            removed_by_element=removed_by_el,
                            compensation_vacancies=comp_removed,
                            n_removed=int((~alive).sum()))


def _bicrystal(ori, shift, m):
    """Mirror bicrystal of m periods per grain (positions, numbers, charges, cell, X)."""
    fr = ori.frame
    pos, num, q = _layer_positions(ori, shift, m)
    pos = _wrap_inplane(pos, fr.a1, fr.a2)
    X = m * fr.d
    g2 = pos.copy()
    g2[:, 2] = 2 * X - g2[:, 2]
    P = np.vstack([pos, g2])
    grain = np.r_[np.ones(len(pos), int), np.full(len(pos), 2)]
    cell = np.array([fr.a1, fr.a2, [0.0, 0.0, 2 * X]])
    return P, np.r_[num, num], np.r_[q, q], cell, X, grain


def _size(w1, w2, d, n_cell, n_rm, natoms, m_min, max_aspect):
    """Fewest-atom (r1, r2, m) with r1 r2 (2 m n_cell - n_rm) >= natoms."""
    best = None
    for r1 in range(1, 60):
        for r2 in range(1, 60):
            per = r1 * r2
            m = max(m_min, int(np.ceil((natoms / per + n_rm) / (2 * n_cell) - 1e-9)))
            tot = per * (2 * m * n_cell - n_rm)
            dims = np.array([r1 * w1, r2 * w2, 2 * m * d])
            asp = float(dims.max() / dims.min())
            key = (asp > max_aspect, tot, asp)
            if best is None or key < best[0]:
                best = (key, (r1, r2, m))
            if per * (2 * m_min * n_cell - n_rm) > 2 * natoms + 4 * n_cell:
                break
    return best[1]


def _scan_terminations(ori, m_min, termination, overlap, gb_width):
    """Clean-up of the smallest bicrystal for every cut height (mid-points between
    atomic planes, or the given *termination*): ``[(removed, -d_min, shift)]`` sorted,
    best first, and the number of heights scanned."""
    d = ori.frame.d
    cands = _cut_heights(ori)[0] / d
    if termination is not None:
        cands = np.array([float(termination)])
    m_scan = max(m_min, int(np.ceil(5.0 / d)))
    scan = []
    for s in cands:
        P, num, q, cell, X, grain = _bicrystal(ori, s, m_scan)
        pos, alive, rep = _cleanup(P, num, q, cell, [0.0, X], overlap, gb_width)
        i, j, S, dd = periodic_pairs(pos[alive], cell, 3.0)
        scan.append((rep["n_removed"], -float(dd.min()) if len(dd) else -9.0, float(s)))
    scan.sort()
    return scan, len(cands)


def grain_boundary(atoms, axis=(0, 0, 1), plane=(2, 3, 0), natoms=17000,
                   min_grain_thickness=6.0, max_aspect=2.0, overlap=None, gb_width=3.0,
                   termination=None, repeat=None):
    """Periodic symmetric tilt bicrystal with two grain boundaries.

    Parameters
    ----------
    atoms : ase.Atoms
        Bulk crystal (e.g. ``llzo_cubic()``); ``axis`` and ``plane`` refer to
        its cell (cubic: direction [uvw] and plane (hkl) with the same axes).
    axis, plane : tilt axis [uvw] and boundary plane (hkl), axis in the plane.
    natoms : int
        Target size: the bicrystal (in-plane repetition r1 x r2 of the CSL
        cell, m periods per grain, grains >= ``min_grain_thickness``) with the
        fewest atoms >= ``natoms`` *after* the boundary clean-up, among those
        with box aspect ratio <= ``max_aspect`` (relaxed if none).  Small
        ``natoms`` gives the smallest feasible cell (one CSL cell in-plane,
        thinnest grains), e.g. 672 atoms for Σ13(230)/[001] with 6 Å grains.
    overlap : dict, optional
        Clean-up thresholds (default :data:`GB_OVERLAP`).
    gb_width : float
        Half-width (Å) of the boundary region for compensating vacancies.
    termination : float, optional
        Fractional cut height within one period (default: scanned).
    repeat : (r1, r2, m), optional
        Explicit size (overrides ``natoms``).
    """
    overlap = dict(GB_OVERLAP, **(overlap or {}))
    cell0 = np.asarray(atoms.cell)
    n_cart = np.asarray(plane, float) @ np.linalg.inv(cell0).T
    t_cart = np.asarray(axis, float) @ cell0
    if abs(n_cart @ t_cart) > 1e-6 * np.linalg.norm(n_cart) * np.linalg.norm(t_cart):
        raise ValueError(f"tilt axis {axis} does not lie in the plane {plane}")
    ori = oriented_cell(atoms, plane, first_vector=axis)
    fr = ori.frame
    L1 = ori.A
    L2 = L1 * np.array([1.0, 1.0, -1.0])
    sigma = sigma_from_lattices(L1, L2)
    d = fr.d
    m_min = max(1, int(np.ceil(min_grain_thickness / d - 1e-9)))
    w1, w2 = _perp2(fr.a1, fr.a2)
    scan, n_scanned = _scan_terminations(ori, m_min, termination, overlap, gb_width)
    shift = scan[0][2]
    n_rm = scan[0][0]
    if repeat is not None:
        r1, r2, m = (int(x) for x in repeat)
    else:
        r1, r2, m = _size(w1, w2, d, ori.n, n_rm, natoms, m_min, max_aspect)
    P, num, q, cell, X, grain = _bicrystal(ori, shift, m)
    pos, alive, rep = _cleanup(P, num, q, cell, [0.0, X], overlap, gb_width)
    pos, num, q, grain = pos[alive], num[alive], q[alive], grain[alive]
    # planes inside the cell
    pos[:, 2] += X / 2
    small = Atoms(numbers=num, positions=pos, cell=cell, pbc=True)
    small.set_initial_charges(q)
    small.set_array("grain", grain)
    small.wrap()
    out = small.repeat((r1, r2, 1))
    assert abs(total_charge(out)) < 1e-9
    mat = _material(atoms)
    hkl_s = "".join(str(int(x)) for x in plane)
    uvw_s = "".join(str(int(x)) for x in axis)
    n_def = 2 * m * ori.n * r1 * r2
    provenance(
        out, builder="grain_boundary",
        parameters=dict(axis=tuple(int(x) for x in axis), plane=tuple(int(x) for x in plane),
                        natoms=natoms, min_grain_thickness=min_grain_thickness,
                        max_aspect=max_aspect, overlap=overlap, gb_width=gb_width,
                        termination=termination, repeat=repeat),
        reference=atoms.info.get("reference", ""),
        structure_class=f"GB Σ{sigma}({hkl_s})/[{uvw_s}]",
        material=mat, sigma=int(sigma),
        planes=[dict(normal=(0.0, 0.0, 1.0), position=float(X / 2), kind="mirror"),
                dict(normal=(0.0, 0.0, 1.0), position=float(1.5 * X), kind="mirror")],
        tilt_axis=tuple(int(x) for x in axis), boundary_plane=tuple(int(x) for x in plane),
        tilt_angles_deg=_cubic_tilt_angles(cell0, plane, axis),
        grain_thickness=float(X), periods_per_grain=int(m), d_spacing=float(d),
        csl_cell_area=float(fr.area), inplane_repetition=(int(r1), int(r2)),
        gb_area=float(fr.area * r1 * r2), natoms_defect_free=int(n_def),
        cleanup=dict(rep, n_removed_total=int(rep["n_removed"] * r1 * r2),
                     rule=("same-element pairs merged at midpoint, else lower-priority "
                           "element removed (Li<O<Co<La<Zr); neutrality by Li/O vacancies "
                           "nearest the boundaries"), thresholds=overlap),
        termination=dict(shift=float(shift), scanned=n_scanned,
                         removed_per_csl_cell=int(scan[0][0])),
        bulk_formula=formula(atoms),
    )
    return out
