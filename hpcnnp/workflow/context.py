"""What the stages of the main job share: the typed project, the work folder, the
site's MPI launcher, and the way an MPI stage is started and followed.

A stage that needs MPI (scaling, training, production MD, trajectory analysis)
runs as ``<launcher> python -m hpcnnp.<stage> CONFIG`` in its own process group:
the driver stays small, a crash in a stage cannot take it down, and the stage's
progress comes back as structured events (:mod:`hpcnnp.progress`: the child
appends JSON lines to the file named by ``$HPCNNP_EVENTS``, the driver reads
them and prints their lines) -- never by matching words on stdout.  The child's
output goes to ``logs/<stage>.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import write_atomic
from hpcnnp.hpc.sites import load_site
from hpcnnp.progress import EVENTS_ENV, format_event

__all__ = ["Context", "StageError"]

#: seconds between two looks at a running child's events
POLL = 0.5


class StageError(HpcnnpError):
    """A stage failed (message names the stage, the command and its log)."""


class _EventTail:
    """New complete lines of a growing JSON-lines file."""

    def __init__(self, path):
        self.path = Path(path)
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        self.last_error = None

    def read(self):
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        out = []
        for line in chunk[:end].splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("kind") == "end" and ev.get("ok") is False:
                self.last_error = ev.get("msg") or self.last_error
            out.append(ev)
        return out


class Context:
    """The project, its work folder and how its stages are started.

    Parameters
    ----------
    project : hpcnnp.workflow.project.Project
    ranks : int, optional
        MPI ranks of the MPI stages (default: the project's ``ranks``, else the
        cores of this node).
    log : callable(str)
        Where the driver's lines go.
    """

    def __init__(self, project, ranks=None, log=print):
        self.project = project
        self.config = project.config
        self.work = project.workdir
        self.work.mkdir(parents=True, exist_ok=True)
        self.site = load_site(project["site"])
        self.ranks = ranks or project["ranks"] or max(1, os.cpu_count() or 1)
        self.log = log

    def path(self, *parts):
        """A path inside the work folder."""
        return self.work.joinpath(*parts)

    def write_json(self, path, obj):
        """Write a stage's configuration (JSON) atomically; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(obj, indent=1, default=str) + "\n")
        return path

    def mpi_prefix(self, ranks=None):
        n = ranks or self.ranks
        return self.site.mpi_command(n) if n > 1 else []

    def run_module(self, module, *args, stage, mpi=True, ranks=None, cwd=None):
        """Run ``[launcher] python -m MODULE ARGS`` and follow its events.

        Returns the path of the log file; raises :class:`StageError` (with the
        child's own one-line error where it gave one) when the child fails.
        """
        cmd = (self.mpi_prefix(ranks) if mpi else []) + [sys.executable, "-m", module,
                                                          *map(str, args)]
        logs = self.path("logs")
        logs.mkdir(exist_ok=True)
        logf = logs / f"{stage}.log"
        events = logs / f"{stage}.events.jsonl"
        env = dict(os.environ)
        env[EVENTS_ENV] = str(events)
        # the mpich wheel's libmpi for LAMMPS and mpi4py (hpcnnp.md.plugin does the same
        # in-process); one BLAS/OpenMP thread per rank: the ranks fill the cores
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [str(Path(sys.prefix) / "lib")] + ([env["LD_LIBRARY_PATH"]]
                                              if env.get("LD_LIBRARY_PATH") else []))
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        tail = _EventTail(events)
        t0 = time.time()
        with open(logf, "a") as fh:
            fh.write(f"\n$ {' '.join(cmd)}\n")
            fh.flush()
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                    cwd=cwd or self.work, env=env, start_new_session=True)
            try:
                while proc.poll() is None:
                    self._show(tail.read())
                    time.sleep(POLL)
            except BaseException:
                # the driver is stopping (signal, Ctrl-C): the stage's whole process
                # group goes with it, nothing keeps computing
                _stop_group(proc)
                raise
            self._show(tail.read())
        if proc.returncode != 0:
            why = tail.last_error or _last_line(logf)
            raise StageError(f"stage {stage}: `python -m {module}` failed with exit code "
                             f"{proc.returncode} after {time.time() - t0:.0f} s: "
                             f"{why[:300]} (log: {logf})")
        return logf

    @contextlib.contextmanager
    def follow(self, stage):
        """Work the driver does in-process for ``stage`` (and the Parsl workers and
        MPI children it starts, which inherit the environment) reports through
        ``logs/<stage>.events.jsonl``; while the block runs, the events of the other
        processes (committee members training, teacher MD, ...) are shown as lines.
        The driver's own reports are not repeated (it prints them itself)."""
        logs = self.path("logs")
        logs.mkdir(exist_ok=True)
        events = logs / f"{stage}.events.jsonl"
        old = os.environ.get(EVENTS_ENV)
        os.environ[EVENTS_ENV] = str(events)
        tail, stop, me = _EventTail(events), threading.Event(), os.getpid()

        def show():
            self._show([ev for ev in tail.read() if ev.get("pid") != me])

        def loop():
            while not stop.wait(POLL):
                show()
        watcher = threading.Thread(target=loop, name=f"events {stage}", daemon=True)
        watcher.start()
        try:
            yield events
        finally:
            stop.set()
            watcher.join()
            show()
            if old is None:
                os.environ.pop(EVENTS_ENV, None)
            else:
                os.environ[EVENTS_ENV] = old

    def _show(self, events):
        for ev in events:
            kind = ev.get("kind")
            # a finished reporter's last progress line already said it all
            if kind == "end" and ev.get("ok") and ev.get("total") is not None \
                    and ev.get("done") == ev.get("total"):
                continue
            if kind in ("progress", "message", "end"):
                self.log(f"    {format_event(ev)[:160]}")


def _stop_group(proc, grace=10.0):
    """SIGTERM the child's process group, SIGKILL what is left after ``grace`` s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _last_line(path):
    try:
        lines = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln and not ln.startswith("$ ")]
    # the child's own error line beats the launcher's MPI_Abort notice after it
    errors = [ln for ln in lines if ": error" in ln and not ln.startswith("Abort(")]
    if errors:
        return errors[-1]
    return lines[-1] if lines else ""
