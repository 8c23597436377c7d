"""Slabs and coherent interfaces (own implementation).

Oriented cells
==============
For Miller indices (hkl) of the given cell, the primitive translation lattice
of the structure is found first (pure translations mapping the crystal onto
itself, e.g. the body-centring of LLZO and the R-centring of LiCoO2), then a
primitive basis (a1, a2, a3) adapted to the plane: a1, a2 a Lagrange-reduced
basis of the in-plane lattice, a3 the lattice vector with a3.n = d (one
period of lattice planes) and the smallest in-plane component.  The lab frame
has x along a1 and z along the plane normal.  LLZO(001): 12.97 x 12.97 Å,
d = 6.49 Å (96 atoms per period); LiCoO2(104): 2.816 x 5.702 Å (rectangular),
d = 2.003 Å (one LiCoO2 per period).

Terminations
============
A slab of L complete periods always has the bulk composition (stoichiometric)
and is neutral.  The cut height z0 within a period is chosen among the
mid-points between consecutive atomic heights by, in this order,

1. the smallest dipole of one period along the normal,
   |sum_i q_i ((h_i - z0) mod d)| / A (formal charges; the slab dipole is L
   times this), within 0.01 e/Å of the minimum -- a non-polar cut if one
   exists;
2. the smallest broken bond-valence density: sum over cation-O bonds cut by
   the plane of the Pauling bond strength q_cation / CN_cation, per Å^2.

Both numbers are reported in ``info["termination"]``.

Interfaces
==========
Supercells of the two in-plane lattices (all 2x2 Hermite normal forms up to
a given area, Lagrange-reduced) are paired when their areas agree; the film
supercell is mapped onto the substrate one by the 2D deformation F
(F w_i = u_i, det F > 0).  The strain is the left stretch V - 1 of the polar
decomposition F = V R (principal strains = singular values of F - 1).  The
film is strained onto the substrate in-plane (its thickness is kept), the two
slabs are stacked with a vertical ``gap`` between the outermost atomic planes
on both sides (the cell is periodic along z, so there are two interfaces, and
nothing overlaps through the periodic boundary).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ._common import (FORMAL_CHARGES, composition, formula, is_cation, periodic_pairs,
                      provenance, unique_periodic)
from ._lattice import choose_repetitions, plane_frame, translation_lattice

__all__ = ["oriented_cell", "slab", "interface", "find_matches"]


def _hkl_str(hkl):
    return "".join(str(int(x)) for x in hkl)


def _material(atoms):
    return atoms.info.get("material") or formula(atoms)


def _charges(atoms):
    q = atoms.get_initial_charges()
    if not np.any(q):
        q = np.array([FORMAL_CHARGES[s] for s in atoms.get_chemical_symbols()], float)
    return np.asarray(q, float)


class Oriented:
    """Primitive cell oriented to a plane (lab frame: normal = z)."""

    def __init__(self, frame, frac, numbers, charges):
        self.frame = frame
        self.frac = frac
        self.numbers = numbers
        self.charges = charges
        self.A = np.array([frame.a1, frame.a2, frame.a3])

    @property
    def n(self):
        return len(self.numbers)

    def heights(self):
        return self.frac[:, 2] * self.frame.d


def oriented_cell(atoms, hkl, first_vector=None):
    """Orient the primitive cell of ``atoms`` to the plane (hkl).

    ``first_vector``: optional direction [uvw] (in the basis of
    ``atoms.cell``) lying in the plane, to be used as a1.
    """
    prim, _ = translation_lattice(atoms)
    normal = np.asarray(hkl, float) @ np.linalg.inv(np.asarray(atoms.cell)).T
    fv = None if first_vector is None else np.asarray(first_vector, float) @ atoms.cell.array
    if fv is not None and abs(fv @ normal) > 1e-6 * np.linalg.norm(fv) * np.linalg.norm(normal):
        raise ValueError(f"direction {first_vector} does not lie in the plane {hkl}")
    fr = plane_frame(prim, normal, fv)
    pos = atoms.positions @ fr.rotation.T
    A = np.array([fr.a1, fr.a2, fr.a3])
    f = np.linalg.solve(A.T, pos.T).T
    keep = unique_periodic(f, atoms.numbers, tol=1e-4)
    f = np.mod(f[keep], 1.0)
    f[f > 1 - 1e-9] = 0.0
    nexp = len(atoms) * abs(np.linalg.det(prim)) / atoms.get_volume()
    if abs(len(keep) - nexp) > 1e-6:
        raise RuntimeError(f"oriented cell has {len(keep)} atoms, expected {nexp}")
    return Oriented(fr, f, atoms.numbers[keep], _charges(atoms)[keep])


def _bonds(ori, scale=1.25):
    """Cation-O bonds of the oriented bulk: (i, j, dz, strength)."""
    from ase.data import chemical_symbols
    sym = np.array([chemical_symbols[z] for z in ori.numbers])
    pos = ori.frac @ ori.A
    i, j, S, d = periodic_pairs(pos, ori.A, 3.2)
    D = pos[j] + S @ ori.A - pos[i]
    cat = np.array([is_cation(s) for s in sym])
    m = cat[i] ^ cat[j]
    i, j, D, d = i[m], j[m], D[m], d[m]
    c = np.where(cat[i], i, j)
    # per cation: bonds within scale * shortest cation-O distance
    dmin = np.full(ori.n, np.inf)
    np.minimum.at(dmin, c, d)
    b = d <= scale * dmin[c]
    i, j, D, d, c = i[b], j[b], D[b], d[b], c[b]
    cn = np.bincount(c, minlength=ori.n)
    strength = np.abs(ori.charges[c]) / np.maximum(cn[c], 1)
    hi = pos[i, 2]
    return hi, D[:, 2], strength


def _cut_heights(ori):
    """Cut heights (Å, within one period d) half-way between the atomic planes, and the
    gaps (Å) between those planes."""
    d = ori.frame.d
    h = np.sort(np.mod(ori.heights(), d))
    uniq = [h[0]]
    for x in h[1:]:
        if x - uniq[-1] > 1e-3:
            uniq.append(x)
    uniq = np.array(uniq)
    gaps = np.diff(np.r_[uniq, uniq[0] + d])
    return np.mod(uniq + 0.5 * gaps, d), gaps


def _termination_scan(ori, tol_dipole=0.01):
    d = ori.frame.d
    A = ori.frame.area
    cands, gaps = _cut_heights(ori)
    hi, dz, sv = _bonds(ori)
    q = ori.charges
    hq = ori.heights()
    rows = []
    for z0, gap in zip(cands, gaps):
        rel = np.mod(hq - z0, d)
        dip = float(q @ rel)
        # bonds crossing planes z0 + k d
        lo = np.minimum(hi, hi + dz)
        up = np.maximum(hi, hi + dz)
        ncross = np.floor((up - z0) / d) - np.floor((lo - z0) / d)
        broken = float((ncross * sv).sum())
        rows.append((z0, gap, dip, broken))
    rows = np.array(rows)
    dip = np.abs(rows[:, 2]) / A
    ok = dip <= dip.min() + tol_dipole
    idx = np.flatnonzero(ok)
    best = idx[np.lexsort((-rows[idx, 1], rows[idx, 3]))[0]]
    z0, gap, dipole, broken = rows[best]
    return dict(z0=float(z0), shift=float(z0 / d), gap=float(gap),
                dipole_per_period=float(dipole), dipole_per_area=float(dipole / A),
                broken_bond_valence_per_area=float(broken / A),
                n_candidates=int(len(rows)),
                nonpolar=bool(abs(dipole) / A < 1e-3))


def _layer_positions(ori, shift, layers):
    """Cartesian lab positions of ``layers`` periods, cut at fractional ``shift``."""
    f = ori.frac.copy()
    f[:, 2] = np.mod(f[:, 2] - shift, 1.0)
    blocks = []
    for k in range(layers):
        g = f.copy()
        g[:, 2] += k
        blocks.append(g)
    g = np.vstack(blocks)
    pos = g @ ori.A
    num = np.tile(ori.numbers, layers)
    q = np.tile(ori.charges, layers)
    return pos, num, q


def _wrap_inplane(pos, c1, c2):
    M = np.array([c1[:2], c2[:2]])
    f = np.linalg.solve(M.T, pos[:, :2].T).T
    f = np.mod(f, 1.0)
    f[f > 1 - 1e-9] = 0.0
    out = pos.copy()
    out[:, :2] = f @ M
    return out


def _inplane_supercell(pos, num, q, a1, a2, M):
    """Fill the in-plane supercell c_i = sum_j M[i, j] a_j with the 2D-periodic atoms."""
    M = np.asarray(M, int)
    c1 = M[0, 0] * a1 + M[0, 1] * a2
    c2 = M[1, 0] * a1 + M[1, 1] * a2
    det = int(round(abs(np.linalg.det(M))))
    # lattice points of (a1, a2) inside the supercell
    corners = np.array([[0, 0], M[0], M[1], M[0] + M[1]])
    lo, hi = corners.min(0), corners.max(0)
    C = np.array([c1[:2], c2[:2]])
    pts = []
    for i in range(lo[0], hi[0] + 1):
        for j in range(lo[1], hi[1] + 1):
            v = i * a1[:2] + j * a2[:2]
            f = np.linalg.solve(C.T, v)
            if np.all(f > -1e-9) and np.all(f < 1 - 1e-9):
                pts.append(i * a1 + j * a2)
    assert len(pts) == det, (len(pts), det)
    P = np.array(pts)
    allpos = (pos[None, :, :] + P[:, None, :]).reshape(-1, 3)
    allpos = _wrap_inplane(allpos, c1, c2)
    return allpos, np.tile(num, det), np.tile(q, det), c1, c2


def _rotate_to_x(pos, c1, c2):
    """Rotate about z so that c1 is along x."""
    ang = np.arctan2(c1[1], c1[0])
    c, s = np.cos(-ang), np.sin(-ang)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return pos @ R.T, R @ c1, R @ c2


def _perp2(c1, c2):
    area = abs(c1[0] * c2[1] - c1[1] * c2[0])
    return area / np.linalg.norm(c2), area / np.linalg.norm(c1)


def slab(atoms, hkl, layers=None, vacuum=15.0, natoms=None, thickness=None,
         termination=None, min_width=8.0, max_aspect=2.0, first_vector=None):
    """Stoichiometric slab of ``atoms`` with surface (hkl), vacuum along z.

    Parameters
    ----------
    hkl : Miller indices w.r.t. ``atoms.cell`` (e.g. (0,0,1) for LLZO, (1,0,4)
        for LCO in hexagonal axes).
    layers : int, optional
        Number of periods d along the normal (each period has the bulk
        composition).  Default: enough for 12 Å (``thickness``).
    vacuum : float
        Vacuum thickness (Å) added along z.
    natoms : int, optional
        Production size: in-plane repetition and layers giving the smallest
        slab with >= natoms atoms and box aspect ratio <= ``max_aspect``
        (vacuum not counted).
    termination : float, optional
        Fractional cut position within one period (overrides the automatic
        choice described in the module docstring).
    min_width : float
        Minimum in-plane width (Å) when ``natoms`` is not given.
    """
    ori = oriented_cell(atoms, hkl, first_vector)
    fr = ori.frame
    term = _termination_scan(ori)
    if termination is not None:
        term["shift"] = float(termination)
        term["z0"] = float(termination) * fr.d
        term["user"] = True
    w1, w2 = _perp2(fr.a1, fr.a2)
    if natoms is not None:
        r1, r2, L = choose_repetitions([w1, w2, fr.d], ori.n, natoms, max_aspect=max_aspect,
                                       fixed=(None, None, layers))
    else:
        r1 = max(1, int(np.ceil(min_width / w1 - 1e-9)))
        r2 = max(1, int(np.ceil(min_width / w2 - 1e-9)))
        if layers is None:
            t = 12.0 if thickness is None else float(thickness)
            layers = max(1, int(np.ceil(t / fr.d - 1e-9)))
        L = layers
    pos, num, q = _layer_positions(ori, term["shift"], L)
    pos, num, q, c1, c2 = _inplane_supercell(pos, num, q, fr.a1, fr.a2, [[r1, 0], [0, r2]])
    pos, c1, c2 = _rotate_to_x(pos, c1, c2)
    zmin, zmax = pos[:, 2].min(), pos[:, 2].max()
    pos[:, 2] += vacuum / 2 - zmin
    cz = (zmax - zmin) + vacuum
    out = Atoms(numbers=num, positions=pos, cell=[c1, c2, [0, 0, cz]], pbc=True)
    out.set_initial_charges(q)
    area = float(abs(np.cross(c1, c2)[2]))
    mat = _material(atoms)
    provenance(
        out, builder="slab",
        parameters=dict(hkl=tuple(int(x) for x in hkl), layers=L, vacuum=vacuum,
                        natoms=natoms, termination=termination),
        reference=atoms.info.get("reference", ""),
        structure_class=f"{mat}({_hkl_str(hkl)}) slab", material=mat,
        miller=tuple(int(x) for x in hkl), surface_area=area, n_surfaces=2,
        layers=L, d_spacing=fr.d, inplane_repetition=(r1, r2),
        slab_thickness=float(zmax - zmin), vacuum=vacuum,
        termination=term, bulk_formula=formula(atoms),
        surface_normal=(0.0, 0.0, 1.0),
    )
    return out


# --------------------------------------------------------------------------
# lattice matching
# --------------------------------------------------------------------------
def _hnf2(N):
    for a in range(1, N + 1):
        if N % a:
            continue
        c = N // a
        for b in range(c):
            yield np.array([[a, b], [0, c]])


def _lagrange_batch(V1, V2):
    """Vectorised Lagrange-Gauss reduction of 2D bases (k, 2) -> reduced + T."""
    V1 = V1.astype(float).copy()
    V2 = V2.astype(float).copy()
    k = len(V1)
    T = np.tile(np.eye(2, dtype=np.int64), (k, 1, 1))
    active = np.ones(k, bool)
    for _ in range(200):
        if not active.any():
            break
        n1 = np.einsum("ij,ij->i", V1, V1)
        n2 = np.einsum("ij,ij->i", V2, V2)
        sw = active & (n1 > n2)
        V1[sw], V2[sw] = V2[sw].copy(), V1[sw].copy()
        T[sw] = T[sw][:, ::-1]
        n1 = np.einsum("ij,ij->i", V1, V1)
        q = np.rint(np.einsum("ij,ij->i", V1, V2) / n1).astype(np.int64)
        q[~active] = 0
        V2 -= q[:, None] * V1
        T[:, 1] -= q[:, None] * T[:, 0]
        n2 = np.einsum("ij,ij->i", V2, V2)
        active = active & (n2 < n1 - 1e-9)
    det = V1[:, 0] * V2[:, 1] - V1[:, 1] * V2[:, 0]
    neg = det < 0
    V2[neg] *= -1
    T[neg, 1] *= -1
    return V1, V2, T


def _superlattices(a1, a2, N):
    """Reduced supercell bases of index N: (M (k,2,2), c1 (k,2), c2 (k,2))."""
    H = np.array(list(_hnf2(N)))
    V1 = H[:, 0, 0:1] * a1[None, :2] + H[:, 0, 1:2] * a2[None, :2]
    V2 = H[:, 1, 0:1] * a1[None, :2] + H[:, 1, 1:2] * a2[None, :2]
    R1, R2, T = _lagrange_batch(V1, V2)
    M = np.einsum("kab,kbc->kac", T, H)
    return M, R1, R2


_VARIANTS = [np.array(t) for t in (
    [[1, 0], [0, 1]], [[0, 1], [-1, 0]], [[-1, 0], [0, -1]], [[0, -1], [1, 0]],
    [[1, 0], [1, 1]], [[1, 0], [-1, 1]], [[1, 1], [0, 1]], [[1, -1], [0, 1]],
    [[0, 1], [-1, 1]], [[0, 1], [-1, -1]], [[1, 1], [-1, 0]], [[1, -1], [1, 0]])]


def _strain(F):
    """Left stretch V - 1 of F = V R (2x2), principal strains, rotation angle."""
    W, s, Vt = np.linalg.svd(F)
    R = W @ Vt
    Vl = W @ np.diag(s) @ W.T
    return Vl - np.eye(2), s - 1.0, float(np.degrees(np.arctan2(R[1, 0], R[0, 0])))


def _sv2(F):
    """Singular values (k, 2) of a stack of 2x2 matrices (analytic)."""
    a, b, c, d = F[:, 0, 0], F[:, 0, 1], F[:, 1, 0], F[:, 1, 1]
    s1 = a * a + b * b + c * c + d * d
    det = a * d - b * c
    disc = np.sqrt(np.maximum(s1 * s1 - 4 * det * det, 0.0))
    return np.sqrt(np.stack([(s1 + disc) / 2, np.maximum(s1 - disc, 0.0) / 2], axis=1))


def find_matches(sub_a1, sub_a2, film_a1, film_a2, max_area, max_strain):
    """Supercell pairs with |principal strain| <= max_strain and area <= max_area.

    For every substrate supercell (2x2 HNF, Lagrange-reduced) the best film
    supercell is kept.  Returns dicts sorted by (max strain, area) with the
    integer matrices (rows: supercell vectors in the primitive in-plane
    bases), the 2D deformation F of the film and its strain.
    """
    As = abs(np.cross(sub_a1, sub_a2)[2])
    Af = abs(np.cross(film_a1, film_a2)[2])
    var = np.array(_VARIANTS)
    out = []
    film_cache = {}
    for Ns in range(1, int(max_area / As + 1e-9) + 1):
        target = Ns * As / Af
        lo = max(1, int(np.floor(target * (1 - 2.2 * max_strain))))
        hi = int(np.ceil(target * (1 + 2.2 * max_strain)))
        sM, sR1, sR2 = _superlattices(sub_a1, sub_a2, Ns)
        subs = list(zip(sM, sR1, sR2))
        best = {}
        for Nf in range(lo, hi + 1):
            if Nf not in film_cache:
                Mf, R1, R2 = _superlattices(film_a1, film_a2, Nf)
                Wf = np.stack([R1, R2], axis=1)
                W = np.einsum("vab,kbc->vkac", var, Wf).reshape(-1, 2, 2)
                M = np.einsum("vab,kbc->vkac", var, Mf).reshape(-1, 2, 2)
                det = W[:, 0, 0] * W[:, 1, 1] - W[:, 0, 1] * W[:, 1, 0]
                ok = det > 1e-9
                W, M, det = W[ok], M[ok], det[ok]
                film_cache[Nf] = (W, M, det, np.linalg.norm(W[:, 0], axis=1),
                                  np.linalg.norm(W[:, 1], axis=1))
            W, M, det, l1, l2 = film_cache[Nf]
            if len(W) == 0:
                continue
            for si, (_, u1, u2) in enumerate(subs):
                r1 = np.linalg.norm(u1) / l1
                r2 = np.linalg.norm(u2) / l2
                m = (np.abs(r1 - 1) <= max_strain) & (np.abs(r2 - 1) <= max_strain)
                if not m.any():
                    continue
                Wm = W[m]
                # F W^T = U^T  (columns are vectors) -> F = U^T (W^T)^-1
                inv = np.empty_like(Wm)  # inverse of W^T
                dm = det[m]
                inv[:, 0, 0] = Wm[:, 1, 1] / dm
                inv[:, 1, 1] = Wm[:, 0, 0] / dm
                inv[:, 0, 1] = -Wm[:, 1, 0] / dm
                inv[:, 1, 0] = -Wm[:, 0, 1] / dm
                U = np.array([u1[:2], u2[:2]]).T
                F = np.einsum("ab,kbc->kac", U, inv)
                emax = np.abs(_sv2(F) - 1).max(1)
                k = int(np.argmin(emax))
                if emax[k] <= max_strain and (si not in best or emax[k] < best[si][0]):
                    best[si] = (float(emax[k]), Nf, M[m][k], F[k])
        for si, (e, Nf, Mfk, F) in best.items():
            out.append(dict(area=float(Ns * As), n_sub=Ns, n_film=int(Nf),
                            M_sub=subs[si][0].tolist(), M_film=Mfk.tolist(), F=F.tolist(),
                            max_strain=e))
    out.sort(key=lambda m: (round(m["max_strain"], 6), m["area"]))
    return out


def _interface_size(w1, w2, ns, nf, ds, df, natoms, gap, Lmin_s, Lmin_f, max_aspect):
    """Fewest-atom (r1, r2, Ls, Lf) with >= natoms and aspect <= max_aspect."""
    best = None
    for r1 in range(1, 41):
        for r2 in range(1, 41):
            Ls = Lmin_s
            per = r1 * r2 * (ns + nf * ds / df)
            Ls = max(Lmin_s, int(natoms / per) - 1)
            while True:
                Lf = max(Lmin_f, int(round(Ls * ds / df)))
                tot = r1 * r2 * (Ls * ns + Lf * nf)
                if tot >= natoms:
                    break
                Ls += 1
            dims = np.array([r1 * w1, r2 * w2, Ls * ds + Lf * df + 2 * gap])
            asp = float(dims.max() / dims.min())
            key = (asp > max_aspect, tot, asp)
            if best is None or key < best[0]:
                best = (key, (r1, r2, Ls, Lf), tot, asp)
            if r1 * r2 * (Lmin_s * ns + Lmin_f * nf) > 4 * max(natoms, 1) + 1000:
                break
    return best


def _lattice_matches(so, fo, natoms, max_strain, max_area):
    """In-plane supercell matches of the film onto the substrate.

    Without ``max_area`` the search area starts at 1.5 x that of a cube of
    ``natoms`` atoms (at least 4 substrate cells) and doubles, up to six times,
    until a match is found.

    Parameters
    ----------
    so, fo : Oriented
        Substrate and film oriented along their planes.
    natoms : int
        Target size.
    max_strain : float
        Largest allowed |principal strain| of the film.
    max_area : float or None, Å^2
        Fixed largest supercell area.

    Returns
    -------
    list of dict
        :func:`find_matches` rows.
    """
    v_at = 0.5 * (abs(np.linalg.det(so.A)) / so.n + abs(np.linalg.det(fo.A)) / fo.n)
    A_target = (natoms * v_at) ** (2.0 / 3.0)
    limit = max_area if max_area is not None else max(1.5 * A_target, 4 * so.frame.area)
    matches = []
    for _ in range(6):
        matches = find_matches(so.frame.a1, so.frame.a2, fo.frame.a1, fo.frame.a2,
                               limit, max_strain)
        if matches or max_area is not None:
            break
        limit *= 2
    if not matches:
        raise ValueError(f"no supercell match with strain <= {max_strain} and area <= "
                         f"{limit:.0f} Å^2")
    return matches


def _choose_match(so, fo, matches, natoms, gap, min_thickness, max_aspect, size_tolerance):
    """The match and cell size :func:`interface` builds.

    For each match the fewest-atom cell (:func:`_interface_size`) is found; among
    those within (1 + ``size_tolerance``) x max(natoms, smallest cell) atoms the
    lowest strain (0.5 % bins) wins, then the aspect limit, then the size.

    Parameters
    ----------
    so, fo : Oriented
    matches : list of dict
    natoms : int
    gap, min_thickness : float, Å
    max_aspect, size_tolerance : float

    Returns
    -------
    match : dict
    size : tuple
        :func:`_interface_size` result ``(key, (r1, r2, Ls, Lf), atoms, aspect)``.
    """
    ds, df = so.frame.d, fo.frame.d
    Lmin_s = max(1, int(np.ceil(min_thickness / ds - 1e-9)))
    Lmin_f = max(1, int(np.ceil(min_thickness / df - 1e-9)))
    cands = []
    for m in matches:
        Ms = np.array(m["M_sub"])
        c1 = Ms[0, 0] * so.frame.a1 + Ms[0, 1] * so.frame.a2
        c2 = Ms[1, 0] * so.frame.a1 + Ms[1, 1] * so.frame.a2
        w1, w2 = _perp2(c1, c2)
        size = _interface_size(w1, w2, so.n * m["n_sub"], fo.n * m["n_film"], ds, df,
                               natoms, gap, Lmin_s, Lmin_f, max_aspect)
        cands.append((m, size))
    smallest = min(c[1][2] for c in cands)
    cap = (1 + size_tolerance) * max(natoms, smallest)
    pool = [c for c in cands if c[1][2] <= cap]
    # strain in 0.5 % bins first, then box shape, then size
    return min(pool, key=lambda c: (int(c[0]["max_strain"] / 0.005), c[1][0][0],
                                    c[1][2], c[0]["max_strain"], c[0]["area"]))


def _block(ori, shift, layers, M):
    """Slab block of ``layers`` layers cut at ``shift``, repeated in plane by the
    2x2 integer matrix ``M``: positions (Å), numbers, charges (e), cell vectors."""
    pos, num, q = _layer_positions(ori, shift, layers)
    return _inplane_supercell(pos, num, q, ori.frame.a1, ori.frame.a2, M)


def _strain_onto(fpos, C1, C2, F1, F2, shift):
    """Strain the film block's in-plane positions onto the substrate cell (C1, C2)
    and shift them by ``shift`` (fractions of C1, C2); in place.

    Returns
    -------
    numpy.ndarray
        The 2x2 deformation gradient (lab frame).
    """
    U = np.array([C1[:2], C2[:2]]).T
    V = np.array([F1[:2], F2[:2]]).T
    F = U @ np.linalg.inv(V)
    fpos[:, :2] = fpos[:, :2] @ F.T
    fpos[:, :2] += shift[0] * C1[:2] + shift[1] * C2[:2]
    return F


def _film_strain(F, C1, C2, F1, F2, C1r, C2r, best, Ms_tot, Mf_tot):
    """``info["strain"]`` of an interface: strain components in the frame with x
    along C1, principal strains, strain along both cell vectors, film rotation
    (degrees), areas (Å^2) and the supercell matrices."""
    ang = np.arctan2(C1[1], C1[0])
    Rz = np.array([[np.cos(-ang), -np.sin(-ang)], [np.sin(-ang), np.cos(-ang)]])
    eps, princ, rot = _strain(Rz @ F @ Rz.T)
    area = float(abs(np.cross(C1r, C2r)[2]))
    return dict(
        eps_xx=float(eps[0, 0]), eps_yy=float(eps[1, 1]), eps_xy=float(eps[0, 1]),
        principal=[float(x) for x in princ], max_abs=float(np.abs(princ).max()),
        along_a=float(np.linalg.norm(C1) / np.linalg.norm(F1) - 1),
        along_b=float(np.linalg.norm(C2) / np.linalg.norm(F2) - 1),
        angle_change_deg=float(np.degrees(
            np.arccos(C1[:2] @ C2[:2] / np.linalg.norm(C1) / np.linalg.norm(C2))
            - np.arccos(F1[:2] @ F2[:2] / np.linalg.norm(F1) / np.linalg.norm(F2)))),
        film_rotation_deg=rot, matched_area=best["area"], area=area,
        film_area_unstrained=float(abs(np.cross(F1, F2)[2])),
        M_substrate=Ms_tot.tolist(), M_film=Mf_tot.tolist(),
        applied_to="film (in-plane; film thickness unchanged)",
    )


def _slab_record(atoms, hkl, layers, d, thickness, numbers, termination):
    """Provenance of one slab of an interface (thickness, d in Å)."""
    return dict(material=_material(atoms), hkl=tuple(int(x) for x in hkl), layers=layers,
                d_spacing=d, thickness=thickness, natoms=int(len(numbers)),
                formula=formula(composition_from_numbers(numbers)), termination=termination)


def interface(substrate, sub_hkl, film, film_hkl, natoms=17000, max_strain=0.03,
              gap=2.0, min_thickness=6.0, max_aspect=2.0, max_area=None,
              shift=(0.0, 0.0), sub_termination=None, film_termination=None,
              size_tolerance=0.3):
    """Periodic substrate|film interface cell (two interfaces along z).

    Parameters
    ----------
    substrate, film : ase.Atoms
        Bulk crystals (e.g. ``llzo_cubic()``, ``lco()``).
    sub_hkl, film_hkl : Miller indices w.r.t. the respective cells.
    natoms : int
        Target size.  For every lattice match (one per substrate supercell,
        area up to 1.5 x that of a cube holding ``natoms`` atoms) the fewest-
        atom cell with >= natoms atoms is found (in-plane repetition r1 x r2,
        slabs of equal thickness within one period, each >= ``min_thickness``,
        box aspect ratio <= ``max_aspect``).  Among the matches whose cell has
        at most (1 + ``size_tolerance``) x max(natoms, smallest possible cell)
        atoms, the one with the lowest strain (in 0.5 % bins) is taken, then
        one meeting the aspect limit, then the fewest atoms.  A small ``natoms``
        therefore gives the smallest feasible interface (for LLZO(001)|LCO(104) at
        3 % strain: 673 Å^2, 876 atoms).
    max_strain : float
        Largest allowed |principal strain| of the film (0.03 = 3 %).
    gap : float
        Vertical distance (Å) between the outermost atomic planes of the two
        slabs, at both interfaces.
    min_thickness : float
        Minimum thickness of each slab (Å); sets the smallest feasible cell.
    shift : (float, float)
        In-plane translation of the film (fractions of the lateral cell).

    ``info["strain"]`` holds the film strain (lab frame, x along the first
    lateral cell vector: eps_xx, eps_yy, eps_xy; principal strains; strain
    along both cell vectors; film rotation) and the matched area.
    ``info["planes"]`` holds both interface planes (normal (0, 0, 1),
    position z in Å in the middle of the gaps).
    """
    so = oriented_cell(substrate, sub_hkl)
    fo = oriented_cell(film, film_hkl)
    sterm = _termination_scan(so)
    fterm = _termination_scan(fo)
    if sub_termination is not None:
        sterm["shift"] = float(sub_termination)
    if film_termination is not None:
        fterm["shift"] = float(film_termination)
    matches = _lattice_matches(so, fo, natoms, max_strain, max_area)
    best, size = _choose_match(so, fo, matches, natoms, gap, min_thickness, max_aspect,
                               size_tolerance)
    r1, r2, Ls, Lf = size[1]
    Ms_tot = np.array([[r1, 0], [0, r2]]) @ np.array(best["M_sub"])
    Mf_tot = np.array([[r1, 0], [0, r2]]) @ np.array(best["M_film"])
    spos, snum, sq, C1, C2 = _block(so, sterm["shift"], Ls, Ms_tot)
    fpos, fnum, fq, F1, F2 = _block(fo, fterm["shift"], Lf, Mf_tot)
    F = _strain_onto(fpos, C1, C2, F1, F2, shift)
    fpos = _wrap_inplane(fpos, C1, C2)
    # stack
    spos[:, 2] -= spos[:, 2].min()
    top_s = spos[:, 2].max()
    fpos[:, 2] += top_s + gap - fpos[:, 2].min()
    top_f = fpos[:, 2].max()
    # lateral frame with C1 along x
    pos, C1r, C2r = _rotate_to_x(np.vstack([spos, fpos]), C1, C2)
    atoms = Atoms(numbers=np.r_[snum, fnum], positions=pos, cell=[C1r, C2r, [0, 0, top_f + gap]],
                  pbc=True)
    atoms.set_initial_charges(np.r_[sq, fq])
    atoms.wrap()
    smat, fmat = _material(substrate), _material(film)
    provenance(
        atoms, builder="interface",
        parameters=dict(sub_hkl=tuple(int(x) for x in sub_hkl),
                        film_hkl=tuple(int(x) for x in film_hkl), natoms=natoms,
                        max_strain=max_strain, gap=gap, min_thickness=min_thickness,
                        max_aspect=max_aspect, shift=tuple(shift)),
        reference="; ".join(x for x in (substrate.info.get("reference", ""),
                                         film.info.get("reference", "")) if x),
        structure_class=(f"interface {smat}({_hkl_str(sub_hkl)})|"
                         f"{fmat}({_hkl_str(film_hkl)})"),
        planes=[dict(normal=(0.0, 0.0, 1.0), position=float(top_s + gap / 2),
                     kind=f"{smat} top | {fmat} bottom"),
                dict(normal=(0.0, 0.0, 1.0), position=float(top_f + gap / 2),
                     kind=f"{fmat} top | {smat} bottom (through PBC)")],
        strain=_film_strain(F, C1, C2, F1, F2, C1r, C2r, best, Ms_tot, Mf_tot), gap=gap,
        substrate=_slab_record(substrate, sub_hkl, Ls, so.frame.d, float(top_s), snum, sterm),
        film=_slab_record(film, film_hkl, Lf, fo.frame.d, float(top_f - (top_s + gap)),
                          fnum, fterm),
        lateral_repetition=(r1, r2), n_matches_found=len(matches),
        aspect_ratio=float(size[3]), aspect_limit_met=not size[0][0],
    )
    return atoms


def composition_from_numbers(numbers):
    a = Atoms(numbers=numbers)
    return composition(a)
