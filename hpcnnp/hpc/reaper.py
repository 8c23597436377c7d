"""No process of a driver outlives it: SIGTERM, SIGINT, SIGHUP and SIGKILL of
``hpcnnp sample``, ``hpcnnp active`` and ``hpcnnp run`` end their workers too.

A driver starts processes that do not stay in its process group: Parsl's
LocalProvider puts the worker pool into a session of its own, the interchange is a
child that survives its parent, ``hpcnnp run`` starts ``hpcnnp sample`` which starts
its own Parsl.  Signalling the driver's process group therefore misses them, and
once the driver is gone its process tree is gone too (orphans are re-parented).
What every one of them keeps is the **environment** it inherited.  So
:class:`DriverGuard`

1. puts a token ``HPCNNP_DRIVER_<pid>_<random>=<command>`` into the driver's
   environment before anything is started -- every descendant, however detached,
   carries it (``/proc/PID/environ``);
2. on SIGTERM/SIGINT/SIGHUP prints one line, sends SIGTERM to every process of
   this user that carries the token, SIGKILL to those still alive after a grace
   period (default 3 s), and raises :class:`~hpcnnp.signals.Terminated` in the
   driver so that its ``finally`` blocks run (atomic outputs are not half-written,
   temporary files are removed); the driver exits at the latest 8 s after the signal;
3. starts a small **watcher** process (this file run by path, standard library
   only, in its own session and without the token) that polls the driver every
   0.5 s and, when the driver has died -- also by SIGKILL, which no handler sees --
   does the same sweep.  Workers watch their driver through it.

The sweep is also done when the driver ends normally, so a driver never leaves a
process behind.  Linux only (``/proc``); elsewhere the guard only handles signals.
Processes that wipe their environment (``env -i``) are not found.
"""

from __future__ import annotations

import os
import signal
import sys
import time

__all__ = ["DriverGuard", "find_processes", "sweep", "TOKEN_PREFIX"]

TOKEN_PREFIX = "HPCNNP_DRIVER_"
#: seconds between SIGTERM and SIGKILL in a sweep
GRACE = 3.0
#: seconds after a signal at which the driver exits whatever it is doing
DEADLINE = 8.0
#: seconds between two looks of the watcher at the driver
POLL = 0.5


# ---------------------------------------------------------------------------------------
# /proc (standard library only: the watcher runs this file without hpcnnp's imports)
# ---------------------------------------------------------------------------------------

def _stat(pid):
    """(state, start time in clock ticks) of a process, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            rest = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return rest[0].decode(), int(rest[19])


def _alive(pid, start=None):
    st = _stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return start is None or st[1] == start


def find_processes(token, exclude=()):
    """Pids of this user's live processes whose environment carries ``token``."""
    key = token.encode() + b"="
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in exclude:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if (env.startswith(key) or b"\0" + key in env) and _alive(pid):
            found.append(pid)
    return found


def _signal(pids, signum):
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:
            pass


def sweep(token, grace=GRACE, exclude=()):
    """SIGTERM every process carrying ``token``, SIGKILL what is left after ``grace``
    seconds (processes started meanwhile included).  Returns the pids signalled."""
    exclude = set(exclude) | {os.getpid()}
    pids = find_processes(token, exclude)
    signalled = set(pids)
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        time.sleep(0.1)
        pids = find_processes(token, exclude)
        _signal(set(pids) - signalled, signal.SIGTERM)
        signalled |= set(pids)
    for _ in range(20):
        if not pids:
            break
        _signal(pids, signal.SIGKILL)
        time.sleep(0.05)
        pids = find_processes(token, exclude)
        signalled |= set(pids)
    return sorted(signalled)


def _watch(driver, start, token, grace):
    """The watcher: wait for the driver to end, then sweep its token."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while _alive(driver, start):
        time.sleep(POLL)
    sweep(token, grace)


# ---------------------------------------------------------------------------------------
# The guard (runs in the driver)
# ---------------------------------------------------------------------------------------

class DriverGuard:
    """Context manager for the body of a driver command (see the module doc).

    Parameters
    ----------
    command : str
        ``"hpcnnp sample"`` etc., for the message printed on a signal.
    grace : float
        Seconds between SIGTERM and SIGKILL for the driver's processes.
    stream : file, optional
        Where the line about a received signal goes (default: standard error).
    watcher : bool
        Start the watcher process (SIGKILL of the driver); tests may switch it off.

    Notes
    -----
    Signal handlers can only be installed in the main thread; elsewhere the guard
    still tags the environment and sweeps on exit.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self, command, grace=GRACE, stream=None, watcher=True):
        self.command = command
        self.grace = float(grace)
        self.stream = stream
        self.use_watcher = watcher
        self.token = f"{TOKEN_PREFIX}{os.getpid()}_{os.urandom(4).hex()}"
        self.watcher = None
        self.old_handlers = {}
        self.received = None

    # ---------------------------------------------------------------- enter / exit
    def __enter__(self):
        os.environ[self.token] = self.command
        if self.use_watcher and os.path.isdir("/proc"):
            self._start_watcher()
        import threading
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self.old_handlers[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, exc_type, exc, tb):
        for signum, handler in self.old_handlers.items():
            signal.signal(signum, handler)
        self.old_handlers = {}
        os.environ.pop(self.token, None)
        sweep(self.token, self.grace, exclude=self._exclude())
        self._stop_watcher()
        return False

    def _exclude(self):
        return {self.watcher.pid} if self.watcher is not None else set()

    def _start_watcher(self):
        import subprocess
        st = _stat(os.getpid())
        env = {k: v for k, v in os.environ.items() if not k.startswith(TOKEN_PREFIX)}
        try:
            self.watcher = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid()),
                 str(st[1] if st else 0), self.token, str(self.grace)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=env, start_new_session=True, close_fds=True)
        except OSError:             # pragma: no cover - no fork/exec left
            self.watcher = None

    def _stop_watcher(self):
        if self.watcher is None:
            return
        try:
            self.watcher.kill()
            self.watcher.wait(timeout=5)
        except Exception:           # noqa: BLE001 pragma: no cover
            pass
        self.watcher = None

    # ---------------------------------------------------------------- signals
    def _on_signal(self, signum, frame):
        from hpcnnp.signals import Terminated, announce
        if self.received is not None:
            return                  # already stopping: the deadline thread ends it
        self.received = signum
        announce(self.command, signum, "stopping its workers", self.stream)
        import threading
        threading.Thread(target=self._stop_all, args=(signum,), daemon=True).start()
        raise Terminated(signum)

    def _stop_all(self, signum):
        t0 = time.monotonic()
        sweep(self.token, self.grace, exclude=self._exclude())
        time.sleep(max(0.0, DEADLINE - (time.monotonic() - t0)))
        # the driver is still unwinding (a hanging shutdown): end it now
        sweep(self.token, 0.0, exclude=self._exclude())
        self._stop_watcher()
        try:
            sys.stderr.flush()
            sys.stdout.flush()
        finally:
            os._exit(128 + signum)


if __name__ == "__main__":       # the watcher: reaper.py DRIVER_PID START TOKEN GRACE
    _watch(int(sys.argv[1]), int(sys.argv[2]) or None, sys.argv[3], float(sys.argv[4]))
