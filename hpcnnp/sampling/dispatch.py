"""Dispatch of campaign tasks: Parsl on a site of ``jobs/sites``, or this process.

:func:`task_executor` returns ``(submit, shutdown, serial)``: ``submit(task_dir)``
gives a future of :func:`hpcnnp.sampling.worker.run_task`'s result.  With
``site: serial`` nothing is submitted (``serial`` is True): the driver runs the
tasks itself, one after the other.  Otherwise one Parsl ``python_app`` call per
task runs on the site's executor (``local``: HighThroughputExecutor +
LocalProvider; clusters: the site's provider, see :mod:`hpcnnp.hpc.sites`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
from pathlib import Path

from hpcnnp.config.campaign import SERIAL_SITE
from hpcnnp.errors import HpcnnpError
from hpcnnp.hpc.sites import SCHEDULERS, load_site
from hpcnnp.sampling.worker import run_task

__all__ = ["task_executor", "resolve_site_launcher", "EXECUTOR_FAILURES"]

#: Parsl errors meaning that the executor itself is broken (no task could run)
EXECUTOR_FAILURES = ("TooManyJobFailuresError", "BadStateException", "ScalingFailed")


def resolve_site_launcher(campaign, tasks):
    """Labelers with ``launcher: site``: the site's MPI command for ``ranks``."""
    needs = [t for t in tasks if t.labeler.get("launcher") == "site"]
    if not needs:
        return
    if campaign.site == SERIAL_SITE:
        raise HpcnnpError("labeler launcher 'site' needs a site (not 'serial')")
    site = load_site(campaign.site)
    for t in needs:
        ranks = int(t.labeler.get("ranks") or 1)
        threads = int(t.labeler.get("threads") or 1)
        t.labeler["launcher"] = " ".join(site.mpi_command(ranks, threads=threads))


def task_executor(campaign, log):
    """``(submit(task_dir) -> future, shutdown(), serial)`` for the campaign's site."""
    if campaign.site == SERIAL_SITE:
        def submit(task_dir):
            return concurrent.futures.Future()
        return submit, (lambda: None), True
    try:     # Parsl is an optional dependency: only needed here
        import parsl
        from parsl.app.python import PythonApp
    except ImportError as exc:
        raise HpcnnpError(f"Parsl is not installed ({exc}): pip install parsl, or run with "
                          "--site serial") from None
    site = load_site(campaign.site)
    submit_cmd = SCHEDULERS[site.scheduler]["submit"].split()[0]
    if site.scheduler != "local" and shutil.which(submit_cmd) is None:
        raise HpcnnpError(f"site {site.name} submits batch jobs with {submit_cmd}, which is "
                          "not on PATH here: run hpcnnp sample on a login node of that "
                          "machine (or choose --site local / serial)")
    res = campaign.resources
    run_dir = (campaign.workdir / "parsl").resolve()
    config = site.parsl_config(nodes=res.get("nodes", 1), walltime=res.get("walltime"),
                               workers_per_node=res.get("workers_per_node", 2),
                               run_dir=str(run_dir), account=res.get("account"),
                               queue=res.get("queue"), max_blocks=res.get("max_blocks", 1))
    # workers must import this hpcnnp, also when it is not installed
    root = str(Path(__file__).resolve().parents[2])
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root])
    parsl.clear()
    dfk = parsl.load(config)
    app = PythonApp(run_task, data_flow_kernel=dfk, cache=False)
    log(f"Parsl: site {site.name}, {res.get('nodes', 1)} node(s) x "
        f"{res.get('workers_per_node', 2)} worker(s), run dir {run_dir}")

    def shutdown():
        with contextlib.suppress(Exception):
            dfk.cleanup()
        with contextlib.suppress(Exception):
            parsl.clear()

    return (lambda task_dir: app(str(task_dir))), shutdown, False
