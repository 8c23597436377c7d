"""``hpcnnp sample``: run a sampling campaign (AIMD with a labeler -> HDF5 data set).

See :mod:`hpcnnp.sampling.campaign` for the campaign file, the tasks and the
files in the work folder.
"""

from __future__ import annotations

import argparse
import json
import sys

from hpcnnp.commands._options import add_progress_interval
from hpcnnp.errors import HpcnnpError
from hpcnnp.hpc.reaper import DriverGuard

_EPILOG = """\
the campaign file (YAML) lists structure classes x temperatures x snapshot counts,
the labeler (chgnet, xtb, cp2k, vasp, espresso, ...), MD settings and the site;
see examples/campaigns/llzo_lco_laptop.yaml.

files:
  OUTPUT (e.g. llzo_lco_laptop.h5)   the data set; only this driver writes it
  WORKDIR/tasks/HASH/                 one folder per trajectory: task.json, task.log,
                                      state.npz (checkpoint), snap_NNNNN.npz,
                                      done.json | failed.json, merged.json
  WORKDIR/report.json                 counts and the failed tasks with reasons
  WORKDIR/parsl/                      Parsl's logs

a task is named by the hash of its structure class, size, temperature, seed, MD
and labeler settings.  Re-running with --resume skips finished tasks, retries
failed ones and continues interrupted ones from their checkpoint; nothing is
duplicated or lost.  --scale 2 doubles every snapshot count by adding
trajectories (finished ones are kept).

exit status: 0 all tasks finished, 1 some tasks failed (listed), 2 bad input,
143 SIGTERM (130 Ctrl-C).  On SIGTERM, SIGINT or SIGHUP the driver stops its Parsl
interchange and workers (SIGTERM, then SIGKILL after 3 s) and exits within 8 s;
if the driver itself is killed (SIGKILL), a watcher process ends them within ~4 s.

examples:
  hpcnnp sample examples/campaigns/llzo_lco_laptop.yaml
  hpcnnp sample campaign.yaml --resume --scale 0.5
  hpcnnp sample campaign.yaml --site frontier --resume
  hpcnnp sample campaign.yaml --list           # the tasks and their state, run nothing
"""


def register(subparsers):
    """Add the ``sample`` parser to the ``hpcnnp`` sub-command parsers."""
    p = subparsers.add_parser(
        "sample",
        help="sampling campaign: AIMD with a reference labeler -> HDF5 data set",
        description="Run a sampling campaign: NVT trajectories of structure classes at\n"
        "temperatures with a labeler, dispatched as Parsl tasks, snapshots\n"
        "merged into one HDF5 data set.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("campaign", metavar="CAMPAIGN.yaml", help="campaign file")
    p.add_argument("--site", metavar="NAME",
                   help="site of jobs/sites/NAME.yaml (or a site file path), or 'serial' "
                   "to run the tasks in this process without Parsl (default: the file's "
                   "site, else local)")
    p.add_argument("--resume", action="store_true",
                   help="continue an earlier run in the work folder: skip finished tasks, "
                   "retry failed ones")
    p.add_argument("--scale", type=float, metavar="F",
                   help="multiply every snapshot count by F (overrides the file's scale)")
    p.add_argument("--output", "-o", metavar="FILE", help="data set file (overrides output:)")
    p.add_argument("--workdir", metavar="DIR", help="work folder (overrides workdir:)")
    add_progress_interval(p, 30.0, "while tasks run")
    p.add_argument("--list", action="store_true",
                   help="list the tasks with their state and exit")
    p.set_defaults(func=run)
    return p


def run(args):
    """Execute ``hpcnnp sample``; returns the exit code."""
    from hpcnnp.sampling import campaign as cp
    if args.scale is not None and not args.scale > 0:
        raise HpcnnpError(f"--scale must be > 0, got {args.scale}")
    if args.list:
        camp = cp.load_campaign(args.campaign, scale=args.scale, site=args.site,
                                output=args.output, workdir=args.workdir)
        counts = {}
        for task in camp.tasks():
            d = camp.workdir / "tasks" / task.hash
            status = cp.task_status(d) if d.is_dir() else "new"
            counts[status] = counts.get(status, 0) + 1
            print(f"{task.hash}  {status:8s} {task.structure_class:24s} "
                  f"T={task.temperature:7.1f} K seed={task.seed:<6d} "
                  f"{task.md['snapshots']} snapshots")
        print(json.dumps(counts), file=sys.stderr)
        return 0
    with DriverGuard("hpcnnp sample"):          # no worker outlives the driver
        report = cp.run_campaign(args.campaign, site=args.site, resume=args.resume,
                                 scale=args.scale, output=args.output,
                                 workdir=args.workdir,
                                 progress_interval=args.progress_interval)
    return 0 if report.ok else 1
