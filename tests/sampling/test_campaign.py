"""Sampling campaigns: YAML errors, recorded failures, and a real CHGNet campaign
through Parsl (local executor, 2 workers) that is killed with SIGKILL after its
first tasks finish and then resumed -- no duplicates, no losses, and every stored
energy/force equals a direct single point of the labeler on the stored snapshot.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hpcnnp.cli import main
from hpcnnp.errors import InputFileError
from hpcnnp.io import n2p2
from hpcnnp.io.dataset import Dataset, export_n2p2
from hpcnnp.sampling.campaign import load_campaign, run_campaign, task_status

FAULTY = Path(__file__).with_name("_sampling_faulty.py")
HAVE_CHGNET = importlib.util.find_spec("chgnet") is not None
HAVE_PARSL = importlib.util.find_spec("parsl") is not None

GOOD = """\
name: t
output: data.h5
workdir: work
site: serial
seed: 2
labeler: {name: emt}
md: {equilibration: 2, interval: 2, snapshots_per_task: 2}
structures:
  Cu: {builder: bulk, name: Cu, cubic: true, repeat: [2, 1, 1]}
sampling:
  - {structure: Cu, temperatures: [300, 600], snapshots: 4}
"""


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("edit, line, match", [
    (("structure: Cu,", "structure: Cu3Au,"), 11, "unknown structure class 'Cu3Au'; "
                                                    "defined under structures: Cu; built in: "
                                                    "LLZO cubic.*mixture #1..#5"),
    (("[300, 600]", "[300, 0]"), 11, r"temperatures\.1: must be > 0"),
    (("[300, 600]", "[300, -20.5]"), 11, r"temperatures\.1: must be > 0"),
    (("{name: emt}", "{name: dft}"), 6, "unknown labeler 'dft'; known labelers: chgnet"),
    (("{name: emt}", "{name: xtb, damping: 0.2}"), 6,
     "labeler.damping: labeler xtb has no option 'damping'.*did you mean 'mixer_damping'"),
    (("snapshots: 4", "snapshots: 0"), 11, r"snapshots: must be >= 1 \(got 0\)"),
    (("interval: 2,", "interval: 0,"), 7, r"md\.interval.*must be >= 1"),
    (("builder: bulk,", "builder: bulk, colour: red,"), 9, "no parameter 'colour'"),
    (("builder: bulk,", "builder: crystal,"), 9, "unknown builder 'crystal'"),
    (("seed: 2", "seed: 2\nworkers: 4"), 6, "workers: unknown key"),
])
def test_bad_campaign_files_name_file_line_and_key(tmp_path, edit, line, match):
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(InputFileError, match=match) as exc:
        load_campaign(path)
    assert exc.value.path == str(path) and exc.value.line == line, str(exc.value)


def test_failed_labelings_are_recorded_never_stored(tmp_path, capsys, monkeypatch):
    text = GOOD + (f"  - {{structure: Cu, temperatures: [900], snapshots: 2,\n"
                   f"     labeler: {{name: python, factory: \"{FAULTY}:nan_emt\"}}}}\n"
                   f"  - {{structure: Cu, temperatures: [950], snapshots: 2,\n"
                   f"     labeler: {{name: python, factory: \"{FAULTY}:raising_emt\"}}}}\n")
    path = write(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    report = run_campaign(path, log=lambda line: None)
    assert (report.tasks, report.done, report.failed) == (6, 4, 2)
    reasons = sorted(f["reason"] for f in report.failures.values())
    assert reasons == ["nan", "scf"]
    with Dataset(tmp_path / "data.h5") as ds:
        assert len(ds) == 8 and set(ds.temperatures) == {300.0, 600.0}
        assert all(np.isfinite(r.energy) and np.all(np.isfinite(r.forces))
                   for r in ds.records())
    failed = [json.loads(p.read_text()) for p in (tmp_path / "work").glob("tasks/*/failed.json")]
    assert len(failed) == 2 and all(f["attempt"] == 1 for f in failed)
    assert any("NaN energy" in f["error"] for f in failed)
    # the CLI refuses to mix runs without --resume, then retries only the failed tasks
    assert main(["sample", str(path)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(["sample", str(path), "--resume"]) == 1
    out = capsys.readouterr().out
    assert "4 task(s) already merged" in out and "2 failed" in out
    failed = [json.loads(p.read_text()) for p in (tmp_path / "work").glob("tasks/*/failed.json")]
    assert sorted(f["attempt"] for f in failed) == [2, 2]
    with Dataset(tmp_path / "data.h5") as ds:
        assert len(ds) == 8
    assert main(["sample", str(path), "--list"]) == 0
    listing = capsys.readouterr()
    assert listing.out.count(" merged ") == 4 and listing.out.count(" failed ") == 2
    assert json.loads(listing.err) == {"merged": 4, "failed": 2}


def test_transient_failures_are_retried_in_the_same_run(tmp_path, monkeypatch):
    text = GOOD.replace("seed: 2", "seed: 2\nresources: {retries: 1}").replace(
        "labeler: {name: emt}",
        f"labeler: {{name: python, factory: \"{FAULTY}:flaky_emt\", kwargs: {{fail_at: 6}}}}")
    path = write(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    lines = []
    report = run_campaign(path, log=lines.append)
    assert (report.done, report.failed) == (4, 0)
    assert sum("retry" in line and "crash" in line for line in lines) == 4
    logs = [p.read_text() for p in (tmp_path / "work").glob("tasks/*/task.log")]
    assert all("resume" in text for text in logs)        # continued from the checkpoint
    with Dataset(tmp_path / "data.h5") as ds:
        assert len(ds) == 8


def test_scale_adds_trajectories_and_keeps_finished_ones(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)
    monkeypatch.chdir(tmp_path)
    first = load_campaign(path).tasks()
    assert len(first) == 4
    bigger = load_campaign(path, scale=2.0).tasks()
    assert len(bigger) == 8 and {t.hash for t in first} <= {t.hash for t in bigger}
    report = run_campaign(path, scale=0.5, log=lambda line: None)
    assert report.done == 2
    report = run_campaign(path, scale=1.0, resume=True, log=lambda line: None)
    assert (report.skipped, report.done) == (2, 2)
    with Dataset(tmp_path / "data.h5") as ds:
        assert len(ds) == 8 and len(set(ds.column("hash"))) == 8


# ---------------------------------------------------------------------------------------
# CHGNet through Parsl, killed and resumed
# ---------------------------------------------------------------------------------------

CHGNET_CAMPAIGN = """\
name: kill_test
output: data.h5
workdir: work
site: local
resources: {nodes: 1, workers_per_node: 2}
seed: 5
labeler: {name: chgnet, threads: 1}
md: {equilibration: 3, interval: 3, snapshots_per_task: 2, timestep: 1.0}
structures:
  LCO: {builder: lco}
  LLZO f.u.: {builder: packing, composition: Li7La3Zr2O12, density: 4.8}
sampling:
  - {structure: LCO, temperatures: [1000, 2000], snapshots: 4}
  - {structure: LLZO f.u., temperatures: [4000], snapshots: 4, md: {timestep: 0.5}}
"""
N_TASKS, PER_TASK = 6, 2


def _processes():
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        out[int(entry)] = (ppid, cmd)
    return out


def _kill_campaign(root, marker):
    """SIGKILL the driver, its descendants and the Parsl workers of this campaign
    (LocalProvider starts them in their own session; their command lines name the
    run folder), like a batch system ending the job.  The driver goes first, so
    that it cannot start new worker blocks; then rounds until nothing is left."""
    def kill(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    kill(root)
    victims = {root}
    for _ in range(20):
        procs = _processes()
        found = {p for p, (_, cmd) in procs.items() if marker.encode() in cmd}
        found |= {p for p in victims if p in procs}
        grew = True
        while grew:                                  # ... and all their descendants
            new = {p for p, (pp, _) in procs.items() if pp in found} - found
            grew = bool(new)
            found |= new
        found.discard(os.getpid())
        alive = {p for p in found if not _zombie(p)}
        if not alive:
            break
        for pid in alive:
            kill(pid)
        victims |= alive
        time.sleep(0.2)
    return victims


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    if not HAVE_CHGNET:
        pytest.skip("chgnet is not installed (pip install torch==<cpu> chgnet)")
    if not HAVE_PARSL:
        pytest.skip("parsl is not installed (pip install parsl)")
    tmp = tmp_path_factory.mktemp("campaign")
    path = write(tmp, CHGNET_CAMPAIGN)
    cmd = [sys.executable, "-m", "hpcnnp.cli", "sample", str(path), "--progress-interval", "5"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    log = open(tmp / "run1.log", "w")
    proc = subprocess.Popen(cmd, cwd=tmp, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    deadline = time.time() + 150
    merged = []
    while time.time() < deadline and proc.poll() is None:
        merged = list((tmp / "work").glob("tasks/*/merged.json"))
        if merged:
            break
        time.sleep(0.2)
    assert merged, f"no task finished: {(tmp / 'run1.log').read_text()}"
    killed = _kill_campaign(proc.pid, str(tmp / "work"))
    proc.wait()
    log.close()
    time.sleep(0.5)
    leftovers = [p for p, (_, c) in _processes().items()
                 if str(tmp / "work").encode() in c and not _zombie(p)]
    assert not leftovers
    assert len(killed) >= 4                   # driver, interchange, worker pool, workers
    states = [task_status(d) for d in (tmp / "work" / "tasks").iterdir()]
    with Dataset(tmp / "data.h5") as ds:                 # valid right after the kill
        n_after_kill = len(ds)
    second = subprocess.run(cmd + ["--resume"], cwd=tmp, capture_output=True, text=True,
                            env=env, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    return {"dir": tmp, "states": states, "killed": killed, "n_after_kill": n_after_kill,
            "second": second.stdout}


def test_killed_campaign_resumes_without_duplicates_or_losses(killed_and_resumed):
    r = killed_and_resumed
    merged, done = r["states"].count("merged"), r["states"].count("done")
    assert merged >= 1 and len(r["states"]) == N_TASKS
    assert merged < N_TASKS                                  # killed before the end
    # the driver appends a task, then writes merged.json: a kill in between leaves
    # records of a "done" task in the file (merged again on resume -> deduplicated)
    assert PER_TASK * merged <= r["n_after_kill"] <= PER_TASK * (merged + done)
    report = json.loads((r["dir"] / "work" / "report.json").read_text())
    assert report["skipped"] == merged and report["failed"] == 0
    assert report["skipped"] + report["done"] == N_TASKS
    assert report["duplicates"] == r["n_after_kill"] - PER_TASK * merged
    with Dataset(r["dir"] / "data.h5") as ds:
        assert len(ds) == N_TASKS * PER_TASK
        assert len(set(ds.column("hash"))) == len(ds)
        tasks = [rec.provenance["task"] for rec in ds.records()]
        assert sorted(tasks.count(t) for t in set(tasks)) == [PER_TASK] * N_TASKS
        assert sorted(set(ds.classes)) == ["LCO", "LLZO f.u."]
        steps = sorted({rec.provenance["step"] for rec in ds.records()})
        assert steps == [6, 9]
    assert all(task_status(d) == "merged" for d in (r["dir"] / "work" / "tasks").iterdir())


def test_campaign_labels_equal_direct_single_points(killed_and_resumed):
    from hpcnnp.sampling.labelers import get_labeler, single_point
    calc = get_labeler("chgnet", threads=1)
    with Dataset(killed_and_resumed["dir"] / "data.h5") as ds:
        for rec in ds.records():
            assert rec.labeler["name"] == "chgnet" and rec.labeler["model"] == "0.3.0"
            assert rec.temperature in (1000.0, 2000.0, 4000.0)
            sp = single_point(rec.to_atoms(), calc)
            assert rec.energy == pytest.approx(sp["energy"], abs=1e-6)
            np.testing.assert_allclose(rec.forces, sp["forces"], rtol=0, atol=1e-6)
            np.testing.assert_allclose(rec.stress, sp["stress"], rtol=0, atol=1e-7)


def test_campaign_export_reads_back_with_n2p2_reader(killed_and_resumed, tmp_path):
    out = export_n2p2(killed_and_resumed["dir"] / "data.h5", tmp_path / "input.data",
                      test_fraction=0.25, seed=1)
    back = n2p2.read_data(tmp_path / "input.data")
    with Dataset(killed_and_resumed["dir"] / "data.h5") as ds:
        recs = list(ds.records())
        assert len(back) == len(recs)
        for atoms in back:
            rec = recs[int(atoms.info["comment"].rsplit("hpcnnp-dataset:", 1)[1])]
            np.testing.assert_array_equal(atoms.positions, rec.positions)
            np.testing.assert_array_equal(atoms.get_forces(), rec.forces)
            assert atoms.get_potential_energy() == rec.energy
        # exported in canonical order (class, T, task, step): the same file whatever
        # order the tasks were merged in
        keys = [(r.structure_class, r.temperature, r.provenance["task"], r.provenance["step"])
                for r in (recs[int(a.info["comment"].rsplit(":", 1)[1])] for a in back)]
        assert keys == sorted(keys)
    assert out["test"] == 3 and [a.info["set"] for a in back].count("test") == 3
