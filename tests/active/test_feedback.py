"""Production frames with extrapolation warnings go back into the data set (#12.4)."""
import numpy as np
from ase.build import bulk

from hpcnnp.active.dispatch import Dispatcher
from hpcnnp.active.feedback import label_production_frames, pick_frames
from hpcnnp.io.dataset import Dataset
from hpcnnp.io.h5md import H5MDWriter


def test_pick_frames_spreads_over_the_run():
    assert pick_frames(3, 5) == [0, 1, 2]
    assert pick_frames(11, 3) == [0, 5, 10]
    assert pick_frames(0, 4) == [] and pick_frames(5, 0) == []


def test_frames_with_warnings_are_labelled_into_the_data_set(tmp_path):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    rng = np.random.default_rng(0)
    path = tmp_path / "extrapolations.h5md"
    w = H5MDWriter(path, atoms, fields=("position",))
    for k in range(7):
        w.write_frame(10 * k, 0.01 * k, atoms.positions + rng.normal(0, 0.05, (32, 3)),
                      atoms.cell.array)
    w.close()
    data = tmp_path / "dataset.h5"
    runs = {"gb": (path, 1200.0, "Cu GB"), "interface": (tmp_path / "none.h5md", 1500.0, "x")}
    with Dispatcher(parsl=False) as disp:
        summary = label_production_frames(runs, data, "emt", {}, disp, tmp_path / "fb",
                                          max_frames=3, batch=2, log=lambda s: None)
    assert summary["gb"] == {"frames_with_warnings": 7, "labelled": 3, "rejected": 0,
                             "failed": 0}
    assert summary["interface"]["frames_with_warnings"] == 0
    with Dataset(data) as ds:
        recs = list(ds.records())
    assert len(recs) == 3
    assert {r.provenance["source"] for r in recs} == {"production MD"}
    assert [r.provenance["step"] for r in recs] == [0, 30, 60]
    assert {r.structure_class for r in recs} == {"Cu GB"}
    # a re-run labels nothing twice (finished batches are kept, hashes deduplicated)
    with Dispatcher(parsl=False) as disp:
        label_production_frames(runs, data, "emt", {}, disp, tmp_path / "fb",
                                max_frames=3, batch=2, log=lambda s: None)
    with Dataset(data) as ds:
        assert len(ds) == 3
