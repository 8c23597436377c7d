"""Crystalline LLZO (cubic, tetragonal) and LiCoO2 unit cells, supercells.

Wyckoff positions
=================

Cubic garnet Li7La3Zr2O12, space group Ia-3d (No. 230), standard setting
(origin at -3, the only setting of No. 230), conventional cell Z = 8, 192
atoms with ordered Li:

=====  =======  ===================================  ====================
atom   Wyckoff  x, y, z                               coordination
=====  =======  ===================================  ====================
La     24c      1/8, 0, 1/4                           8 O (2.51, 2.58 Å)
Zr     16a      0, 0, 0                               6 O (2.11 Å)
O      96h      0.28107, 0.10039, 0.19526             2 La + 1 Zr + Li
Li1    24d      3/8, 0, 1/4                           4 O (1.92 Å), tetrahedral
Li2    96h      0.0968, 0.6846, 0.5779                "octahedral", split 48g
=====  =======  ===================================  ====================

Lattice parameter a = 12.97 Å.  References: C. A. Geiger et al., Inorg.
Chem. 50, 1089 (2011) (cubic LLZO, a ~ 12.97 Å, La 24c, Zr 16a,
O 96h, Li 24d + 96h); J. Awaka et al., Chem. Lett. 40, 60 (2011) (neutron
refinement of cubic LLZO: Li1 24d, Li2 96h, Li1-Li2 ~ 1.6 Å).  The numerical
values of the free parameters above are representative of these refinements
(rounded; the original tables were not at hand offline, cross-check them
before publication); they were checked here against the published crystal chemistry
(Zr-O 2.11 Å, La-O 2.51/2.58 Å, Li1-O 1.92 Å, 24d-96h 1.63 Å, 96h-96h split
pair 0.77 Å around 48g (1/8, 0.6846, 0.5654)).

Tetragonal Li7La3Zr2O12, space group I4_1/acd (No. 142), **origin choice 2**
(``ase.spacegroup.crystal(..., spacegroup=142, setting=2)``), a = 13.134 Å,
c = 12.663 Å (J. Awaka, N. Kijima, H. Hayakawa, J. Akimoto, J. Solid State
Chem. 182, 2046 (2009)): La1 8b (0, 1/4, 1/8), La2 16e (0.1253, 0, 1/4),
Zr 16c (0, 0, 0), O1/O2/O3 3 x 32g, Li1 8a (0, 1/4, 3/8) tetrahedral,
Li2 16f (x, x+1/4, 1/8) and Li3 32g octahedral.  The three O 32g positions,
Li2 x = 0.1846 and Li3 (0.5779, 0.0968, 0.6846) are obtained from the cubic
sites above by the group-subgroup splitting Ia-3d -> I4_1/acd (same origin;
96h -> 3 x 32g, 24d -> 8a + 16e, 48g -> 16f + 32g): Li2 sits at the centre
of the 48g octahedron between two empty 16e tetrahedra, Li3 at the 96h split
position that points away from the occupied 8a tetrahedron (Li1-Li3 2.38 Å),
consistent with the ordered arrangement reported by Awaka et al.  These
derived values are not the refined ones of Awaka's table (not available
offline when this was written); La-O, Zr-O, Li-O and Li-Li distances were
checked (Zr-O 2.07 Å, La-O >= 2.48 Å, Li-O >= 1.86 Å, Li-Li >= 2.38 Å).
Fractional coordinates are kept when the metric is made tetragonal.

LiCoO2 (alpha-NaFeO2 type), space group R-3m (No. 166), hexagonal axes,
a = 2.8156 Å, c = 14.0542 Å, Li 3a (0, 0, 0), Co 3b (0, 0, 1/2),
O 6c (0, 0, z), z = 0.2396 (Co-O 1.92 Å, Li-O 2.09 Å).  References:
J. Akimoto, Y. Gotoh, Y. Oosawa, J. Solid State Chem. 141, 298 (1998);
H. J. Orman, P. J. Wiseman, Acta Cryst. C 40, 12 (1984).

Li ordering in cubic LLZO
=========================
The cubic cell offers 24 + 96 = 120 Li sites for 56 Li.  Sites closer than
``d_excl`` = 1.7 Å (the 24d-96h pair at 1.63 Å and the split 96h-96h pair at
0.77 Å around 48g) exclude each other, so at most one of a 24d site and its
four adjacent 96h sites is filled.  Exact integer programming over this
exclusion graph shows that at most 60 Li fit and that 56 Li need 8 to 13 of
them on 24d.  All orderings keep the body-centring translation (sites are
filled in (x, x + 1/2) pairs), so a 96-atom primitive cell exists; with
this constraint 8, 10 or 12 Li sit on 24d.  Allowed Li-Li distances are then
>= 2.36 Å.  Three orderings are available (``ordering=``):

``"search"`` (default)
    Simulated annealing (seeded, deterministic) of the Ewald energy of the
    formal-charge point-charge model (Li+1 La+3 Zr+4 O-2), the usual
    electrostatic screening of Li orderings, started from the tetragonal
    ordering and from ``n_starts`` random exclusion-free configurations with
    8, 10 and 12 Li on 24d (random-objective integer programs).  For every
    seed tried (0-9, also with 5x longer annealing) it ends in the same
    ordering: 10 Li on 24d + 46 on 96h, Ewald energy -715.276 eV per cell,
    0.02 eV below the tetragonal-like 8 + 48 ordering (I4_1cd, -715.253 eV)
    and 1.3 eV below the plain mapping of the tetragonal structure.  Its
    24d:96h ratio (0.42 : 0.48 site occupancy) is closer to the neutron
    refinement of cubic LLZO (0.56 : 0.44, Awaka 2011) than the tetragonal
    ordering (0.33 : 0.50).

``"tetragonal"``
    The ordering of tetragonal LLZO mapped onto the cubic cell: the 8
    tetrahedral sites of the 8a orbit of I4_1/acd (24d sites whose 1/8-type
    coordinate is z), all 48 octahedral cages occupied; 32 of them (next to
    an occupied tetrahedron) by the 96h split site pointing away from it, the
    remaining 16 by the 96h site of lowest electrostatic energy (greedy).

``"random"``
    A random exclusion-free configuration (seeded; random number of 24d Li
    among 8/10/12, random linear objective of an exact integer program), for
    training-set diversity.

The chosen sites, their Wyckoff labels and the Ewald energy are stored in
``atoms.info``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from ase import Atoms
from ase.spacegroup import crystal

from ._common import (FORMAL_CHARGES, formula, provenance, set_formal_charges, total_charge,
                      unique_periodic)

__all__ = ["llzo_cubic", "llzo_tetragonal", "lco", "supercell"]

# --------------------------------------------------------------------------
# literature data
# --------------------------------------------------------------------------
LLZO_CUBIC_A = 12.97
LLZO_CUBIC_SITES = {
    "La_24c": (0.125, 0.0, 0.25),
    "Zr_16a": (0.0, 0.0, 0.0),
    "O_96h": (0.28107, 0.10039, 0.19526),
    "Li_24d": (0.375, 0.0, 0.25),
    "Li_96h": (0.0968, 0.6846, 0.5779),
}
REF_LLZO_CUBIC = ("C. A. Geiger et al., Inorg. Chem. 50, 1089 (2011); "
                  "J. Awaka et al., Chem. Lett. 40, 60 (2011)")

LLZO_TET_A, LLZO_TET_C = 13.134, 12.663
LLZO_TET_SITES = [
    ("La", "8b", (0.0, 0.25, 0.125)),
    ("La", "16e", (0.1253, 0.0, 0.25)),
    ("Zr", "16c", (0.0, 0.0, 0.0)),
    ("O", "32g", (0.28107, 0.10039, 0.19526)),
    ("O", "32g", (0.19526, 0.28107, 0.10039)),
    ("O", "32g", (0.10039, 0.19526, 0.28107)),
    ("Li", "8a", (0.0, 0.25, 0.375)),
    ("Li", "16f", (0.1846, 0.4346, 0.125)),
    ("Li", "32g", (0.5779, 0.0968, 0.6846)),
]
REF_LLZO_TET = ("J. Awaka, N. Kijima, H. Hayakawa, J. Akimoto, "
                "J. Solid State Chem. 182, 2046 (2009)")

LCO_A, LCO_C, LCO_ZO = 2.8156, 14.0542, 0.2396
REF_LCO = ("J. Akimoto, Y. Gotoh, Y. Oosawa, J. Solid State Chem. 141, 298 (1998); "
           "H. J. Orman, P. J. Wiseman, Acta Cryst. C 40, 12 (1984)")


# --------------------------------------------------------------------------
# Ewald potentials (point charges, small cells only)
# --------------------------------------------------------------------------
COULOMB = 14.399645  # eV Å / e^2


def _ewald_matrix(cell, pa, pb, alpha=0.35, rcut=10.0, kcut=None):
    """Periodic Ewald pair potential psi(r_a - r_b) (1/Å) for all a in pa, b in pb.

    The self/background constants are omitted (they cancel when the number of
    charges of each kind is fixed).  Cost O(Na Nb (n_images + n_k)): only for
    unit cells.
    """
    from scipy.special import erfc
    cell = np.asarray(cell, float)
    V = abs(np.linalg.det(cell))
    rec = 2 * np.pi * np.linalg.inv(cell).T
    if kcut is None:
        kcut = 2 * alpha * np.sqrt(-np.log(1e-8))
    # real space images
    nmax = [int(np.ceil(rcut / (V / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])))))
            for i in range(3)]
    shifts = np.array([(i, j, k) for i in range(-nmax[0], nmax[0] + 1)
                       for j in range(-nmax[1], nmax[1] + 1)
                       for k in range(-nmax[2], nmax[2] + 1)]) @ cell
    d = pa[:, None, :] - pb[None, :, :]
    out = np.zeros((len(pa), len(pb)))
    for s in shifts:
        r = np.linalg.norm(d + s, axis=-1)
        m = (r > 1e-8) & (r < rcut)
        out[m] += erfc(alpha * r[m]) / r[m]
    # reciprocal space
    kmax = [int(np.ceil(kcut / np.linalg.norm(rec[i]))) for i in range(3)]
    ks = np.array([(i, j, k) for i in range(0, kmax[0] + 1)
                   for j in range(-kmax[1], kmax[1] + 1)
                   for k in range(-kmax[2], kmax[2] + 1)
                   if (i, j, k) > (0, 0, 0)]) @ rec
    k2 = np.einsum("ij,ij->i", ks, ks)
    ks, k2 = ks[k2 < kcut ** 2], k2[k2 < kcut ** 2]
    w = 2 * (4 * np.pi / V) * np.exp(-k2 / (4 * alpha ** 2)) / k2  # factor 2: +-k
    pha = pa @ ks.T
    phb = pb @ ks.T
    out += (np.cos(pha) * w) @ np.cos(phb).T + (np.sin(pha) * w) @ np.sin(phb).T
    return out


# --------------------------------------------------------------------------
# cubic LLZO
# --------------------------------------------------------------------------
def _cubic_framework_and_sites(a):
    cp = [a, a, a, 90, 90, 90]
    s = LLZO_CUBIC_SITES
    fw = crystal(["La", "Zr", "O"], [s["La_24c"], s["Zr_16a"], s["O_96h"]],
                 spacegroup=230, cellpar=cp)
    tet = crystal(["Li"], [s["Li_24d"]], spacegroup=230, cellpar=cp)
    h96 = crystal(["Li"], [s["Li_96h"]], spacegroup=230, cellpar=cp)
    assert len(fw) == 136 and len(tet) == 24 and len(h96) == 96
    sites = np.vstack([tet.get_scaled_positions(), h96.get_scaled_positions()])
    labels = ["24d"] * 24 + ["96h"] * 96
    return fw, sites, labels


def _frac_dist(f1, f2, a):
    d = f1[:, None, :] - f2[None, :, :]
    d -= np.round(d)
    return np.linalg.norm(d * a, axis=-1)


@lru_cache(maxsize=32)
def _li_ordering(a, ordering, seed, d_excl, n_steps, n_starts):
    """Occupied Li site indices (into the 120 24d+96h sites) + Ewald energy."""
    fw, sites, labels = _cubic_framework_and_sites(a)
    n = len(sites)
    D = _frac_dist(sites, sites, a)
    excl = (D < d_excl) & ~np.eye(n, dtype=bool)
    # body-centring partner of each site
    half = np.mod(sites + 0.5, 1.0)
    partner = np.argmin(_frac_dist(half, sites, a), axis=1)
    assert np.all(_frac_dist(half, sites[partner], a).diagonal() < 1e-6)
    # Ewald: site potential from the framework, site-site pair potential
    cell = np.eye(3) * a
    ps = sites @ cell
    q_fw = np.array([FORMAL_CHARGES[s] for s in fw.get_chemical_symbols()], float)
    phi = _ewald_matrix(cell, ps, fw.positions) @ q_fw
    psi = _ewald_matrix(cell, ps, ps)

    def energy(occ):
        idx = np.flatnonzero(occ)
        return COULOMB * (phi[idx].sum() + 0.5 * psi[np.ix_(idx, idx)].sum())

    # tetragonal start: 8a-type tetrahedra (1/8-type coordinate on z)
    occ = np.zeros(n, bool)
    for i in range(24):
        if abs((sites[i, 2] * 8) % 2 - 1) < 1e-6:
            occ[i] = True
    assert occ.sum() == 8
    # octahedral cages = pairs of 96h sites closer than 1 Å
    cages = []
    seen = set()
    for i in range(24, n):
        if i in seen:
            continue
        j = [k for k in range(24, n) if k != i and D[i, k] < 1.0]
        assert len(j) == 1
        cages.append((i, j[0]))
        seen.update((i, j[0]))
    # choose per cage the site allowed by the tetrahedra, lowest energy if both
    for i, j in sorted(cages):
        if occ[i] or occ[j]:
            continue
        oki = not np.any(excl[i] & occ)
        okj = not np.any(excl[j] & occ)
        if oki and okj:
            # keep body-centring: decide pair (i, partner[i]) together
            ei = phi[i] + psi[i, occ].sum()
            ej = phi[j] + psi[j, occ].sum()
            pick = i if ei <= ej else j
        else:
            pick = i if oki else j
        occ[pick] = True
        occ[partner[pick]] = True
    assert occ.sum() == 56 and not np.any(excl[occ][:, occ])
    if ordering == "tetragonal":
        return tuple(np.flatnonzero(occ)), energy(occ)
    if ordering not in ("search", "random"):
        raise ValueError("ordering must be 'search', 'random' or 'tetragonal'")

    # simulated annealing on body-centred pairs
    rng = np.random.default_rng(seed)
    pairs = sorted({tuple(sorted((i, int(partner[i])))) for i in range(n)})
    pid = np.empty(n, int)
    for k, (i, j) in enumerate(pairs):
        pid[i] = pid[j] = k
    npair = len(pairs)
    P = np.array(pairs)
    pexcl = np.zeros((npair, npair), bool)
    for k, (i, j) in enumerate(pairs):
        for s in (i, j):
            pexcl[k, pid[np.flatnonzero(excl[s])]] = True
    # pair energies (both members)
    pphi = phi[P].sum(1)
    ppsi = np.zeros((npair, npair))
    for a_ in range(2):
        for b_ in range(2):
            ppsi += psi[np.ix_(P[:, a_], P[:, b_])]
    pocc = np.zeros(npair, bool)
    pocc[pid[np.flatnonzero(occ)]] = True
    npocc = int(pocc.sum())

    def penergy(po):
        idx = np.flatnonzero(po)
        return COULOMB * (pphi[idx].sum() + 0.5 * (ppsi[np.ix_(idx, idx)].sum()
                                                   - ppsi[idx, idx].sum()))

    is_tet_pair = np.array([labels[i] == "24d" for i, _ in pairs], float)

    def milp_start(rs, n_tet_pairs):
        """Random exclusion-free configuration with a given number of 24d pairs
        (random linear objective, exact integer program)."""
        from scipy.optimize import Bounds, LinearConstraint, milp
        ii, jj = np.nonzero(np.triu(pexcl, 1))
        A = np.zeros((len(ii), npair))
        A[np.arange(len(ii)), ii] = 1
        A[np.arange(len(ii)), jj] = 1
        res = milp(-rs.random(npair),
                   constraints=[LinearConstraint(A, 0, 1),
                                LinearConstraint(np.ones((1, npair)), npocc, npocc),
                                LinearConstraint(is_tet_pair[None], n_tet_pairs, n_tet_pairs)],
                   integrality=np.ones(npair), bounds=Bounds(0, 1))
        if not res.success:
            return None
        return res.x > 0.5

    def anneal(po, T0, T1):
        E = penergy(po)
        best = (E, po.copy())
        for step in range(n_steps):
            T = T0 * (T1 / T0) ** (step / max(1, n_steps - 1))
            new = po.copy()
            add = rng.choice(np.flatnonzero(~new))
            conflict = np.flatnonzero(pexcl[add] & new)
            new[conflict] = False
            new[add] = True
            deficit = npocc - int(new.sum())
            if deficit < 0:
                drop = rng.choice(np.flatnonzero(new & (np.arange(npair) != add)), -deficit,
                                  replace=False)
                new[drop] = False
            elif deficit > 0:
                ok = True
                for _ in range(deficit):
                    free = np.flatnonzero(~new & ~np.any(pexcl[:, new], axis=1))
                    if len(free) == 0:
                        ok = False
                        break
                    new[rng.choice(free)] = True
                if not ok:
                    continue
            En = penergy(new)
            if En <= E or rng.random() < np.exp(-(En - E) / T):
                po, E = new, En
                if E < best[0] - 1e-9:
                    best = (E, po.copy())
        return best

    # 56 Li fit with 8..13 Li on 24d (exact integer programming); with the
    # body-centring kept: 8, 10 or 12 (4, 5, 6 pairs)
    tet_pairs = (4, 5, 6)
    if ordering == "random":
        pocc = milp_start(rng, int(rng.choice(tet_pairs)))
    else:
        results = [anneal(pocc, 2.0, 0.01)]
        for k in range(n_starts):
            start = milp_start(rng, tet_pairs[k % len(tet_pairs)])
            if start is not None:
                results.append(anneal(start, 2.0, 0.01))
        pocc = min(results, key=lambda r: r[0])[1]
    occ = np.zeros(n, bool)
    occ[P[pocc].ravel()] = True
    assert occ.sum() == 56 and not np.any(excl[occ][:, occ])
    return tuple(np.flatnonzero(occ)), energy(occ)


def llzo_cubic(a=LLZO_CUBIC_A, ordering="search", seed=0, primitive=False,
               d_excl=1.7, n_steps=3000, n_starts=6):
    """Cubic garnet LLZO with ordered Li, Li56La24Zr16O96 (192 atoms).

    Parameters
    ----------
    a : float
        Cubic lattice parameter (Å), default 12.97 (Geiger et al. 2011).
    ordering : {"search", "tetragonal", "random"}
        Li ordering on the 24d + 96h sites (see module docstring).
    seed : int
        Seed of the annealing / random configuration (deterministic).
    primitive : bool
        Return the 96-atom body-centred primitive cell (Li28La12Zr8O48)
        instead of the 192-atom conventional cell.  Both orderings keep the
        I-centring, so the two are the same crystal.
    d_excl : float
        Li sites closer than this (Å) exclude each other.
    n_steps, n_starts : int
        Annealing steps per start, number of random starts.

    The La/Zr/O framework has space group Ia-3d (No. 230); the Li ordering
    lowers the symmetry (``info["spacegroup_ordered"]`` if spglib is there).
    """
    fw, sites, labels = _cubic_framework_and_sites(a)
    occ, e_ew = _li_ordering(float(a), ordering, int(seed), float(d_excl), int(n_steps),
                             int(n_starts))
    occ = list(occ)
    li = Atoms("Li%d" % len(occ), scaled_positions=sites[occ], cell=fw.cell, pbc=True)
    atoms = fw.copy()
    atoms.set_array("spacegroup_kinds", None)
    atoms += li
    # order: Li, La, Zr, O (Li first is conventional for this project's data)
    order = np.argsort([{"Li": 0, "La": 1, "Zr": 2, "O": 3}[s]
                        for s in atoms.get_chemical_symbols()], kind="stable")
    atoms = atoms[order]
    wy = ["24d" if labels[i] == "24d" else "96h" for i in occ]
    n_tet = wy.count("24d")
    if primitive:
        P = 0.5 * a * np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]], float)
        frac = np.linalg.solve(P.T, atoms.positions.T).T
        keep = unique_periodic(frac, atoms.numbers)
        prim = Atoms(atoms.numbers[keep], scaled_positions=np.mod(frac[keep], 1.0), cell=P,
                     pbc=True)
        assert len(prim) == 96, len(prim)
        atoms = prim
    set_formal_charges(atoms)
    provenance(
        atoms, builder="llzo_cubic",
        parameters=dict(a=a, ordering=ordering, seed=seed, primitive=primitive,
                        d_excl=d_excl, n_steps=n_steps, n_starts=n_starts),
        reference=REF_LLZO_CUBIC,
        structure_class="LLZO cubic",
        material="LLZO",
        spacegroup_framework="Ia-3d (230)",
        wyckoff=dict(La="24c", Zr="16a", O="96h", Li="24d+96h"),
        li_ordering=ordering,
        li_on_24d=n_tet // (2 if primitive else 1),
        li_on_96h=(len(occ) - n_tet) // (2 if primitive else 1),
        ewald_energy_li_eV=float(e_ew),
        li_site_indices=list(map(int, occ)),
    )
    return atoms


def llzo_tetragonal(a=LLZO_TET_A, c=LLZO_TET_C):
    """Tetragonal LLZO, I4_1/acd (No. 142, origin choice 2), 192 atoms.

    Ordered Li: 8a (tetrahedral) + 16f + 32g (octahedral) = 56 Li
    (Awaka et al., J. Solid State Chem. 182, 2046 (2009)); see the module
    docstring for the coordinates.
    """
    syms = [s for s, _, _ in LLZO_TET_SITES]
    pos = [p for _, _, p in LLZO_TET_SITES]
    atoms = crystal(syms, pos, spacegroup=142, setting=2, cellpar=[a, a, c, 90, 90, 90])
    assert len(atoms) == 192, len(atoms)
    kinds = atoms.get_array("spacegroup_kinds")
    atoms.set_array("spacegroup_kinds", None)
    order = np.lexsort((kinds, [{"Li": 0, "La": 1, "Zr": 2, "O": 3}[s]
                                for s in atoms.get_chemical_symbols()]))
    atoms = atoms[order]
    set_formal_charges(atoms)
    provenance(
        atoms, builder="llzo_tetragonal", parameters=dict(a=a, c=c),
        reference=REF_LLZO_TET, structure_class="LLZO tetragonal", material="LLZO",
        spacegroup="I4_1/acd (142), origin choice 2",
        wyckoff=dict(La="8b+16e", Zr="16c", O="3x32g", Li="8a+16f+32g"),
    )
    return atoms


def lco(a=LCO_A, c=LCO_C, z_o=LCO_ZO):
    """LiCoO2, R-3m (No. 166), hexagonal setting, 12 atoms (Li3Co3O6).

    Li 3a (0,0,0), Co 3b (0,0,1/2), O 6c (0,0,z), z = 0.2396
    (Akimoto et al. 1998; Orman & Wiseman 1984).
    """
    atoms = crystal(["Li", "Co", "O"], [(0, 0, 0), (0, 0, 0.5), (0, 0, z_o)],
                    spacegroup=166, cellpar=[a, a, c, 90, 90, 120])
    assert len(atoms) == 12
    atoms.set_array("spacegroup_kinds", None)
    set_formal_charges(atoms)
    provenance(atoms, builder="lco", parameters=dict(a=a, c=c, z_o=z_o),
               reference=REF_LCO, structure_class="LCO", material="LCO",
               spacegroup="R-3m (166), hexagonal axes",
               wyckoff=dict(Li="3a", Co="3b", O="6c"))
    return atoms


def _perp_widths(cell):
    cell = np.asarray(cell, float)
    V = abs(np.linalg.det(cell))
    return np.array([V / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
                     for i in range(3)])


def supercell(atoms, natoms=None, repeat=None, max_aspect=1.5):
    """Near-cubic repetition of ``atoms`` (diagonal, keeps ``atoms.info``).

    Either ``repeat=(n1, n2, n3)`` exactly, or ``natoms``: the repetition with
    the fewest atoms that is >= ``natoms`` among those whose perpendicular
    box widths differ by at most a factor ``max_aspect`` (ties: the most
    isotropic).  For the 192-atom cubic LLZO and natoms=17000 this is
    4x4x6 = 18,432 atoms; for the 12-atom LCO cell 12x12x10 ... (see
    ``info["supercell"]``).
    """
    from ._lattice import choose_repetitions
    if (natoms is None) == (repeat is None):
        raise ValueError("give exactly one of natoms or repeat")
    if repeat is None:
        repeat = choose_repetitions(_perp_widths(atoms.cell), len(atoms), natoms,
                                    max_aspect=max_aspect)
    repeat = tuple(int(r) for r in repeat)
    big = atoms.repeat(repeat)
    big.info = dict(atoms.info)
    prev = dict(atoms.info.get("supercell", {})) if isinstance(atoms.info.get("supercell"), dict) else {}
    big.info["supercell"] = dict(repeat=repeat, natoms_target=natoms,
                                 parent_natoms=len(atoms), parent=prev or None)
    big.info["natoms"] = len(big)
    big.info["formula"] = formula(big)
    big.info["formal_charge_total"] = total_charge(big)
    return big
