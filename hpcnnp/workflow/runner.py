"""``hpcnnp run``: the stages of :data:`hpcnnp.workflow.stages.STAGES` in order.

Each finished stage leaves ``.done/<stage>.json`` (what it produced and how long it
took); a stage of :data:`~hpcnnp.workflow.stages.SOFT_STAGES` that fails leaves
``.done/<stage>.failed.json`` instead, the job goes on and the report shows the
failure; the next run retries it.  The report is rewritten whenever any stage ran.
"""

from __future__ import annotations

import json
import time

from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import folder_lock, write_atomic
from hpcnnp.workflow.context import Context, StageError
from hpcnnp.workflow.stages import SOFT_STAGES, STAGES

__all__ = ["run_project"]


def _check_only(only):
    names = [n for n, _ in STAGES]
    unknown = [s for s in only or () if s not in names]
    if unknown:
        raise HpcnnpError(f"unknown stage(s) {', '.join(unknown)} (stages: "
                          f"{', '.join(names)})")


def run_project(project, ranks=None, only=None, log=print):
    """Run the stages that have not finished; returns the path of the report (None
    when nothing ran)."""
    _check_only(only)
    ctx = Context(project, ranks=ranks, log=log)
    done = ctx.path(".done")
    done.mkdir(exist_ok=True)
    with folder_lock(ctx.work, "hpcnnp run"):
        return _run(ctx, done, only, log)


def _run(ctx, done, only, log):
    t_start = time.time()
    result, failures, ran_any = None, [], False
    n = len(STAGES)
    for k, (name, fn) in enumerate(STAGES, 1):
        if only and name not in only:
            continue
        marker = done / f"{name}.json"
        # the report is cheap and summarises every stage: rewritten whenever a stage
        # ran in this invocation, so a retried stage shows up in it
        if marker.exists() and not only and not (name == "report" and ran_any):
            log(f"[{k}/{n}] {name}: done earlier, skipped")
            continue
        log(f"[{k}/{n}] {name}: {fn.__doc__.strip().splitlines()[0]}")
        t0 = time.time()
        ran_any = True
        failed = done / f"{name}.failed.json"
        try:
            info = fn(ctx) or {}
        except HpcnnpError as exc:
            if name not in SOFT_STAGES:
                raise
            write_atomic(failed, json.dumps({"error": str(exc),
                                             "seconds": round(time.time() - t0, 1)}, indent=1))
            failures.append(name)
            log(f"[{k}/{n}] {name}: FAILED ({exc}); continuing, see the report")
            continue
        failed.unlink(missing_ok=True)
        info["seconds"] = round(time.time() - t0, 1)
        write_atomic(marker, json.dumps(info, indent=1, default=str))
        log(f"[{k}/{n}] {name}: finished in {info['seconds']:.0f} s "
            f"(total {time.time() - t_start:.0f} s)")
        result = info
    if failures:
        raise StageError(f"stage(s) {', '.join(failures)} failed (details in "
                         f"{ctx.path('report.md')}); run again to retry them")
    return ctx.path("report.md") if result is not None else None
