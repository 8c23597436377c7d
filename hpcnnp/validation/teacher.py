"""Property validation against the teacher: the library entry point of the main job.

:func:`validate_against_teacher` runs, for every held-out cell,

1. MD with the **teacher** (the project's labeler as an ASE calculator; CHGNet by
   default, :func:`hpcnnp.sampling.labelers.get_labeler`), and
2. MD with the **potential** (hpcnnp's engine through ASE,
   :class:`~hpcnnp.calculator.HDNNPCalculator`) with the same protocol: same start
   structure, same initial velocities (same seed), same thermostat (Bussi) and time
   constant, same time step, equilibration and production time;

and compares partial RDFs, the vDOS and the Li MSD (overlaid, PNG + CSV; computed by
:mod:`hpcnnp.analysis` through :mod:`.benchmarks`), judged with the thresholds of
:mod:`.criteria` (RDF relative L2 difference, vDOS overlap, cation-O first-peak
positions, smallest interatomic distance).  Every metric has a noise floor from
blocks of the teacher's own run: a quantity the run is too short to converge is
reported "not converged", not pass or fail.  The Li diffusivities carry their own
convergence verdict (:mod:`hpcnnp.analysis.convergence`).

Outputs (``out_dir``)::

    summary.json, summary.md      verdicts with context (cell, atoms, T, time step,
                                  simulated time, equilibration), for the report
    <cell>/teacher.h5md           teacher MD (H5MD; + .state.npz while running)
    <cell>/hdnnp.h5md             potential MD
    <cell>/rdf_<cell>.png/.csv    partial RDFs overlaid (+ rdf_summary.csv)
    <cell>/vdos_<cell>.png/.csv   vDOS overlaid (+ vdos_summary.csv)
    <cell>/msd.png, msd_<cell>.csv, diffusion.csv

Resumable: the MD runs continue from their state files after a kill; the analysis is
recomputed from the trajectories (seconds).

Why the default protocol suffices (2 cores, CHGNet)
---------------------------------------------------
*Cells*: 96 (LLZO) and 64 (LCO) atoms are the smallest whose half cell width (4.6
and 4.0 Å) holds the first coordination shells of every cation-O pair, the O-O and
the nearest cation-cation shells.  *Time step* 2 fs: the fastest vibrations (O,
~20 THz) get 25 steps per period; the Bussi thermostat (τ = 50 fs) absorbs the small
integration drift.  *Start*: the ideal lattice with velocities at 2T, so that
equipartition brings it to T within a vibrational period; *equilibration* 100 fs
(2 τ).  *Production* 0.5 ps with a frame every 2 fs (250 frames): a vDOS resolution
of 2 THz, below the width of the phonon bands at 1200-1500 K.

Measured with CHGNet 0.3.0 on the default cells (machine shared, load 15-24 on 2
cores; CPU time of one thread): teacher MD 0.47 s/step (LLZO 96) and 0.75 s/step
(LCO 64: the denser cell has more bonds and angles in CHGNet's graphs), 300 steps
each = 140 + 225 s CPU; the potential's MD (hpcnnp engine through ASE) ~0.04 s/step;
the analysis 5 s.  Serially on one core that is ~6 min, with the two teacher runs
as parallel tasks (``dispatcher``, one core each) ~4 min.  Noise floors of that run
(4 blocks; vDOS from halves): RDF Δ_g 0.04-0.14 (largest: La-La 0.14, La-Zr 0.11,
Li-Zr 0.10 in LLZO; ≤ 0.08 in LCO), first peaks ≤ 0.03 Å, vDOS overlap 0.98-0.99 --
all inside the thresholds, so the judged quantities are converged at this length;
the metric is still measured on every run (the noise-floor column), since another
potential or temperature changes it.  The Li MSD of 0.5 ps stays in the
vibrational regime in LLZO/LCO at 1200-1500 K (teacher's log-log slope 0.45 and
-0.1); its verdict says "not converged", and no diffusivity is judged.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from ase.build import cut

from hpcnnp.calculator import HDNNPCalculator
from hpcnnp.errors import HpcnnpError
from hpcnnp.potential import Potential
from hpcnnp.progress import Progress
from hpcnnp.sampling.labelers import get_labeler
from hpcnnp.structures import lco, llzo_cubic

from .benchmarks import (TrajectoryPair, diffusion_benchmark, partial_rdfs, rdf_benchmark,
                         rdf_range, vdos_benchmark, vdos_spectra)
from .criteria import (CATIONS, NOISE_BLOCKS, Thresholds, d_min_threshold, first_peak,
                       has_peak, judge, min_distance, overlap_noise_floor,
                       peak_noise_floor, rdf_distance, rdf_noise_floor, spectral_overlap)
from .report import fmt, md_table, write_text
from .trajectory import (MDBlowUp, describe, md_settings, read_trajectory, run_md,
                         thermalize)

__all__ = ["HeldOutCell", "TeacherProtocol", "DEFAULT_CELLS", "validate_against_teacher",
           "teacher_md",
           "llzo_held_out", "lco_held_out", "first_peak_flags", "peak_position_flags",
           "status_of",
           "teacher_markdown"]

#: rhombohedral primitive cell of LiCoO2 in the hexagonal cell of :func:`lco` (obverse)
_RHOMBOHEDRAL = np.array([[2, 1, 1], [-1, 1, 1], [-1, -2, 1]]) / 3.0
#: 16 primitive cells, near cubic (all perpendicular widths 8.0 Å)
_LCO_64 = np.array([[1, -3, 1], [1, 1, -3], [3, -1, -1]]) @ _RHOMBOHEDRAL


def llzo_held_out(seed=101):
    """96-atom primitive cubic LLZO with a Li ordering of its own (``seed``).

    The demo campaign builds its LLZO cells with the campaign seed; another seed
    gives another Li/vacancy arrangement, so the cell is not in the training data.
    """
    atoms = llzo_cubic(primitive=True, seed=seed)
    atoms.info["held_out"] = f"Li ordering seed {seed}"
    return atoms


def lco_held_out():
    """64-atom near-cubic supercell of LiCoO2 (16 rhombohedral primitive cells).

    A cell shape the training data (the 12-atom hexagonal cell and its diagonal
    repetitions) never has; perpendicular widths 8.0 Å.
    """
    atoms = cut(lco(), *_LCO_64)
    atoms.info.update(lco().info)
    atoms.info["held_out"] = "rhombohedral 4x4x4-equivalent supercell (64 atoms)"
    return atoms


@dataclass(frozen=True)
class HeldOutCell:
    """A cell the potential was not trained on, and its production temperature."""

    name: str
    build: Callable
    temperature: float

    def atoms(self):
        a = self.build()
        if not a.pbc.all():
            raise HpcnnpError(f"held-out cell {self.name}: must be periodic")
        return a


#: LLZO at the grain-boundary temperature, LCO at the interface temperature
DEFAULT_CELLS = (HeldOutCell("LLZO", llzo_held_out, 1200.0),
                 HeldOutCell("LCO", lco_held_out, 1500.0))


@dataclass(frozen=True)
class TeacherProtocol:
    """MD protocol of both models (see the module docstring for the defaults' why).

    ``timestep``, ``equilibration``, ``production``, ``frame_interval``, ``taut`` in
    fs; ``thermostat`` a key of :data:`hpcnnp.sampling.aimd.THERMOSTATS`.
    """

    timestep: float = 2.0
    equilibration: float = 100.0
    production: float = 500.0
    frame_interval: float = 2.0
    taut: float = 50.0
    thermostat: str = "bussi"
    seed: int = 0
    start_temperature_factor: float = 2.0
    species: str = "Li"
    fit_window: tuple = (0.1, 0.5)
    rdf_bin_width: float = 0.1

    def run(self, temperature):
        """MDSettings of the run at ``temperature`` (K)."""
        return md_settings(temperature, int(round(self.production / self.frame_interval)),
                           self.frame_interval, self.timestep, self.equilibration,
                           self.taut, self.thermostat, self.seed)

    def start(self, cell):
        """The start of both models' runs: the cell with Maxwell-Boltzmann velocities
        at ``start_temperature_factor`` x T (seeded).

        A crystal at its lattice sites has no potential energy to share: started at
        2T, equipartition leaves it near T within a vibrational period, so the
        equilibration ends at T instead of climbing to it from T/2.
        """
        atoms = cell.atoms()
        thermalize(atoms, self.start_temperature_factor * cell.temperature,
                   np.random.default_rng(self.seed))
        return atoms


def teacher_md(cell, teacher, teacher_options, protocol, path):
    """Teacher MD of one held-out cell into ``path`` (resumable): a module-level task
    that a :class:`hpcnnp.active.dispatch.Dispatcher` can send to a Parsl worker."""
    run = protocol.run(cell.temperature)
    calc = get_labeler(teacher, **(teacher_options or {}))
    with Progress(f"{cell.name} teacher MD", total=run.snapshots, unit="frames",
                  rate_from="first", interval=60.0,
                  every=max(1, run.snapshots // 10)) as prog:
        run_md(protocol.start(cell), calc, run, path, progress=prog)
    return str(path)


@dataclass
class _CellResult:
    cell: HeldOutCell
    n_atoms: int
    formula: str
    run: object
    checks: list = field(default_factory=list)
    first_peaks: dict = field(default_factory=dict)
    diffusion: dict = field(default_factory=dict)
    files: list = field(default_factory=list)
    wall: dict = field(default_factory=dict)


def status_of(verdicts):
    """Overall status of verdicts: fail > not converged > pass ("n/a" ignored)."""
    v = [x for x in verdicts if x != "n/a"]
    if "fail" in v:
        return "fail"
    if "not converged" in v:
        return "not converged"
    return "pass" if v else "n/a"


def _blocks(traj, n_blocks):
    n = traj.n_frames
    return [(k * n // n_blocks, (k + 1) * n // n_blocks) for k in range(n_blocks)]


def _rdf_checks(pair, thr, bin_width, out):
    """RDF L2 and cation-O first-peak checks of one cell, with noise floors from
    blocks of the teacher's run (:mod:`.criteria`)."""
    t, m = pair.reference, pair.ml
    r_max = rdf_range(t, m)
    bins = max(10, int(round(r_max / bin_width)))
    r, g_t = partial_rdfs(t, r_max, bins)
    _, g_m = partial_rdfs(m, r_max, bins, pairs=list(g_t))
    blocks = [partial_rdfs(t, r_max, bins, pairs=list(g_t), frames=f)[1]
              for f in _blocks(t, NOISE_BLOCKS)]
    for p in g_t:
        name = f"{p[0]}-{p[1]}"
        if has_peak(g_t[p]):
            out.checks.append(judge("rdf_l2", rdf_distance(r, g_t[p], g_m[p]), thr.rdf_l2,
                                    rdf_noise_floor(r, [b[p] for b in blocks], g_t[p]),
                                    pair=name))
        if "O" in p and (set(p) - {"O"}) & set(CATIONS):
            r_t, r_m = first_peak(r, g_t[p]), first_peak(r, g_m[p])
            out.first_peaks[name] = {"teacher": r_t, "hdnnp": r_m}
            out.checks.append(judge(
                "peak_shift", abs(r_m - r_t), thr.peak_shift,
                peak_noise_floor([first_peak(r, b[p]) for b in blocks]), pair=name,
                teacher_A=r_t, hdnnp_A=r_m))


def _vdos_and_distance_checks(pair, thr, out):
    """Total-vDOS overlap and smallest-distance checks of one cell."""
    t, m = pair.reference, pair.ml
    nu, d_t = vdos_spectra(t)
    _, d_m = vdos_spectra(m)
    h1, h2 = _blocks(t, 2)
    nu_h, d_h1 = vdos_spectra(t, frames=h1)
    _, d_h2 = vdos_spectra(t, frames=h2)
    out.checks.append(judge(
        "vdos_overlap", spectral_overlap(nu, d_t["total"], d_m["total"]),
        thr.vdos_overlap,
        overlap_noise_floor(spectral_overlap(nu_h, d_h1["total"], d_h2["total"])),
        pair="all atoms"))
    d_ref, d_ml = min_distance(t), min_distance(m)
    out.checks.append(judge("d_min", d_ml, d_min_threshold(d_ref, thr), pair="any",
                            teacher_A=d_ref, hdnnp_A=d_ml))


def _run_models(cell, atoms, run, calculators, d, log, res):
    """MD of every model (teacher first) on one cell; returns the trajectories.

    A potential whose MD blows up fails the cell (a "stability" check); the
    teacher's blowing up is an error of the protocol and raises.
    """
    trajs = {}
    for who, calc in calculators:
        if calc is None:                      # run already (dispatched teacher MD)
            trajs[who] = read_trajectory(d / f"{who}.h5md")
            continue
        t0 = time.perf_counter()
        log(f"{cell.name}: {who} MD, {len(atoms)} atoms, {cell.temperature:g} K, "
            f"{run.total_steps} steps of {run.timestep:g} fs")
        try:
            with Progress(f"{cell.name} {who} MD", total=run.snapshots, unit="frames",
                          out=log, rate_from="first", interval=60.0,
                          every=max(1, run.snapshots // 10)) as prog:
                trajs[who] = run_md(atoms, calc(), run, d / f"{who}.h5md", progress=prog)
        except MDBlowUp as exc:
            if who == "teacher":
                raise
            res.checks.append({"metric": "stability", "pair": "any", "value": float("nan"),
                               "threshold": float("nan"), "noise_floor": None,
                               "verdict": "fail", "reason": str(exc)})
            log(f"{cell.name}: {exc}")
        res.wall[who] = time.perf_counter() - t0
    return trajs


def _run_cell(cell, calculators, proto, thr, out_dir, log):
    """Teacher MD, potential MD, overlays and checks of one held-out cell."""
    atoms = proto.start(cell)
    run = proto.run(cell.temperature)
    res = _CellResult(cell, len(atoms), atoms.get_chemical_formula(), run)
    d = Path(out_dir) / cell.name
    trajs = _run_models(cell, atoms, run, calculators, d, log, res)
    if "hdnnp" not in trajs:                    # blew up: nothing to compare
        return res
    pair = TrajectoryPair(trajs["teacher"], trajs["hdnnp"], cell.name)
    _rdf_checks(pair, thr, proto.rdf_bin_width, res)
    _vdos_and_distance_checks(pair, thr, res)
    labels = ("teacher", "HDNNP")
    res.files += rdf_benchmark([pair], d, n_bins=max(10, int(round(
        rdf_range(pair.reference, pair.ml) / proto.rdf_bin_width))), labels=labels)[2]
    res.files += vdos_benchmark([pair], d, labels=labels)[2]
    try:
        _, rows, files, _ = diffusion_benchmark([pair], d, proto.species, proto.fit_window,
                                                labels=labels)
        res.files += files
        row = rows[0]
        res.diffusion = {"species": proto.species, "D_teacher_cm2_s": row[2],
                         "D_teacher_err_cm2_s": row[3], "D_hdnnp_cm2_s": row[4],
                         "D_hdnnp_err_cm2_s": row[5], "teacher": row[9], "hdnnp": row[10]}
    except HpcnnpError as exc:
        res.diffusion = {"species": proto.species, "error": str(exc)}
    return res


def _cell_dict(res, out_dir):
    run = describe(res.run)
    return {"name": res.cell.name, "formula": res.formula, "n_atoms": res.n_atoms,
            "temperature_K": res.cell.temperature, "timestep_fs": run["timestep_fs"],
            "equilibration_fs": run["equilibration_fs"],
            "production_ps": run["production_ps"], "frames": run["n_frames"],
            "frame_interval_fs": run["frame_interval_fs"], "thermostat": run["thermostat"],
            "taut_fs": run["taut_fs"],
            "status": status_of(c["verdict"] for c in res.checks),
            "checks": res.checks, "first_peaks": res.first_peaks,
            "diffusion": res.diffusion, "wall_time_s": res.wall,
            "files": [str(Path(f).relative_to(out_dir)) for f in res.files]}


_METRIC_NAMES = {"rdf_l2": "RDF rel. L2 difference", "vdos_overlap": "vDOS overlap",
                 "peak_shift": "first-peak shift / Å", "d_min": "smallest distance / Å",
                 "stability": "MD stable"}


def teacher_markdown(summary, link_prefix=""):
    """The report section of a summary: per cell a context line and a table of the
    checks (``link_prefix``: folder of the summary relative to the Markdown file)."""
    lines = ["## Property validation against the teacher", "",
             f"Teacher: {summary['teacher']}; potential: {summary['potential']}. Status: "
             f"**{summary['status']}**. Thresholds: RDF relative L2 difference ≤ "
             f"{summary['thresholds']['rdf_l2']:g} for every partial with a peak, total "
             f"vDOS overlap ≥ {summary['thresholds']['vdos_overlap']:g}, cation–O first "
             f"peaks within {summary['thresholds']['peak_shift']:g} Å, smallest distance "
             f"≥ {summary['thresholds']['d_min_ratio']:g} × teacher's and ≥ "
             f"{summary['thresholds']['d_min']:g} Å where the teacher stays above it. "
             "*Noise floor*: how much two runs of the teacher would differ by "
             "sampling alone (from 4 blocks of its run; vDOS: from its halves); where it "
             "fails the threshold, the run is too short to judge ('not converged').", ""]
    for c in summary["cells"]:
        lines += [f"### {c['name']} ({c['formula']}, {c['n_atoms']} atoms) at "
                  f"{c['temperature_K']:g} K: {c['status']}", "",
                  f"NVT ({c['thermostat']}, τ = {c['taut_fs']:g} fs), time step "
                  f"{c['timestep_fs']:g} fs, equilibration "
                  f"{c['equilibration_fs']:g} fs, production {c['production_ps']:g} ps "
                  f"({c['frames']} frames every {c['frame_interval_fs']:g} fs), same "
                  "start, seed and thermostat for both models.", ""]
        rows = [(_METRIC_NAMES[k["metric"]], k["pair"], fmt(k["value"], ".3f"),
                 fmt(k["threshold"], ".3g"), fmt(k.get("noise_floor"), ".3f"),
                 k["verdict"]) for k in c["checks"]]
        lines.append(md_table(["check", "pair", "HDNNP vs teacher", "threshold",
                               "noise floor", "verdict"], rows, align="llrrrl"))
        dif = c["diffusion"]
        lines += [f"- {k['reason']}" for k in c["checks"] if "reason" in k]
        if not dif:
            lines.append("")
        elif "error" in dif:
            lines += [f"{dif['species']} MSD: {dif['error']}", ""]
        else:
            lines += [f"{dif['species']} diffusivity (cm²/s): teacher "
                      f"{dif['D_teacher_cm2_s']:.2e} ± {dif['D_teacher_err_cm2_s']:.1e} "
                      f"({dif['teacher']}); HDNNP {dif['D_hdnnp_cm2_s']:.2e} ± "
                      f"{dif['D_hdnnp_err_cm2_s']:.1e} ({dif['hdnnp']}).", ""]
        lines += ["Plots: " + ", ".join(f"[{Path(f).name}]({link_prefix}{f})"
                                        for f in c["files"] if f.endswith(".png")), ""]
    return "\n".join(lines) + "\n"


def validate_against_teacher(potential_dir, out_dir, cells=DEFAULT_CELLS, teacher="chgnet",
                             teacher_options=None, protocol=TeacherProtocol(),
                             thresholds=Thresholds(), log=print, dispatcher=None):
    """Teacher MD and potential MD on held-out cells, compared and judged.

    Parameters
    ----------
    potential_dir : path
        The potential (n2p2 folder: input.nn, scaling.data, weights.ZZZ.data).
    out_dir : path
        Output folder (see the module docstring); a rerun resumes.
    cells : sequence of HeldOutCell
    teacher : str or ase Calculator
        A labeler name of :mod:`hpcnnp.sampling.labelers` (default ``chgnet``) or a
        calculator.
    teacher_options : dict, optional
        Options of the labeler (e.g. ``{"threads": 2}``).
    protocol : TeacherProtocol
    thresholds : Thresholds
    log : callable(str)
        Progress lines (rate and ETA of every MD run).
    dispatcher : hpcnnp.active.dispatch.Dispatcher, optional
        Run the teacher MD of all cells as parallel tasks (e.g. Parsl workers, one
        core each: on 2 cores two single-threaded CHGNet runs make better use of
        the cores than one after the other); needs ``teacher`` as a labeler name.
        The potential's MD runs here.

    Returns
    -------
    dict
        The summary (also in ``summary.json``): ``status`` ("pass", "fail" or "not
        converged"), ``cells`` with their checks and context, ``files``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pot = Potential.from_n2p2(potential_dir)
    for c in cells:
        missing = sorted(set(c.atoms().get_chemical_symbols()) - set(pot.elements))
        if missing:
            raise HpcnnpError(f"held-out cell {c.name}: elements {' '.join(missing)} are "
                              f"not part of the potential ({' '.join(pot.elements)})")
    name = teacher if isinstance(teacher, str) else type(teacher).__name__
    t0 = time.perf_counter()
    if dispatcher is not None:
        if not isinstance(teacher, str):
            raise HpcnnpError("validate_against_teacher: a dispatcher needs the teacher as "
                              "a labeler name (workers build their own calculator)")
        log(f"teacher MD of {len(cells)} cells as parallel tasks")
        dispatcher.map(teacher_md, [dict(cell=c, teacher=teacher,
                                         teacher_options=teacher_options,
                                         protocol=protocol,
                                         path=out_dir / c.name / "teacher.h5md")
                                    for c in cells])
        make_teacher = None
    elif isinstance(teacher, str):
        def make_teacher():
            return get_labeler(teacher, **(teacher_options or {}))
    else:
        def make_teacher():
            return teacher
    calcs = (("teacher", make_teacher), ("hdnnp", lambda: HDNNPCalculator(pot)))
    results = [_run_cell(c, calcs, protocol, thresholds, out_dir, log) for c in cells]
    summary = {"status": status_of(status_of(k["verdict"] for k in r.checks)
                                   for r in results),
               "teacher": name, "teacher_options": dict(teacher_options or {}),
               "potential": str(potential_dir), "thresholds": thresholds.as_dict(),
               "protocol": asdict(protocol),
               "cells": [_cell_dict(r, out_dir) for r in results],
               "wall_time_s": time.perf_counter() - t0}
    write_text(out_dir / "summary.json", json.dumps(summary, indent=1, default=float))
    write_text(out_dir / "summary.md", teacher_markdown(summary))
    summary["files"] = ["summary.json", "summary.md"] + [f for c in summary["cells"]
                                                         for f in c["files"]]
    log(f"property validation: {summary['status']} ({summary['wall_time_s']:.0f} s)")
    return summary


def first_peak_flags(r, g, summary, tol=None):
    """Flag production-MD first peaks outside the teacher's range (issue: honest report).

    Parameters
    ----------
    r : (n,) Å; g : dict "A-B" (or (A, B)) -> g(r) of the production run
    summary : dict
        Result of :func:`validate_against_teacher` (or its ``summary.json``).
    tol : float, Å, optional
        Allowed distance outside [min, max] of the teacher's first peaks of that pair
        over the held-out cells (default: the summary's ``peak_shift`` threshold).

    Returns
    -------
    dict pair -> {"position", "teacher_range", "flag" (bool), "text"}
    """
    positions = {(key if isinstance(key, str) else f"{key[0]}-{key[1]}"): first_peak(r, curve)
                 for key, curve in g.items()}
    return peak_position_flags(positions, summary, tol)


def peak_position_flags(positions, summary, tol=None):
    """:func:`first_peak_flags` for first-peak positions already found
    (``positions``: pair "A-B" -> Å)."""
    tol = summary["thresholds"]["peak_shift"] if tol is None else float(tol)
    ranges = {}
    for c in summary["cells"]:
        for pair, v in c["first_peaks"].items():
            if np.isfinite(v["teacher"]):
                ranges.setdefault(pair, []).append(v["teacher"])
    out = {}
    for pair, pos in positions.items():
        pair_t = pair
        if pair not in ranges and "-".join(pair.split("-")[::-1]) in ranges:
            pair_t = "-".join(pair.split("-")[::-1])
        if pair_t not in ranges or not np.isfinite(pos):
            continue
        lo, hi = min(ranges[pair_t]), max(ranges[pair_t])
        flag = not (lo - tol <= pos <= hi + tol)
        out[pair] = {"position": pos, "teacher_range": (lo, hi), "flag": flag,
                     "text": (f"{pair} first peak {pos:.2f} Å is outside the teacher's "
                              f"{lo:.2f}-{hi:.2f} Å (± {tol:g} Å)") if flag else ""}
    return out
