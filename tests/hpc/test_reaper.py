"""DriverGuard: no process of a driver survives SIGTERM, SIGINT or SIGKILL of the
driver, nor its normal end -- also detached, double-forked and SIGTERM-ignoring ones."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")


def marked(mark):
    """Live processes whose environment carries MARK (the test's own tag)."""
    key = f"HPCNNP_TEST_MARK={mark}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if key in env.split(b"\0") and state not in (b"Z", b"X"):
            pids.append(int(entry))
    return pids


def start(tmp_path, *extra):
    mark = uuid.uuid4().hex
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, str(HERE / "_guarded_driver.py"), str(ready),
                             *extra], env=dict(os.environ, HPCNNP_TEST_MARK=mark),
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc, mark


def wait_gone(mark, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not marked(mark):
            return True
        time.sleep(0.1)
    left = marked(mark)
    for pid in left:                       # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    return not left


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_driver_and_workers(tmp_path, signum):
    proc, mark = start(tmp_path)
    assert len(marked(mark)) >= 4                  # driver + 3 workers (+ grandchild)
    t0 = time.time()
    proc.send_signal(signum)
    rc = proc.wait(timeout=30)
    assert wait_gone(mark, 10 - (time.time() - t0))
    assert rc == 128 + signum
    name = signal.Signals(signum).name
    assert f"hpcnnp testdriver: received {name}, stopping its workers" in proc.stderr.read()


def test_sigkill_of_driver_ends_workers_via_watcher(tmp_path):
    proc, mark = start(tmp_path)
    assert len(marked(mark)) >= 4
    proc.kill()
    proc.wait(timeout=30)
    assert wait_gone(mark, 20)


def test_normal_end_leaves_nothing(tmp_path):
    proc, mark = start(tmp_path, "normal")
    assert proc.wait(timeout=60) == 0
    assert wait_gone(mark, 10)
