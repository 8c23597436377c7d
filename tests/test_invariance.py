"""Symmetries of the HDNNP energy: invariance of energies (total and atomic) and
covariance of forces and stress under rotations/reflections, translations, permutations
of atoms, the choice of periodic images, and supercells.

All of these hold exactly in exact arithmetic; numerically only the order of the
floating-point sums changes (neighbour order, cell-list bins), so the tolerances are
relative 1e-11 for energies and 1e-10 x max|F| (or max|sigma|) for forces and stress,
i.e. ~1e4-1e5 x machine epsilon.
"""

import numpy as np
import pytest
from _synthetic import random_structure, triclinic_cell, write_synthetic_potential
from scipy.spatial.transform import Rotation

from hpcnnp.io.n2p2 import read_data
from hpcnnp.potential import Potential

E_RTOL = 1e-11
F_RTOL = 1e-10

SMALL_CELL = np.array([[3.5, 0.0, 0.0], [1.1, 3.4, 0.0], [-0.8, 0.9, 3.6]])


@pytest.fixture(scope="module")
def structures():
    rng = np.random.default_rng(2024)
    return {
        "triclinic": random_structure(rng, 10, cell=triclinic_cell(rng)),
        "small_cell": random_structure(rng, 4, cell=SMALL_CELL, min_distance=1.5),
        "cluster": random_structure(rng, 8, periodic=False),
    }


@pytest.fixture(scope="module")
def pot(tmp_path_factory, structures):
    folder = write_synthetic_potential(tmp_path_factory.mktemp("inv_pot"),
                                       list(structures.values()), seed=4,
                                       atom_energy={"Li": -0.2, "O": -0.4})
    return Potential.from_n2p2(folder)


@pytest.fixture(params=["triclinic", "small_cell", "cluster"])
def atoms(request, structures):
    return structures[request.param].copy()


def _matrix(voigt):
    xx, yy, zz, yz, xz, xy = voigt
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def assert_same(res, ref, perm=None, rot=None, what=""):
    """res (of the transformed structure) vs ref: energies equal, forces rotated."""
    perm = np.arange(len(ref.energies)) if perm is None else perm
    rot = np.eye(3) if rot is None else rot
    assert res.energy == pytest.approx(ref.energy, rel=E_RTOL, abs=1e-12), what
    np.testing.assert_allclose(res.energies, ref.energies[perm], rtol=0,
                               atol=E_RTOL * np.abs(ref.energies).max(), err_msg=what)
    fmax = np.abs(ref.forces).max()
    np.testing.assert_allclose(res.forces, ref.forces[perm] @ rot.T, rtol=0,
                               atol=F_RTOL * fmax, err_msg=what)
    if ref.stress is not None:
        s_ref = rot @ _matrix(ref.stress) @ rot.T
        np.testing.assert_allclose(_matrix(res.stress), s_ref, rtol=0,
                                   atol=F_RTOL * np.abs(s_ref).max(), err_msg=what)


def rotated(atoms, rot):
    out = atoms.copy()
    if atoms.pbc.all():
        out.set_cell(atoms.get_cell().array @ rot.T, scale_atoms=False)
    out.set_positions(atoms.get_positions() @ rot.T)
    return out


@pytest.mark.parametrize("proper", [True, False], ids=["rotation", "rotoreflection"])
def test_rotation(pot, atoms, proper):
    ref = pot.compute(atoms)
    for seed in range(3):
        rot = Rotation.random(random_state=seed).as_matrix()
        if not proper:
            rot = rot @ np.diag([1.0, 1.0, -1.0])      # improper: det = -1
        res = pot.compute(rotated(atoms, rot))
        assert_same(res, ref, rot=rot, what=f"rotation {seed}")


def test_translation(pot, atoms):
    ref = pot.compute(atoms)
    rng = np.random.default_rng(5)
    for shift in (rng.uniform(-20, 20, 3), np.array([1e3, -2e3, 5e2])):
        moved = atoms.copy()
        moved.positions += shift
        assert_same(pot.compute(moved), ref, what=f"translation {shift}")
    if atoms.pbc.all():
        wrapped = atoms.copy()
        wrapped.positions += rng.uniform(-20, 20, 3)
        wrapped.wrap()
        assert_same(pot.compute(wrapped), ref, what="wrapped into the cell")


def test_permutation(pot, atoms):
    ref = pot.compute(atoms)
    rng = np.random.default_rng(6)
    for _ in range(3):
        perm = rng.permutation(len(atoms))
        assert_same(pot.compute(atoms[perm]), ref, perm=perm, what=f"permutation {perm}")


def test_periodic_image_choice(pot, structures):
    """Moving single atoms by lattice vectors changes nothing."""
    rng = np.random.default_rng(7)
    for name in ("triclinic", "small_cell"):
        atoms = structures[name]
        ref = pot.compute(atoms)
        for _ in range(3):
            moved = atoms.copy()
            shifts = rng.integers(-3, 4, (len(atoms), 3))
            shifts[rng.random(len(atoms)) < 0.5] = 0
            moved.positions += shifts @ atoms.get_cell().array
            assert_same(pot.compute(moved), ref, what=f"{name} image shift {shifts.tolist()}")


@pytest.mark.parametrize("reps", [(2, 1, 1), (1, 2, 2)])
def test_supercell(pot, structures, reps):
    """An n-fold supercell has n times the energy, repeated atomic energies and forces,
    and the same stress."""
    for name in ("triclinic", "small_cell"):
        atoms = structures[name]
        ref = pot.compute(atoms)
        big = atoms.repeat(reps)
        n = int(np.prod(reps))
        res = pot.compute(big)
        assert res.energy == pytest.approx(n * ref.energy, rel=E_RTOL)
        # ase.Atoms.repeat: copies one after another, each in the original atom order
        np.testing.assert_allclose(res.energies, np.tile(ref.energies, n), rtol=0,
                                   atol=E_RTOL * np.abs(ref.energies).max())
        np.testing.assert_allclose(res.forces, np.tile(ref.forces, (n, 1)), rtol=0,
                                   atol=F_RTOL * np.abs(ref.forces).max())
        np.testing.assert_allclose(res.stress, ref.stress, rtol=0,
                                   atol=F_RTOL * np.abs(ref.stress).max())


def test_no_fake_extrapolation_warnings_at_the_boundaries(pot, structures):
    """The scaling statistics of the synthetic potential come from these very
    structures, so every SF value lies in [G_min, G_max], many exactly on a boundary.
    After a symmetry operation such values may differ from G_min/G_max in the last bit;
    n2p2 does not warn for those (Element::updateSymmetryFunctionStatistics warns only
    if value + 1000 DBL_EPSILON < G_min or value - 1000 DBL_EPSILON > G_max)."""
    rot = Rotation.random(random_state=3).as_matrix()
    for name, atoms in structures.items():
        variants = {"as is": atoms, "rotated": rotated(atoms, rot),
                    "permuted": atoms[np.random.default_rng(0).permutation(len(atoms))]}
        if atoms.pbc.all():
            variants["supercell 2x1x1"] = atoms.repeat((2, 1, 1))
            variants["supercell 1x2x2"] = atoms.repeat((1, 2, 2))
        for what, variant in variants.items():
            res = pot.compute(variant)
            assert res.n_warnings == 0, (f"{name} {what}: {res.n_warnings} warnings, e.g. "
                                         + res.warnings[0].n2p2_line())


def test_equivalent_cell_choice(pot, structures):
    """The same crystal described by another (sheared) basis of the same lattice:
    a' = a + b, b' = b, c' = c - a (unimodular) -> identical results."""
    atoms = structures["triclinic"]
    ref = pot.compute(atoms)
    other = atoms.copy()
    m = np.array([[1, 1, 0], [0, 1, 0], [-1, 0, 1]])
    other.set_cell(m @ atoms.get_cell().array, scale_atoms=False)
    assert_same(pot.compute(other), ref, what="unimodular change of basis")


def test_reference_potential_rotation_and_supercell(refdata):
    """The same with a real potential: Cu2S (triclinic, 144 atoms, SF types 2/3/9)."""
    pot = Potential.from_n2p2(refdata / "Cu2S_PBE" / "potential")
    atoms = read_data(refdata / "Cu2S_PBE" / "input.data", index=0,
                      elements=pot.elements)[0]
    ref = pot.compute(atoms)
    rot = Rotation.random(random_state=11).as_matrix()
    assert_same(pot.compute(rotated(atoms, rot)), ref, rot=rot, what="Cu2S rotation")
    perm = np.random.default_rng(1).permutation(len(atoms))
    assert_same(pot.compute(atoms[perm]), ref, perm=perm, what="Cu2S permutation")
    big = pot.compute(atoms.repeat((2, 1, 1)))
    assert big.energy == pytest.approx(2 * ref.energy, rel=E_RTOL)
    np.testing.assert_allclose(big.forces, np.tile(ref.forces, (2, 1)), rtol=0,
                               atol=F_RTOL * np.abs(ref.forces).max())
