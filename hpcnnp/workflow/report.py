"""The main job's report: one Markdown file (``report.md`` in the work folder).

It is written for a referee: every number from a simulation carries its context
(what the potential was validated on, how long the run was, whether the quantity
converged), errors are judged against stated targets, and figures are linked by
relative paths so the folder can be copied or rendered as it is.  Sections:
stages and times, the data set (classes, sources, held-out test set), active
learning (per-iteration table and figure), the production potential (learning
curve, held-out errors per class with pass/fail), properties against the teacher,
production MD with its analysis, and what the numbers may and may not be used for.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from hpcnnp.fileio import write_atomic
from hpcnnp.io.dataset import Dataset
from hpcnnp.validation.teacher import teacher_markdown

__all__ = ["write_report", "TARGETS"]

#: accuracy targets on the held-out test set: (energy meV/atom, force eV/Å), overall
#: and for every class (the published DFT-trained LLZO/LCO potential: 4-22 meV/atom,
#: 0.14-0.28 eV/Å per class)
TARGETS = {"overall": (5.0, 0.20), "class": (10.0, 0.30)}


def _rel(ctx, path):
    return os.path.relpath(path, ctx.work)


def _img(ctx, path, alt):
    return f"![{alt}]({_rel(ctx, path)})" if Path(path).exists() else f"*({alt}: not produced)*"


def _marker(ctx, name, failed=False):
    path = ctx.path(".done", f"{name}.failed.json" if failed else f"{name}.json")
    return json.loads(path.read_text()) if path.exists() else None


def _stage_table(ctx, stages):
    rows = ["| stage | status | time (s) |", "|---|---|---:|"]
    total = 0.0
    for name in stages:
        failed, done = _marker(ctx, name, failed=True), _marker(ctx, name)
        if failed:
            rows.append(f"| {name} | **failed**: {failed.get('error', '')[:300]} | |")
        elif done:
            total += done.get("seconds", 0.0)
            rows.append(f"| {name} | done | {done.get('seconds', 0.0):.0f} |")
        elif name == "report":
            rows.append(f"| {name} | this file | |")
        else:
            rows.append(f"| {name} | not run | |")
    rows.append(f"| **total** | | **{total:.0f}** |")
    return rows


def _dataset_section(ctx):
    path = ctx.path("data", "dataset.h5")
    if not path.exists():
        return []
    counts = {}
    with Dataset(path) as ds:
        for rec in ds.records():
            prov = rec.provenance or {}
            source = prov.get("source") or "AIMD (seed)"
            if source == "active learning":
                source = ("active learning, test" if prov.get("set") == "test" else
                          f"active learning ({prov.get('selection', '?')})")
            c = counts.setdefault(rec.structure_class or "unclassified", {})
            c[source] = c.get(source, 0) + 1
            c["atoms"] = c.get("atoms", 0) + len(rec.numbers)
    sources = sorted({k for c in counts.values() for k in c if k != "atoms"})
    train = _marker(ctx, "train") and ctx.path("train", "input.data").exists()
    rows = [f"| class | {' | '.join(sources)} | atoms |",
            "|---|" + "---:|" * (len(sources) + 1)]
    for cls, c in sorted(counts.items()):
        rows.append(f"| {cls} | " + " | ".join(str(c.get(s, 0)) for s in sources)
                    + f" | {c['atoms']} |")
    total = {s: sum(c.get(s, 0) for c in counts.values()) for s in sources + ["atoms"]}
    rows.append("| **all** | " + " | ".join(f"**{total[s]}**" for s in sources)
                + f" | **{total['atoms']}** |")
    lab = ctx.project["labeler"]
    out = [f"## Data set (labels: {lab.get('name')})", "",
           f"`data/dataset.h5` holds every label with its provenance (source, iteration, "
           f"selection reason, train/test). Held-out test structures: "
           f"{ctx.config.test.fraction:.0%} of each class (at least "
           f"{ctx.config.test.minimum}) of the seed data and the random test frames of "
           "active learning; they are never used for selection or training.", "", *rows, ""]
    if train:
        sample = _marker(ctx, "sample") or {}
        if sample.get("classes"):
            out += [f"Seed data: {sample['structures']} structures ({sample['train']} train, "
                    f"{sample['test']} held out).", ""]
    return out


def _active_section(ctx):
    adir = ctx.path("active")
    table = adir / "active-learning.csv"
    if not table.exists():
        return ["## Active learning", "", "*(active learning did not run)*", ""]
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    summary = _marker(ctx, "active") or {}
    cfg = ctx.config.active
    out = ["## Active learning", "",
           f"{len(rows)} iteration(s), stop: **{summary.get('status', rows[-1]['stop'] or '?')}**. "
           f"Each iteration: exploration MD with committee member 0 "
           f"({len(cfg.exploration.structures)} start structures × "
           f"{len(cfg.exploration.temperatures)} temperatures, {cfg.exploration.steps} steps), "
           f"committee of {cfg.committee.size}, σ_F = max over atoms of the committee's "
           f"force spread, σ_low = {cfg.selection.sigma_low:g} eV/Å; "
           "selection by disagreement, extrapolation warnings and failed runs, diversity "
           "filter; labels in Parsl batches; warm-started retraining. Converged means: "
           f"≥ {cfg.stop.min_iterations} iterations, ≥ {cfg.stop.accurate_fraction:.0%} of "
           "the explored frames below σ_low, every run finished"
           + (f", ≤ {cfg.stop.max_warning_rate:g} warnings per atom-frame"
              if cfg.stop.max_warning_rate is not None else "") + ".", "",
           "| it. | explored | below σ_low | runs failed | warnings/atom-frame | selected | "
           "labelled (+test) | test E (meV/atom) | test F (eV/Å) | data after |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        def num(key, fmt, scale=1.0):
            return fmt.format(float(r[key]) * scale) if r.get(key) not in (None, "") else "–"
        out.append(f"| {r['iteration']} | {r['explored']} | "
                   f"{num('fraction_accurate', '{:.0%}')} | {r['runs_failed']}/{r['runs']} | "
                   f"{num('warnings_per_atom_frame', '{:.2g}')} | {r['selected']} | "
                   f"{r['labelled']} (+{r.get('labelled_test') or 0}) | "
                   f"{num('energy_rmse_test', '{:.2f}', 1e3)} | "
                   f"{num('force_rmse_test', '{:.3f}')} | {r['n_data_after'] or r['n_data']} |")
    out += ["", "Test errors: committee member 0 of the committee that explored in that "
            "iteration, on the held-out test structures known then.", "",
            _img(ctx, adir / "active-learning.png", "active learning over iterations"), ""]
    return out


def _errors_section(ctx):
    out = ["## The production potential", ""]
    train = _marker(ctx, "train")
    if not train:
        return out + ["*(training did not run)*", ""]
    scale = _marker(ctx, "scale") or {}
    net = ctx.config.network
    out += [f"Networks {'-'.join(map(str, net.hidden))} ({net.activation}), "
            f"{scale.get('n_weights', '?')} weights; SFs per element "
            + ", ".join(f"{el} {n}" for el, n in (scale.get("sf_per_element") or {}).items())
            + (f" (pruned: {scale.get('pruned')})" if scale.get("pruned") else "") + ".", "",
            _img(ctx, ctx.path("train", "learning-curve.png"), "learning curve"), ""]
    path = ctx.path("validation", "errors.csv")
    if not path.exists():
        return out + ["*(validation did not run)*", ""]
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["set"] == "test"]
    e_all, f_all = TARGETS["overall"]
    e_cls, f_cls = TARGETS["class"]
    out += ["Held-out test set (never used for selection or training), per class, judged "
            f"against the targets: overall ≤ {e_all:g} meV/atom and ≤ {f_all:g} eV/Å, "
            f"every class ≤ {e_cls:g} meV/atom and ≤ {f_cls:g} eV/Å.", "",
            "| class | structures | energy RMSE (meV/atom) | force RMSE (eV/Å) | verdict |",
            "|---|---:|---:|---:|---|"]
    for r in rows:
        e, fr = float(r["energy_rmse_meV_per_atom"]), float(r["force_rmse_eV_per_A"])
        lim_e, lim_f = (e_all, f_all) if r["class"] == "all" else (e_cls, f_cls)
        ok = e <= lim_e and fr <= lim_f
        name = "**all**" if r["class"] == "all" else r["class"]
        out.append(f"| {name} | {r['n_structures']} | {e:.2f} | {fr:.3f} | "
                   f"{'pass' if ok else '**fail**'} |")
    pngs = sorted(ctx.path("validation").rglob("parity_*.png"))[:4]
    out += [""] + [_img(ctx, p, p.stem) + "\n" for p in pngs]
    return out


def _teacher_section(ctx):
    path = ctx.path("validation", "teacher", "summary.json")
    if not path.exists():
        failed = _marker(ctx, "validate_md", failed=True)
        return ["## Property validation against the teacher", "",
                f"*(not run{': ' + failed['error'][:300] if failed else ''})*", ""]
    summary = json.loads(path.read_text())
    return [teacher_markdown(summary, link_prefix=_rel(ctx, path.parent) + "/")]


def _warning_summary(traj):
    """"N in M of K frames" from the trajectory's per-frame warning counts."""
    from hpcnnp.io.h5md import H5MDTrajectory
    try:
        with H5MDTrajectory(traj) as t:
            if "n_extrapolation_warnings" not in t.observables:
                return "not recorded"
            counts = t.observable("n_extrapolation_warnings")[2]
    except Exception as exc:          # noqa: BLE001 - the report must still be written
        return f"unknown ({exc})"
    return (f"{int(counts.sum())} in {int((counts > 0).sum())} of {len(counts)} dumped "
            "frames (counted since the previous frame)")


def _md_section(ctx, name, title):
    out = [f"## Production MD and analysis: {title}", ""]
    failed = _marker(ctx, f"md_{name}", failed=True)
    state = ctx.path(f"md_{name}", "run", "state.json")
    md = getattr(ctx.config.production, name)
    if failed:
        out += [f"**The MD failed**: {failed['error'][:400]}", ""]
    if not state.exists():
        return out + ["*(not run)*", ""]
    st = json.loads(state.read_text())
    ps = st.get("time_ps")
    warnings = _warning_summary(state.parent / st.get("trajectory", "traj.h5md"))
    out += [f"LAMMPS with the hpcnnp plugin, the potential alone"
            + (f" with a ZBL overlay {md.zbl.inner:g}-{md.zbl.outer:g} Å" if md.zbl else
               " (no ZBL)") + f"; {md.natoms} atoms (requested), NVT at "
            f"{md.temperature:g} K after heating from 300 K; time step {md.timestep:g} fs; "
            f"simulated {ps} ps in total; extrapolation warnings: {warnings}.", ""]
    summ = ctx.path("analysis", name, "summary.json")
    if not summ.exists():
        return out + ["*(analysis not run)*", ""]
    res = json.loads(summ.read_text())
    nums = res["numbers"]
    dmin = nums.get("min_distance", {})
    if dmin:
        ok = dmin["overall"] >= 1.4
        out.append(f"- smallest interatomic distance over all {res['n_frames']} frames: "
                   f"{dmin['overall']:.2f} Å ({dmin['pair']}) — "
                   + ("no atoms in contact (≥ 1.4 Å)" if ok else
                      "**atoms closer than 1.4 Å: the run left physical space**"))
    flags = res.get("first_peak_flags") or {}
    for pair, fl in sorted(flags.items()):
        if fl["flag"]:
            out.append(f"- **flag**: {fl['text']}")
    cat_o = [f"{p} {fl['position']:.2f} Å (teacher {fl['teacher_range'][0]:.2f}-"
             f"{fl['teacher_range'][1]:.2f})" for p, fl in sorted(flags.items())
             if p.endswith("-O") or p.startswith("O-")]
    if cat_o:
        out.append("- first peaks of the O pairs vs the teacher on the held-out cells: "
                   + ", ".join(cat_o))
    for key, v in sorted(nums.items()):
        if key.startswith("diffusivity_"):
            el = key.split("_", 1)[1]
            verdict = ("converged" if v["converged"] else "**not converged**") + (
                f" ({v['convergence']})" if v["convergence"] != "converged" else "")
            out.append(f"- {el} diffusivity from {v['simulated_time_fs'] / 1000:.2g} ps: "
                       f"{v['D_cm2_s']:.2e} ± {v['D_err_cm2_s']:.1e} cm²/s — {verdict}"
                       + ("" if v["converged"] else "; do not use this number"))
        if key.startswith("segregation_"):
            el = key.split("_", 1)[1]
            verdict = "converged" if v["converged"] else "**not converged**"
            exc = ", ".join(f"{x:.3g} ± {e:.2g}" for x, e in zip(v["excess"],
                                                                  v["excess_err"]))
            out.append(f"- {el} excess Γ from {v['simulated_time_fs'] / 1000:.2g} ps: {exc} "
                       f"{v['unit']} — {verdict} ({v['convergence']})"
                       + ("" if v["converged"] else "; do not use this number"))
    teacher = ctx.path("validation", "teacher", "summary.json")
    if teacher.exists():
        t = json.loads(teacher.read_text())
        out.append(f"- validation it stands on: held-out test errors (above) and the "
                   f"teacher comparison on held-out cells (status {t['status']})")
    out.append("")
    for png in sorted(ctx.path("analysis", name).glob("*.png")):
        out += [_img(ctx, png, f"{name} {png.stem}"), ""]
    return out


def _feedback_section(ctx):
    info = _marker(ctx, "feedback")
    if not info or not info.get("runs"):
        return []
    out = ["## Back into the data set: production frames with extrapolation warnings", ""]
    for run, r in info["runs"].items():
        out.append(f"- {run}: {r['frames_with_warnings']} dumped frames followed "
                   f"extrapolation warnings; {r['labelled']} labelled by the teacher and "
                   f"added to `data/dataset.h5` (provenance `production MD`)"
                   + (f", {r['rejected']} rejected (teacher max force)" if r.get("rejected")
                      else "") + (f", {r['failed']} failed" if r.get("failed") else ""))
    out += ["", "The potential of this report was trained before these labels existed; "
            "`hpcnnp run PROJECT --only train validate validate_md md_interface md_gb "
            "analysis report` retrains with them.", ""]
    return out


def write_report(ctx, stages):
    """Write ``report.md`` (``stages``: the stage names in order); returns its path."""
    p = ctx.project
    lines = [f"# {p['name']}: hpcnnp main job report", "",
             f"Project file `{p.path}`, labeler `{p['labeler'].get('name')}`, site "
             f"`{p['site']}`, {ctx.ranks} MPI rank(s), seed {p['seed']}.", "",
             "## Stages", "", *_stage_table(ctx, stages), ""]
    lines += _dataset_section(ctx)
    lines += _active_section(ctx)
    lines += _errors_section(ctx)
    lines += _teacher_section(ctx)
    for name, title in (("interface", "LLZO(001)|LCO(104) interface"),
                        ("gb", "Σ-tilt grain boundary of cubic LLZO")):
        lines += _md_section(ctx, name, title)
    lines += _feedback_section(ctx)
    lab = p["labeler"].get("name")
    lines += ["## What these numbers are", "",
              f"The reference is `{lab}`: the potential reproduces it, not experiment"
              + (" and not DFT (CHGNet is a universal potential trained on PBE(+U) data)"
                 if lab == "chgnet" else "") + ". The potential is validated on the "
              "structure classes and temperatures of its data set and on the held-out "
              "cells above; production numbers marked *not converged* come from runs "
              "shorter than the quantity needs and must not be quoted.", ""]
    path = ctx.path("report.md")
    write_atomic(path, "\n".join(lines) + "\n")
    return path
