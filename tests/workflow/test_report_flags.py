"""The main job's report says when a production number means nothing (#12.6)."""
import json
from pathlib import Path

import numpy as np
import yaml
from ase import Atoms

from hpcnnp.analysis.pipeline import AnalysisRequest, analyze_trajectory
from hpcnnp.io.h5md import H5MDWriter
from hpcnnp.workflow.context import Context
from hpcnnp.workflow.project import load_project
from hpcnnp.workflow.report import _md_section



EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "llzo_lco" / "project.yaml"


def _short_run(path, frames=40, dt_fs=10.0):
    """0.4 ps of Li and O jiggling in a 12 Å box (a run far too short for D)."""
    rng = np.random.default_rng(3)
    n = 48
    atoms = Atoms("Li32O16", positions=rng.uniform(0, 12, (n, 3)), cell=[12, 12, 12],
                  pbc=True)
    w = H5MDWriter(path, atoms, fields=("position", "image"))
    pos = atoms.positions.copy()
    for k in range(frames):
        pos = (pos + rng.normal(0, 0.05, pos.shape)) % 12.0
        w.write_frame(k * 10, k * dt_fs / 1000.0, pos, atoms.cell.array,
                      image=np.zeros((n, 3), dtype=int))
    w.close()


def test_report_flags_a_too_short_md(tmp_path):
    data = yaml.safe_load(EXAMPLE.read_text())
    (tmp_path / "project.yaml").write_text(yaml.safe_dump(data))
    project = load_project(tmp_path / "project.yaml")
    ctx = Context(project, ranks=1, log=lambda m: None)
    run = ctx.path("md_interface", "run")
    run.mkdir(parents=True)
    _short_run(run / "traj.h5md")
    (run / "state.json").write_text(json.dumps({"time_ps": 0.4,
                                                "extrapolation_warnings": 0}))
    analyze_trajectory(run / "traj.h5md", ctx.path("analysis", "interface"),
                       AnalysisRequest(msd=["Li"], min_distance=True))
    text = "\n".join(_md_section(ctx, "interface", "interface"))
    assert "Li diffusivity from 0.39 ps" in text or "Li diffusivity from 0.4 ps" in text
    assert "**not converged**" in text and "do not use this number" in text
    assert "smallest interatomic distance" in text
