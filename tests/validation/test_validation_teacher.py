"""validate_against_teacher end to end on small synthetic potentials: outputs, verdicts,
resume.  (CHGNet as the teacher is exercised by the main job; here the teacher is
another HDNNP, which is an ASE calculator like any labeler.)"""
import json

import numpy as np
import pytest

from hpcnnp.calculator import HDNNPCalculator
from hpcnnp.validation.teacher import (HeldOutCell, TeacherProtocol, first_peak_flags,
                                       lco_held_out, llzo_held_out,
                                       validate_against_teacher)

PROTO = TeacherProtocol(timestep=1.0, equilibration=10.0, production=60.0,
                        frame_interval=2.0, taut=50.0, seed=3)


@pytest.fixture(scope="module")
def pots(tmp_path_factory):
    from _validation_helpers import cells, make_potentials
    root = tmp_path_factory.mktemp("teacher")
    ref, ml = make_potentials(root)
    lco = cells()[2]                                     # 48-atom LCO
    return root, ref, ml, (HeldOutCell("LCO", lambda: lco.copy(), 900.0),)


def test_identical_models_agree_exactly(pots):
    root, ref, _, cells = pots
    s = validate_against_teacher(ref, root / "same", cells=cells,
                                 teacher=HDNNPCalculator(ref), protocol=PROTO,
                                 log=lambda m: None)
    c = s["cells"][0]
    assert s["status"] in ("pass", "not converged") and c["status"] == s["status"]
    metrics = {k["metric"] for k in c["checks"]}
    assert metrics == {"rdf_l2", "peak_shift", "vdos_overlap", "d_min"}
    for k in c["checks"]:
        if k["metric"] in ("rdf_l2", "peak_shift"):
            assert k["value"] == pytest.approx(0.0, abs=1e-12), k
        if k["metric"] == "vdos_overlap":
            assert k["value"] == pytest.approx(1.0, abs=1e-12)
        assert k["verdict"] in ("pass", "not converged")
    assert {"Co-O", "Li-O"} <= set(c["first_peaks"])
    assert c["n_atoms"] == 48 and c["temperature_K"] == 900.0
    assert c["frames"] == 30 and c["timestep_fs"] == 1.0 and c["equilibration_fs"] == 10.0
    # files for the report
    out = root / "same"
    back = json.loads((out / "summary.json").read_text())
    assert back["status"] == s["status"] and back["thresholds"]["rdf_l2"] == 0.15
    md = (out / "summary.md").read_text()
    assert "### LCO (" in md and "900 K" in md and "equilibration 10 fs" in md
    assert "| RDF rel. L2 difference | Co-O |" in md
    for f in ("LCO/rdf_LCO.png", "LCO/vdos_LCO.png", "LCO/msd.png", "LCO/rdf_LCO.csv",
              "LCO/teacher.h5md", "LCO/hdnnp.h5md"):
        assert (out / f).stat().st_size > 500, f
    # a production RDF with a Co-O peak outside the teacher's range is flagged
    r = np.linspace(0.01, 4.0, 400)
    g_ok = 4 * np.exp(-0.5 * ((r - c["first_peaks"]["Co-O"]["teacher"]) / 0.08) ** 2)
    g_bad = 4 * np.exp(-0.5 * ((r - 1.62) / 0.08) ** 2)
    flags = first_peak_flags(r, {"Co-O": g_ok, ("O", "Co"): g_bad}, s)
    assert not flags["Co-O"]["flag"] and flags["O-Co"]["flag"]
    assert "outside the teacher's" in flags["O-Co"]["text"]


def test_different_models_and_resume(pots):
    root, ref, ml, cells = pots

    class Killed(Exception):
        pass
    lines = []

    def killing_log(msg):
        lines.append(msg)
        if msg.startswith("LCO hdnnp MD: 9/30 frames"):           # a third done
            raise Killed

    out = root / "diff"
    with pytest.raises(Killed):
        validate_against_teacher(ml, out, cells=cells, teacher=HDNNPCalculator(ref),
                                 protocol=PROTO, log=killing_log)
    assert not (out / "summary.json").exists()
    s = validate_against_teacher(ml, out, cells=cells, teacher=HDNNPCalculator(ref),
                                 protocol=PROTO, log=lines.append)
    full = validate_against_teacher(ml, root / "diff_full", cells=cells,
                                    teacher=HDNNPCalculator(ref), protocol=PROTO,
                                    log=lambda m: None)
    for a, b in zip(s["cells"][0]["checks"], full["cells"][0]["checks"]):
        assert a["value"] == pytest.approx(b["value"], abs=1e-9), (a, b)
    rdf = [k for k in s["cells"][0]["checks"] if k["metric"] == "rdf_l2"]
    assert rdf and all(k["value"] > 0 for k in rdf)
    assert any("ETA" in m for m in lines)


def test_held_out_cells():
    llzo, lco = llzo_held_out(), lco_held_out()
    assert len(llzo) == 96 and llzo.get_chemical_formula() == "La12Li28O48Zr8"
    assert len(lco) == 64 and lco.get_chemical_formula() == "Co16Li16O32"
    from hpcnnp.analysis._pbc import perpendicular_widths
    assert perpendicular_widths(lco.cell.array) == pytest.approx([8.013] * 3, abs=1e-3)
    from ase.neighborlist import neighbor_list
    assert neighbor_list("d", lco, 2.0).min() == pytest.approx(1.9218, abs=1e-3)


def test_teacher_md_through_a_dispatcher(pots):
    """The teacher MD as dispatched tasks (the labeler built in the task, here the
    'python' labeler making an HDNNP calculator) gives the in-process result."""
    from hpcnnp.active.dispatch import Dispatcher

    root, ref, _, cells = pots
    opts = {"factory": "hpcnnp.calculator:HDNNPCalculator",
            "kwargs": {"potential": str(ref)}, "stress": False}
    a = validate_against_teacher(ref, root / "dispatched", cells=cells, teacher="python",
                                 teacher_options=opts, protocol=PROTO,
                                 log=lambda m: None, dispatcher=Dispatcher(parsl=False))
    b = validate_against_teacher(ref, root / "same", cells=cells,
                                 teacher=HDNNPCalculator(ref), protocol=PROTO,
                                 log=lambda m: None)
    for x, y in zip(a["cells"][0]["checks"], b["cells"][0]["checks"]):
        assert x["value"] == pytest.approx(y["value"], abs=1e-12)
    assert a["teacher"] == "python"
