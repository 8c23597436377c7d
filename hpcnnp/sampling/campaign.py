"""Sampling campaigns: structure classes x temperatures x snapshot counts -> one data set.

A campaign YAML (``examples/campaigns/*.yaml``) says which structures are
sampled at which temperatures and how many labelled snapshots each
(structure, temperature) pair contributes::

    name: llzo_lco_laptop
    output: llzo_lco_laptop.h5          # the data set (relative to the current folder)
    workdir: llzo_lco_laptop.work       # task folders, Parsl logs, report
    site: local                         # jobs/sites/NAME.yaml, or "serial" (no Parsl)
    resources: {nodes: 1, workers_per_node: 2}
    scale: 1.0                          # multiplies every snapshot count
    seed: 1
    labeler: {name: chgnet, threads: 1}
    md: {thermostat: langevin, timestep: 1.0, equilibration: 40, interval: 10,
         snapshots_per_task: 3}
    structures:                         # named structures (builder + parameters)
      LCO: {builder: lco}
    sampling:
      - {structure: LCO, temperatures: [1000, 2000], snapshots: 6}
      - {structure: "mixture #3", temperatures: [2000, 3000, 4000], snapshots: 300}

Every key with its type, range, unit and default is a field of the typed model
:class:`hpcnnp.config.campaign.CampaignFile` (``hpcnnp config keys campaign``;
JSON Schema: ``docs/schema/campaign.schema.json``); a problem is reported with
file, line and key path before anything runs.

``structure`` names an entry of ``structures:`` or a built-in class
(:data:`STRUCTURE_CLASSES`: ``LLZO cubic``, ``LLZO tetragonal``, ``LCO``,
``amorphous LLZO``, ``amorphous LCO``, ``mixture #1`` ... ``#5``,
``<n>Co_<La|Zr|Li>`` with n = 1..6).  Builders come from the one builder table
:data:`hpcnnp.structures.BUILDERS`; every structure may add ``repeat: [a, b, c]``
or ``natoms: N`` (supercell), ``rattle: σ`` (Å) and ``class:`` (the class name
recorded in the data set; default: the structure's name).

Tasks
-----
Each (structure, temperature) pair becomes ``ceil(scale x snapshots /
snapshots_per_task)`` independent trajectories (seeds ``seed``, ``seed+1``, ...),
one task each (:mod:`.tasks`; :func:`run_task` in :mod:`.worker`: build the structure, run
:func:`hpcnnp.sampling.aimd.run_aimd` with the labeler).  A task is named by the
hash of its structure (class, builder, size, parameters), temperature, seed,
MD settings and the labeler settings that change labels (:meth:`Task.hash`);
raising ``scale`` adds trajectories and keeps the finished ones.

Tasks are idempotent: a task folder ``WORKDIR/tasks/HASH/`` holds ``task.json``,
the trajectory checkpoint and snapshots, and a marker -- ``done.json`` (finished)
or ``failed.json`` (error, reason, traceback).  A re-run (``--resume``) skips
finished tasks, retries failed ones from their last checkpoint, and continues
interrupted ones.  Workers write only their task folder; the driver alone
appends finished tasks to the HDF5 data set (then writes ``merged.json``), so
there are never concurrent HDF5 writes, and a structure merged twice is
stored once (hash deduplication in :class:`hpcnnp.io.dataset.Dataset`).

Dispatch is by Parsl (one ``python_app`` call per task) on a site from
``jobs/sites`` (``local``: HighThroughputExecutor + LocalProvider, 2 workers by
default), or in this process with ``site: serial`` (:mod:`~hpcnnp.sampling.dispatch`).

This module is the driver (:func:`run_campaign`: lock, pre-flight, progress,
resume); the campaign's parts live beside it: :mod:`hpcnnp.config.campaign`
(the file's model), :mod:`.tasks` (planning), :mod:`~hpcnnp.sampling.dispatch` (Parsl),
:mod:`.worker` (the task body) and :mod:`.export` (into the data set).
"""


from __future__ import annotations

import concurrent.futures
import json
import time
from dataclasses import dataclass, field

from hpcnnp.config.campaign import MD_DEFAULTS, SERIAL_SITE
from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import folder_lock
from hpcnnp.io.dataset import Dataset
from hpcnnp.sampling.dispatch import EXECUTOR_FAILURES, resolve_site_launcher, task_executor
from hpcnnp.sampling.export import merge_task
from hpcnnp.progress import Progress, format_duration
from hpcnnp.sampling.labelers import make_labeler
from hpcnnp.sampling.tasks import Campaign, Task, canonical, load_campaign
from hpcnnp.sampling.worker import DONE, FAILED, TASK, atomic_json, read_json, run_task, \
    task_status
from hpcnnp.structures.builders import (BUILDERS, STRUCTURE_CLASSES, build_structure,
                                        builtin_class, check_structure_spec)

__all__ = ["Campaign", "Task", "load_campaign", "run_campaign", "run_task", "merge_task",
           "task_status", "BUILDERS", "STRUCTURE_CLASSES", "build_structure",
           "check_structure_spec", "builtin_class", "CampaignReport", "SERIAL_SITE",
           "MD_DEFAULTS"]

#: failure reasons retried within one run (``resources.retries`` times): transient ones;
#: deterministic failures (scf, nan, md, input) are only retried by a new run
RETRY_REASONS = ("timeout", "worker", "crash")


@dataclass
class CampaignReport:
    """Outcome of :func:`run_campaign`."""

    tasks: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    snapshots_added: int = 0
    duplicates: int = 0
    wall_time: float = 0.0
    failures: dict = field(default_factory=dict)
    dataset: str = ""
    workdir: str = ""

    @property
    def ok(self):
        return self.failed == 0

    def to_dict(self):
        return {k: getattr(self, k) for k in ("tasks", "done", "failed", "skipped",
                                              "snapshots_added", "duplicates", "wall_time",
                                              "failures", "dataset", "workdir")}


def _preflight(campaign, tasks):
    """Build every distinct structure once (base seed): atoms count and elements;
    check the labelers for those elements.  Returns {(class, structure json): natoms}."""
    sizes = {}
    seen_labelers = set()
    for task in tasks:
        key = (task.structure_class, canonical(task.structure))
        if key not in sizes:
            try:
                atoms = build_structure(task.structure, seed=campaign.seed,
                                        base_dir=campaign.path.parent)
            except HpcnnpError as exc:
                raise HpcnnpError(f"{task.where}: structure class {task.structure_class!r}: "
                                  f"{exc}") from None
            sizes[key] = (len(atoms), sorted(set(atoms.get_chemical_symbols())))
        natoms, elements = sizes[key]
        lab_key = (canonical(task.labeler), tuple(elements))
        if lab_key not in seen_labelers:
            lab = dict(task.labeler)
            labeler = make_labeler(lab.pop("name"), **lab)
            try:
                labeler.check(elements)
            except HpcnnpError as exc:
                raise HpcnnpError(f"{task.where}: {exc}") from None
            seen_labelers.add(lab_key)
    return sizes


class _Driver:
    """One run of a campaign: state of the task folders, dispatch, progress."""

    def __init__(self, campaign, tasks, log, progress_interval):
        self.campaign, self.tasks, self.log = campaign, tasks, log
        self.work = campaign.workdir
        self.progress_interval = progress_interval
        self.report = CampaignReport(tasks=len(tasks), dataset=str(campaign.output),
                                     workdir=str(self.work))
        self.t0 = time.perf_counter()
        self.reporter = None
        self.retries = int(campaign.resources.get("retries") or 0)
        self.attempts = {}
        self.futures, self.pending, self.queue = {}, set(), []
        self.submit = None

    # -- before dispatch -----------------------------------------------------------

    def start(self, resume):
        """Refuse to mix with an earlier run unless resuming; pre-flight; marker."""
        campaign, tasks, work = self.campaign, self.tasks, self.work
        marker = work / "campaign.json"
        previous = read_json(marker)
        if previous is not None and not resume:
            n_prev = sum(1 for p in (work / "tasks").glob("*") if (p / DONE).is_file())
            raise HpcnnpError(f"{work} holds an earlier run of campaign "
                              f"{previous.get('name')!r} ({n_prev} task(s) finished): pass "
                              "--resume to continue it (finished tasks are kept, failed "
                              "ones retried), or remove the folder to start over")
        resolve_site_launcher(campaign, tasks)
        self.log(f"campaign {campaign.name}: {len(tasks)} task(s) "
                 f"({len(campaign.entries)} sampling entries, scale {campaign.scale:g}), "
                 f"labeler {campaign.labeler['name']}, site {campaign.site}")
        for (cls, _), (natoms, elements) in _preflight(campaign, tasks).items():
            n = sum(1 for t in tasks if t.structure_class == cls)
            self.log(f"  {cls}: {natoms} atoms ({' '.join(elements)}), {n} task(s)")
        atomic_json(marker, {"name": campaign.name, "file": str(campaign.path),
                             "output": str(campaign.output), "scale": campaign.scale,
                             "tasks": [t.hash for t in tasks],
                             "started": time.strftime("%Y-%m-%dT%H:%M:%S")})

    def plan(self):
        """Write the task folders; merge finished tasks; the tasks still to run."""
        todo, to_merge = [], []
        for task in self.tasks:
            d = self.work / "tasks" / task.hash
            d.mkdir(exist_ok=True)
            # (re)written when runtime options (threads, launcher, walltime) changed;
            # the hash -- and so the folder -- covers everything that changes labels
            if read_json(d / TASK) != json.loads(json.dumps(task.to_dict(), default=str)):
                atomic_json(d / TASK, task.to_dict())
            status = task_status(d)
            if status == "merged":
                self.report.skipped += 1
            elif status == "done":
                to_merge.append((task, d))
            else:
                todo.append((task, d))
        retried = sum(1 for _, d in todo if (d / FAILED).is_file())
        self.log(f"  {self.report.skipped} task(s) already merged, {len(to_merge)} finished "
                 f"to merge, {len(todo)} to run ({retried} failed before: retried)")
        for task, d in to_merge:
            self.merge(task, d)
        return todo

    def merge(self, task, d):
        with Dataset(self.campaign.output, "a") as ds:
            added, dup = merge_task(ds, d, self.campaign.name)
        self.report.snapshots_added += added
        self.report.duplicates += dup
        self.report.done += 1

    # -- dispatch ------------------------------------------------------------------

    def dispatch(self, todo):
        """Run the unfinished tasks (Parsl, or here with site serial)."""
        if not todo:
            return
        self.submit, shutdown, serial = task_executor(self.campaign, self.log)
        r = self.report
        self.reporter = Progress(f"campaign {self.campaign.name}", r.tasks, unit="tasks",
                                 out=self.log, interval=self.progress_interval,
                                 initial=r.done + r.skipped)
        try:
            for task, d in todo:
                self.launch(task, d)
            self.progress(force=True)
            if serial:
                while self.queue:
                    fut = self.queue.pop(0)
                    self.handle(fut, run_task(self.futures[fut][1]), None)
            while self.pending:
                done, _ = concurrent.futures.wait(
                    self.pending, timeout=max(1.0, self.progress_interval),
                    return_when=concurrent.futures.FIRST_COMPLETED)
                for fut in done:
                    try:
                        result, error = fut.result(), None
                    except Exception as exc:
                        result, error = None, exc
                    self.handle(fut, result, error)
                self.progress()
            self.reporter.close()
        finally:
            shutdown()

    def launch(self, task, d):
        fut = self.submit(d.resolve())      # workers may start in another folder
        self.futures[fut] = (task, d)
        self.pending.add(fut)
        self.queue.append(fut)

    def handle(self, fut, result, error):
        """A task came back: merge it, retry it, or record its failure."""
        task, d = self.futures[fut]
        self.pending.discard(fut)
        if error is not None:
            result = self._worker_failure(task, d, error)
        if result.get("status") != "done" and result.get("reason") in RETRY_REASONS \
                and self.attempts.get(task.hash, 0) < self.retries:
            self.attempts[task.hash] = self.attempts.get(task.hash, 0) + 1
            self.log(f"  retry  {task.hash} {task.structure_class} T={task.temperature:g} K "
                     f"({result.get('reason')}: {result.get('error')}), attempt "
                     f"{self.attempts[task.hash]}/{self.retries} of this run")
            self.launch(task, d)
            return
        if result.get("status") == "done":
            self.merge(task, d)
            self.log(f"  done   {task.hash} {task.structure_class} T={task.temperature:g} K"
                     f" seed {task.seed}: {result.get('snapshots')} snapshots in "
                     f"{result.get('wall_time', 0):.1f} s")
        else:
            self.report.failed += 1
            self.report.failures[task.hash] = {
                "class": task.structure_class, "temperature": task.temperature,
                "seed": task.seed, "reason": result.get("reason"), "error": result.get("error")}
            self.log(f"  FAILED {task.hash} {task.structure_class} T={task.temperature:g} K"
                     f" seed {task.seed}: {result.get('error')} (see {d / FAILED})")
        self.progress(force=True)

    def _worker_failure(self, task, d, error):
        """A task whose worker died (not a labeling failure): recorded here."""
        if type(error).__name__ in EXECUTOR_FAILURES:
            # no task ran: the executor cannot start workers (wrong machine, scheduler
            # refused the job, ...) -- stop instead of failing all tasks
            first = str(error).strip().splitlines()
            raise HpcnnpError(
                f"Parsl cannot start workers on site {self.campaign.site}: "
                f"{' '.join(first[:3])[:400]} (logs in {self.work / 'parsl'}); no task was "
                "run or marked failed")
        failed = {"hash": task.hash, "error": f"{type(error).__name__}: {error}",
                  "reason": "worker",
                  "attempt": 1 + ((read_json(d / FAILED) or {}).get("attempt", 0)),
                  "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        atomic_json(d / FAILED, failed)
        return dict(failed, status="failed")

    def progress(self, force=False):
        """A progress line (rate, ETA) and event (:mod:`hpcnnp.progress`)."""
        r = self.report
        self.reporter.update(r.done + r.skipped + r.failed, force=force,
                             msg=f"{r.failed} failed, {len(self.pending)} pending, "
                                 f"{r.snapshots_added} snapshots added")

    # -- after dispatch ------------------------------------------------------------

    def finish(self):
        r = self.report
        r.wall_time = time.perf_counter() - self.t0
        atomic_json(self.work / "report.json", dict(r.to_dict(),
                                                    finished=time.strftime("%Y-%m-%dT%H:%M:%S")))
        self.log(f"campaign {self.campaign.name}: {r.done + r.skipped}/{r.tasks} tasks "
                 f"finished ({r.skipped} from earlier runs), {r.failed} failed; "
                 f"{r.snapshots_added} snapshots added ({r.duplicates} duplicates "
                 f"skipped) to {self.campaign.output} in {format_duration(r.wall_time)}")
        if r.failed:
            self.log(f"failed tasks are listed in {self.work / 'report.json'}; re-run with "
                     "--resume to retry them")


def run_campaign(path, site=None, resume=False, scale=None, output=None, workdir=None,
                 log=None, progress_interval=30.0):
    """Run a campaign: dispatch its unfinished tasks and merge their snapshots.

    Parameters
    ----------
    path : str or path
        Campaign YAML.
    site : str, optional
        Overrides the file's ``site`` (``serial``: in this process, no Parsl).
    resume : bool
        Required when the work folder holds an earlier run of the campaign:
        finished tasks are skipped, failed ones retried, interrupted ones continued.
    scale : float, optional
        Overrides the file's ``scale``.
    output, workdir : str, optional
        Override the data set / work folder.
    log : callable, optional
        ``log(line)`` for progress (default: print to standard output).
    progress_interval : float, s
        A progress line at least this often while tasks run.

    Returns
    -------
    CampaignReport

    Raises
    ------
    InputFileError
        A problem in the campaign file (or an unknown site): raised before any
        folder is written.
    """
    if log is None:
        def log(line):
            print(line, flush=True)
    campaign = load_campaign(path, scale=scale, site=site, output=output, workdir=workdir)
    tasks = campaign.tasks()
    campaign.workdir.mkdir(parents=True, exist_ok=True)
    (campaign.workdir / "tasks").mkdir(exist_ok=True)
    driver = _Driver(campaign, tasks, log, progress_interval)
    with folder_lock(campaign.workdir, "hpcnnp sample"):      # one driver per campaign
        driver.start(resume)
        driver.dispatch(driver.plan())
        driver.finish()
    return driver.report
