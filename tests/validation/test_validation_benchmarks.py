"""Benchmark observables through hpcnnp.analysis (physics invariants) and the
resumable MD of the property benchmarks."""
import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT

from hpcnnp.analysis import arrhenius
from hpcnnp.analysis.structure import KB_EV
from hpcnnp.errors import InputFileError
from hpcnnp.io.trajectory import ArrayTrajectory
from hpcnnp.validation import benchmarks as bm
from hpcnnp.validation.criteria import spectral_overlap
from hpcnnp.validation.trajectory import (MDBlowUp, frame_interval, md_settings,
                                         read_trajectory, run_md)


def _traj(pos, cell, symbols, dt=1.0, vel=None, T=300.0):
    return ArrayTrajectory(pos, cell, symbols, velocities=vel, dt=dt,
                           masses=np.ones(len(symbols)), metadata={"temperature": T},
                           name="synthetic")


def test_rdf_ideal_gas_is_one():
    rng = np.random.default_rng(0)
    L, n, nf = 12.0, 300, 40
    symbols = ["Li"] * 150 + ["O"] * 150
    r, g = bm.partial_rdfs(_traj(rng.random((nf, n, 3)) * L, np.eye(3) * L, symbols),
                           r_max=5.0, n_bins=25)
    for pair in (("Li", "Li"), ("Li", "O"), ("O", "O")):
        assert np.mean(g[pair][5:]) == pytest.approx(1.0, abs=0.03)
    cell = np.array([[L, 0, 0], [3.0, L, 0], [2.0, 1.0, L]])          # triclinic
    r, g = bm.partial_rdfs(_traj(rng.random((15, n, 3)) @ cell, cell, symbols),
                           r_max=5.0, n_bins=25)
    assert np.mean(g[("Li", "O")][5:]) == pytest.approx(1.0, abs=0.03)


def test_msd_random_walk_gives_known_diffusivity():
    rng = np.random.default_rng(1)
    D = 0.01                                  # Å²/fs
    dt, nf, n = 2.0, 2000, 200
    x = np.cumsum(rng.normal(0, np.sqrt(2 * D * dt), (nf, n, 3)), axis=0)
    L = 20.0
    tr = _traj(np.mod(x, L), np.eye(3) * L, ["Li"] * n, dt=dt)   # wrapped, no images
    res = bm.diffusion(tr, "Li", window=(0.05, 0.3), n_blocks=4)
    assert res.D_cm2_s == pytest.approx(D * 0.1, rel=0.05)
    assert res.D_err_cm2_s > 0 and "block" in res.error_method
    assert res.fit_window[0] == pytest.approx(0.05 * 3998, abs=dt)
    assert abs(res.D_cm2_s - D * 0.1) < 4 * res.D_err_cm2_s
    assert res.converged, res.convergence
    # MSD of the wrapped trajectory (unwrapped by minimum-image steps) equals the
    # direct average over time origins of the true path (no drift: masses equal,
    # the centre of mass of a random walk of 200 atoms moves little)
    lag = 10
    com = x.mean(axis=1, keepdims=True)
    direct = np.mean(np.sum(((x - com)[lag:] - (x - com)[:-lag]) ** 2, axis=2))
    assert res.msd[lag] == pytest.approx(direct, rel=1e-9)
    with pytest.raises(bm.ObservableError, match="too short"):
        bm.diffusion(_traj(x[:5], np.eye(3) * L, ["Li"] * n, dt=dt), "Li")


def test_vdos_peak_of_harmonic_velocities():
    dt, nf, nu0 = 2.0, 1000, 8.0             # fs, frames, THz
    t = np.arange(nf) * dt
    phases = np.random.default_rng(2).random(10) * 2 * np.pi
    v = np.cos(2 * np.pi * nu0 * 1e-3 * t[:, None] + phases)[:, :, None] * [1.0, 0, 0]
    tr = _traj(np.zeros((nf, 10, 3)), np.eye(3) * 10, ["O"] * 10, dt=dt, vel=v)
    nu, dos = bm.vdos_spectra(tr)
    assert nu[np.argmax(dos["O"])] == pytest.approx(nu0, abs=0.3)
    assert np.trapezoid(dos["total"], nu) == pytest.approx(1.0)
    assert spectral_overlap(nu, dos["O"], dos["O"]) == pytest.approx(1.0)


def test_arrhenius_recovers_activation_energy():
    T = np.array([600.0, 800.0, 1000.0, 1200.0])
    D = 1e-3 * np.exp(-0.3 / (KB_EV * T))
    fit = arrhenius(T, D, 0.05 * D)
    assert fit.Ea == pytest.approx(0.3, rel=1e-9) and fit["Ea"] == fit.Ea
    assert fit.D0 == pytest.approx(1e-3, rel=1e-9)
    assert fit(800.0) == pytest.approx(D[1], rel=1e-9)
    noisy = D * np.exp(np.array([0.05, -0.05, 0.05, -0.05]))
    fit = arrhenius(T, noisy)
    assert abs(fit.Ea - 0.3) < 3 * fit.Ea_err
    # scatter beyond the error bars inflates the error (Birge ratio)
    assert arrhenius(T, noisy, 0.001 * noisy).Ea_err > arrhenius(T, D, 0.001 * D).Ea_err
    from hpcnnp.analysis import AnalysisError
    with pytest.raises(AnalysisError):
        arrhenius([600.0], [1e-5])


def _cu():
    return bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)


def test_md_writes_h5md_and_reads_back(tmp_path):
    run = md_settings(300.0, 6, frame_interval=4.0, timestep=2.0, equilibration=8.0,
                      seed=1)
    assert (run.interval, run.equilibration, run.timestep) == (2, 4, 2.0)
    tr = run_md(_cu(), EMT(), run, tmp_path / "md_300K.h5md")
    assert tr.n_frames == 6 and tr.velocities.shape == (6, 32, 3)
    assert list(tr.steps) == [6, 8, 10, 12, 14, 16]                # after equilibration
    assert np.allclose(tr.times, tr.steps * 2.0)
    assert frame_interval(tr) == pytest.approx(4.0) and tr.metadata["temperature"] == 300.0
    assert tr.fields == ("position", "image", "velocity", "force")
    back = read_trajectory(tmp_path / "md_300K.h5md")
    assert np.allclose(back.velocities, tr.velocities, rtol=0, atol=1e-15)
    a = tr.atoms(0)                           # the start of the potential's run
    assert np.allclose(a.get_velocities() * units.fs, tr.velocities[0], rtol=1e-12)


def test_md_killed_and_resumed_equals_uninterrupted(tmp_path):
    run = md_settings(600.0, 8, frame_interval=4.0, timestep=2.0, equilibration=6.0,
                      seed=3)
    full = run_md(_cu(), EMT(), run, tmp_path / "full.h5md")

    class Killed(Exception):
        pass

    def kill_after(k):
        def progress(done, total):
            if done == k:
                raise Killed
        return progress
    path = tmp_path / "resumed.h5md"
    for k in (1, 4):
        with pytest.raises(Killed):
            run_md(_cu(), EMT(), run, path, progress=kill_after(k))
    resumed = run_md(_cu(), EMT(), run, path)
    assert resumed.n_frames == 8
    # the thermostat's random numbers continue from the saved state; EMT's neighbour
    # list (rebuilt at the resume instead of kept) changes sums at round-off level only
    for f in ("position", "image", "velocity", "force"):
        assert np.allclose(resumed.read(f), full.read(f), rtol=0, atol=1e-12), f
    again = run_md(_cu(), EMT(), run, path)                      # complete: no new MD
    assert np.array_equal(again.read("position"), resumed.read("position"))


def test_read_ase_trajectory(tmp_path):
    from ase.io import write
    run = md_settings(300.0, 3, frame_interval=4.0, timestep=2.0, seed=1)
    tr = run_md(_cu(), EMT(), run, tmp_path / "x.h5md")
    frames = [tr.atoms(k) for k in range(3)]
    for k, a in enumerate(frames):
        a.info = {"time": 4.0 * k, "temperature": 300.0}
    write(tmp_path / "md_300K.extxyz", frames)
    back = read_trajectory(tmp_path / "md_300K.extxyz")
    assert frame_interval(back) == pytest.approx(4.0)
    assert back.metadata["temperature"] == 300.0
    assert np.allclose(back.velocities, tr.velocities, atol=1e-10)
    for a in frames:
        a.info = {}
    write(tmp_path / "notime.extxyz", frames)
    with pytest.raises(InputFileError, match="frame interval"):
        read_trajectory(tmp_path / "notime.extxyz")
    t2 = read_trajectory(tmp_path / "notime.extxyz", frame_interval=4.0)
    assert t2.metadata["temperature"] > 0                       # kinetic temperature


def test_md_blow_up_is_a_clear_error(tmp_path):
    cu = _cu()
    cu.positions[0] = cu.positions[1] + [0.3, 0.0, 0.0]     # two atoms nearly on top
    with pytest.raises(MDBlowUp, match="blew up at step"):
        run_md(cu, EMT(), md_settings(300.0, 5, frame_interval=2.0, timestep=2.0),
               tmp_path / "boom.h5md")
