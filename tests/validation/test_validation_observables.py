"""Physics invariants of the trajectory observables (RDF, vDOS, MSD, Arrhenius)."""
import numpy as np
import pytest

from hpcnnp.validation import observables as obs
from hpcnnp.validation.trajectory import Trajectory, read_trajectory


def _traj(pos, cell, symbols, dt=1.0, vel=None, T=300.0):
    pos = np.asarray(pos, float)
    cells = np.broadcast_to(np.asarray(cell, float), (len(pos), 3, 3)).copy()
    return Trajectory("synthetic", np.asarray(symbols), pos, cells, dt, T,
                      np.ones(len(symbols)), vel)


ANALYSIS = pytest.param(True, id="hpcnnp.analysis")
OWN = pytest.param(False, id="fallback")


@pytest.mark.parametrize("use_analysis", [ANALYSIS, OWN])
def test_rdf_ideal_gas_is_one(use_analysis):
    rng = np.random.default_rng(0)
    L, n, nf = 12.0, 300, 40
    symbols = ["Li"] * 150 + ["O"] * 150
    tr = _traj(rng.random((nf, n, 3)) * L, np.eye(3) * L, symbols)
    r, g = obs.rdf(tr, r_max=5.0, n_bins=25, use_analysis=use_analysis)
    for pair in (("Li", "Li"), ("Li", "O"), ("O", "O")):
        assert np.mean(g[pair][5:]) == pytest.approx(1.0, abs=0.03)
    # triclinic cell, same density: still 1
    cell = np.array([[L, 0, 0], [3.0, L, 0], [2.0, 1.0, L]])
    tr = _traj(rng.random((15, n, 3)) @ cell, cell, symbols)
    r, g = obs.rdf(tr, r_max=5.0, n_bins=25, use_analysis=use_analysis)
    assert np.mean(g[("Li", "O")][5:]) == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("use_analysis", [ANALYSIS, OWN])
def test_msd_random_walk_gives_known_diffusivity(use_analysis):
    rng = np.random.default_rng(1)
    D = 0.01                                  # Å²/fs
    dt, nf, n = 2.0, 2000, 200
    steps = rng.normal(0, np.sqrt(2 * D * dt), (nf, n, 3))
    x = np.cumsum(steps, axis=0)
    L = 20.0
    tr = _traj(np.mod(x, L), np.eye(3) * L, ["Li"] * n, dt=dt)   # wrapped positions
    res = obs.diffusion(tr, "Li", window=(0.05, 0.3), n_blocks=4, remove_drift=False,
                        use_analysis=use_analysis)
    assert res.D == pytest.approx(D * 0.1, rel=0.05)                # cm²/s
    assert res.D_err > 0 and "block" in res.error_method
    assert res.fit["t_lo"] == pytest.approx(0.05 * 3998, abs=dt)
    assert abs(res.D - D * 0.1) < 4 * res.D_err
    # MSD of the wrapped trajectory equals the direct average over origins
    t, m = obs.msd(tr, "Li", remove_drift=False)
    lag = 10
    direct = np.mean(np.sum((x[lag:] - x[:-lag]) ** 2, axis=2))
    assert m[lag] == pytest.approx(direct, rel=1e-9)


@pytest.mark.parametrize("use_analysis", [ANALYSIS, OWN])
def test_vdos_peak_of_harmonic_velocities(use_analysis):
    dt, nf, nu0 = 2.0, 1000, 8.0             # fs, frames, THz
    t = np.arange(nf) * dt
    rng = np.random.default_rng(2)
    phases = rng.random(10) * 2 * np.pi
    v = np.cos(2 * np.pi * nu0 * 1e-3 * t[:, None] + phases)[:, :, None] * [1.0, 0, 0]
    tr = _traj(np.zeros((nf, 10, 3)), np.eye(3) * 10, ["O"] * 10, dt=dt, vel=v)
    nu, dos = obs.vdos(tr, use_analysis=use_analysis)
    assert nu[np.argmax(dos["O"])] == pytest.approx(nu0, abs=0.3)
    assert np.trapezoid(dos["total"], nu) == pytest.approx(1.0)
    assert obs.spectral_overlap(nu, dos["O"], dos["O"]) == pytest.approx(1.0)


def test_arrhenius_recovers_activation_energy():
    T = np.array([600.0, 800.0, 1000.0, 1200.0])
    D = 1e-3 * np.exp(-0.3 / (obs.KB_EV * T))
    fit = obs.arrhenius_fit(T, D, 0.05 * D)
    assert fit.Ea == pytest.approx(0.3, rel=1e-9)
    assert fit.D0 == pytest.approx(1e-3, rel=1e-9)
    noisy = D * np.exp(np.array([0.05, -0.05, 0.05, -0.05]))
    fit = obs.arrhenius_fit(T, noisy)
    assert abs(fit.Ea - 0.3) < 3 * fit.Ea_err
    with pytest.raises(obs.ObservableError):
        obs.arrhenius_fit([600.0], [1e-5])


def test_trajectory_roundtrip_and_time(tmp_path):
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from hpcnnp.validation.trajectory import run_md
    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    tr = run_md(cu, EMT(), 300.0, 6, 4.0, timestep=2.0, seed=1)
    assert tr.n_frames == 6 and tr.velocities.shape == (6, 32, 3)
    path = tr.write(tmp_path / "md_300K.extxyz")
    back = read_trajectory(path)
    assert back.frame_interval == pytest.approx(4.0)
    assert back.temperature == 300.0
    assert np.allclose(back.velocities, tr.velocities, atol=1e-10)
    assert np.allclose(back.positions, tr.positions)
    from ase.io import write
    frames = [tr.atoms(k) for k in range(3)]
    write(tmp_path / "notime.extxyz", frames)
    from hpcnnp.errors import InputFileError
    with pytest.raises(InputFileError, match="frame interval"):
        read_trajectory(tmp_path / "notime.extxyz")
    t2 = read_trajectory(tmp_path / "notime.extxyz", frame_interval=4.0)
    assert t2.temperature > 0                       # from the kinetic energy


def test_h5md_trajectory(tmp_path):
    h5md = pytest.importorskip("hpcnnp.io.h5md")
    from ase.build import bulk
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    rng = np.random.default_rng(0)
    with h5md.H5MDWriter(tmp_path / "t.h5", cu, fields=("position", "image", "velocity")) as w:
        for k in range(4):
            w.write_frame(k * 10, k * 0.01, cu.positions + 0.01 * k, cu.cell.array,
                          image=np.zeros((4, 3), int), velocity=rng.normal(size=(4, 3)))
    tr = read_trajectory(tmp_path / "t.h5", temperature=500.0)
    assert tr.n_frames == 4 and tr.frame_interval == pytest.approx(10.0)   # fs
    assert tr.velocities.shape == (4, 4, 3) and list(tr.symbols) == ["Cu"] * 4
    assert np.allclose(tr.positions[3], cu.positions + 0.03)
