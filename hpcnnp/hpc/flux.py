"""A Parsl execution provider for Flux (``flux batch``), beside Parsl's own.

Parsl ships a Flux *executor* (:class:`parsl.executors.FluxExecutor`: every app
becomes a Flux job, ~50 jobs/s per instance, and it needs Flux's Python bindings
where Parsl runs) but no Flux *provider*.  hpcnnp dispatches sampling and
active-learning tasks with the HighThroughputExecutor on every site, so a Flux
machine needs what Slurm, PBS and LSF machines have: a provider that submits the
executor's blocks as batch jobs.  :class:`FluxProvider` does that the way Parsl's
:class:`~parsl.providers.SlurmProvider` does with ``sbatch``:

* ``submit``: a batch script with ``#flux:`` directives (``--nodes``,
  ``--time-limit`` in minutes, ``--queue``, ``--bank``, ``--exclusive``, job name,
  output files), the site's ``worker_init`` and the launcher's command, submitted
  with ``flux batch`` (job ids in ASCII F58, ``FLUX_F58_FORCE_ASCII=1``);
* ``status``: ``flux jobs -a -n -o '{id.f58} {status_abbrev}' IDS`` (flux-jobs(1):
  status PENDING, RUNNING, COMPLETED, FAILED, CANCELED, TIMEOUT abbreviated P/PD,
  R, CD, F, CA, TO);
* ``cancel``: ``flux cancel IDS``.

Inside the batch job ``flux batch`` starts a Flux instance of its own, so the
launcher (``flux run --nodes=N --ntasks=N ...`` in ``jobs/sites/flux.yaml``)
places one worker manager per node of the allocation.
"""

from __future__ import annotations

import logging
import os
import shlex
import time

from parsl.jobs.states import JobState, JobStatus
from parsl.launchers import SingleNodeLauncher
from parsl.providers.cluster_provider import ClusterProvider
from parsl.providers.errors import SubmitException
from parsl.utils import RepresentationMixin, wtime_to_minutes

__all__ = ["FluxProvider", "TEMPLATE", "STATUS"]

logger = logging.getLogger(__name__)

#: flux-jobs status_abbrev -> Parsl job state
STATUS = {"P": JobState.PENDING, "PD": JobState.PENDING, "D": JobState.PENDING,
          "S": JobState.PENDING, "R": JobState.RUNNING, "C": JobState.RUNNING,
          "CD": JobState.COMPLETED, "F": JobState.FAILED, "CA": JobState.CANCELLED,
          "TO": JobState.TIMEOUT}

#: the batch script (string.Template, as Parsl's providers)
TEMPLATE = """#!/bin/bash
#flux: --job-name=${jobname}
#flux: --output=${job_stdout_path}
#flux: --error=${job_stderr_path}
#flux: --nodes=${nodes}
#flux: --time-limit=${walltime}m
${scheduler_options}

${worker_init}

export JOBNAME="${jobname}"

$user_script
"""


class FluxProvider(ClusterProvider, RepresentationMixin):
    """Parsl blocks as Flux batch jobs.

    Parameters
    ----------
    queue : str, optional
        Flux queue (``--queue``), e.g. ``pbatch``.
    bank : str, optional
        Bank to charge (``--bank``).
    nodes_per_block : int
    cores_per_node : int, optional
        Cores of a node the workers may use (exported as ``PARSL_CORES``).
    init_blocks, min_blocks, max_blocks : int
    parallelism : float
    walltime : str
        ``HH:MM:SS`` of each block (``--time-limit`` in whole minutes).
    scheduler_options : str
        Extra ``#flux:`` lines.
    worker_init : str
        Shell lines run before the workers start (modules, venv).
    exclusive : bool
        Whole nodes (``--exclusive``).
    flux : str
        The ``flux`` command.
    cmd_timeout : int, s
        Timeout of the ``flux`` commands.
    status_polling_interval : int, s
    launcher : parsl.launchers.Launcher, optional
        Default: :class:`~parsl.launchers.SingleNodeLauncher`.
    """

    def __init__(self, queue=None, bank=None, nodes_per_block=1, cores_per_node=None,
                 init_blocks=1, min_blocks=0, max_blocks=1, parallelism=1,
                 walltime="00:10:00", scheduler_options="", worker_init="", exclusive=True,
                 flux="flux", cmd_timeout=10, status_polling_interval=30, launcher=None):
        super().__init__("flux", nodes_per_block, init_blocks, min_blocks, max_blocks,
                         parallelism, walltime, launcher or SingleNodeLauncher(),
                         cmd_timeout=cmd_timeout)
        self.queue, self.bank, self.cores_per_node = queue, bank, cores_per_node
        self.exclusive, self.flux = exclusive, flux
        self._polling = status_polling_interval
        lines = [scheduler_options.rstrip("\n")] if scheduler_options else []
        if exclusive:
            lines.append("#flux: --exclusive")
        if queue:
            lines.append(f"#flux: --queue={queue}")
        if bank:
            lines.append(f"#flux: --bank={bank}")
        self.scheduler_options = "\n".join(lines)
        self.worker_init = worker_init

    @property
    def status_polling_interval(self):
        return self._polling

    def _flux(self, *args):
        """``flux ARGS`` run by Parsl's execute_wait -> (returncode, stdout, stderr)."""
        cmd = "FLUX_F58_FORCE_ASCII=1 " + " ".join([shlex.quote(self.flux)] +
                                                   [shlex.quote(str(a)) for a in args])
        logger.debug("executing %s", cmd)
        return self.execute_wait(cmd)

    def submit(self, command, tasks_per_node, job_name="parsl.flux"):
        """Submit a block running *command*; returns its Flux job id."""
        job_name = f"{job_name}.{time.time()}"
        script = os.path.abspath(os.path.join(self.script_dir, job_name))
        worker_init = self.worker_init
        if self.cores_per_node is not None:
            worker_init += f"\nexport PARSL_CORES={self.cores_per_node}"
        config = {"nodes": self.nodes_per_block, "walltime": wtime_to_minutes(self.walltime),
                  "scheduler_options": self.scheduler_options, "worker_init": worker_init,
                  "job_stdout_path": script + ".stdout", "job_stderr_path": script + ".stderr",
                  "user_script": self.launcher(command, tasks_per_node, self.nodes_per_block,
                                               self.script_dir)}
        self._write_submit_script(TEMPLATE, script, job_name, config)
        code, stdout, stderr = self._flux("batch", script)
        words = stdout.split()
        if code != 0 or not words:
            raise SubmitException(job_name, "flux batch did not return a job id",
                                  stdout=stdout, stderr=stderr, retcode=code)
        job_id = words[-1]
        self.resources[job_id] = {"job_id": job_id, "status": JobStatus(JobState.PENDING),
                                  "job_stdout_path": config["job_stdout_path"],
                                  "job_stderr_path": config["job_stderr_path"]}
        return job_id

    def _status(self):
        active = [jid for jid, job in self.resources.items() if not job["status"].terminal]
        if not active:
            return
        code, stdout, _ = self._flux("jobs", "-a", "-n", "-o", "{id.f58} {status_abbrev}",
                                     *active)
        if code != 0:
            logger.warning("flux jobs failed with exit code %s", code)
            return
        seen = set()
        for line in stdout.splitlines():
            words = line.split()
            if len(words) < 2 or words[0] not in self.resources:
                continue
            job = self.resources[words[0]]
            job["status"] = JobStatus(STATUS.get(words[1], JobState.UNKNOWN),
                                      stdout_path=job["job_stdout_path"],
                                      stderr_path=job["job_stderr_path"])
            seen.add(words[0])
        for jid in set(active) - seen:          # no longer known to Flux: finished
            job = self.resources[jid]
            job["status"] = JobStatus(JobState.COMPLETED, stdout_path=job["job_stdout_path"],
                                      stderr_path=job["job_stderr_path"])

    def cancel(self, job_ids):
        """Cancel blocks; a list of True/False (all False when ``flux cancel`` fails)."""
        code, _, _ = self._flux("cancel", *job_ids)
        if code != 0:
            return [False for _ in job_ids]
        for jid in job_ids:
            self.resources[jid]["status"] = JobStatus(JobState.CANCELLED)
        return [True for _ in job_ids]
