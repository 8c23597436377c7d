"""RDF and MSD agree with MDAnalysis (InterRDF, EinsteinMSD) on the same H5MD file."""

import numpy as np
import pytest

from hpcnnp.analysis import MSD, RDF

from _trajectories import random_walk_trajectory, write_h5md

mda = pytest.importorskip("MDAnalysis")

TRICLINIC = np.array([[15.0, 0.0, 0.0], [3.0, 14.5, 0.0], [2.0, -1.0, 16.0]])


@pytest.fixture(scope="module")
def triclinic_h5(tmp_path_factory):
    d = random_walk_trajectory(np.random.default_rng(11), n_atoms=300, n_frames=20,
                               box=TRICLINIC)
    path = tmp_path_factory.mktemp("mda") / "triclinic.h5"
    return write_h5md(path, d["positions"], d["box"], d["species"], image=d["image"],
                      dt=d["dt"])


def _universe(path):
    from hpcnnp.io.h5md import mdanalysis_universe
    return mdanalysis_universe(path)


@pytest.mark.parametrize("which", ["orthorhombic", "triclinic"])
def test_rdf_matches_mdanalysis_interrdf(which, walk_h5, triclinic_h5):
    from MDAnalysis.analysis.rdf import InterRDF

    path = walk_h5 if which == "orthorhombic" else triclinic_h5
    r_max, nbins = 6.5, 52
    ours = RDF(path, pairs=[("Li", "O"), ("O", "O")], r_max=r_max, nbins=nbins).run()
    u = _universe(path)
    li, o = u.select_atoms("type Li"), u.select_atoms("type O")
    ref_lio = InterRDF(li, o, nbins=nbins, range=(0.0, r_max)).run()
    ref_oo = InterRDF(o, o, nbins=nbins, range=(0.0, r_max), exclusion_block=(1, 1)).run()
    np.testing.assert_allclose(ours.results.bins, ref_lio.results.bins, rtol=1e-12)
    np.testing.assert_allclose(ours.results.rdf["Li-O"], ref_lio.results.rdf, rtol=1e-9)
    np.testing.assert_allclose(ours.results.rdf["O-O"], ref_oo.results.rdf, rtol=1e-9)
    assert ours.results.counts[0].sum() == ref_lio.results.count.sum()
    u.trajectory.close()     # HDF5 refuses opens with other locking flags meanwhile


@pytest.mark.filterwarnings("ignore:Reader has no dt information")
def test_msd_matches_mdanalysis_einsteinmsd(walk_h5):
    """Ours unwraps with the image flags, MDAnalysis with its NoJump transformation."""
    from MDAnalysis.analysis.msd import EinsteinMSD
    from MDAnalysis.transformations.nojump import NoJump

    from hpcnnp.io.h5md import H5MDTrajectory

    ours = MSD(walk_h5, "Li").run()
    with H5MDTrajectory(walk_h5) as t:                 # stored times in ps
        times_ps = t.times
    u = _universe(walk_h5)
    u.trajectory.add_transformations(NoJump())
    ref = EinsteinMSD(u, select="type Li", msd_type="xyz", fft=False).run()
    # MDAnalysis holds positions in float32: agreement to ~1e-7 relative
    np.testing.assert_allclose(ours.results.msd, ref.results.timeseries, rtol=2e-6,
                               atol=1e-9)
    # lag times in fs
    np.testing.assert_allclose(ours.results.lagtimes / 1000.0, times_ps - times_ps[0],
                               rtol=1e-12)
    u.trajectory.close()
