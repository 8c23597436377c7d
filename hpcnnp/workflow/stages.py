"""The stages of the main job, in order, as a table (:data:`STAGES`).

Every stage reads the files of the stages before it and writes its own folder
under the project's work folder; when it has finished it writes
``.done/<stage>.json``.  Re-running ``hpcnnp run`` skips finished stages and
restarts the first unfinished one, which itself resumes where it can (the
campaign skips finished tasks, training continues from its checkpoint, MD from
its last segment), so a killed main job loses at most the work of one
segment/epoch/task.

The stages call the same commands a user would (``hpcnnp sample``, ``scale``,
``train``, ``validate``, ``active``, ``md``, ``analyze``), in subprocesses:
MPI stages are started with the site's launcher (``mpiexec -n R`` locally), and
a crash in a stage cannot take the driver down with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from hpcnnp import structures as st
from hpcnnp.config.training import TRAINING_DEFAULTS  # noqa: F401  (moved there)
from hpcnnp.errors import HpcnnpError
from hpcnnp.structures import substitute  # noqa: F401  (moved there)


class StageError(HpcnnpError):
    """A stage failed (message names the stage, the command and its log)."""


class Context:
    """What the stages share: the project, the work folder, the MPI launcher."""

    def __init__(self, project, ranks=None, log=print):
        from hpcnnp.hpc.sites import load_site

        self.project = project
        self.work = project.workdir
        self.work.mkdir(parents=True, exist_ok=True)
        self.site = load_site(project["site"])
        self.ranks = ranks or project["ranks"] or max(1, os.cpu_count() or 1)
        self.log = log

    def path(self, *parts):
        return self.work.joinpath(*parts)

    def mpi(self, ranks=None):
        n = ranks or self.ranks
        return self.site.mpi_command(n) if n > 1 else []

    def hpcnnp(self, *args, mpi=False, stage="", cwd=None, ranks=None):
        """Run ``hpcnnp ARGS`` (under MPI when asked); output to the stage's log file."""
        cmd = (self.mpi(ranks) if mpi else []) + [sys.executable, "-m", "hpcnnp.cli", *map(str, args)]
        logf = self.path("logs", f"{stage or args[0]}.log")
        logf.parent.mkdir(exist_ok=True)
        env = dict(os.environ)
        lib = str(Path(sys.prefix) / "lib")
        env["LD_LIBRARY_PATH"] = lib + os.pathsep + env.get("LD_LIBRARY_PATH", "")
        env.setdefault("OMP_NUM_THREADS", "1")
        t0 = time.time()
        with open(logf, "a") as fh:
            fh.write(f"\n$ {' '.join(cmd)}\n")
            fh.flush()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    cwd=cwd or self.work, env=env, text=True)
            last = ""
            for line in proc.stdout:
                fh.write(line)
                fh.flush()
                line = line.rstrip()
                if line:
                    last = line
                    if _is_progress(line):
                        self.log(f"    {line[:150]}")
            rc = proc.wait()
        if rc != 0:
            raise StageError(f"stage {stage}: `hpcnnp {args[0]}` failed with exit code {rc} "
                             f"after {time.time() - t0:.0f} s: {last[:300]} (log: {logf})")
        return logf


def _is_progress(line):
    keys = ("epoch", "segment", "ETA", "tasks", "error", "Error", "ns/day", "iteration",
            "RMSE", "warning")
    return any(k in line for k in keys)


# ---------------------------------------------------------------------------
# stages
# ---------------------------------------------------------------------------

def stage_sample(ctx):
    """Structures + labels: the campaign through Parsl -> dataset.h5 -> input.data."""
    p = ctx.project
    d = ctx.path("sample")
    d.mkdir(exist_ok=True)
    camp = p.campaign_data()
    (d / "campaign.yaml").write_text(yaml.safe_dump(camp, sort_keys=False))
    ctx.hpcnnp("sample", "campaign.yaml", "--resume", stage="sample", cwd=d)
    ctx.hpcnnp("dataset", "export", "dataset.h5", "-o", "input.data", stage="sample", cwd=d)
    return {"data": str(d / "input.data")}


def stage_descriptors(ctx):
    """input.nn: elements, network, training keywords and the SF set (hpcnnp sfgen)."""
    p = ctx.project
    d = ctx.path("potential_setup")
    d.mkdir(exist_ok=True)
    (d / "input.nn").write_text(p.input_nn_text())
    ctx.hpcnnp("sfgen", "--preset", p["descriptors"]["preset"], "--append-to", "input.nn",
               "--replace", stage="descriptors", cwd=d)
    shutil.copy2(ctx.path("sample", "input.data"), d / "input.data")
    return {"input.nn": str(d / "input.nn")}


def stage_scale(ctx):
    """scaling.data (hpcnnp scale, MPI), pruning SFs without spread (nnp-prune range).

    SFs whose range over the data set is below descriptors.prune_range are
    commented out of input.nn and the statistics are computed again."""
    from hpcnnp.descriptors.prune import prune_by_range

    d = ctx.path("potential_setup")
    args = ("scale", "100", "--no-histograms", "--no-neighbors-out")
    ctx.hpcnnp(*args, mpi=True, stage="scale", cwd=d)
    threshold = float(ctx.project["descriptors"].get("prune_range", 1e-4))
    info = {"scaling.data": str(d / "scaling.data")}
    if threshold > 0:
        pruned = prune_by_range(d / "input.nn", d / "scaling.data", threshold)
        ctx.log(f"    pruned SFs with range < {threshold:g}: "
                + ", ".join(f"{el} {n}" for el, n in pruned.items()))
        ctx.hpcnnp(*args, mpi=True, stage="scale", cwd=d)
        info["pruned"] = pruned
    return info


def stage_train(ctx):
    """The potential: Kalman-filter training across MPI ranks (hpcnnp train)."""
    d = ctx.path("potential_setup")
    out = ctx.path("train")
    args = ["train", "--output-dir", str(out), "--quiet"]
    if (out / "checkpoint" / "meta.json").exists():
        args.append("--restart")
    ctx.hpcnnp(*args, mpi=True, stage="train", cwd=d)
    # finished: the stage marker makes re-runs skip it, so the checkpoint (the Kalman
    # covariance, 8 N_w^2 bytes: ~0.9 GB for the demo) only costs disk space
    shutil.rmtree(out / "checkpoint", ignore_errors=True)
    return {"potential": str(out)}


def stage_validate(ctx):
    """Errors per structure class, parity plots and the requested property checks."""
    p = ctx.project
    out = ctx.path("validation")
    props = p["validation"].get("properties", ["errors"])
    args = ["validate", "--potential", ctx.path("train"), "--output-dir", out,
            "--train", ctx.path("train", "train.data"), "--test", ctx.path("train", "test.data"),
            "--properties", ",".join(props)]
    if "reference_labeler" in p["validation"]:
        args += ["--reference-labeler", p["validation"]["reference_labeler"]]
    ctx.hpcnnp(*args, stage="validate")
    return {"report": str(out)}


def stage_active(ctx):
    """One active-learning iteration: committee, exploration, selection, labels, retraining."""
    p = ctx.project
    d = ctx.path("active")
    d.mkdir(exist_ok=True)
    cfg, iterations = p.active_data(ctx.path("potential_setup", "input.data"),
                                    ctx.path("potential_setup", "input.nn"))
    (d / "active.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    ctx.hpcnnp("active", "active.yaml", "--iterations", iterations, "--resume",
               stage="active", cwd=d)
    return {"folder": str(d)}


def _md_stage(ctx, name, builder):
    p = ctx.project
    spec = dict(p["production"].get(name, {}))
    d = ctx.path(f"md_{name}")
    d.mkdir(exist_ok=True)
    struct = d / "structure.extxyz"
    if not struct.exists():
        from ase.io import write
        atoms = builder(spec, p["seed"])
        tmp = struct.with_suffix(".tmp.extxyz")
        write(tmp, atoms)
        os.replace(tmp, struct)
    protocol = p.md_protocol(name, "structure.extxyz", ctx.path("train"))
    (d / "protocol.yaml").write_text(yaml.safe_dump(protocol, sort_keys=False))
    args = ["md", "protocol.yaml"]
    if (d / "run").exists():
        args.append("--resume")
    ctx.hpcnnp(*args, mpi=True, stage=f"md_{name}", cwd=d)
    return {"trajectory": str(d / "run" / "traj.h5")}


def _build_interface(spec, seed):
    return st.llzo_lco_interface(natoms=spec.get("natoms", 900))


def _build_gb(spec, seed):
    atoms = st.llzo_tilt_gb(sigma=spec.get("sigma", 13), natoms=spec.get("natoms", 700))
    if spec.get("dopant"):
        substitute(atoms, seed=seed, **spec["dopant"])
    return atoms


def stage_md_interface(ctx):
    """Production MD of an LLZO(001)|LCO(104) interface with the plugin pair style."""
    return _md_stage(ctx, "interface", _build_interface)


def stage_md_gb(ctx):
    """Production MD of a symmetric Σ-tilt grain boundary of cubic LLZO."""
    return _md_stage(ctx, "gb", _build_gb)


def stage_analysis(ctx):
    """Co segregation, Li probability density and profiles of both trajectories."""
    p = ctx.project
    a = p["analysis"]
    done_any = False
    for name in ("interface", "gb"):
        traj = ctx.path(f"md_{name}", "run", "traj.h5")
        if not ctx.path(".done", f"md_{name}.json").exists():
            ctx.log(f"    analysis of {name}: skipped (its MD stage has not finished)")
            continue
        done_any = True
        args = ["analyze", traj, "-o", ctx.path("analysis", name)]
        if a.get("segregation"):
            args += ["--segregation", a["segregation"]]
        if a.get("li_density", True):
            args += ["--li-density"]
        args += ["--profiles", "--rdf", "--msd", "Li"]
        ctx.hpcnnp(*args, mpi=True, stage="analysis")
    if not done_any:
        raise StageError("no finished MD trajectory to analyse")
    return {"folder": str(ctx.path("analysis"))}


def stage_report(ctx):
    """One Markdown report with the tables and figures of every stage."""
    from hpcnnp.workflow.report import write_report
    path = write_report(ctx)
    return {"report": str(path)}


#: stages whose failure is recorded in the report instead of stopping the job (the
#: potential exists by then; a failed production run must not hide it)
SOFT_STAGES = {"active", "md_interface", "md_gb", "analysis"}

#: (name, function) in pipeline order
STAGES = [
    ("sample", stage_sample),
    ("descriptors", stage_descriptors),
    ("scale", stage_scale),
    ("train", stage_train),
    ("validate", stage_validate),
    ("active", stage_active),
    ("md_interface", stage_md_interface),
    ("md_gb", stage_md_gb),
    ("analysis", stage_analysis),
    ("report", stage_report),
]


def run_project(project, ranks=None, only=None, log=print):
    """Run the stages that have not finished; returns the path of the report."""
    ctx = Context(project, ranks=ranks, log=log)
    done = ctx.path(".done")
    done.mkdir(exist_ok=True)
    t_start = time.time()
    names = [n for n, _ in STAGES]
    if only:
        unknown = [s for s in only if s not in names]
        if unknown:
            raise HpcnnpError(f"unknown stage(s) {', '.join(unknown)} (stages: {', '.join(names)})")
    result = None
    failures = []
    ran_any = False
    for k, (name, fn) in enumerate(STAGES, 1):
        marker = done / f"{name}.json"
        if only and name not in only:
            continue
        # the report is cheap and summarises every stage: always rewritten when any
        # stage ran in this invocation, so a retried stage shows up in it
        rerun_report = name == "report" and ran_any
        if marker.exists() and not only and not rerun_report:
            log(f"[{k}/{len(STAGES)}] {name}: done earlier, skipped")
            continue
        log(f"[{k}/{len(STAGES)}] {name}: {fn.__doc__.strip().splitlines()[0]}")
        t0 = time.time()
        ran_any = True
        failed = done / f"{name}.failed.json"
        try:
            info = fn(ctx) or {}
        except HpcnnpError as exc:
            if name not in SOFT_STAGES:
                raise
            # recorded for the report; the next run retries the stage
            failed.write_text(json.dumps({"error": str(exc),
                                          "seconds": round(time.time() - t0, 1)}, indent=1))
            failures.append(name)
            log(f"[{k}/{len(STAGES)}] {name}: FAILED ({exc}); continuing, see the report")
            continue
        failed.unlink(missing_ok=True)
        info["seconds"] = round(time.time() - t0, 1)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=1))
        os.replace(tmp, marker)
        log(f"[{k}/{len(STAGES)}] {name}: finished in {info['seconds']:.0f} s "
            f"(total {time.time() - t_start:.0f} s)")
        result = info
    if failures:
        raise StageError(f"stage(s) {', '.join(failures)} failed (details in "
                         f"{ctx.path('report.md')}); run again to retry them")
    return ctx.path("report.md") if result is not None else None
