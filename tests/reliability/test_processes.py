"""No process of a driver outlives it.

``hpcnnp sample`` with site ``local`` (Parsl: interchange, worker pool and workers in
their own session) and ``hpcnnp run`` (which starts ``hpcnnp sample``) are stopped
with SIGTERM or SIGKILL while their workers label structures; afterwards no process
started by them may be alive: 10 s after SIGTERM, 60 s after SIGKILL (issue #15).
Every process the driver starts inherits the test's HPCNNP_TEST_MARK, which is how
the test finds them (independently of hpcnnp's own bookkeeping).
"""

import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from _reliability import env

HERE = Path(__file__).resolve().parent

pytestmark = [pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc"),
              pytest.mark.skipif(importlib.util.find_spec("parsl") is None,
                                 reason="parsl is not installed (pip install parsl)")]

CAMPAIGN = f"""\
name: slow
output: data.h5
workdir: work
site: local
resources: {{nodes: 1, workers_per_node: 2}}
seed: 1
labeler: {{name: python, factory: "{HERE / '_slow_labeler.py'}:slow_emt"}}
md: {{equilibration: 2, interval: 2, snapshots_per_task: 200}}
structures:
  Cu: {{builder: bulk, name: Cu, cubic: true}}
sampling:
  - {{structure: Cu, temperatures: [300, 600], snapshots: 400}}
"""

PROJECT = f"""\
name: slow
workdir: run
site: local
labeler: {{name: python, factory: "{HERE / '_slow_labeler.py'}:slow_lj"}}
campaign:
  md: {{equilibration: 2, interval: 2, snapshots_per_task: 200}}
  resources: {{nodes: 1, workers_per_node: 2}}
  structures:
    LCO: {{builder: lco}}
  sampling:
    - {{structure: LCO, temperatures: [300, 600], snapshots: 400}}
"""


def _table():
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            rest = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        out[int(entry)] = (rest[0], int(rest[1]), int(rest[19]),
                           cmd.decode(errors="replace")[:120])
    return out


class Processes:
    """The driver's processes as the test sees them: every live process whose
    environment carries the test's mark, and every process ever seen as a descendant
    of the driver (Parsl's interchange rewrites its title, which hides its
    environment) -- recorded with its start time, so a reused pid does not count."""

    def __init__(self, mark, root):
        self.key = f"HPCNNP_TEST_MARK={mark}".encode()
        self.root = root
        self.seen = {}

    def record(self):
        table = _table()
        todo = [self.root]
        while todo:
            parent = todo.pop()
            for pid, (state, ppid, start, cmd) in table.items():
                if ppid == parent and pid not in self.seen:
                    self.seen[pid] = start
                    todo.append(pid)
        return self.alive(table)

    def alive(self, table=None):
        table = _table() if table is None else table
        found = {}
        for pid, (state, ppid, start, cmd) in table.items():
            if state in (b"Z", b"X"):
                continue
            if self.seen.get(pid) == start:
                found[pid] = cmd
                continue
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if self.key in env.split(b"\0"):
                found[pid] = cmd
        return found


def _start(tmp_path, args, cwd):
    mark = uuid.uuid4().hex
    log = open(tmp_path / "driver.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "hpcnnp.cli", *args], cwd=cwd,
                            env=env(HPCNNP_TEST_MARK=mark), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    return proc, mark, log


def _wait_for_workers(proc, tmp_path, pattern, seconds=180):
    """Until a task log exists (a worker labels) -- the driver and its workers run."""
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        if list(tmp_path.glob(pattern)):
            time.sleep(1.0)
            return
        time.sleep(0.2)
    pytest.fail(f"no worker started: {(tmp_path / 'driver.log').read_text()[-3000:]}")


def _gone_within(procs, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not procs.alive():
            return {}
        time.sleep(0.25)
    left = procs.alive()
    for pid in left:                          # never leave them to the next test
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


def _stop(proc, mark, signum, limit):
    procs = Processes(mark, proc.pid)
    before = procs.record()
    t0 = time.time()
    os.kill(proc.pid, signum)
    procs.record()
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        pass
    return before, _gone_within(procs, limit - (time.time() - t0))


def _interrupt(folder, args, task_logs, signum, limit):
    """Start ``hpcnnp ARGS`` in ``folder``, wait until its workers write ``task_logs``
    (a glob), send ``signum``; returns the process, the processes of its group before
    the signal and those still alive ``limit`` seconds after it."""
    proc, mark, log = _start(folder, args, folder)
    _wait_for_workers(proc, folder, task_logs)
    before, left = _stop(proc, mark, signum, limit)
    log.close()
    return proc, before, left


@pytest.mark.slow
@pytest.mark.parametrize("signum, limit", [(signal.SIGTERM, 10.0), (signal.SIGKILL, 60.0)])
def test_sample_leaves_no_worker(tmp_path, signum, limit):
    """Cases: SIGKILL or SIGTERM of ``hpcnnp sample`` (site local) left the interchange
    and workers computing for minutes; SIGTERM printed nothing."""
    (tmp_path / "c.yaml").write_text(CAMPAIGN)
    proc, before, left = _interrupt(tmp_path, ["sample", "c.yaml"], "work/tasks/*/task.log",
                                    signum, limit)
    assert any("interchange" in c for c in before.values()), before
    assert len(before) >= 4, before          # driver, interchange, pool, workers
    assert not left, f"alive {limit:.0f} s after {signum!r}: {left}"
    out = (tmp_path / "driver.log").read_text()
    if signum == signal.SIGTERM:
        assert proc.returncode == 143
        assert "hpcnnp sample: received SIGTERM, stopping its workers" in out
        assert "Traceback" not in out


@pytest.mark.slow
@pytest.mark.parametrize("signum, limit", [(signal.SIGTERM, 10.0), (signal.SIGKILL, 60.0)])
def test_run_leaves_no_sample_child(tmp_path, signum, limit):
    """Case: killing ``hpcnnp run`` orphaned its sampling workers, which kept running
    the labeler.  (The sample stage now runs the campaign in the driver: its Parsl
    interchange and workers are the driver's children.)"""
    (tmp_path / "project.yaml").write_text(PROJECT)
    proc, before, left = _interrupt(tmp_path, ["run", "project.yaml"],
                                    "run/sample/campaign.work/tasks/*/task.log", signum, limit)
    assert any("interchange" in c for c in before.values()), before
    assert not left, f"alive {limit:.0f} s after {signum!r}: {left}"
    if signum == signal.SIGTERM:
        assert "hpcnnp run: received SIGTERM, stopping its workers" in \
            (tmp_path / "driver.log").read_text()
