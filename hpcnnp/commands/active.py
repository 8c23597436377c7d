"""``hpcnnp active``: active learning with a committee of HDNNPs.

Runs the loop of :mod:`hpcnnp.active` (train a committee, explore with MD, select
frames where the committee disagrees, label them, retrain) from a YAML campaign
file.  See :mod:`hpcnnp.active.config` for the keys.
"""

from __future__ import annotations

import argparse
import sys

from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import folder_lock
from hpcnnp.hpc.reaper import DriverGuard


def _epilog():
    from hpcnnp.active.config import options_help

    return f"""\
campaign file keys (YAML; sections committee, exploration, selection, labeler, stop,
parallel; relative paths are relative to the campaign file):
{options_help()}

files written into workdir:
  iteration_NNN/{{train,explore,select,label,retrain}}/   one folder per step, each with
                                  done.json when finished (a re-run skips it)
  iteration_NNN/record.json       counts, fraction accurate, σ_F histogram, committee
                                  errors, re-evaluation after retraining, stop decision
  iteration_NNN/sigma-histogram.png
  active-learning.csv / .png      one row per iteration / summary plot
  active-learning.json            status and the final committee (member_0 = potential)
  active.log

examples:
  hpcnnp active campaign.yaml
  hpcnnp active campaign.yaml --iterations 2 --no-parsl
  hpcnnp active campaign.yaml --resume            # after a kill: continue
  hpcnnp active campaign.yaml --resume --iterations 6   # more iterations
"""


def register(subparsers):
    """Add the ``active`` parser to the ``hpcnnp`` sub-command parsers."""
    p = subparsers.add_parser(
        "active",
        help="active learning: committee disagreement -> new structures to label -> retrain",
        description="Active learning with a committee of K HDNNPs (query by committee,\n"
        "DP-GEN's trust levels): train, explore with MD, select frames with\n"
        "sigma_low <= sigma_F < sigma_high (and extrapolating ones), diversity filter,\n"
        "label with the reference method, retrain; repeat until the explored frames\n"
        "are accurate.  Resumable after every step.",
        epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG.yaml", help="campaign file (YAML)")
    p.add_argument("--iterations", type=int, default=None, metavar="N",
                   help="most iterations in total (default: stop.max_iterations)")
    p.add_argument("--resume", action="store_true",
                   help="continue the campaign already in workdir (without it, an existing "
                   "campaign is an error)")
    p.add_argument("--no-parsl", action="store_true",
                   help="run training, exploration and labelling in this process, one task "
                   "after the other (default: parallel.parsl of the campaign)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress lines (active.log is written)")
    p.set_defaults(func=run)
    return p


def run(args):
    """Execute ``hpcnnp active``; returns the exit code."""
    from hpcnnp.active import ActiveLearner, load_config

    if args.iterations is not None and args.iterations < 1:
        raise HpcnnpError("--iterations must be >= 1")
    cfg = load_config(args.config)
    learner = ActiveLearner(cfg, parsl=False if args.no_parsl else None,
                            stream=None if args.quiet else sys.stdout)
    if not args.resume and learner.iteration_dir(0).exists():
        raise HpcnnpError(f"{learner.workdir} already holds a campaign (iteration_000); "
                          "use --resume to continue it or choose another workdir")
    # one campaign driver per work folder; no worker outlives it
    with DriverGuard("hpcnnp active"), folder_lock(learner.workdir, "hpcnnp active"):
        summary = learner.run(args.iterations)
    if not args.quiet:
        print(f"status: {summary['status']} after {summary['iterations']} iteration(s); "
              f"final potential: {summary['final_potential']}")
    return 0


__all__ = ["register", "run"]
