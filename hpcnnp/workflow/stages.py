"""The stages of the main job, in order, as a table (:data:`STAGES`).

Every stage reads the files of the stages before it and writes its own folder
under the project's work folder; when it has finished, the runner
(:mod:`hpcnnp.workflow.runner`) writes ``.done/<stage>.json``.  Re-running
``hpcnnp run`` skips finished stages and restarts the first unfinished one, which
itself resumes where it can (the campaign skips finished tasks, active learning
finished steps, training continues from its checkpoint, MD from its last segment).

The stages call the library with the project's typed configuration
(:class:`hpcnnp.config.project.ProjectFile`): in this process where a stage is
Python work or Parsl tasks (sampling, active learning, validation, analysis), and
as ``<launcher> python -m hpcnnp.<stage> CONFIG`` where it needs MPI (scaling,
training, production MD; :meth:`Context.run_module`).

The data flow of the potential::

    sample/ (seed AIMD)  ->  data/dataset.h5  <- every label, with provenance
                                 |  held-out test structures per class
    potential_setup/ (input.nn, scaling.data of the seed data)
    active/ (committee, exploration, labels -> data/dataset.h5, retraining)
    train/ (the production potential: warm start from active learning's final
            member, trained on the whole data set)
    validation/ (errors per class on the held-out test set; MD against the teacher)
    md_interface/ md_gb/ (LAMMPS, the potential alone)  ->  analysis/  ->  report.md
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import yaml

from hpcnnp import structures as st
from hpcnnp.active.committee import transfer_weights
from hpcnnp.active.dispatch import Dispatcher
from hpcnnp.active.feedback import label_production_frames
from hpcnnp.active.learner import ActiveLearner
from hpcnnp.analysis.pipeline import AnalysisRequest, analyze_trajectory
from hpcnnp.descriptors.prune import prune_by_range, prune_by_tail
from hpcnnp.descriptors.sfgen import PRESETS
from hpcnnp.fileio import atomic_path, write_atomic
from hpcnnp.io import n2p2
from hpcnnp.io.dataset import Dataset, export_n2p2, held_out_sets
from hpcnnp.sampling.campaign import run_campaign
from hpcnnp.validation.runner import ValidationConfig, run_validation
from hpcnnp.validation.teacher import peak_position_flags, validate_against_teacher
from hpcnnp.workflow.context import StageError
from hpcnnp.workflow.report import write_report

__all__ = ["STAGES", "SOFT_STAGES", "StageError"]


def _dataset(ctx):
    return ctx.path("data", "dataset.h5")


def _export(ctx, path):
    """The project data set as input.data, with the held-out test set tagged."""
    test = ctx.config.test
    with Dataset(_dataset(ctx)) as ds:
        sets = held_out_sets(ds, fraction=test.fraction, minimum=test.minimum,
                             seed=ctx.project["seed"])
        info = export_n2p2(ds, path, sets=sets)
        classes = {}
        for i, cls in enumerate(ds.classes):
            c = classes.setdefault(str(cls), {"train": 0, "test": 0})
            c[sets[i]] += 1
    info["classes"] = classes
    return info


# ---------------------------------------------------------------------------------------
# data, descriptors, scaling
# ---------------------------------------------------------------------------------------

def stage_sample(ctx):
    """Seed data: AIMD with the labeler (Parsl campaign) -> data/dataset.h5."""
    d = ctx.path("sample")
    d.mkdir(exist_ok=True)
    campaign = d / "campaign.yaml"
    plan = ctx.project.campaign_data()
    plan["output"] = str(d / "dataset.h5")       # relative paths would follow the cwd
    plan["workdir"] = str(d / "campaign.work")
    write_atomic(campaign, yaml.safe_dump(plan, sort_keys=False))
    with ctx.follow("sample"):
        report = run_campaign(campaign, resume=True, log=lambda line: ctx.log(f"    {line}"))
    if not report.ok:
        raise StageError(f"stage sample: {report.failed} of {report.tasks} sampling tasks "
                         f"failed: {next(iter(report.failures.values()), '')} "
                         f"(see {campaign.parent / 'campaign.work'})")
    data = _dataset(ctx)
    if not data.exists():          # the project's data set starts as the seed data
        data.parent.mkdir(exist_ok=True)
        tmp = data.with_name(".dataset.h5.tmp")
        shutil.copyfile(d / "dataset.h5", tmp)
        tmp.replace(data)
    info = _export(ctx, ctx.path("data", "seed.data"))
    return {"data": str(ctx.path("data", "seed.data")), **info}


def stage_descriptors(ctx):
    """input.nn: elements, network, training keywords and the SF set."""
    p = ctx.project
    d = ctx.path("potential_setup")
    d.mkdir(exist_ok=True)
    preset = PRESETS[ctx.config.descriptors.preset]
    sfs = type(preset)(tuple(p["elements"]), preset.sets)
    text = (p.input_nn_text() + f"\n# symmetry functions: preset {ctx.config.descriptors.preset}"
            f" ({sfs.n_per_element()} per element)\n" + sfs.generate())
    write_atomic(d / "input.nn", text)
    return {"input.nn": str(d / "input.nn"), "sf_per_element": sfs.n_per_element()}


def _scaling(ctx, settings, data, out, stage):
    cfg = ctx.write_json(ctx.path("logs", f"{stage}.json"),
                         {"settings": str(settings), "data": str(data), "output_dir": str(out),
                          "nbins": 100, "histograms": False, "neighbors_out": False})
    ctx.run_module("hpcnnp.descriptors", cfg, stage=stage)
    return out / "scaling.data"


def stage_scale(ctx):
    """scaling.data of the seed data (MPI); SFs without spread and rare-event SFs pruned.

    Pruning (n2p2's nnp-prune range) comments out SFs whose range over the data set
    is below ``descriptors.prune_range``; with ``descriptors.prune_tail`` > 0 also
    the rare-event SFs -- those that only a handful of atoms ever move away from
    their baseline ((max − mean)/σ > prune_tail): a network sees too few examples of
    them to learn their effect, and they answer unseen structures with arbitrary
    steps (issue #3).  The statistics are then computed again."""
    d = ctx.path("potential_setup")
    desc = ctx.config.descriptors
    data = ctx.path("data", "seed.data")
    settings = d / "input.nn"
    _scaling(ctx, settings, data, d, "scale")
    info = {"scaling.data": str(d / "scaling.data"), "pruned": {}}
    # each rule reads a scaling.data of exactly the SFs left: statistics again after each
    if desc.prune_range > 0:
        info["pruned"]["range"] = prune_by_range(settings, d / "scaling.data",
                                                 desc.prune_range)
        _scaling(ctx, settings, data, d, "scale")
    if desc.prune_tail > 0:
        info["pruned"]["tail"] = prune_by_tail(settings, d / "scaling.data", desc.prune_tail)
        _scaling(ctx, settings, data, d, "scale")
    if info["pruned"]:
        for kind, counts in info["pruned"].items():
            ctx.log(f"    pruned ({kind}): " + ", ".join(f"{el} {n}" for el, n in
                                                       counts.items()))
    settings_obj = n2p2.read_settings(settings)
    info["sf_per_element"] = {el: len(v) for el, v in
                              settings_obj.symmetry_functions.items()}
    info["n_weights"] = sum(settings_obj.n_weights(el) for el in settings_obj.elements)
    return info


# ---------------------------------------------------------------------------------------
# active learning and the production potential
# ---------------------------------------------------------------------------------------

def stage_active(ctx):
    """Active learning to convergence: committee, exploration, labels, retraining."""
    d = ctx.path("active")
    d.mkdir(exist_ok=True)
    cfg, iterations = ctx.project.active_data(ctx.path("data", "seed.data"),
                                              ctx.path("potential_setup", "input.nn"))
    cfg.setdefault("dataset", str(_dataset(ctx)))
    cfg["workdir"] = str(d)
    write_atomic(d / "active.yaml", yaml.safe_dump(cfg, sort_keys=False))
    learner = ActiveLearner(cfg, stream=_Lines(ctx))
    with ctx.follow("active"):
        summary = learner.run(iterations=iterations)
    if summary["final_committee"] is None:
        raise StageError("stage active: no iteration finished")
    return {"status": summary["status"], "iterations": summary["iterations"],
            "final_potential": summary["final_potential"]}


class _Lines:
    """A text stream whose lines go to the driver's log (indented)."""

    def __init__(self, ctx):
        self.ctx, self.buf = ctx, ""

    def write(self, text):
        self.buf += text
        *lines, self.buf = self.buf.split("\n")
        for line in lines:
            if line.strip():
                self.ctx.log(f"    {line}")

    def flush(self):
        pass

    def isatty(self):
        return False


def _final_member(ctx):
    marker = ctx.path(".done", "active.json")
    if not marker.exists():
        return None
    info = json.loads(marker.read_text())
    return info.get("final_potential")


def stage_train(ctx):
    """The production potential: the whole data set, warm start from active learning.

    The data set (seed + every label of active learning) is exported with its
    held-out test structures tagged ``set=test``; the potential continues from the
    final committee's member 0 (weights carried over exactly to the new SF scaling,
    :func:`hpcnnp.active.committee.transfer_weights`) for ``training.epochs`` more
    Kalman epochs, on every MPI rank (``python -m hpcnnp.training``)."""
    out = ctx.path("train")
    out.mkdir(exist_ok=True)
    data = out / "input.data"
    if not (out / "checkpoint").exists():
        info = _export(ctx, data)
        _scaling(ctx, ctx.path("potential_setup", "input.nn"), data, out, "train_scale")
        settings = n2p2.read_settings(ctx.path("potential_setup", "input.nn"))
        updates = {}
        start = _final_member(ctx)
        if start is not None:
            updates = transfer_weights(start, out, out / "scaling.data", settings)
            updates["use_old_weights_short"] = ""
        n2p2.write_settings(out / "input.nn", settings, updates, comment="hpcnnp run")
        ctx.log(f"    {info['structures']} structures ({info['train']} train, "
                f"{info['test']} held-out test); "
                + (f"warm start from {start}" if start else "random initial weights"))
    cfg = ctx.write_json(ctx.path("logs", "train.json"), {
        "settings": str(out / "input.nn"), "data": str(data),
        "scaling": str(out / "scaling.data"), "output_dir": str(out),
        "restart": (out / "checkpoint").exists(), "keep_checkpoint": False})
    ctx.run_module("hpcnnp.training", cfg, stage="train")
    return {"potential": str(out)}


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------

def stage_validate(ctx):
    """Errors per structure class on the held-out test set, parity plots."""
    out = ctx.path("validation")
    v = ctx.config.validation
    cfg = ValidationConfig(potential=ctx.path("train"), output_dir=out,
                           train=ctx.path("train", "train.data"),
                           test=ctx.path("train", "test.data"),
                           properties=tuple(v.properties))
    run_validation(cfg)
    return {"report": str(out)}


def stage_validate_md(ctx):
    """Properties against the teacher: MD of held-out cells with both, judged.

    Teacher MD and potential MD of the held-out cells (an LLZO cell with a Li
    ordering of its own at the GB temperature, an LCO cell of a shape the data
    never has at the interface temperature; :mod:`hpcnnp.validation.teacher`):
    partial RDFs, vDOS and Li MSD, pass/fail against stated thresholds.  The two
    teacher runs are parallel tasks on the site (one core each)."""
    out = ctx.path("validation", "teacher")
    lab = dict(ctx.project["labeler"])
    name = lab.pop("name")
    with ctx.follow("validate_md"), Dispatcher(
            parsl=True, site=ctx.project["site"], run_dir=out / "runinfo",
            log=lambda line: ctx.log(f"    {line}")) as disp:
        summary = validate_against_teacher(ctx.path("train"), out, teacher=name,
                                           teacher_options=lab, dispatcher=disp,
                                           log=lambda line: ctx.log(f"    {line}"))
    return {"status": summary["status"], "summary": str(out / "summary.json")}


# ---------------------------------------------------------------------------------------
# production MD
# ---------------------------------------------------------------------------------------

def _md_stage(ctx, name, build):
    d = ctx.path(f"md_{name}")
    d.mkdir(exist_ok=True)
    struct = d / "structure.extxyz"
    if not struct.exists():
        from ase.io import write
        atoms = build()
        with atomic_path(struct) as tmp:
            write(tmp, atoms, format="extxyz")
    protocol = ctx.project.md_protocol(name, "structure.extxyz", ctx.path("train"))
    write_atomic(d / "protocol.yaml", yaml.safe_dump(protocol, sort_keys=False))
    args = ["protocol.yaml"] + (["--resume"] if (d / "run").exists() else [])
    ctx.run_module("hpcnnp.md", *args, stage=f"md_{name}", cwd=d)
    return {"trajectory": str(d / "run" / protocol["trajectory"]["file"])}


def stage_md_interface(ctx):
    """Production MD of an LLZO(001)|LCO(104) interface (the potential alone)."""
    md = ctx.config.production.interface
    return _md_stage(ctx, "interface", lambda: st.llzo_lco_interface(natoms=md.natoms))


def stage_md_gb(ctx):
    """Production MD of a symmetric Σ-tilt grain boundary of cubic LLZO."""
    md = ctx.config.production.gb
    return _md_stage(ctx, "gb", lambda: build_gb(md, seed=ctx.project["seed"]))


def build_gb(md, seed):
    """The GB cell of ``production.gb`` (:class:`hpcnnp.config.production` model),
    doped at random (``seed``) as its ``dopant`` says."""
    atoms = st.llzo_tilt_gb(sigma=md.sigma, natoms=md.natoms)
    if md.dopant is not None:
        st.substitute(atoms, element=md.dopant.element, site=md.dopant.site,
                      count=md.dopant.count, seed=seed)
    return atoms


def stage_feedback(ctx):
    """Production frames with extrapolation warnings: teacher labels -> data set.

    The frames each production run wrote after extrapolation warnings
    (``md_*/run/extrapolations.h5md``) are labelled (at most
    ``production.feedback_frames`` per run, spread in time) and appended to
    ``data/dataset.h5`` with provenance ``source: production MD``: the next training
    of the project (``hpcnnp run --only train ...``) learns them."""
    prod = ctx.config.production
    runs = {}
    # the class names of the production cells in the demo's exploration
    for name, md, cls in (("interface", prod.interface, "LLZO|LCO interface"),
                          ("gb", prod.gb, "LLZO grain boundary")):
        path = ctx.path(f"md_{name}", "run", "extrapolations.h5md")
        if ctx.path(".done", f"md_{name}.json").exists():
            runs[name] = (path, md.temperature, cls)
    if not runs or prod.feedback_frames == 0:
        return {"runs": {}}
    lab = dict(ctx.project["labeler"])
    name = lab.pop("name")
    out = ctx.path("feedback")
    max_force = None
    if ctx.config.active is not None and ctx.config.active.labeler is not None:
        max_force = ctx.config.active.labeler.max_force
    with ctx.follow("feedback"), Dispatcher(
            parsl=True, site=ctx.project["site"], run_dir=out / "runinfo",
            log=lambda line: ctx.log(f"    {line}")) as disp:
        summary = label_production_frames(runs, _dataset(ctx), name, lab, disp, out,
                                          max_frames=prod.feedback_frames,
                                          max_force=max_force,
                                          log=lambda line: ctx.log(f"    {line}"))
    for run, info in summary.items():
        ctx.log(f"    {run}: {info['frames_with_warnings']} frames with extrapolation "
                f"warnings, {info['labelled']} labelled into the data set")
    return {"runs": summary}


def stage_analysis(ctx):
    """Co segregation, Li density, profiles, RDF, Li MSD and the smallest distance.

    Every number carries its context (simulated time, convergence verdict); the
    production first peaks are compared with the teacher's on the held-out cells."""
    a = ctx.config.analysis
    req = AnalysisRequest(segregation=[a.segregation] if a.segregation else [],
                          li_density=a.li_density, profiles=True, rdf=[], msd=["Li"],
                          min_distance=True)
    teacher = ctx.path("validation", "teacher", "summary.json")
    teacher = json.loads(teacher.read_text()) if teacher.exists() else None
    done = {}
    for name in ("interface", "gb"):
        marker = ctx.path(".done", f"md_{name}.json")
        if not marker.exists():
            ctx.log(f"    analysis of {name}: skipped (its MD stage has not finished)")
            continue
        traj = json.loads(marker.read_text())["trajectory"]
        out = ctx.path("analysis", name)
        result = analyze_trajectory(traj, out, req, title=f"Production MD: {name}")
        if teacher is not None:
            result["first_peak_flags"] = peak_position_flags(
                result["numbers"].get("first_peaks", {}), teacher)
            write_atomic(out / "summary.json", json.dumps(result, indent=1, default=float))
        done[name] = str(out)
    if not done:
        raise StageError("no finished MD trajectory to analyse")
    return {"folders": done}


def stage_report(ctx):
    """One Markdown report with the tables and figures of every stage."""
    return {"report": str(write_report(ctx, [name for name, _ in STAGES]))}


#: stages whose failure is recorded in the report instead of stopping the job (the
#: potential exists by then; a failed production run must not hide it)
SOFT_STAGES = {"validate_md", "md_interface", "md_gb", "feedback", "analysis"}

#: (name, function) in pipeline order
STAGES = [
    ("sample", stage_sample),
    ("descriptors", stage_descriptors),
    ("scale", stage_scale),
    ("active", stage_active),
    ("train", stage_train),
    ("validate", stage_validate),
    ("validate_md", stage_validate_md),
    ("md_interface", stage_md_interface),
    ("md_gb", stage_md_gb),
    ("feedback", stage_feedback),
    ("analysis", stage_analysis),
    ("report", stage_report),
]
