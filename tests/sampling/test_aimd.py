"""NVT AIMD driver: snapshot schedule, consistency of stored labels, thermostat
temperature, exact resume after a failure, blow-up detection, bad settings.

ASE's EMT on small Cu cells stands in for the labeler (milliseconds per step).
"""

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from hpcnnp.errors import HpcnnpError
from hpcnnp.sampling.aimd import THERMOSTATS, MDSettings, read_snapshots, run_aimd
from hpcnnp.sampling.labelers import LabelingError, get_labeler, single_point

FAULTY = Path(__file__).with_name("_sampling_faulty.py")


def cu(n=2):
    return bulk("Cu", cubic=True).repeat((n, n, n))


def test_snapshots_at_scheduled_steps_with_consistent_labels(tmp_path):
    s = MDSettings(temperature=600, snapshots=3, interval=4, equilibration=5, seed=7)
    res = run_aimd(cu(), get_labeler("emt"), s, directory=tmp_path)
    assert [x["step"] for x in res.snapshots] == [9, 13, 17] == s.snapshot_steps()
    assert res.steps_run == s.total_steps == 17
    ref = get_labeler("emt")
    for snap in res.snapshots:
        atoms = Atoms(snap["numbers"], positions=snap["positions"], cell=snap["cell"], pbc=True)
        sp = single_point(atoms, ref)
        # (EMT's neighbour-list history changes the last digits)
        assert snap["energy"] == pytest.approx(sp["energy"], abs=1e-10)
        np.testing.assert_allclose(snap["forces"], sp["forces"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(snap["stress"], sp["stress"], rtol=0, atol=1e-12)
    assert len(read_snapshots(tmp_path)) == 3


@pytest.mark.parametrize("thermostat", sorted(THERMOSTATS))
def test_thermostats_hold_the_temperature(thermostat):
    s = MDSettings(temperature=500, snapshots=30, interval=5, equilibration=150,
                   thermostat=thermostat, tdamp=30.0, friction=0.03, seed=1)
    res = run_aimd(cu(2), get_labeler("emt"), s)
    t = np.mean([x["temperature_inst"] for x in res.snapshots])
    assert 350 < t < 650, (thermostat, t)


@pytest.mark.parametrize("thermostat", ["langevin", "nose-hoover"])
def test_resume_after_failure_continues_the_same_trajectory(tmp_path, thermostat):
    s = MDSettings(temperature=800, snapshots=4, interval=3, equilibration=2,
                   thermostat=thermostat, seed=3)
    ref = run_aimd(cu(), get_labeler("emt"), s, directory=tmp_path / "ref")
    flaky = get_labeler("python", factory=f"{FAULTY}:flaky_emt", kwargs={"fail_at": 9})
    with pytest.raises(LabelingError, match="node failure"):
        run_aimd(cu(), flaky, s, directory=tmp_path / "run")
    partial = read_snapshots(tmp_path / "run")
    assert 0 < len(partial) < 4
    res = run_aimd(cu(), get_labeler("emt"), s, directory=tmp_path / "run")
    assert res.resumed_from > 0 and len(res.snapshots) == 4
    for a, b in zip(ref.snapshots, res.snapshots):
        assert a["step"] == b["step"]
        np.testing.assert_allclose(a["positions"], b["positions"], rtol=0, atol=1e-10)
        assert a["energy"] == pytest.approx(b["energy"], abs=1e-10)
    # a finished trajectory is not run again
    again = run_aimd(cu(), get_labeler("emt"), s, directory=tmp_path / "run")
    assert again.steps_run == 0 and len(again.snapshots) == 4


def test_blow_up_and_walltime_are_labeling_errors(tmp_path):
    atoms = cu()
    atoms.positions[0] = atoms.positions[1] + [0.4, 0, 0]      # two Cu atoms 0.4 Å apart
    s = MDSettings(temperature=300, snapshots=2, interval=5, equilibration=5, seed=1,
                   max_temperature_factor=3.0)
    with pytest.raises(LabelingError) as exc:
        run_aimd(atoms, get_labeler("emt"), s)
    assert exc.value.reason == "md" and "blew up" in str(exc.value)
    s = MDSettings(temperature=300, snapshots=50, interval=50, equilibration=0, seed=1,
                   walltime=1e-6)
    with pytest.raises(LabelingError, match="walltime") as exc:
        run_aimd(cu(), get_labeler("emt"), s, directory=tmp_path)
    assert exc.value.reason == "timeout" and (tmp_path / "state.npz").is_file()


@pytest.mark.parametrize("bad, match", [
    ({"temperature": 0}, "temperature must be > 0"),
    ({"temperature": -300}, "temperature must be > 0"),
    ({"temperature": 300, "snapshots": 0}, "snapshots must be >= 1"),
    ({"temperature": 300, "thermostat": "andersen2"}, "unknown thermostat"),
    ({"temperature": 300, "timestep": float("nan")}, "timestep must be > 0"),
])
def test_bad_md_settings(bad, match):
    with pytest.raises(HpcnnpError, match=match):
        MDSettings(**bad)
