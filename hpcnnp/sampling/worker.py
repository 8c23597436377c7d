"""The body of a campaign task (runs on a Parsl worker) and the task folder's state.

A task folder ``WORKDIR/tasks/HASH/`` holds ``task.json`` (the :class:`Task`),
the trajectory checkpoint and snapshots, and a marker: ``done.json`` (finished),
``failed.json`` (error, reason, traceback) and, once the driver has stored the
snapshots in the data set, ``merged.json``.  Workers write only their own task
folder; a file lock keeps two workers (e.g. an orphan of a killed run) off the
same task.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import traceback
from pathlib import Path

import numpy as np

from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import write_atomic
from hpcnnp.sampling.aimd import MDSettings, run_aimd
from hpcnnp.sampling.labelers import LabelingError, make_labeler
from hpcnnp.sampling.tasks import Task
from hpcnnp.structures.builders import build_structure

__all__ = ["run_task", "task_status", "DONE", "FAILED", "MERGED", "TASK", "LOCK",
           "atomic_json", "read_json"]

DONE, FAILED, MERGED, TASK, LOCK = "done.json", "failed.json", "merged.json", "task.json", ".lock"


def atomic_json(path, obj):
    """Write *obj* as JSON to *path* atomically (:func:`hpcnnp.fileio.write_atomic`)."""
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True, default=str))


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def task_status(task_dir):
    """``"merged"``, ``"done"``, ``"failed"``, ``"started"`` or ``"new"``."""
    d = Path(task_dir)
    if (d / MERGED).is_file():
        return "merged"
    if (d / DONE).is_file():
        return "done"
    if (d / FAILED).is_file():
        return "failed"
    if (d / "state.npz").is_file():
        return "started"
    return "new"


def run_task(task_dir):
    """Run one campaign task (a Parsl app body; also callable directly).

    Reads ``task.json`` of *task_dir*, builds the structure, runs the
    trajectory with the labeler and writes ``done.json`` -- or ``failed.json``
    with the error; never raises for a failed labeling.  A task already done
    returns at once; a started one continues from its checkpoint.  A file lock
    keeps two workers (e.g. an orphan of a killed run) off the same task.

    Returns
    -------
    dict
        ``{"hash", "status": "done"|"failed", "snapshots", "wall_time", "error", ...}``.
    """
    d = Path(task_dir)
    t0 = time.perf_counter()
    with open(d / LOCK, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        done = read_json(d / DONE)
        if done is not None:
            return dict(done, status="done", skipped=True)
        previous = read_json(d / FAILED)
        attempt = 1 + (previous or {}).get("attempt", 0)
        if previous is not None:
            (d / FAILED).unlink()
        task = Task.from_dict(read_json(d / TASK))
        with open(d / "task.log", "a") as logf:
            def log(line):
                logf.write(f"{time.strftime('%H:%M:%S')} {line}\n")
                logf.flush()

            try:
                done = _trajectory(task, d, attempt, t0, log)
                atomic_json(d / DONE, done)
            except Exception as exc:
                reason = exc.reason if isinstance(exc, LabelingError) else \
                    ("input" if isinstance(exc, HpcnnpError) else "crash")
                failed = {"hash": task.hash, "error": f"{type(exc).__name__}: {exc}",
                          "reason": reason, "attempt": attempt,
                          "traceback": traceback.format_exc(limit=12),
                          "wall_time": time.perf_counter() - t0,
                          "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
                atomic_json(d / FAILED, failed)
                log(f"FAILED ({reason}): {failed['error']}")
                return dict(failed, status="failed")
            log(f"done: {done['snapshots']} snapshots, {done['steps_this_attempt']} steps in "
                f"{done['wall_time']:.1f} s")
            return dict(done, status="done")


def _trajectory(task, d, attempt, t0, log):
    """Build the structure and run the task's trajectory; the content of done.json."""
    log(f"task {task.hash} attempt {attempt}: {task.structure_class} "
        f"T={task.temperature:g} K seed={task.seed} labeler={task.labeler['name']} "
        f"on {os.uname().nodename} pid {os.getpid()}")
    lab = dict(task.labeler)
    labeler = make_labeler(lab.pop("name"), **lab)
    atoms = build_structure(task.structure, seed=task.seed, base_dir=task.base_dir)
    labeler.check(sorted(set(atoms.get_chemical_symbols())))
    calc = labeler.calculator(directory=d / "labeler")
    try:
        md = dict(task.md)
        settings = MDSettings(temperature=task.temperature, seed=task.seed,
                              snapshots=int(md.pop("snapshots")), **md)
        result = run_aimd(atoms, calc, settings, directory=d, log=log)
    finally:
        with contextlib.suppress(Exception):
            calc.close()
    return {"hash": task.hash, "snapshots": len(result.snapshots),
            "natoms": len(atoms), "steps": settings.total_steps,
            "steps_this_attempt": result.steps_run, "resumed_from": result.resumed_from,
            "calls": result.calls, "wall_time": time.perf_counter() - t0,
            "attempt": attempt, "labeler_versions": labeler.versions(),
            "builder_info": _jsonable_info(atoms.info),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _jsonable_info(info):
    out = {}
    for k, v in info.items():
        try:
            json.dumps(v, default=_np_default)
            out[k] = v
        except (TypeError, ValueError):
            out[k] = repr(v)
    return json.loads(json.dumps(out, default=_np_default))


def _np_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(type(obj).__name__)
