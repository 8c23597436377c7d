"""hpcnnp.calculator.HDNNPCalculator as an ASE calculator.

Potential: a small synthetic Li/O HDNNP in ASE units (Å, eV; conftest), so that ASE's
MD drivers can be used directly.
"""

import numpy as np
import pytest
from ase import units
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.md.verlet import VelocityVerlet
from _synthetic import random_structure, triclinic_cell, write_synthetic_potential

from hpcnnp import HDNNPCalculator as LazyCalculator
from hpcnnp.calculator import HDNNPCalculator
from hpcnnp.potential import Potential


@pytest.fixture(scope="module")
def structures():
    rng = np.random.default_rng(3)
    return [random_structure(rng, 16, cell=triclinic_cell(rng, lengths=(6.5, 6.8, 7.0)))
            for _ in range(3)]


@pytest.fixture(scope="module")
def pot_dir(tmp_path_factory, structures):
    # output_scale 0.3: forces ~0.1-0.5 eV/Å, gentle enough for a 200-step NVE run
    return write_synthetic_potential(tmp_path_factory.mktemp("calc_pot"), structures,
                                     output_scale=0.3, seed=1,
                                     atom_energy={"Li": -0.19, "O": -0.44})


@pytest.fixture(scope="module")
def pot(pot_dir):
    return Potential.from_n2p2(pot_dir)


@pytest.fixture
def periodic(structures):
    return structures[1].copy()


@pytest.fixture
def cluster():
    return random_structure(np.random.default_rng(8), 9, periodic=False)


def test_implemented_properties():
    assert LazyCalculator is HDNNPCalculator
    for prop in ("energy", "free_energy", "energies", "forces", "stress"):
        assert prop in HDNNPCalculator.implemented_properties


def test_from_folder_and_from_potential(pot_dir, pot, periodic):
    e = []
    for arg in (pot_dir, str(pot_dir), pot):
        atoms = periodic.copy()
        atoms.calc = HDNNPCalculator(arg)
        e.append(atoms.get_potential_energy())
    assert e[0] == e[1] == e[2]


def test_consistent_with_potential_compute(pot, periodic):
    ref = pot.compute(periodic)
    atoms = periodic.copy()
    atoms.calc = HDNNPCalculator(pot)
    assert atoms.get_potential_energy() == ref.energy
    assert atoms.get_potential_energy(force_consistent=True) == ref.energy
    np.testing.assert_array_equal(atoms.get_potential_energies(), ref.energies)
    np.testing.assert_array_equal(atoms.get_forces(), ref.forces)
    np.testing.assert_array_equal(atoms.get_stress(), ref.stress)
    np.testing.assert_array_equal(atoms.get_stress(voigt=False),
                                  atoms.calc.results["stress"][[0, 5, 4, 5, 1, 3, 4, 3, 2]]
                                  .reshape(3, 3))
    # atomic energies (incl. atom_energy offsets) sum to the total energy
    assert atoms.get_potential_energies().sum() == pytest.approx(
        atoms.get_potential_energy(), rel=1e-14, abs=1e-13)
    assert atoms.calc.results["extrapolation_warnings"] == ref.n_warnings


def test_returned_arrays_are_copies(pot, periodic):
    atoms = periodic.copy()
    atoms.calc = HDNNPCalculator(pot)
    f = atoms.get_forces()
    f[:] = 0.0
    assert np.abs(atoms.get_forces()).max() > 0


def test_recomputes_after_changes(pot, periodic):
    atoms = periodic.copy()
    atoms.calc = HDNNPCalculator(pot)
    e0 = atoms.get_potential_energy()
    atoms.positions[0] += [0.05, -0.03, 0.02]
    e1 = atoms.get_potential_energy()
    assert e1 != e0
    assert e1 == pot.compute(atoms).energy
    atoms.set_cell(atoms.cell * 1.01, scale_atoms=True)
    assert atoms.get_potential_energy() == pot.compute(atoms).energy
    np.testing.assert_array_equal(atoms.get_stress(), pot.compute(atoms).stress)


def test_ase_numerical_forces_and_stress(pot, periodic):
    """ASE's own finite-difference helpers (ASE's sign and Voigt conventions)."""
    atoms = periodic.copy()
    atoms.calc = HDNNPCalculator(pot)
    f = atoms.get_forces()
    s = atoms.get_stress()
    num_f = calculate_numerical_forces(atoms, eps=1e-5)
    num_s = calculate_numerical_stress(atoms, eps=1e-5)
    assert np.abs(f - num_f).max() <= 1e-6 * np.abs(f).max()
    assert np.abs(s - num_s).max() <= 1e-6 * np.abs(s).max()


def test_cluster_energy_forces_no_stress(pot, cluster):
    atoms = cluster.copy()
    atoms.calc = HDNNPCalculator(pot)
    ref = pot.compute(atoms)
    assert atoms.get_potential_energy() == ref.energy
    np.testing.assert_array_equal(atoms.get_forces(), ref.forces)
    assert "stress" not in atoms.calc.results
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_mixed_pbc_is_rejected(pot, periodic):
    from hpcnnp.errors import StructureError

    atoms = periodic.copy()
    atoms.pbc = (True, True, False)
    atoms.calc = HDNNPCalculator(pot)
    with pytest.raises(StructureError, match="periodicity"):
        atoms.get_potential_energy()


def test_extrapolation_warnings_counted_and_printed(pot, periodic, capsys):
    atoms = periodic.copy()
    atoms.set_cell(atoms.cell * 0.8, scale_atoms=True)     # compressed: SFs out of range
    atoms.calc = HDNNPCalculator(pot, warn_extrapolation=True)
    atoms.get_potential_energy()
    n = atoms.calc.results["extrapolation_warnings"]
    assert n > 0 and atoms.calc.n_extrapolation_warnings == n
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == n
    assert all(line.startswith("### NNP EXTRAPOLATION WARNING ###") for line in lines)
    atoms.positions[0] += 0.01
    atoms.get_potential_energy()
    assert atoms.calc.n_extrapolation_warnings == n + atoms.calc.results["extrapolation_warnings"]
    capsys.readouterr()
    quiet = periodic.copy()
    quiet.set_cell(quiet.cell * 0.8, scale_atoms=True)
    quiet.calc = HDNNPCalculator(pot)                      # default: do not print
    quiet.get_potential_energy()
    assert capsys.readouterr().err == ""


def _nve_deviation(pot, atoms, dt_fs, steps):
    atoms = atoms.copy()
    atoms.calc = HDNNPCalculator(pot)
    rng = np.random.default_rng(0)
    masses = atoms.get_masses()[:, None]
    p = rng.normal(size=(len(atoms), 3)) * np.sqrt(masses * units.kB * 300.0)
    p -= masses * (p.sum(0) / masses.sum())                # zero total momentum
    atoms.set_momenta(p)
    e_tot, e_pot = [], []

    def record():
        e_pot.append(atoms.get_potential_energy())
        e_tot.append(e_pot[-1] + atoms.get_kinetic_energy())

    dyn = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    dyn.attach(record, interval=1)
    dyn.run(steps)
    e_tot = np.array(e_tot)
    return np.abs(e_tot - e_tot[0]).max(), np.ptp(e_pot), atoms


def test_nve_energy_conservation(pot, structures):
    """VelocityVerlet NVE, 16 atoms, 300 K, 200 steps of 1 fs (+ 400 steps of 0.5 fs).

    Tolerance: the total energy deviates by at most 5e-4 eV (3e-5 eV/atom) from its
    initial value, while the potential energy varies by > 50x that; and the deviation
    shrinks ~dt^2 (ratio between 0.15 and 0.4 when halving dt; 0.25 is Verlet's
    second order) - which only holds if the forces are the exact gradient of the
    energy."""
    dev1, span1, atoms = _nve_deviation(pot, structures[0], 1.0, 200)
    dev05, span05, _ = _nve_deviation(pot, structures[0], 0.5, 400)
    assert dev1 <= 5e-4, f"energy drift {dev1:.2e} eV"
    assert span1 > 50 * dev1, f"potential energy barely changes ({span1:.2e} eV)"
    assert 0.15 <= dev05 / dev1 <= 0.4, (dev1, dev05)
    assert np.abs(atoms.get_momenta().sum(0)).max() < 1e-10
