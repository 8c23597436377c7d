"""Physics invariants of the analyses (freud-style): known answers come back."""

import numpy as np
import pytest

from hpcnnp.analysis import (MSD, RDF, VDOS, ArrayTrajectory, ClusterSizes, Diffusivity,
                             InterdiffusionProfiles, LiDensity, Segregation, arrhenius)
from hpcnnp.analysis.structure import KB_EV, msd_direct, msd_fft

TRICLINIC = np.array([[16.0, 0.0, 0.0], [3.5, 15.0, 0.0], [2.0, -1.5, 17.0]])


def test_ideal_gas_rdf_is_one_triclinic():
    """Uniform random points: g(r) = 1 within Poisson errors, every pair, any cell."""
    rng = np.random.default_rng(1)
    n, F = 400, 30
    species = ["Li"] * 150 + ["O"] * 250
    pos = rng.random((F, n, 3)) @ TRICLINIC
    rdf = RDF(ArrayTrajectory(pos, TRICLINIC, species), r_max=6.5, nbins=26).run()
    r = rdf.results
    for k, p in enumerate(r.pairs):
        counts = r.counts[k] * (2 if p in ("Li-Li", "O-O") else 1)
        good = counts > 50                         # skip the nearly empty first bins
        sigma = r.g[k][good] / np.sqrt(counts[good])
        z = (r.g[k][good] - 1.0) / sigma
        assert np.all(np.abs(z) < 5), (p, z)
        assert abs(np.mean(r.g[k][good]) - 1) < 0.02
    # coordination number of an ideal gas: rho_B 4/3 pi r^3
    rho_o = 250 / abs(np.linalg.det(TRICLINIC))
    cn = r.cn["Li-O"][-1]
    assert cn == pytest.approx(rho_o * 4 / 3 * np.pi * 6.5**3, rel=0.05)


def test_msd_fft_equals_direct():
    x = np.cumsum(np.random.default_rng(2).normal(size=(57, 4, 3)), axis=0)
    np.testing.assert_allclose(msd_fft(x), msd_direct(x), rtol=1e-10, atol=1e-10)


def test_random_walk_diffusivity_known_D():
    """Gaussian steps of sigma per dimension and dt: D = sigma^2 / (2 dt), within error."""
    rng = np.random.default_rng(3)
    n, T, sigma, dt = 300, 1500, 0.1, 2.0
    L = 12.0
    unwrapped = np.cumsum(rng.normal(0, sigma, (T, n, 3)), axis=0) + rng.random((n, 3)) * L
    image = np.floor(unwrapped / L).astype(int)
    traj = ArrayTrajectory(unwrapped - image * L, np.eye(3) * L, ["Li"] * n, image=image,
                           dt=dt)
    dif = Diffusivity(traj, species="Li").run()
    d = dif.results
    D_true = sigma**2 / (2 * dt)
    assert d.D_err > 0 and d.D_err < 0.1 * D_true
    assert abs(d.D - D_true) < 3.5 * d.D_err, (d.D, D_true, d.D_err)
    assert d.error_method.startswith("block")
    # D of all atoms is exactly the atom-weighted mean of the atom-group values
    w = dif._msd.results.group_atoms
    assert np.sum(w * d.D_groups) / w.sum() == pytest.approx(d.D, rel=1e-9)
    # unwrapping by image flags == no-jump unwrapping == stored unwrapped positions
    m_img = MSD(traj, "Li", unwrap="image").run(stop=200).results.msd
    m_nj = MSD(traj, "Li", unwrap="nojump").run(stop=200).results.msd
    m_true = MSD(ArrayTrajectory(unwrapped, np.eye(3) * L, ["Li"] * n, dt=dt), "Li",
                 unwrap="none").run(stop=200).results.msd
    np.testing.assert_allclose(m_img, m_true, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(m_nj, m_true, rtol=1e-9, atol=1e-9)
    # the pitfall: wrapped positions taken as continuous count every boundary crossing
    # as a jump of one cell length
    wrong = MSD(ArrayTrajectory(unwrapped - image * L, np.eye(3) * L, ["Li"] * n, dt=dt),
                "Li", unwrap="none").run(stop=200).results.msd
    assert wrong[100] > 3 * m_true[100]


def test_arrhenius_recovers_Ea_and_D0():
    T = np.array([600.0, 800.0, 1000.0, 1200.0])
    Ea, D0 = 0.35, 2e-3
    D = D0 * np.exp(-Ea / (KB_EV * T))
    fit = arrhenius(T, D, D_err=0.05 * D)
    assert fit["Ea"] == pytest.approx(Ea, rel=1e-10)
    assert fit["D0"] == pytest.approx(D0, rel=1e-9)


def test_harmonic_oscillators_vdos_peaks():
    """Independent oscillators: peaks at their frequencies; integral = 3 N per species."""
    rng = np.random.default_rng(4)
    dt, T = 2.0, 1200                              # fs; resolution 1/(T dt) = 0.42 THz
    nu = {"Li": 12.0, "O": 5.0}                   # THz
    species = ["Li"] * 20 + ["O"] * 30
    t = np.arange(T) * dt
    w = np.array([2 * np.pi * nu[s] * 1e-3 for s in species])     # rad/fs
    amp = rng.uniform(0.05, 0.2, (len(species), 3))
    phase = rng.uniform(0, 2 * np.pi, (len(species), 3))
    arg = w[None, :, None] * t[:, None, None] + phase[None]
    x0 = rng.random((len(species), 3)) * 10
    pos = x0 + amp * np.cos(arg)
    vel = -amp * w[None, :, None] * np.sin(arg)
    traj = ArrayTrajectory(pos, np.eye(3) * 10, species, velocities=vel, dt=dt)
    v = VDOS(traj).run()
    r = v.results
    dnu = r.frequencies[1] - r.frequencies[0]
    for s in nu:
        assert abs(r.peak_frequency[s] - nu[s]) <= dnu, (s, r.peak_frequency[s])
        assert r.vdos[s].sum() * dnu == pytest.approx(3 * species.count(s), rel=1e-12)
    assert r.total.sum() * dnu == pytest.approx(3 * len(species), rel=1e-12)
    # the same from a bare velocity array
    v2 = VDOS(vel, dt=dt, atom_species=species).run()
    np.testing.assert_allclose(v2.results.vdos["O"], r.vdos["O"])
    # VACF of a harmonic oscillator is a cosine: first zero at 1/(4 nu)
    acf = r.vacf["O"] / r.vacf["O"][0]
    t_zero = r.vacf_times[np.argmax(acf < 0)]
    assert t_zero == pytest.approx(1e3 / (4 * nu["O"]), abs=dt)


def _planted_bicrystal(rng, n_frames, gamma_per_plane, box, planes_z, sigma_x=0.4,
                       offsets=(0.0, 0.0)):
    """Uniform matrix (La, Co) plus a Co excess gamma (atoms/Å^2) at each plane."""
    area = np.linalg.norm(np.cross(box[0], box[1]))
    n_extra = int(round(gamma_per_plane * area))
    n_host, n_co = 1500, 150
    species = ["La"] * n_host + ["Co"] * n_co + ["Co"] * (n_extra * len(planes_z))
    pos = []
    for _ in range(n_frames):
        s = rng.random((n_host + n_co, 3))
        extra = []
        for z, off in zip(planes_z, offsets):
            e = rng.random((n_extra, 3))
            e[:, 2] = (z + off + rng.normal(0, sigma_x, n_extra)) / box[2, 2]
            extra.append(e)
        pos.append(np.vstack([s] + extra) @ box)
    return np.array(pos), species, n_extra / area


def test_planted_excess_is_recovered_triclinic():
    """A known Co excess at both GB planes of a triclinic bicrystal gives Γ back."""
    rng = np.random.default_rng(5)
    box = np.array([[15.0, 0.0, 0.0], [3.0, 14.0, 0.0], [1.5, -2.0, 30.0]])
    planes = [{"normal": [0, 0, 1], "position": 7.5}, {"normal": [0, 0, 1], "position": 22.5}]
    pos, species, gamma = _planted_bicrystal(rng, 40, 0.12, box, [7.5, 22.5])
    traj = ArrayTrajectory(pos, box, species, metadata={"planes": planes}, dt=50)
    seg = Segregation(traj, "Co", bin_width=0.25, n_blocks=5, windows=2).run()
    r = seg.results
    assert r.r_max == pytest.approx(7.5)
    assert abs(r.excess - gamma) < max(4 * r.excess_err, 0.05 * gamma), (r.excess, gamma)
    for g, e in zip(r.excess_per_plane, r.excess_per_plane_err):
        assert abs(g - gamma) < max(4 * e, 0.1 * gamma)
    # enrichment: ~1 in the bulk, peaked at the plane
    bulk = np.abs(r.bin_centers) > r.window
    assert np.mean(r.profile[bulk]) == pytest.approx(1.0, abs=1e-12)
    assert np.argmax(r.profile) in (len(r.profile) // 2 - 1, len(r.profile) // 2)
    assert r.profile.max() > 3
    # bulk density = uniform Co / volume
    vol = abs(np.linalg.det(box))
    assert r.bulk_density == pytest.approx(150 / vol, rel=0.05)
    assert r.window_profiles.shape == (2, len(r.bin_centers))
    # the cell average as reference gives the same Γ up to the bulk estimate
    seg_mean = Segregation(traj, "Co", bin_width=0.25, reference="mean").run()
    assert seg_mean.results.excess < r.excess       # mean includes the excess itself


def test_fold_mirrors_every_second_plane():
    """Excess at +1 Å of plane 0 and -1 Å of plane 1 folds onto one peak at +1 Å."""
    rng = np.random.default_rng(6)
    box = np.diag([14.0, 14.0, 28.0])
    planes = [{"normal": [0, 0, 1], "position": 7.0}, {"normal": [0, 0, 1], "position": 21.0}]
    pos, species, gamma = _planted_bicrystal(rng, 20, 0.2, box, [7.0, 21.0], sigma_x=0.2,
                                             offsets=(1.0, -1.0))
    traj = ArrayTrajectory(pos, box, species, metadata={"planes": planes})
    r = Segregation(traj, "Co", bin_width=0.2).run().results
    assert r.bin_centers[np.argmax(r.profile)] == pytest.approx(1.0, abs=0.2)
    r2 = Segregation(traj, "Co", bin_width=0.2, fold=False).run().results
    peaks = [r2.bin_centers[np.argmax(p)] for p in r2.profile]
    assert peaks[0] == pytest.approx(1.0, abs=0.2) and peaks[1] == pytest.approx(-1.0, abs=0.2)


def test_density_integrates_to_number_of_li_triclinic_npt(tmp_path):
    """Fractional grid: ∫ρ dV = N_Li for a triclinic cell whose volume fluctuates."""
    rng = np.random.default_rng(7)
    F, n_li = 12, 90
    species = ["Li"] * n_li + ["O"] * 60
    boxes = np.array([TRICLINIC * (1 + 0.02 * rng.normal()) for _ in range(F)])
    pos = np.einsum("fni,fij->fnj", rng.random((F, len(species), 3)) * 1.6 - 0.3, boxes)
    d = LiDensity(ArrayTrajectory(pos, boxes, species), grid=(16, 15, 17)).run()
    r = d.results
    assert (r.density * r.voxel_volume).sum() == pytest.approx(n_li, rel=1e-12)
    assert r.counts.sum() == F * n_li
    assert r.n_mean == n_li
    cube = d.write_cube(tmp_path / "li.cube")
    from ase.io.cube import read_cube_data
    data, atoms = read_cube_data(str(cube))
    assert data.shape == (16, 15, 17) and len(atoms) == len(species)
    from hpcnnp.analysis.density import BOHR
    vox_bohr = abs(np.linalg.det(r.box / BOHR)) / data.size
    assert data.sum() * vox_bohr == pytest.approx(n_li, rel=1e-4)
    # projection along c in Li/Å^2: integral over the ab area = N_Li
    m, X, Y, _ = d.map2d(axis=2)
    area_pix = np.linalg.norm(np.cross(r.box[0], r.box[1])) / (16 * 15)
    assert m.sum() * area_pix == pytest.approx(n_li, rel=1e-12)


def test_density_peaks_at_occupied_sites():
    """Atoms vibrating around two sites: the density maximum is at those voxels."""
    rng = np.random.default_rng(8)
    box = np.diag([10.0, 10.0, 10.0])
    sites = np.array([[2.5, 2.5, 2.5], [7.5, 7.5, 7.5]])
    pos = sites[None] + rng.normal(0, 0.3, (50, 2, 3))
    r = LiDensity(ArrayTrajectory(pos, box, ["Li", "Li"]), grid=(20, 20, 20)).run().results
    top = np.argsort(r.density.ravel())[-2:]
    ijk = np.array(np.unravel_index(top, r.density.shape)).T
    assert sorted(map(tuple, ijk)) == [(4, 4, 4), (14, 14, 14)] or \
        np.all(np.abs(np.sort(ijk, axis=0) - [[4, 4, 4], [14, 14, 14]]) <= 1)


def test_clusters_known_sizes_across_pbc():
    """Planted clusters of 1, 2, 3 and 4 atoms (one across the boundary) are found."""
    box = np.array([[12.0, 0, 0], [2.0, 12.0, 0], [0, 0, 12.0]])
    co = np.array([
        [1.0, 1.0, 1.0],                                   # monomer
        [6.0, 6.0, 1.0], [8.0, 6.0, 1.0],                  # dimer (2 Å)
        [1.0, 6.0, 6.0], [3.0, 6.0, 6.0], [5.0, 6.0, 6.0],  # chain of 3
        [0.3, 9.0, 11.5], [0.3, 9.0, 0.6], [0.3, 9.0, 2.6], [13.0, 9.0, 9.8],  # 4, via pbc
    ])
    pos = np.vstack([co, [[6.0, 2.0, 8.0]]])
    traj = ArrayTrajectory(np.array([pos, pos]), box, ["Co"] * 10 + ["O"])
    r = ClusterSizes(traj, "Co", cutoff=2.5, windows=1).run().results
    assert r.size_distribution[:4].tolist() == [1, 1, 1, 1]
    assert r.largest.tolist() == [4, 4]
    assert r.atom_fraction.sum() == pytest.approx(1.0)


def test_interdiffusion_profiles_step_function():
    """A sharp A|B interface: density of A is n0 left of it and 0 right of it."""
    rng = np.random.default_rng(9)
    box = np.diag([10.0, 10.0, 40.0])
    F, n = 10, 800
    s = rng.random((F, n, 3))
    species = ["Li"] * (n // 2) + ["Co"] * (n // 2)
    s[:, : n // 2, 2] *= 0.5
    s[:, n // 2:, 2] = 0.5 + 0.5 * s[:, n // 2:, 2]
    pr = InterdiffusionProfiles(ArrayTrajectory(s @ box, box, species), bin_width=1.0,
                                windows=2).run()
    r = pr.results
    n0 = (n // 2) / (10 * 10 * 20)
    li = r.density[r.species.index("Li")]
    assert li[:20].mean() == pytest.approx(n0, rel=0.05) and li[20:].sum() == 0
    assert r.window_density.shape == (2, 2, 40)
    assert (r.density.sum(axis=1) * 1.0 * 100).tolist() == pytest.approx([n // 2] * 2)
