"""SIGTERM and SIGHUP end a command the way Ctrl-C does: with a clear line and cleanup.

By default Python dies on SIGTERM (what batch systems send at the walltime, what
``kill`` sends) without running ``finally`` blocks, so temporary files stay and
nothing is said.  :func:`terminate_gracefully` (used by the ``hpcnnp`` command for
every sub-command) turns SIGTERM and SIGHUP into :class:`Terminated`, an exception
that unwinds the command like ``KeyboardInterrupt``: atomic outputs are abandoned
and their temporary files removed, folder locks released; the command line prints
``hpcnnp CMD: received SIGTERM, ...`` and exits with 128 + the signal number (143).

Commands with their own handling keep it: training installs its own SIGTERM handler
(checkpoint, then exit 143) while it runs; drivers that start workers use
:class:`hpcnnp.hpc.reaper.DriverGuard`, which also ends the workers.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

__all__ = ["Terminated", "terminate_gracefully", "announce", "exit_status"]


class Terminated(KeyboardInterrupt):
    """The process received a termination signal (``signum``); raised in the main
    thread by the handlers of this module and of :class:`~hpcnnp.hpc.reaper.DriverGuard`.

    A subclass of :class:`KeyboardInterrupt`, so ``except Exception`` does not swallow
    it and code that cleans up after Ctrl-C also cleans up after SIGTERM.
    """

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(exc):
    """Exit status for an interruption: 128 + signal number (130 for Ctrl-C)."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


def announce(command, signum, doing="stopping", stream=None):
    """Print ``COMMAND: received SIGTERM, DOING`` (rank 0 only under MPI)."""
    from hpcnnp.mpi import launcher_rank
    if launcher_rank() != 0:
        return
    stream = sys.stderr if stream is None else stream
    try:
        stream.write(f"{command}: received {signal.Signals(signum).name}, {doing}\n")
        stream.flush()
    except (OSError, ValueError):       # closed stream: nothing to tell
        pass


@contextlib.contextmanager
def terminate_gracefully(command, signals=(signal.SIGTERM, signal.SIGHUP), stream=None):
    """Within the block, ``signals`` raise :class:`Terminated` after one line on
    standard error.  A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        announce(command, signum, "stopping", stream)
        raise Terminated(signum)

    old = {}
    for signum in signals:
        with contextlib.suppress(ValueError, OSError):
            old[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, h in old.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, h)
