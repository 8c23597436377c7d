"""``hpcnnp jobs``: batch scripts for clusters and the list of known sites.

``hpcnnp jobs render`` writes an MD segment chain (``--protocol`` with
``--total-ns``/``--segment-ns``) or one job for any hpcnnp stage
(``--command``), for a site of ``jobs/sites`` (see :mod:`hpcnnp.hpc`).
``hpcnnp jobs sites [SITE]`` lists the sites or shows one.
"""

from __future__ import annotations

import argparse
import sys

from hpcnnp.errors import HpcnnpError
from hpcnnp.hpc import render, sites

_EPILOG = """\
examples:
  # 10 ns of MD in 20 chained jobs of 0.5 ns on 4 Frontier nodes
  hpcnnp jobs render --site frontier --account ABC123 --nodes 4 --walltime 02:00:00 \\
      --protocol md/protocol.yaml --total-ns 10 --segment-ns 0.5 --output-dir md/jobs
  md/jobs/submit_chain.sh

  # training on 2 Aurora nodes, 102 MPI ranks per node
  hpcnnp jobs render --site aurora --account PROJ --nodes 2 --walltime 01:00:00 \\
      --queue debug --command "hpcnnp train" --output-dir train/jobs

  # a Parsl-driven sampling campaign: the driver runs as is on the first node
  hpcnnp jobs render --site frontier --account ABC123 --nodes 8 --walltime 02:00:00 \\
      --launch plain --command "hpcnnp sample campaign.yaml"

The account (project/bank) and queue default to $HPCNNP_ACCOUNT / $HPCNNP_QUEUE and
then to the site file's account.default / queue.default.  Site files: jobs/sites/*.yaml
and the folders of $HPCNNP_SITE_PATH.
"""


def register(subparsers):
    """Add the ``jobs`` parser (sub-commands ``render``, ``sites``)."""
    p = subparsers.add_parser(
        "jobs",
        help="batch-job scripts (Slurm, PBS, LSF, Flux, local) and cluster sites",
        description="Write batch-job scripts for a computing site and list the sites.",
    )
    sub = p.add_subparsers(dest="jobs_command", metavar="ACTION")
    sub.required = True

    r = sub.add_parser(
        "render",
        help="write batch scripts: an MD segment chain or one stage job",
        description="Write batch scripts for SITE.\n"
        "  --protocol: a chain of MD segment jobs segment_NNN.sh, each running\n"
        "    `hpcnnp md PROTOCOL --resume --until-ns END`, and submit_chain.sh, which\n"
        "    submits them so that each waits for the previous one (afterok).\n"
        "  --command:  job.sh for one job and submit.sh.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--site", required=True, metavar="SITE",
                   help="site name (see `hpcnnp jobs sites`) or path of a site YAML file")
    r.add_argument("--nodes", required=True, metavar="N",
                   help="nodes per job (whole number >= 1)")
    r.add_argument("--walltime", metavar="HH:MM:SS",
                   help="walltime per job, HH:MM:SS or D-HH:MM:SS (default: the site's "
                   "default); checked against the queue's limit for N nodes")
    r.add_argument("--account", metavar="A",
                   help="account/project/bank to charge (default: $HPCNNP_ACCOUNT, then "
                   "the site's account.default); required on most clusters")
    r.add_argument("--queue", metavar="Q",
                   help="queue/partition (default: $HPCNNP_QUEUE, then the site's "
                   "queue.default)")
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("--protocol", metavar="FILE",
                      help="MD protocol file: render a segment chain (needs --total-ns "
                      "and --segment-ns)")
    what.add_argument("--command", dest="stage_command", metavar="CMD",
                      help="shell command of one job, e.g. \"hpcnnp train\" (started "
                      "with the site's MPI launcher unless --launch plain)")
    r.add_argument("--total-ns", metavar="T",
                   help="simulated time of the whole MD run, in ns (with --protocol)")
    r.add_argument("--segment-ns", metavar="S",
                   help="simulated time per job, in ns (with --protocol); choose it so "
                   "that one segment fits into --walltime; the last one may be shorter")
    r.add_argument("--ranks-per-node", metavar="R",
                   help="MPI ranks per node (default: usable cores per node // --threads)")
    r.add_argument("--threads", default="1", metavar="T",
                   help="OpenMP threads (cores) per MPI rank, sets OMP_NUM_THREADS "
                   "(default: 1)")
    r.add_argument("--launch", choices=render.LAUNCH_MODES, default="mpi",
                   help="mpi: start the payload with the site's MPI launcher on all "
                   "ranks (default); plain: run it once on the first node (a Parsl "
                   "driver such as `hpcnnp sample`, or a serial tool)")
    r.add_argument("--output-dir", metavar="DIR",
                   help="folder for the scripts (default: ./jobs-SITE); existing "
                   "scripts are replaced")
    r.add_argument("--workdir", metavar="DIR",
                   help="folder the jobs run in (default: the current folder)")
    r.add_argument("--venv", metavar="PREFIX",
                   help="Python environment on the compute nodes (default: $HPCNNP_VENV, "
                   "else the environment running this command)")
    r.add_argument("--job-name", metavar="NAME",
                   help="base of the job names (default: from the protocol or command)")
    r.set_defaults(func=run_render)

    s = sub.add_parser(
        "sites",
        help="list the known sites, or show one",
        description="List the known sites (scheduler, MPI launcher, cores and GPUs per "
        "node, default queue, Parsl provider), or show the details of SITE.",
    )
    s.add_argument("site", nargs="?", metavar="SITE",
                   help="show this site (name or path of a site file) in detail")
    s.set_defaults(func=run_sites)
    return p


def run_render(args):
    """Execute ``hpcnnp jobs render``."""
    if args.protocol and (args.total_ns is None or args.segment_ns is None):
        raise HpcnnpError("--protocol needs --total-ns and --segment-ns")
    if args.stage_command and (args.total_ns is not None or args.segment_ns is not None):
        raise HpcnnpError("--total-ns and --segment-ns apply only with --protocol")
    site = sites.load_site(args.site)
    out_dir = args.output_dir or f"jobs-{site.name}"
    paths = render.render_jobs(
        site, args.nodes, args.walltime, command=args.stage_command, protocol=args.protocol,
        total_time_ns=args.total_ns, segment_ns=args.segment_ns, out_dir=out_dir,
        account=args.account, queue=args.queue, ranks_per_node=args.ranks_per_node,
        threads=args.threads, launch=args.launch, workdir=args.workdir, venv=args.venv,
        job_name=args.job_name)
    jobs, submit = paths[:-1], paths[-1]
    folder = submit.parent
    if args.protocol:
        print(f"hpcnnp jobs: {len(jobs)} segment jobs for site {site.name} "
              f"({site.scheduler}) in {folder}: {jobs[0].name} .. {jobs[-1].name}")
    else:
        print(f"hpcnnp jobs: {jobs[0].name} for site {site.name} ({site.scheduler}) "
              f"in {folder}")
    print(f"hpcnnp jobs: submit with {submit}")
    return 0


def _table(rows, header):
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in [header] + rows)


def run_sites(args):
    """Execute ``hpcnnp jobs sites [SITE]``."""
    if args.site:
        print(describe(sites.load_site(args.site)))
        return 0
    rows, failed = [], []
    for name, path in sorted(sites.list_sites().items()):
        try:
            s = sites.load_site(path).summary()
        except HpcnnpError as exc:
            failed.append(f"hpcnnp jobs: error: {exc}")
            continue
        rows.append([s["name"], s["scheduler"], s["launcher"], s["cores"], s["gpus"],
                     s["queue"], s["account"], s["parsl"]])
    if rows:
        print(_table(rows, ["SITE", "SCHEDULER", "MPI LAUNCHER", "CORES/NODE", "GPUS/NODE",
                            "QUEUE", "ACCOUNT", "PARSL"]))
    for line in failed:
        print(line, file=sys.stderr)
    return 2 if failed else 0


def describe(site):
    """Multi-line description of *site* (``hpcnnp jobs sites SITE``)."""
    lines = [f"{site.name}: {site.description}", f"  file        {site.path}",
             f"  scheduler   {site.scheduler}",
             f"  node        {site.cores_per_node} usable cores, {site.gpus_per_node} GPUs"
             + (f", {site.memory_gb:g} GB" if site.memory_gb else "")
             + (f", at most {site.max_nodes} nodes" if site.max_nodes else "")]
    example = site.mpi_command(min(2, site.max_nodes or 2) * site.cores_per_node
                               if not site.oversubscribe else 2)
    lines.append(f"  MPI         {site.mpi_launcher}, e.g. {' '.join(example)}")
    account = "required" if site.account_required else "optional"
    if site.account_default:
        account += f", default {site.account_default}"
    lines.append(f"  account     {account}")
    lines.append(f"  queue       default {site.queue_default or '-'}; "
                 f"default walltime {sites.format_walltime(site.default_walltime)}")
    for queue, limits in site.queue_limits.items():
        bins = ", ".join(f"{lim.min_nodes}-{lim.max_nodes} nodes <= "
                         f"{sites.format_walltime(lim.max_walltime)}" for lim in limits)
        lines.append(f"    {queue}: {bins}")
    if site.modules:
        lines.append(f"  modules     {' '.join(site.modules)}")
    p = site.parsl
    lines.append(f"  Parsl       {p.provider or '(no provider)'} + {p.launcher}; inside an "
                 f"allocation: LocalProvider + {p.in_allocation_launcher}")
    for url in site.docs:
        lines.append(f"  docs        {url}")
    return "\n".join(lines)


__all__ = ["register", "run_render", "run_sites", "describe"]
