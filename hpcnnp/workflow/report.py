"""The main job's report: one Markdown file (``report.md`` in the work folder)
with the tables and figures every stage produced, linked by relative paths so
the folder can be copied or rendered as it is."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hpcnnp.fileio import write_atomic


def _rel(ctx, path):
    return os.path.relpath(path, ctx.work)


def _img(ctx, path, alt):
    return f"![{alt}]({_rel(ctx, path)})" if Path(path).exists() else f"*({alt}: not produced)*"


def _learning_curve_errors(train_dir):
    """Final train/test RMSE (energy per atom, forces) in physical units."""
    path = Path(train_dir) / "learning-curve.out"
    if not path.exists():
        return None
    names, rows = None, []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            toks = line[1:].split()
            if toks and toks[0] == "epoch":
                names = toks
            continue
        if line.strip():
            rows.append([float(x) for x in line.split()])
    if not rows or not names:
        return None
    last = dict(zip(names, rows[-1]))
    first = dict(zip(names, rows[0]))

    def pick(d, key):
        return d.get(f"{key}_pu", d.get(key))
    return {
        "epochs": int(last["epoch"]),
        "energy_train": pick(last, "RMSEpa_Etrain"), "energy_test": pick(last, "RMSEpa_Etest"),
        "force_train": pick(last, "RMSE_Ftrain"), "force_test": pick(last, "RMSE_Ftest"),
        "energy_test_initial": pick(first, "RMSEpa_Etest"),
        "force_test_initial": pick(first, "RMSE_Ftest"),
    }


def _stage_table(ctx):
    from hpcnnp.workflow.stages import STAGES
    rows = ["| stage | status | time (s) |", "|---|---|---|"]
    total = 0.0
    for name, _ in STAGES:
        marker = ctx.path(".done", f"{name}.json")
        failed = ctx.path(".done", f"{name}.failed.json")
        if failed.exists():
            err = json.loads(failed.read_text()).get("error", "")
            rows.append(f"| {name} | **failed**: {err[:300]} | |")
        elif marker.exists():
            sec = json.loads(marker.read_text()).get("seconds", 0.0)
            total += sec
            rows.append(f"| {name} | done | {sec:.0f} |")
        elif name == "report":
            rows.append(f"| {name} | this file | |")
        else:
            rows.append(f"| {name} | not run | |")
    rows.append(f"| **total** | | **{total:.0f}** |")
    return rows


def _dataset_summary(ctx):
    from collections import Counter

    from hpcnnp.io.n2p2 import iter_data
    from hpcnnp.validation.classes import ClassResolver

    data = ctx.path("potential_setup", "input.data")
    if not data.exists():
        return []
    per_class, atoms = Counter(), Counter()
    resolve = ClassResolver()
    for a in iter_data(data):
        cls = resolve(a)
        per_class[cls] += 1
        atoms[cls] += len(a)
    rows = ["| structure class | structures | atoms |", "|---|---|---|"]
    for cls, n in sorted(per_class.items()):
        rows.append(f"| {cls} | {n} | {atoms[cls]} |")
    rows.append(f"| **all** | **{sum(per_class.values())}** | **{sum(atoms.values())}** |")
    return rows


def write_report(ctx):
    p = ctx.project
    lines = [f"# {p['name']}: hpcnnp main job report", "",
             f"Project file `{p.path}`, labeler `{p['labeler'].get('name')}`, site "
             f"`{p['site']}`, {ctx.ranks} MPI rank(s).", "",
             "## Stages", "", *_stage_table(ctx), ""]
    ds = _dataset_summary(ctx)
    if ds:
        lines += ["## Data set (labelled with " + str(p["labeler"].get("name")) + ")", "", *ds, ""]
    err = _learning_curve_errors(ctx.path("train"))
    lines += ["## Training", ""]
    if err:
        lines += [
            f"After {err['epochs']} epochs of Kalman-filter training (test set = "
            "structures never used in updates):", "",
            "| | energy RMSE (meV/atom) | force RMSE (meV/Å) |", "|---|---|---|",
            f"| train | {1e3 * err['energy_train']:.2f} | {1e3 * err['force_train']:.1f} |",
            f"| **test** | **{1e3 * err['energy_test']:.2f}** | **{1e3 * err['force_test']:.1f}** |",
            f"| test, initial weights | {1e3 * err['energy_test_initial']:.2f} | "
            f"{1e3 * err['force_test_initial']:.1f} |", "",
            _img(ctx, ctx.path("train", "learning-curve.png"), "learning curve"), ""]
    else:
        lines += ["*(training did not run)*", ""]
    vdir = ctx.path("validation")
    lines += ["## Validation", ""]
    if (vdir / "errors.md").exists():
        lines += [(vdir / "errors.md").read_text().strip(), ""]
        for png in sorted((vdir).rglob("parity_*.png"))[:6]:
            lines += [_img(ctx, png, png.stem), ""]
    else:
        lines += ["*(validation did not run)*", ""]
    adir = ctx.path("active")
    lines += ["## Active learning", ""]
    csvs = sorted(adir.rglob("active-learning.csv")) if adir.exists() else []
    if csvs:
        lines += ["```", csvs[0].read_text().strip(), "```", ""]
        for png in sorted(adir.rglob("*.png"))[:4]:
            lines += [_img(ctx, png, png.stem), ""]
    else:
        lines += ["*(active learning did not run)*", ""]
    for name, title in (("interface", "LLZO(001)|LCO(104) interface"),
                        ("gb", "Σ-tilt grain boundary of cubic LLZO")):
        lines += [f"## Production MD and analysis: {title}", ""]
        summ = ctx.path("analysis", name, "summary.md")
        state = ctx.path(f"md_{name}", "run", "state.json")
        if state.exists():
            st = json.loads(state.read_text())
            keys = ("step", "time_ps", "frames", "ns_per_day", "extrapolation_warnings")
            facts = ", ".join(f"{k} = {st[k]}" for k in keys if k in st)
            lines += [f"MD: {facts}", ""]
        if summ.exists():
            lines += [summ.read_text().strip(), ""]
            for png in sorted(ctx.path("analysis", name).glob("*.png")):
                lines += [_img(ctx, png, f"{name} {png.stem}"), ""]
        else:
            lines += ["*(not run)*", ""]
    path = ctx.path("report.md")
    write_atomic(path, "\n".join(lines) + "\n")
    return path
