"""Analytic derivatives of hpcnnp = central finite differences.

Checked quantities
    * dG_i/dr_j from ``Potential.symmetry_function_derivatives`` (slot contributions of
      the same atom index summed: periodic images of a neighbour, and of atom i
      itself, all move with that atom);
    * forces F = -dE/dr;
    * stress sigma = (1/V) dE/d(eps) for a symmetric strain eps applied to the cell and
      the positions (r -> r (1 + eps)), which is ASE's convention (positive = tensile,
      sigma = -virial/V); ``Result.dEde`` = V sigma.

Structures: a random triclinic cell, a 3.5 Å skewed cell much smaller than the 6 Å
cutoff (4 atoms, ~80 neighbour images each), an isolated cluster; potentials: small
synthetic HDNNPs (conftest.write_synthetic_potential: SF types 2/3/9 on Li/O, r_s = 0
and != 0, zeta 1, 2, 4.5, lambda +-1, four different r_c) with every cutoff type 0-8
(alpha 0 and 0.3), every activation letter, every scaling type, normalize_nodes and
n2p2's unit normalisation; the element-weighted types 12/13 with every cutoff type, and
the polynomial types 20-25 with every compact-function core (p1..p4, p1a..p4a, e),
radial intervals centred at 0 and bumps, angle intervals inside [0, 180] and centred
at 0 or 180.

The neighbourhood-only SF kernel of training's force candidates (SFs of the atoms
around one atom a and their derivatives with respect to r_a only) is checked in the same
places against the whole-structure kernel (bit for bit) and the same finite differences.

Finite differences: central, step H = 1e-5 Å for positions, 1e-5 for strains.  The
truncation error is ~H^2 |E'''| ~ 1e-10 and the round-off ~ eps |E| / H ~ 1e-10 (E is
O(1-10) eV here), so a relative tolerance RTOL = 1e-6 (relative to the largest force /
stress / SF-derivative component of the same block) is 3-4 orders of magnitude above
the expected numerical noise but far below any real error (a wrong term or factor
shows up at >= 1e-3).

SF derivatives use a fourth-order stencil with H_SF = 1e-4 Å instead: single SF values
are not smooth to better than ~1e-10 relative near r_c with the POLY3/POLY4 cutoffs,
because n2p2's Horner forms (§4) cancel to ~1e-13 absolute while f_c(x=0.95) is ~3e-5
(this is the same in n2p2 and has nothing to do with hpcnnp), and 1e-13 / 1e-5 Å would
exceed RTOL for the small (1e-3) angular SFs; the larger step divides that noise by 10
and the O(H_SF^4) truncation error (~1e-16) stays negligible.

The HARD cutoff (type 0) is discontinuous at r_c, and with alpha > 0 the COS and POLY1
cutoffs have a jump of the second derivative at the inner cutoff alpha r_c (a 1e-4 Å
stencil across it is off by ~1e-5 relative): for these, structures are generated with
no interatomic (image) distance within 2e-3 Å of any SF cutoff r_c or alpha r_c, which
is more than the largest change of a distance in a finite-difference step (2 H_SF, or
7 Å * 1e-5).  The same holds for the p1 compact core at the ends of its radial
intervals, so the compact tests use structures with no distance near any r_l > 0 or r_c.
"""

import numpy as np
import pytest
from _synthetic import (compact_boundaries, compact_symfunctions, random_structure,
                        synth_cutoffs, triclinic_cell, weighted_symfunctions,
                        write_synthetic_potential)

from hpcnnp.potential import Potential

H = 1e-5        # finite-difference step (Å for positions, dimensionless for strain)
H_SF = 1e-4     # step of the (fourth-order) SF-derivative differences, see below
RTOL = 1e-6     # tolerance relative to the largest component of the compared block

SMALL_CELL = np.array([[3.5, 0.0, 0.0], [1.1, 3.4, 0.0], [-0.8, 0.9, 3.6]])


def _structures(seed, avoid=()):
    rng = np.random.default_rng(seed)
    kw = {"avoid": avoid, "avoid_tolerance": 2e-3}
    return {
        "triclinic": random_structure(rng, 9, cell=triclinic_cell(rng), **kw),
        "small_cell": random_structure(rng, 4, cell=SMALL_CELL, min_distance=1.5, **kw),
        "cluster": random_structure(rng, 7, periodic=False, **kw),
    }


@pytest.fixture(scope="module")
def structures():
    """Generic structures (no distance kept away from the cutoffs)."""
    return _structures(11)


# r_c of the SFs and the inner cutoffs alpha r_c for alpha = 0.3
AVOID = sorted(set(synth_cutoffs()) | {0.3 * rc for rc in synth_cutoffs()})


@pytest.fixture(scope="module")
def structures_hard():
    """Structures with no (image) distance within 2e-3 Å of any SF cutoff r_c or inner
    cutoff 0.3 r_c."""
    return _structures(12, avoid=AVOID)


@pytest.fixture(scope="module")
def structures_compact():
    """Structures with no (image) distance within 2e-3 Å of the interval ends of
    compact_symfunctions."""
    return _structures(13, avoid=compact_boundaries())


def _energy(pot, atoms):
    return pot.compute(atoms, forces=False, stress=False).energy


# central difference stencils: order -> ((step multiple, weight), ...), divided by h
STENCILS = {2: ((1, 0.5), (-1, -0.5)),
            4: ((2, -1 / 12), (1, 8 / 12), (-1, -8 / 12), (-2, 1 / 12))}


def numerical_forces(pot, atoms, h=H, order=2):
    f = np.zeros((len(atoms), 3))
    pos0 = atoms.get_positions()
    work = atoms.copy()
    for a in range(len(atoms)):
        for c in range(3):
            de = 0.0
            for k, wk in STENCILS[order]:
                pos = pos0.copy()
                pos[a, c] += k * h
                work.set_positions(pos)
                de += wk * _energy(pot, work)
            f[a, c] = -de / h
    return f


def strained(atoms, eps):
    """atoms with cell and positions multiplied by (1 + eps) (row-vector convention)."""
    out = atoms.copy()
    m = np.eye(3) + eps
    out.set_cell(atoms.get_cell().array @ m, scale_atoms=False)
    out.set_positions(atoms.get_positions() @ m)
    return out


def numerical_stress(pot, atoms, h=H, order=2):
    """(1/V) dE/d(eps) by central differences with symmetric strains (3x3 matrix)."""
    vol = atoms.get_volume()
    s = np.zeros((3, 3))
    for i in range(3):
        for j in range(i, 3):
            eps = np.zeros((3, 3))
            eps[i, j] = eps[j, i] = h
            de = sum(wk * _energy(pot, strained(atoms, k * eps)) for k, wk in STENCILS[order])
            # diagonal: dE/d eps_ii; off-diagonal: eps_ij = eps_ji = h changes E by
            # 2 h dE/d eps_ij
            s[i, j] = s[j, i] = de / h / vol / (1 if i == j else 2)
    return s


def voigt_to_matrix(v):
    xx, yy, zz, yz, xz, xy = v
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def assert_close(actual, expected, what, rtol=RTOL, floor=1e-12):
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = max(np.abs(expected).max(initial=0.0), floor)
    err = np.abs(actual - expected).max(initial=0.0)
    assert err <= rtol * scale, (f"{what}: max deviation {err:.3e} > {rtol:g} x {scale:.3e}"
                                 f"\nanalytic:\n{actual}\nnumerical:\n{expected}")


def check_forces_and_stress(pot, structs, label, h=H, order=2):
    for name, atoms in structs.items():
        res = pot.compute(atoms)
        # guard against a vacuous test (saturated or dead networks)
        assert np.abs(res.forces).max() > 1e-4, f"{label} {name}: forces ~ 0"
        assert_close(res.forces, numerical_forces(pot, atoms, h, order),
                     f"{label} {name} forces")
        # forces of an isolated or periodic system sum to zero (momentum conservation)
        assert np.abs(res.forces.sum(0)).max() <= 1e-10 * max(np.abs(res.forces).max(), 1)
        if atoms.pbc.all():
            num = numerical_stress(pot, atoms, h, order)
            assert_close(voigt_to_matrix(res.stress), num, f"{label} {name} stress")
            assert_close(res.dEde, num * atoms.get_volume(), f"{label} {name} dEde")
        else:
            assert res.stress is None


# ------------------------------------------------------------------------ SF derivatives

def summed_sf_derivatives(pot, atoms):
    """dG_i/dr_a as (n_atoms, n_sf_i, n_atoms, 3) per atom i (slots of one atom summed)."""
    out = []
    n = len(atoms)
    for i, (g, slots, dg) in enumerate(pot.symmetry_function_derivatives(atoms)):
        assert slots[0] == i
        assert dg.shape == (len(slots), len(g), 3)
        full = np.zeros((len(g), n, 3))
        for slot, a in enumerate(slots):
            full[:, a, :] += dg[slot]
        # translation invariance: the derivative w.r.t. all atoms sums to zero
        assert np.abs(full.sum(1)).max() <= 1e-10 * max(np.abs(dg).max(), 1e-300)
        out.append(full)
    return out


def numerical_sf_derivatives(pot, atoms, h=H_SF):
    """dG_i/dr_a by the fourth-order central stencil (-G(2h) + 8G(h) - 8G(-h) + G(-2h))/12h."""
    n = len(atoms)
    g0 = pot.symmetry_functions(atoms)
    out = [np.zeros((len(g), n, 3)) for g in g0]
    pos0 = atoms.get_positions()
    work = atoms.copy()
    for a in range(n):
        for c in range(3):
            g = {}
            for step in (-2, -1, 1, 2):
                pos = pos0.copy()
                pos[a, c] += step * h
                work.set_positions(pos)
                g[step] = pot.symmetry_functions(work)
            for i in range(n):
                out[i][:, a, c] = (g[-2][i] - 8 * g[-1][i] + 8 * g[1][i] - g[2][i]) / (12 * h)
    return out


def check_sf_derivatives(pot, structs, label, value_noise=0.0):
    """dG/dr analytic vs the fourth-order stencil.  *value_noise*: absolute rounding
    noise of single SF values, allowed on top of RTOL as 1.5 value_noise / H_SF (the
    stencil's noise amplification)."""
    for name, atoms in structs.items():
        analytic = summed_sf_derivatives(pot, atoms)
        numeric = numerical_sf_derivatives(pot, atoms)
        g_direct = pot.symmetry_functions(atoms)
        overall = max(np.abs(d).max() for d in numeric)
        for i, (a, b) in enumerate(zip(analytic, numeric)):
            # values returned with the derivatives = values without
            np.testing.assert_allclose(pot.symmetry_function_derivatives(atoms)[i][0],
                                       g_direct[i], rtol=1e-14, atol=0)
            # per SF: relative to the largest derivative of that SF of atom i (SF
            # magnitudes differ by orders: zeta 4.5 angular terms vs radial ones);
            # floor 1e-9 x the overall largest derivative for SFs that are ~0
            scale = np.maximum(np.abs(b).max(axis=(1, 2)), 1e-9 * overall)
            err = np.abs(a - b).max(axis=(1, 2))
            bad = np.nonzero(err > RTOL * scale + 1.5 * value_noise / H_SF)[0]
            assert not len(bad), (f"{label} {name} atom {i}: dG/dr of SFs {bad.tolist()} "
                                  f"deviate by {err[bad]} (scale {scale[bad]})")
        check_target_derivatives(pot, atoms, analytic, numeric,
                                 RTOL * overall + 1.5 * value_noise / H_SF,
                                 f"{label} {name}")


def check_target_derivatives(pot, atoms, analytic, numeric, atol, label):
    """The neighbourhood-only kernel of training's force candidates
    (``_core.symmetry_functions_target``): for every atom a, the atoms that have a
    in their neighbourhood (a itself and the owners of its images), their SFs and
    dG_i/dr_a (images of a summed) equal the whole-structure kernel's bit for bit,
    and the finite differences; every other atom's SFs do not depend on r_a."""
    from hpcnnp import _core

    nl, elem = pot.neighbor_list(atoms)
    G = _core.symmetry_functions(pot._model, nl, elem)
    start, idx, _, _ = nl.arrays()
    n = len(atoms)
    for a in range(n):
        owners, Gt, Dt = _core.symmetry_functions_target(pot._model, nl, elem, a)
        expect = {a} | {i for i in range(n) if a in idx[start[i]:start[i + 1]]}
        assert owners.tolist() == sorted(expect), f"{label}: owners of atom {a}"
        for i in sorted(set(range(n)) - expect):
            assert not analytic[i][:, a].any() and np.abs(numeric[i][:, a]).max() <= atol
        for k, i in enumerate(owners):
            nsf = len(analytic[i])
            assert np.array_equal(Gt[k, :nsf], G[i, :nsf]), f"{label}: G of atom {i}"
            assert np.array_equal(Dt[k, :nsf], analytic[i][:, a]), \
                f"{label}: dG_{i}/dr_{a} differs from the whole-structure kernel"
            err = np.abs(Dt[k, :nsf] - numeric[i][:, a]).max()
            assert err <= atol, f"{label}: dG_{i}/dr_{a} off the finite differences by {err}"


# ------------------------------------------------------------------------ potentials

def make_potential(tmp_path, structs, **kwargs):
    folder = write_synthetic_potential(tmp_path / "pot", list(structs.values()), **kwargs)
    return Potential.from_n2p2(folder)


CUTOFFS = [(t, a) for t in range(9) for a in (0.0, 0.3)]


@pytest.mark.parametrize("cutoff_type,alpha", CUTOFFS,
                         ids=[f"cut{t}-a{a}" for t, a in CUTOFFS])
def test_cutoff_types(tmp_path, structures, structures_hard, cutoff_type, alpha):
    structs = structures_hard if cutoff_type == 0 or alpha > 0 else structures
    pot = make_potential(tmp_path, structs, cutoff_type=cutoff_type, cutoff_alpha=alpha,
                         seed=cutoff_type)
    label = f"cutoff_type {cutoff_type} alpha {alpha}"
    check_sf_derivatives(pot, structs, label)
    check_forces_and_stress(pot, structs, label)


@pytest.mark.parametrize("cutoff_type", [0, 2, 3])
def test_alpha_ignored_where_unused(tmp_path, structures_hard, cutoff_type):
    """HARD, TANHU and TANH have no inner cutoff: alpha must not change anything (§4)."""
    structs = structures_hard
    p0 = make_potential(tmp_path / "a0", structs, cutoff_type=cutoff_type, cutoff_alpha=0.0)
    p3 = make_potential(tmp_path / "a3", structs, cutoff_type=cutoff_type, cutoff_alpha=0.3)
    for atoms in structs.values():
        for g0, g3 in zip(p0.symmetry_functions(atoms), p3.symmetry_functions(atoms)):
            np.testing.assert_array_equal(g0, g3)


ACTIVATION_LETTERS = list("ltsprgcSeh")


@pytest.mark.parametrize("letter", ACTIVATION_LETTERS)
def test_activations(tmp_path, structures, letter):
    pot = make_potential(tmp_path, structures, activations=(letter, letter, "l"),
                         seed=ord(letter))
    check_forces_and_stress(pot, structures, f"activation {letter}")


MIXED_NETWORKS = [("s", "g", "h", "p"), ("c", "S", "e", "t"), ("r", "p", "t", "s"),
                  ("h", "l", "g", "e"), ("t", "c", "S", "h")]


@pytest.mark.parametrize("activations", MIXED_NETWORKS, ids="".join)
def test_mixed_activations_nonlinear_output(tmp_path, structures, activations):
    """Three hidden layers with different activations and a non-linear output neuron
    (n2p2 allows any letter for the output layer)."""
    pot = make_potential(tmp_path, structures, nodes=(5, 4, 4), activations=activations,
                         weight_scale=1.5, seed=5)
    check_forces_and_stress(pot, structures, f"activations {activations}")


@pytest.mark.parametrize("scaling", ["none", "scale", "center", "scalecenter", "scalesigma"])
def test_scaling_types(tmp_path, structures, scaling):
    pot = make_potential(tmp_path, structures, scaling=scaling, scale_min=0.0 if
                         scaling == "scale" else -1.0, seed=7)
    check_forces_and_stress(pot, structures, f"scaling {scaling}")


def test_normalisation_offsets_and_normalize_nodes(tmp_path, structures):
    """mean_energy/conv_energy/conv_length, atom_energy offsets, normalize_nodes."""
    pot = make_potential(tmp_path, structures, normalization=(-2.5, 3.7, 1.9),
                         atom_energy={"Li": -0.19, "O": -0.44}, normalize_nodes=True, seed=3)
    check_forces_and_stress(pot, structures, "normalised")
    # physical energy = output / conv_energy + N mean_energy + sum of offsets
    atoms = structures["triclinic"]
    res = pot.compute(atoms, full=True)
    n_li = atoms.get_chemical_symbols().count("Li")
    n_o = len(atoms) - n_li
    expected = (res.extra["output"].sum() / 3.7 + len(atoms) * -2.5 - 0.19 * n_li
                - 0.44 * n_o)
    assert res.energy == pytest.approx(expected, rel=1e-13, abs=1e-12)
    np.testing.assert_allclose(res.nn_energies, res.extra["output"] / 3.7, rtol=1e-13,
                               atol=1e-14)


def test_isolated_cluster_in_large_box_virial(tmp_path, structures):
    """A cluster in a periodic box larger than cluster + r_c has no image interactions:
    same energy and forces as the isolated cluster, and stress = -(1/V) sum r (x) F
    (ASE's sign convention: stress = -virial / V)."""
    pot = make_potential(tmp_path, structures, seed=9)
    cluster = structures["cluster"]
    res0 = pot.compute(cluster)
    boxed = cluster.copy()
    boxed.set_cell(np.diag([25.0, 26.0, 27.0]))
    boxed.set_pbc(True)
    boxed.positions += 12.0
    res = pot.compute(boxed)
    assert res.energy == pytest.approx(res0.energy, rel=1e-13)
    np.testing.assert_allclose(res.forces, res0.forces, rtol=0, atol=1e-12)
    r, f = boxed.get_positions(), res.forces
    virial = 0.5 * (r.T @ f + f.T @ r)           # W = sum r (x) F (symmetrised) ...
    expected = -virial / boxed.get_volume()      # ... and stress = -W / V
    assert_close(voigt_to_matrix(res.stress), expected, "cluster-in-box stress", rtol=1e-9)


def test_large_step_sanity(tmp_path, structures):
    """The finite-difference check is sensitive: a 0.1 % error in the forces is caught."""
    pot = make_potential(tmp_path, structures, seed=1)
    atoms = structures["triclinic"]
    num = numerical_forces(pot, atoms)
    with pytest.raises(AssertionError):
        assert_close(pot.compute(atoms).forces * 1.001, num, "scaled forces")


# ------------------------------------------------------------ weighted and compact types

def assert_every_sf_used(pot, structs, label):
    """Guard against vacuous checks: every SF is non-zero somewhere and varies."""
    for el in pot.elements:
        values = [g for atoms in structs.values()
                  for sym, g in zip(atoms.get_chemical_symbols(), pot.symmetry_functions(atoms))
                  if sym == el]
        g = np.array(values)
        dead = np.nonzero(np.abs(g).max(0) == 0.0)[0]
        assert not len(dead), f"{label}: SFs {dead.tolist()} of {el} are 0 in every structure"


@pytest.mark.parametrize("cutoff_type,alpha", CUTOFFS,
                         ids=[f"cut{t}-a{a}" for t, a in CUTOFFS])
def test_weighted_types_12_13(tmp_path, structures, structures_hard, cutoff_type, alpha):
    """Types 12 and 13 (weights Z_j, Z_j Z_k) with every cutoff function."""
    structs = structures_hard if cutoff_type == 0 or alpha > 0 else structures
    pot = make_potential(tmp_path, structs, symfunctions=weighted_symfunctions(),
                         cutoff_type=cutoff_type, cutoff_alpha=alpha, seed=20 + cutoff_type)
    assert {sf.sftype for sfs in pot.symmetry_function_list.values() for sf in sfs} == {12, 13}
    label = f"types 12/13, cutoff_type {cutoff_type} alpha {alpha}"
    assert_every_sf_used(pot, structs, label)
    check_sf_derivatives(pot, structs, label)
    check_forces_and_stress(pot, structs, label)


COMPACT_SUBTYPES = ["p1", "p2", "p3", "p4", "p1a", "p2a", "p3a", "p4a", "e"]
# n2p2's Horner forms of the cores cancel near the interval ends (1 + (-1 + tiny)):
# a compact-SF value carries ~1e-14 absolute rounding per term whatever its size
# (p4: a 6e-6 SF shows 2e-14 noise, i.e. 2e-10 after the 1e-4 stencil, against a 1.8e-4
# derivative); 1e-13 allows for sums of tens of terms.
COMPACT_VALUE_NOISE = 1e-13
# The same noise in the energy of the 3.5 Å cell (thousands of near-boundary terms per
# atom) is ~3e-10 eV, i.e. 8e-7 of the stress with the second-order H = 1e-5 stencil
# (p3a), while H = 1e-4 has 1e-6 truncation error for other potentials (all types in
# one): forces and stress of the compact types use the fourth-order stencil with
# H = 1e-4 (truncation ~1e-12, noise ten times smaller).
H_COMPACT = 1e-4


@pytest.mark.parametrize("subtype", COMPACT_SUBTYPES)
def test_compact_types_20_to_25(tmp_path, structures_compact, subtype):
    """Types 20-25 with every compact-function core, in a triclinic cell, a cell smaller
    than the cutoff and a cluster."""
    structs = structures_compact
    pot = make_potential(tmp_path, structs, symfunctions=compact_symfunctions(subtype),
                         seed=30 + COMPACT_SUBTYPES.index(subtype))
    types = {sf.sftype for sfs in pot.symmetry_function_list.values() for sf in sfs}
    assert types == {20, 21, 22, 23, 24, 25}
    label = f"types 20-25, subtype {subtype}"
    assert_every_sf_used(pot, structs, label)
    check_sf_derivatives(pot, structs, label, value_noise=COMPACT_VALUE_NOISE)
    check_forces_and_stress(pot, structs, label, h=H_COMPACT, order=4)


def test_mixed_types_one_element(tmp_path, structures_hard):
    """All eleven types in one potential (the derivative layout interleaves the
    hand-tuned 2/3/9 groups and the generic ones)."""
    from _synthetic import synth_symfunctions

    sfs = synth_symfunctions() + weighted_symfunctions() + compact_symfunctions("p3")
    pot = make_potential(tmp_path, structures_hard, symfunctions=sfs, seed=41)
    check_sf_derivatives(pot, structures_hard, "all types", value_noise=COMPACT_VALUE_NOISE)
    check_forces_and_stress(pot, structures_hard, "all types", h=H_COMPACT, order=4)
