"""No process of a driver outlives it: SIGTERM, SIGINT, SIGHUP and SIGKILL of
``hpcnnp sample``, ``hpcnnp active`` and ``hpcnnp run`` end their workers too.

A driver starts processes that do not stay in its process group: Parsl's
LocalProvider puts the worker pool into a session of its own, the interchange is a
child that survives its parent, ``hpcnnp run`` starts ``hpcnnp sample`` which starts
its own Parsl.  Signalling the driver's process group therefore misses them, and
once the driver is gone its process tree is gone too (orphans are re-parented).
Two marks find them all:

* the **environment**: :class:`DriverGuard` puts a token
  ``HPCNNP_DRIVER_<pid>_<random>=<command>`` into the driver's environment before
  anything is started -- every descendant, however detached, inherits it
  (``/proc/PID/environ``);
* the **process tree**: a process that rewrote its title (Parsl's interchange calls
  setproctitle, which overwrites the memory ``/proc/PID/environ`` shows) is still a
  descendant of the driver while the driver lives, and is remembered as such.

:class:`DriverGuard`

1. on SIGTERM/SIGINT/SIGHUP prints one line, sends SIGTERM to every process of the
   driver (token or new descendant), SIGKILL to those still alive after a grace
   period (default 3 s), and raises :class:`~hpcnnp.signals.Terminated` in the driver
   so that its ``finally`` blocks run (atomic outputs are not half-written, temporary
   files are removed); the driver exits at the latest 8 s after the signal;
2. starts a small **watcher** process (this file run by path, standard library
   only, in its own session and without the token) that records the driver's
   descendants every 0.5 s and, when the driver has died -- also by SIGKILL, which no
   handler sees -- ends them and every process with the token.  Workers watch their
   driver through it.

Processes the driver had started before entering the guard are left alone.
The sweep is also done when the driver ends normally, so a driver never leaves a
process behind.  Linux only (``/proc``); elsewhere the guard only handles signals.
Not found: a process that both wiped its environment (``env -i``) and left the
driver's tree within 0.5 s of its start.
"""

from __future__ import annotations

import os
import signal
import sys
import time

__all__ = ["DriverGuard", "find_processes", "descendants", "sweep", "TOKEN_PREFIX"]

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
    """(state, parent pid, start time in clock ticks) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            rest = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return rest[0].decode(), int(rest[1]), int(rest[19])


def _table():
    """{pid: (state, ppid, start)} of every process."""
    out = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if entry.isdigit():
            st = _stat(entry)
            if st is not None:
                out[int(entry)] = st
    return out


def _alive(pid, start=None, table=None):
    st = table.get(pid) if table is not None else _stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return start is None or st[2] == start


def descendants(root, table=None):
    """{pid: start} of the live descendants of ``root``."""
    table = _table() if table is None else table
    children = {}
    for pid, (state, ppid, start) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        state, _, start = table[pid]
        if state not in ("Z", "X"):
            out[pid] = start
        todo.extend(children.get(pid, ()))
    return out


def find_processes(token, exclude=(), table=None):
    """Pids of this user's live processes whose environment carries ``token``.

    (A process that rewrote its title with setproctitle, like Parsl's interchange,
    has lost its environment; :func:`descendants` finds those.)"""
    key = token.encode() + b"="
    table = _table() if table is None else table
    found = []
    for pid in table:
        if pid in exclude or not _alive(pid, table=table):
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if env.startswith(key) or b"\0" + key in env:
            found.append(pid)
    return found


def _signal(pids, signum):
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:
            pass


def _targets(token, exclude, root, known):
    """Live processes to end: the token's, the new descendants of ``root`` and the
    ``known`` {pid: start} seen as descendants before (same start time: same process)."""
    table = _table()
    pids = set(find_processes(token, exclude, table))
    if root is not None:
        pids |= {p for p, start in descendants(root, table).items()
                 if (p, start) not in exclude}
    pids |= {p for p, start in known.items() if _alive(p, start, table)}
    return {p for p in pids if p not in exclude}


def sweep(token, grace=GRACE, exclude=(), root=None, known=None):
    """End every process of a driver: SIGTERM, then SIGKILL what is left after
    ``grace`` seconds (processes started meanwhile included).

    Parameters
    ----------
    token : str
        The environment variable every process of the driver carries.
    exclude : set
        Pids (and ``(pid, start)`` pairs of descendants of ``root``) to spare.
    root : int, optional
        A live driver: its descendants are ended too.
    known : dict, optional
        {pid: start time} of processes seen as descendants of the (dead) driver.

    Returns
    -------
    list of int
        The pids signalled.
    """
    exclude = set(exclude) | {os.getpid()}
    known = known or {}
    pids = _targets(token, exclude, root, known)
    signalled = set(pids)
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        time.sleep(0.1)
        pids = _targets(token, exclude, root, known)
        _signal(pids - signalled, signal.SIGTERM)
        signalled |= pids
    for _ in range(20):
        if not pids:
            break
        _signal(pids, signal.SIGKILL)
        time.sleep(0.05)
        pids = _targets(token, exclude, root, known)
        signalled |= pids
    return sorted(signalled)


def _watch(driver, start, token, grace, spare):
    """The watcher: remember the driver's descendants while it lives; when it has
    died, end them and every process carrying its token."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    known = {}
    while _alive(driver, start):
        known.update({p: s for p, s in descendants(driver).items() if (p, s) not in spare})
        time.sleep(POLL)
    sweep(token, grace, known=known)


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
        self.spare = set()

    # ---------------------------------------------------------------- enter / exit
    def __enter__(self):
        # processes the driver started before: not ours to end (e.g. a test harness's)
        self.spare = set(descendants(os.getpid()).items()) if os.path.isdir("/proc") \
            else set()
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
        self._sweep(self.grace)
        self._stop_watcher()
        return False

    def _sweep(self, grace):
        exclude = set(self.spare)
        if self.watcher is not None:
            exclude |= {self.watcher.pid}
        sweep(self.token, grace, exclude=exclude, root=os.getpid())

    def _start_watcher(self):
        import subprocess
        st = _stat(os.getpid())
        env = {k: v for k, v in os.environ.items() if not k.startswith(TOKEN_PREFIX)}
        spare = ",".join(f"{p}:{s}" for p, s in sorted(self.spare)) or "-"
        try:
            self.watcher = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid()),
                 str(st[2] if st else 0), self.token, str(self.grace), spare],
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
        self._sweep(self.grace)
        time.sleep(max(0.0, DEADLINE - (time.monotonic() - t0)))
        # the driver is still unwinding (a hanging shutdown): end it now
        self._sweep(0.0)
        self._stop_watcher()
        try:
            sys.stderr.flush()
            sys.stdout.flush()
        finally:
            os._exit(128 + signum)


def _parse_spare(text):
    if text == "-":
        return set()
    return {tuple(int(x) for x in item.split(":")) for item in text.split(",")}


if __name__ == "__main__":   # the watcher: reaper.py DRIVER START TOKEN GRACE PID:START,...
    _watch(int(sys.argv[1]), int(sys.argv[2]) or None, sys.argv[3], float(sys.argv[4]),
           _parse_spare(sys.argv[5]))
