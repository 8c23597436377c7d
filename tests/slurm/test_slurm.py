"""hpcnnp on a real Slurm cluster (single node, tests/slurm/cluster.py).

* a sampling campaign through Parsl's SlurmProvider with the ``slurm`` site: the tasks
  run inside a Slurm job (the labeler refuses to run elsewhere), every snapshot lands
  in the data set once, and the block job is gone when the driver has finished;
* the chained MD segments of ``hpcnnp jobs render``, submitted with
  ``submit_chain.sh`` (``sbatch --dependency=afterok``): every frame is in the H5MD
  file exactly once; prints the time from the first sbatch to the end of the chain;
* a segment cancelled with ``scancel`` while it runs, the chain resubmitted from it
  (``./submit_chain.sh K``): the run resumes from its last restart and again holds
  every frame exactly once.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _hpcnnp(*args, cwd, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "hpcnnp.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


# ------------------------------------------------------------------------ campaign
CAMPAIGN = f"""\
name: on_slurm
output: data.h5
workdir: work
site: slurm
resources: {{nodes: 1, workers_per_node: 2, walltime: "00:20:00"}}
seed: 3
labeler: {{name: python, factory: "{HERE / '_slurm_labeler.py'}:emt_in_slurm_job"}}
md: {{equilibration: 2, interval: 2, snapshots_per_task: 3}}
structures:
  Cu: {{builder: bulk, name: Cu, cubic: true, repeat: [2, 1, 1]}}
sampling:
  - {{structure: Cu, temperatures: [300, 600], snapshots: 6}}
"""


def test_campaign_through_slurm_provider(slurm_cluster, tmp_path):
    pytest.importorskip("parsl")
    from hpcnnp.io.dataset import Dataset

    (tmp_path / "c.yaml").write_text(CAMPAIGN)
    t0 = time.time()
    proc = _hpcnnp("sample", "c.yaml", "--progress-interval", "5", cwd=tmp_path)
    elapsed = time.time() - t0
    assert "site slurm" in proc.stdout
    report = json.loads((tmp_path / "work" / "report.json").read_text())
    assert report["failed"] == 0 and report["done"] == 4, report
    with Dataset(tmp_path / "data.h5") as ds:
        assert len(ds) == 12                      # 2 T x 6 snapshots, each once
    scripts = [p for p in (tmp_path / "work" / "parsl").rglob("submit_scripts/parsl.slurm.*")
               if p.suffix not in (".stdout", ".stderr")]
    assert scripts and "#SBATCH" in scripts[0].read_text()
    assert slurm_cluster.jobs() == []              # the block job was cancelled
    print(f"\ncampaign through SlurmProvider: 4 tasks in {elapsed:.1f} s")


# ------------------------------------------------------------------------ MD chains
PROTOCOL = """\
structure: {inputs}/cell.extxyz
potential: {inputs}/pot
output: {run}
timestep: 1.0
seed: 7
dump_stride: 10
segment: 50 steps
stages:
  - {{type: nvt, T: 300, time: {steps} steps}}
"""


def _render(tmp_path, md_inputs, steps, segment_ns):
    proto = tmp_path / "p.yaml"
    proto.write_text(PROTOCOL.format(inputs=md_inputs, run=tmp_path / "run", steps=steps))
    jobs = tmp_path / "jobs"
    # one rank per job: srun's pmi2 with the `mpich` wheel failed MPI_Init in 1 of 12
    # back-to-back two-rank jobs on this cluster (Hydra's mpiexec: 16 of 16 fine)
    _hpcnnp("jobs", "render", "--site", "slurm", "--nodes", "1", "--ranks-per-node", "1",
            "--walltime", "00:10:00", "--protocol", proto, "--total-ns", steps * 1e-6,
            "--segment-ns", segment_ns, "--output-dir", jobs, "--workdir", tmp_path,
            "--job-name", "md", cwd=tmp_path)
    return proto, jobs


def _submit_chain(jobs, *args):
    proc = subprocess.run(["bash", str(jobs / "submit_chain.sh"), *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [line.split()[-1] for line in proc.stdout.splitlines()
            if line.startswith("segment ")]


# terminal states; COMPLETING, CONFIGURING, SUSPENDED... are transient and pass by
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PURGED", "OUT_OF_MEMORY",
         "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED")


def _wait(cluster, ids, seconds=900):
    deadline = time.time() + seconds
    while time.time() < deadline:
        states = {i: cluster.state(i) for i in ids}
        if all(s in FINAL for s in states.values()):
            return states
        time.sleep(0.5)
    pytest.fail(f"jobs did not finish in {seconds} s: {states}")


def _steps(run):
    from hpcnnp.io.h5md import H5MDTrajectory
    with H5MDTrajectory(run / "traj.h5md") as t:
        return [int(s) for s in t.steps]


def _job_logs(jobs):
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in
                     sorted(jobs.glob("*.out")))


def test_md_chain_every_frame_once(slurm_cluster, md_inputs, tmp_path):
    steps = 600
    proto, jobs = _render(tmp_path, md_inputs, steps, 0.0002)       # 3 segment jobs
    t0 = time.time()
    ids = _submit_chain(jobs)
    assert len(ids) == 3
    deps = [slurm_cluster.job(i).get("Dependency", "(null)") for i in ids]
    assert deps[0] == "(null)" and f"afterok:{ids[0]}" in deps[1], deps
    states = _wait(slurm_cluster, ids)
    elapsed = time.time() - t0
    assert set(states.values()) == {"COMPLETED"}, (states, _job_logs(jobs))
    assert _steps(tmp_path / "run") == list(range(0, steps + 1, 10))
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["complete"] and state["mpi_ranks"] == 1
    print(f"\nMD chain on Slurm: 3 segment jobs x 200 steps (100 atoms, 1 rank), "
          f"sbatch -> completion {elapsed:.1f} s")


def test_cancelled_segment_resubmitted_resumes(slurm_cluster, md_inputs, tmp_path):
    steps = 2100
    proto, jobs = _render(tmp_path, md_inputs, steps, 0.0007)       # 3 segment jobs
    ids = _submit_chain(jobs)
    run = tmp_path / "run"
    # cancel segment 2 early in its MD (frames beyond its last restart, 500 steps to go)
    deadline = time.time() + 600
    while time.time() < deadline:
        if slurm_cluster.state(ids[1]) == "RUNNING" and (run / "traj.h5md").exists():
            try:
                if max(_steps(run)) >= 800:
                    break
            except Exception:       # noqa: BLE001 - the writer may hold the file
                pass
        first = slurm_cluster.state(ids[0])
        assert first == "COMPLETED" or first not in FINAL, (first, _job_logs(jobs))
        time.sleep(0.2)
    slurm_cluster.scancel(ids[1])
    states = _wait(slurm_cluster, ids)
    assert states[ids[0]] == "COMPLETED" and states[ids[1]] == "CANCELLED", states
    assert states[ids[2]] in ("CANCELLED", "PURGED"), states   # kill_invalid_depend
    done = _steps(run)
    assert 800 <= max(done) < 1400, "segment 2 ended before scancel reached it"
    again = _submit_chain(jobs, 2)                   # resubmit from segment 2
    assert len(again) == 2
    states = _wait(slurm_cluster, again)
    assert set(states.values()) == {"COMPLETED"}, (states, _job_logs(jobs))
    assert _steps(run) == list(range(0, steps + 1, 10))    # every frame exactly once
    log = (jobs / f"md-002.{again[0]}.out").read_text() if \
        (jobs / f"md-002.{again[0]}.out").exists() else _job_logs(jobs)
    assert "resuming" in log
    assert np.all(np.diff(_steps(run)) == 10)
