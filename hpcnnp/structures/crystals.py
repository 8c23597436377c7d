"""Crystalline LLZO (cubic, tetragonal) and LiCoO2 unit cells, supercells.

Wyckoff positions
=================

Cubic garnet Li7La3Zr2O12, space group Ia-3d (No. 230), standard setting
(origin at -3, the only setting of No. 230), conventional cell Z = 8, 192
atoms with ordered Li:

=====  =======  ===================================  ====================
atom   Wyckoff  x, y, z                               coordination
=====  =======  ===================================  ====================
La     24c      1/8, 0, 1/4                           8 O (2.52, 2.59 Å)
Zr     16a      0, 0, 0                               6 O (2.10 Å)
O      96h      0.28161, 0.10060, 0.19546             2 La + 1 Zr + Li
Li1    24d      3/8, 0, 1/4                           4 O (1.92 Å), tetrahedral
Li2    96h      0.1004, 0.6853, 0.5769                "octahedral", split 48g
=====  =======  ===================================  ====================

Lattice parameter a = 12.97 Å.  Free parameters from the neutron powder
refinement of cubic (Al-stabilised, Al0.196Li6.06La3Zr2O12) LLZO by
H. Buschmann et al., Phys. Chem. Chem. Phys. 13, 19378 (2011), COD entry
7215448: a = 12.9727(2) Å, O1 96h (-0.03161, 0.05454, 0.14940) -- the same
orbit as the representative listed above --, Li2 96h (0.1004, 0.6853,
0.5769), Li1 24d, La 24c, Zr 16a; published distances Zr-O 2.104(1),
La-O 2.516(1) and 2.588(1) Å, which this cell reproduces (Li1-O 1.92 Å).
The lattice parameter (0.003 Å from the COD value) is the one usually
quoted for cubic LLZO (Geiger et al., Inorg. Chem. 50, 1089 (2011); Awaka
et al., Chem. Lett. 40, 60 (2011)); the coordinate tables of those two
papers were not consulted.  Li1-Li2 (24d-96h) 1.67 Å, split 96h-96h pair
0.68 Å around 48g (1/8, 0.6792, 0.5708).

Tetragonal Li7La3Zr2O12, space group I4_1/acd (No. 142), **origin choice 2**
(``ase.spacegroup.crystal(..., spacegroup=142, setting=2)``), a = 13.134 Å,
c = 12.663 Å, positions of the neutron refinement of J. Awaka, N. Kijima,
H. Hayakawa, J. Akimoto, J. Solid State Chem. 182, 2046 (2009) (Table 6,
a = 13.1279, c = 12.6715 Å there; every 32g given by the orbit member
nearest to the cubic setting): La1 8b (0, 1/4, 1/8), La2 16e (0.127, 0, 1/4),
Zr 16c (0, 0, 0), O3 32g (0.2776, 0.1004, 0.1964), O1 32g (0.1952, 0.2838,
0.0976), O2 32g (0.1029, 0.1959, 0.2838), Li1 8a (0, 1/4, 3/8) tetrahedral,
Li2 16f (0.1797, 0.4297, 1/8) and Li3 32g (0.5806, 0.0857, 0.6959)
octahedral.  These agree to <= 0.002 with the DFT-relaxed Materials Project
structure mp-942733.  Distances: Zr-O 2.10-2.11 Å, La-O 2.47-2.63 Å,
Li1-O 1.91 Å, Li2-O 1.96 (x 4) Å, Li3-O 1.87-2.23 Å, Li-Li >= 2.56 Å.
Fractional coordinates are kept when the metric is changed.

LiCoO2 (alpha-NaFeO2 type), space group R-3m (No. 166), hexagonal axes,
a = 2.8156 Å, c = 14.0542 Å, Li 3a (0, 0, 0), Co 3b (0, 0, 1/2),
O 6c (0, 0, z), z = 0.2396 (Co-O 1.92 Å, Li-O 2.09 Å).  References:
J. Akimoto, Y. Gotoh, Y. Oosawa, J. Solid State Chem. 141, 298 (1998);
H. J. Orman, P. J. Wiseman, Acta Cryst. C 40, 12 (1984) (tables not
consulted); checked against a = 2.816, c = 14.052 Å quoted as the literature
values by K. Teshima et al., Cryst. Growth Des. 10, 4471 (2010), and the
single-crystal O-O edge of the CoO6 octahedron, 2.6180(9) Å (Y. Takahashi,
K. Dokko, M. Nishizawa, J. Akimoto, "Structure and electron density analysis
of electrochemically and chemically delithiated LiCoO2 single crystals"),
which z = 0.2396 gives as 2.616 Å (2.618 Å would need z = 0.2397).

Li ordering in cubic LLZO
=========================
The cubic cell offers 24 + 96 = 120 Li sites for 56 Li.  Sites closer than
``d_excl`` = 1.7 Å (the 24d-96h pair at 1.67 Å and the split 96h-96h pair at
0.68 Å around 48g) exclude each other, so at most one of a 24d site and its
four adjacent 96h sites is filled.  Exact integer programming over this
exclusion graph shows that at most 60 Li fit and that 56 Li need 8 to 13 of
them on 24d.  All orderings keep the body-centring translation (sites are
filled in (x, x + 1/2) pairs), so a 96-atom primitive cell exists; with
this constraint 8, 10 or 12 Li sit on 24d.  Allowed Li-Li distances are then
>= 2.32 Å.  Three orderings are available (``ordering=``):

``"search"`` (default)
    Simulated annealing (seeded, deterministic) of the Ewald energy of the
    formal-charge point-charge model (Li+1 La+3 Zr+4 O-2), the usual
    electrostatic screening of Li orderings, started from the tetragonal
    ordering and from ``n_starts`` random exclusion-free configurations with
    8, 10 and 12 Li on 24d (random-objective integer programs).  For every
    seed tried (0-9, also with 5x longer annealing) it ends in the same
    ordering: 12 Li on 24d + 44 on 96h (space group Cc), Ewald energy
    -717.542 eV per cell, 0.34 eV below the tetragonal-like 8 + 48 ordering
    (I4_1cd, -717.207 eV, the annealing optimum from the tetragonal start)
    and 1.38 eV below the plain mapping of the tetragonal structure
    (-716.167 eV).  Its 24d site occupancy (0.50; 0.46 on 96h) is closer to
    the neutron refinement of cubic LLZO (24d: 0.54 Li + 0.065 Al, 96h:
    0.37 Li for Li6.06Al0.2, Buschmann 2011) than the tetragonal ordering
    (0.33 : 0.50).

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

from hpcnnp.geometry import perpendicular_widths
from hpcnnp.units import COULOMB

from ._common import (FORMAL_CHARGES, formula, provenance, set_formal_charges, total_charge,
                      unique_periodic)

__all__ = ["llzo_cubic", "llzo_tetragonal", "lco", "supercell"]

# --------------------------------------------------------------------------
# literature data
# --------------------------------------------------------------------------
LLZO_CUBIC_A = 12.97
# O 96h and Li2 96h: neutron refinement of Buschmann et al. 2011 (COD 7215448),
# O given as the representative of the published orbit nearest to the usual
# (x ~ 0.28, y ~ 0.10, z ~ 0.195) setting; see the module docstring.
LLZO_CUBIC_SITES = {
    "La_24c": (0.125, 0.0, 0.25),
    "Zr_16a": (0.0, 0.0, 0.0),
    "O_96h": (0.28161, 0.10060, 0.19546),
    "Li_24d": (0.375, 0.0, 0.25),
    "Li_96h": (0.1004, 0.6853, 0.5769),
}
REF_LLZO_CUBIC = ("H. Buschmann et al., Phys. Chem. Chem. Phys. 13, 19378 (2011), "
                  "COD 7215448 (O 96h, Li 96h, a = 12.9727 A); "
                  "C. A. Geiger et al., Inorg. Chem. 50, 1089 (2011); "
                  "J. Awaka et al., Chem. Lett. 40, 60 (2011)")

LLZO_TET_A, LLZO_TET_C = 13.134, 12.663
# Awaka et al. 2009, neutron refinement (Table 6), origin choice 2; each 32g
# given by the member of its orbit nearest to the cubic-derived setting.
LLZO_TET_SITES = [
    ("La", "8b", (0.0, 0.25, 0.125)),       # La1
    ("La", "16e", (0.127, 0.0, 0.25)),      # La2
    ("Zr", "16c", (0.0, 0.0, 0.0)),
    ("O", "32g", (0.2776, 0.1004, 0.1964)),  # O3
    ("O", "32g", (0.1952, 0.2838, 0.0976)),  # O1
    ("O", "32g", (0.1029, 0.1959, 0.2838)),  # O2
    ("Li", "8a", (0.0, 0.25, 0.375)),        # Li1, tetrahedral
    ("Li", "16f", (0.1797, 0.4297, 0.125)),  # Li2, octahedral
    ("Li", "32g", (0.5806, 0.0857, 0.6959)),  # Li3, octahedral
]
REF_LLZO_TET = ("J. Awaka, N. Kijima, H. Hayakawa, J. Akimoto, "
                "J. Solid State Chem. 182, 2046 (2009)")

LCO_A, LCO_C, LCO_ZO = 2.8156, 14.0542, 0.2396
REF_LCO = ("J. Akimoto, Y. Gotoh, Y. Oosawa, J. Solid State Chem. 141, 298 (1998); "
           "H. J. Orman, P. J. Wiseman, Acta Cryst. C 40, 12 (1984)")


# --------------------------------------------------------------------------
# Ewald potentials (point charges, small cells only)
# --------------------------------------------------------------------------
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
    nmax = [int(n) for n in np.ceil(rcut / perpendicular_widths(cell))]
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


def _octahedral_cages(D):
    """Octahedral cages of the garnet: pairs (i, j) of 96h sites (indices >= 24 into
    the 120 Li sites) closer than 1 Å, from the site distance matrix ``D`` (Å)."""
    n = len(D)
    cages = []
    seen = set()
    for i in range(24, n):
        if i in seen:
            continue
        j = [k for k in range(24, n) if k != i and D[i, k] < 1.0]
        assert len(j) == 1
        cages.append((i, j[0]))
        seen.update((i, j[0]))
    return cages


def _tetragonal_occupation(sites, D, excl, partner, phi, psi):
    """Li56 occupation of the tetragonal-type ordering (boolean over the 120 sites).

    The 8 tetrahedral sites of 8a type (1/8-type coordinate on z) are filled, then in
    each octahedral cage the site the tetrahedra allow (the lower-energy one of the
    two if both are allowed), always together with its body-centring partner.

    Parameters
    ----------
    sites : (120, 3) array
        Fractional coordinates of the 24d and 96h sites.
    D : (120, 120) array, Å
        Site distances.
    excl : (120, 120) bool array
        Sites that exclude each other.
    partner : (120,) int array
        Body-centring partner of each site.
    phi, psi : arrays
        Framework site potential and site-site pair potential (Ewald, e/Å).
    """
    n = len(sites)
    occ = np.zeros(n, bool)
    for i in range(24):
        if abs((sites[i, 2] * 8) % 2 - 1) < 1e-6:
            occ[i] = True
    assert occ.sum() == 8
    for i, j in sorted(_octahedral_cages(D)):
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
    return occ


class _PairModel:
    """Li ordering on body-centred site pairs: exclusions, Ewald energy, integer-
    programming starts and simulated annealing (the body-centring is kept).

    Parameters
    ----------
    excl : (n, n) bool array
        Sites that exclude each other.
    partner : (n,) int array
        Body-centring partner of each site.
    phi, psi : arrays
        Framework site potential and site-site pair potential (Ewald, e/Å).
    labels : list of str
        Wyckoff label of each site (``"24d"`` or ``"96h"``).
    occ : (n,) bool array
        Occupation that fixes the number of occupied pairs.
    """

    def __init__(self, excl, partner, phi, psi, labels, occ):
        n = len(partner)
        self.pairs = pairs = sorted({tuple(sorted((i, int(partner[i])))) for i in range(n)})
        pid = np.empty(n, int)
        for k, (i, j) in enumerate(pairs):
            pid[i] = pid[j] = k
        self.npair = npair = len(pairs)
        self.P = P = np.array(pairs)
        self.pexcl = np.zeros((npair, npair), bool)
        for k, (i, j) in enumerate(pairs):
            for s in (i, j):
                self.pexcl[k, pid[np.flatnonzero(excl[s])]] = True
        # pair energies (both members)
        self.pphi = phi[P].sum(1)
        self.ppsi = np.zeros((npair, npair))
        for a_ in range(2):
            for b_ in range(2):
                self.ppsi += psi[np.ix_(P[:, a_], P[:, b_])]
        self.start = np.zeros(npair, bool)
        self.start[pid[np.flatnonzero(occ)]] = True
        self.npocc = int(self.start.sum())
        self.is_tet_pair = np.array([labels[i] == "24d" for i, _ in pairs], float)
        self.n_sites = n

    def energy(self, po):
        """Ewald energy (eV) of the pair occupation ``po``."""
        idx = np.flatnonzero(po)
        return COULOMB * (self.pphi[idx].sum() + 0.5 * (self.ppsi[np.ix_(idx, idx)].sum()
                                                        - self.ppsi[idx, idx].sum()))

    def milp_start(self, rs, n_tet_pairs):
        """Random exclusion-free configuration with a given number of 24d pairs
        (random linear objective, exact integer program); None if there is none."""
        from scipy.optimize import Bounds, LinearConstraint, milp
        npair = self.npair
        ii, jj = np.nonzero(np.triu(self.pexcl, 1))
        A = np.zeros((len(ii), npair))
        A[np.arange(len(ii)), ii] = 1
        A[np.arange(len(ii)), jj] = 1
        res = milp(-rs.random(npair),
                   constraints=[LinearConstraint(A, 0, 1),
                                LinearConstraint(np.ones((1, npair)), self.npocc, self.npocc),
                                LinearConstraint(self.is_tet_pair[None], n_tet_pairs,
                                                 n_tet_pairs)],
                   integrality=np.ones(npair), bounds=Bounds(0, 1))
        if not res.success:
            return None
        return res.x > 0.5

    def _move(self, po, rng):
        """Trial move: occupy a random free pair, vacate the pairs it excludes and
        restore the pair count; None if no exclusion-free refill exists."""
        npair, pexcl = self.npair, self.pexcl
        new = po.copy()
        add = rng.choice(np.flatnonzero(~new))
        conflict = np.flatnonzero(pexcl[add] & new)
        new[conflict] = False
        new[add] = True
        deficit = self.npocc - int(new.sum())
        if deficit < 0:
            drop = rng.choice(np.flatnonzero(new & (np.arange(npair) != add)), -deficit,
                              replace=False)
            new[drop] = False
        elif deficit > 0:
            for _ in range(deficit):
                free = np.flatnonzero(~new & ~np.any(pexcl[:, new], axis=1))
                if len(free) == 0:
                    return None
                new[rng.choice(free)] = True
        return new

    def anneal(self, po, T0, T1, n_steps, rng):
        """Simulated annealing from ``po``, temperature (eV) geometric from T0 to T1.

        Returns
        -------
        (float, numpy.ndarray)
            The lowest energy seen (eV) and its pair occupation.
        """
        E = self.energy(po)
        best = (E, po.copy())
        for step in range(n_steps):
            T = T0 * (T1 / T0) ** (step / max(1, n_steps - 1))
            new = self._move(po, rng)
            if new is None:
                continue
            En = self.energy(new)
            if En <= E or rng.random() < np.exp(-(En - E) / T):
                po, E = new, En
                if E < best[0] - 1e-9:
                    best = (E, po.copy())
        return best

    def occupation(self, po):
        """Site occupation (boolean over the sites) of the pair occupation ``po``."""
        occ = np.zeros(self.n_sites, bool)
        occ[self.P[po].ravel()] = True
        return occ


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

    occ = _tetragonal_occupation(sites, D, excl, partner, phi, psi)
    if ordering == "tetragonal":
        return tuple(np.flatnonzero(occ)), energy(occ)
    if ordering not in ("search", "random"):
        raise ValueError("ordering must be 'search', 'random' or 'tetragonal'")

    # simulated annealing on body-centred pairs
    rng = np.random.default_rng(seed)
    model = _PairModel(excl, partner, phi, psi, labels, occ)
    # 56 Li fit with 8..13 Li on 24d (exact integer programming); with the
    # body-centring kept: 8, 10 or 12 (4, 5, 6 pairs)
    tet_pairs = (4, 5, 6)
    if ordering == "random":
        pocc = model.milp_start(rng, int(rng.choice(tet_pairs)))
    else:
        results = [model.anneal(model.start, 2.0, 0.01, n_steps, rng)]
        for k in range(n_starts):
            start = model.milp_start(rng, tet_pairs[k % len(tet_pairs)])
            if start is not None:
                results.append(model.anneal(start, 2.0, 0.01, n_steps, rng))
        pocc = min(results, key=lambda r: r[0])[1]
    occ = model.occupation(pocc)
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
        repeat = choose_repetitions(perpendicular_widths(atoms.cell), len(atoms), natoms,
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
