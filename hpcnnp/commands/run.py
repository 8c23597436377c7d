"""``hpcnnp run``: the main job (every pipeline stage, one report)."""

from __future__ import annotations

import argparse
import time

from hpcnnp.fileio import folder_lock
from hpcnnp.hpc.reaper import DriverGuard


def register(subparsers):
    p = subparsers.add_parser(
        "run", help="run the whole pipeline of a project file (the main job)",
        description="Run every stage of the pipeline described by a project YAML file: "
        "sampling with the labeler (Parsl campaign), symmetry functions, scaling, training "
        "(MPI), validation, one active-learning iteration, production MD of an LLZO|LCO "
        "interface and a grain boundary (LAMMPS plugin), trajectory analysis, and a "
        "Markdown report. Finished stages are skipped when the command is run again, so a "
        "killed job resumes from its last finished stage.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("project", metavar="PROJECT.yaml",
                   help="project file (see examples/llzo_lco/project.yaml)")
    p.add_argument("--ranks", type=int, default=None,
                   help="MPI ranks for training, scaling, MD and analysis "
                   "(default: the project's 'ranks', else all cores of this node)")
    p.add_argument("--only", nargs="+", metavar="STAGE", default=None,
                   help="run only these stages (even if done before), e.g. --only report")
    p.add_argument("--check", action="store_true",
                   help="only check the project file and print the plan")
    p.set_defaults(func=run)


def run(args):
    from hpcnnp.workflow.project import load_project
    from hpcnnp.workflow.runner import run_project
    from hpcnnp.workflow.stages import STAGES

    project = load_project(args.project)     # errors here name the key, before any work
    if args.check:
        tasks = project.sampling_tasks()       # planned as hpcnnp sample will
        cfg = project.config
        print(f"{args.project}: OK; stages: {', '.join(n for n, _ in STAGES)}; "
              f"work folder {project.workdir}; site {cfg.site}; labeler {cfg.labeler.name}; "
              f"{len(tasks)} sampling task(s); production MD: interface "
              f"{cfg.production.interface.natoms} atoms at {cfg.production.interface.temperature:g}"
              f" K, GB Σ{cfg.production.gb.sigma} {cfg.production.gb.natoms} atoms at "
              f"{cfg.production.gb.temperature:g} K")
        return 0
    t0 = time.time()

    def log(msg):
        print(f"hpcnnp run [{time.time() - t0:7.0f} s] {msg}", flush=True)

    # one main job per work folder; no stage process outlives it (SIGTERM/SIGKILL)
    with DriverGuard("hpcnnp run"), folder_lock(project.workdir, "hpcnnp run"):
        report = run_project(project, ranks=args.ranks, only=args.only, log=log)
    if report:
        log(f"report: {report}")
    return 0
