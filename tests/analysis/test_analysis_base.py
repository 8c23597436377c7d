"""AnalysisBase, the trajectory adapter and clear errors on bad input."""

import numpy as np
import pytest
from ase import Atoms

from hpcnnp.analysis import (MSD, RDF, VDOS, AnalysisError, ArrayTrajectory, ClusterSizes,
                             LiDensity, NotComputedError, Results, Segregation,
                             TrajectoryError, as_trajectory)
from hpcnnp.errors import HpcnnpError


def test_results_attribute_access():
    r = Results(a=1)
    r.b = 2
    assert r.a == 1 and r["b"] == 2 and "b" in dir(r)
    with pytest.raises(AttributeError, match="no result 'c'; available: a, b"):
        r.c


def test_results_before_run_raise(walk_h5):
    seg = Segregation(walk_h5, "Co")
    with pytest.raises(NotComputedError, match=r"call run\(\) first"):
        seg.results
    assert isinstance(NotComputedError("x"), HpcnnpError)


@pytest.mark.parametrize("sel", [dict(start=10, stop=5), dict(start=1000),
                                 dict(stop=0)])
def test_empty_frame_range(walk_h5, sel):
    with pytest.raises(AnalysisError, match="empty frame range.*selects no frame of the "
                                            "60 frames"):
        LiDensity(walk_h5).run(**sel)


def test_bad_step(walk_h5):
    with pytest.raises(AnalysisError, match="step must be >= 1"):
        LiDensity(walk_h5).run(step=0)


def test_no_planes_metadata(walk_h5_nometa):
    with pytest.raises(AnalysisError, match=r"walk_nometa.h5: no grain-boundary/interface "
                                            r"planes.*'planes'"):
        Segregation(walk_h5_nometa, "Co")
    # given explicitly, they are used
    seg = Segregation(walk_h5_nometa, "Co", planes=[{"normal": [0, 0, 1], "position": 5.0}])
    assert seg.r_max == pytest.approx(12.0)


@pytest.mark.parametrize("make", [
    lambda t: Segregation(t, "Ni"), lambda t: LiDensity(t, "Na"),
    lambda t: RDF(t, pairs=[("Li", "F")], r_max=5), lambda t: MSD(t, "K"),
    lambda t: ClusterSizes(t, "Fe"), lambda t: VDOS(t, species="Mg")])
def test_missing_species(walk_h5, make):
    with pytest.raises(AnalysisError, match=r"not present in the trajectory \(species "
                                            r"present: Co, La, Li, O, Zr\)"):
        make(walk_h5)


def test_parameter_errors(walk_h5, walk_data):
    with pytest.raises(AnalysisError, match="exceeds half the smallest cell width"):
        RDF(walk_h5, r_max=7.5)
    with pytest.raises(AnalysisError, match=r"r_max = 7.0 Å exceeds half the smallest "
                                            r"plane separation \(6.000 Å\)"):
        Segregation(walk_h5, "Co", r_max=7.0)
    with pytest.raises(AnalysisError, match="not perpendicular to two cell vectors"):
        Segregation(walk_h5, "Co", planes=[{"normal": [1, 0, 1], "position": 0}])
    with pytest.raises(AnalysisError, match="fold=True needs one plane or an even number"):
        Segregation(walk_h5, "Co", planes=[{"normal": [0, 0, 1], "position": z}
                                           for z in (2, 10, 18)])
    with pytest.raises(AnalysisError, match="needs image flags"):
        d = walk_data
        MSD(ArrayTrajectory(d["positions"], d["box"], d["species"]), "Li", unwrap="image")
    with pytest.raises(TrajectoryError, match="no such trajectory file"):
        LiDensity("/nonexistent/traj.h5")
    with pytest.raises(TrajectoryError, match="cannot read a trajectory from dict"):
        LiDensity({})


def test_run_twice_and_single_reduction(walk_h5):
    seg = Segregation(walk_h5, "Co")
    a = seg.run().results
    b = seg.run().results
    assert seg.n_reductions == 2                         # exactly once per run
    np.testing.assert_array_equal(a.counts, b.counts)
    assert a.excess == b.excess


def test_adapter_inputs_agree(walk_h5, walk_data):
    """H5MD path, ArrayTrajectory and a list of ase.Atoms give identical results."""
    d = walk_data
    arr = ArrayTrajectory(d["positions"], d["box"], d["species"], image=d["image"],
                          dt=d["dt"], metadata={"planes": [{"normal": [0, 0, 1],
                                                            "position": 6.0},
                                                           {"normal": [0, 0, 1],
                                                            "position": 18.0}]})
    images = []
    for k, p in enumerate(d["positions"]):
        a = Atoms(d["species"], positions=p, cell=d["box"], pbc=True)
        a.info.update(arr.metadata)
        images.append(a)
    results = [Segregation(t, "Co").run().results for t in (walk_h5, arr, images)]
    for r in results[1:]:
        np.testing.assert_array_equal(r.counts, results[0].counts)
    t = as_trajectory(walk_h5)
    assert t.n_frames == 60 and t.n_atoms == 240
    assert t.metadata["structure_class"] == "GB test bicrystal"
    assert set(t.fields) >= {"position", "image", "velocity"}
    np.testing.assert_allclose(t.times, np.arange(60) * 10.0)
    np.testing.assert_allclose(t.unwrapped(0, 60, 1), d["unwrapped"], atol=1e-9)
    # MSD from the file (image flags) == MSD of the stored unwrapped arrays
    m1 = MSD(walk_h5, "Li").run().results.msd
    m2 = MSD(ArrayTrajectory(d["unwrapped"], d["box"], d["species"], dt=d["dt"]),
             "Li").run().results.msd
    np.testing.assert_allclose(m1, m2, rtol=1e-9, atol=1e-9)


def test_progress_output(walk_h5, capsys):
    LiDensity(walk_h5).run(progress=True)
    assert "LiDensity: 60/60 frames" in capsys.readouterr().err
