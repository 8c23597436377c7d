"""``hpcnnp validate`` as a library call: :func:`run_validation`.

Each property is one step in :data:`STEPS` (name -> function writing its files and
returning its Markdown section); :func:`run_validation` checks every input first
(bad input fails before any computation), runs the selected steps and writes
``validation.md`` with all sections.  Layout of the output folder::

    validation.md               summary: tables, links to every plot
    errors.csv  errors.md       per-class RMSE/MAE/R² (train, test, unseen)
    parity/                     parity_<class>.png + _energy.csv/_forces.csv
    rdf/ vdos/ diffusion/       overlays reference vs potential (PNG + CSV)
    trajectories/               the MD trajectories run here (H5MD, resumable)
    transition/                 NPT ramp: samples, binned a, c, c/a, plot
    quality/                    property table with Q
"""

from __future__ import annotations

import datetime
import importlib.util
import io
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase.calculators.emt import EMT
from ase.io import read

from hpcnnp import __version__
from hpcnnp.calculator import HDNNPCalculator
from hpcnnp.errors import HpcnnpError, InputFileError
from hpcnnp.potential import Potential
from hpcnnp.progress import Progress
from hpcnnp.sampling.labelers import get_labeler
from hpcnnp.structures import llzo_cubic, llzo_tetragonal

from . import plots
from .benchmarks import TrajectoryPair, diffusion_benchmark, rdf_benchmark, vdos_benchmark
from .classes import ClassResolver, slugify
from .dataset import ALL, error_table, evaluate_dataset
from .quality import compare_properties
from .teacher import TeacherProtocol, teacher_markdown, validate_against_teacher
from .report import fmt, md_table, write_columns, write_csv, write_text
from .trajectory import (frame_interval, md_settings, nominal_temperature, read_trajectory,
                         run_md)
from .transition import analyse_ramp, npt_ramp

__all__ = ["ValidationConfig", "run_validation", "STEPS", "PROPERTY_NAMES",
           "resolve_calculator"]

PROPERTY_NAMES = ("errors", "rdf", "vdos", "diffusion", "transition", "quality", "teacher")


@dataclass
class ValidationConfig:
    """All inputs of a validation run (see ``hpcnnp validate --help`` for each)."""

    potential: Path
    output_dir: Path = Path("validation")
    train: Path | None = None
    test: Path | None = None
    unseen: list = field(default_factory=list)
    class_map: Path | None = None
    properties: tuple | None = None
    reference_labeler: str | None = None
    reference_trajs: list = field(default_factory=list)
    ml_trajs: list = field(default_factory=list)
    temperatures: list = field(default_factory=list)
    frame_interval: float | None = None
    md_structure: Path | None = None
    md_frames: int | None = None
    md_timestep: float = 1.0
    md_equilibration: float = 500.0
    seed: int = 0
    species: str = "Li"
    fit_window: tuple = (0.1, 0.5)
    blocks: int = 4
    rdf_rmax: float | None = None
    transition_structure: Path | None = None
    transition_repeat: tuple = (1, 1, 1)
    transition_range: tuple = (600.0, 1200.0)
    transition_steps: int = 20000
    transition_engine: str | None = None
    transition_sample_every: int = 20
    transition_bin: float = 50.0
    transition_threshold: float = 0.005
    quality_structure: Path | None = None
    quality_properties: tuple = ("lattice", "elastic", "vacancy", "surface")
    surface: tuple = (0, 0, 1)
    vacancy_mu: str = "bcc"
    fmax: float = 0.02
    relax_steps: int = 300
    strain: float = 0.005
    max_parity_points: int = 50000


def _md_progress(ctx, what, total):
    """The progress reporter of an MD run (rate from the first frame: equilibration
    does not distort the ETA), lines to the validation log."""
    return Progress(what, total=total, unit="frames", out=ctx.log, rate_from="first",
                    interval=60.0, every=max(1, total // 10))


# ---------------------------------------------------------------------------------------
# calculators
# ---------------------------------------------------------------------------------------


def _parse_options(text):
    opts = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise HpcnnpError(f"labeler option {item!r}: expected key=value")
        k, v = item.split("=", 1)
        for conv in (int, float):
            try:
                v = conv(v)
                break
            except ValueError:
                continue
        opts[k.strip()] = v
    return opts


def _n2p2_calc(arg):
    if not arg:
        raise HpcnnpError("reference labeler 'n2p2:DIR' needs the potential folder")
    return HDNNPCalculator(arg)


def _emt_calc(arg):
    return EMT()


#: reference calculators resolved here; every other name goes to
#: hpcnnp.sampling.labelers.get_labeler(name, **options)
LOCAL_CALCULATORS = {"n2p2": _n2p2_calc, "emt": _emt_calc}


def resolve_calculator(spec):
    """An ASE calculator from a labeler spec.

    ``n2p2:DIR`` (an HDNNP folder as reference, e.g. a committee member), ``emt``
    (ASE's EMT, for tests) or ``NAME[:key=value,...]`` of the sampling stage's
    labelers (``chgnet``, ``xtb``, ...).
    """
    name, _, arg = str(spec).partition(":")
    name = name.strip().lower()
    if name in LOCAL_CALCULATORS:
        return LOCAL_CALCULATORS[name](arg)
    try:
        return get_labeler(name, **_parse_options(arg))
    except HpcnnpError:
        raise
    except (KeyError, ValueError, TypeError, ImportError) as exc:
        raise HpcnnpError(f"reference labeler {spec!r}: {exc}") from None


# ---------------------------------------------------------------------------------------
# context shared by the steps
# ---------------------------------------------------------------------------------------

class _Context:
    def __init__(self, cfg, log):
        self.cfg = cfg
        self.log = log
        self.out = Path(cfg.output_dir)
        self.potential = Potential.from_n2p2(cfg.potential)
        self._calc = None
        self._ref = None
        self._pairs = None
        self.files = []

    @property
    def calculator(self):
        if self._calc is None:
            self._calc = HDNNPCalculator(self.potential)
        return self._calc

    @property
    def reference(self):
        if self._ref is None:
            self._ref = resolve_calculator(self.cfg.reference_labeler)
        return self._ref

    def rel(self, path):
        try:
            return Path(path).relative_to(self.out).as_posix()
        except ValueError:
            return str(path)


def _read_structure(path, what):
    try:
        atoms = read(path)
    except FileNotFoundError:
        raise InputFileError(path, None, f"{what} not found") from None
    except Exception as exc:
        raise InputFileError(path, None, f"cannot read {what}: {exc}") from None
    if not atoms.pbc.all():
        raise InputFileError(path, None, f"{what} must be periodic (pbc = T T T)")
    return atoms


def _check_elements(ctx, symbols, where):
    missing = sorted(set(symbols) - set(ctx.potential.elements))
    if missing:
        raise HpcnnpError(f"{where}: elements {' '.join(missing)} are not part of the "
                          f"potential ({' '.join(ctx.potential.elements)})")


def _start_structure(ctx, path, default, what):
    """The periodic structure in ``path``, else ``default()``; its elements must be
    the potential's (``what`` names it in errors)."""
    atoms = _read_structure(path, what) if path else default()
    _check_elements(ctx, atoms.get_chemical_symbols(), what)
    return atoms


# ---------------------------------------------------------------------------------------
# steps
# ---------------------------------------------------------------------------------------

def _sets(cfg):
    sets = []
    if cfg.train:
        sets.append(("train", Path(cfg.train)))
    if cfg.test:
        sets.append(("test", Path(cfg.test)))
    for p in cfg.unseen:
        p = Path(p)
        sets.append(("unseen" if len(cfg.unseen) == 1 else f"unseen:{p.stem}", p))
    return sets


def _step_errors(ctx):
    cfg = ctx.cfg
    resolver = ClassResolver(cfg.class_map)
    results = []
    for name, path in _sets(cfg):
        t0 = time.perf_counter()
        res = evaluate_dataset(ctx.potential, path, name, resolver, progress=Progress(
            f"errors: {name}", unit="structures", out=ctx.log, interval=30.0))
        ctx.log(f"errors: {name} ({path}): {res.n_structures} structures in "
                f"{time.perf_counter() - t0:.1f} s")
        results.append(res)
    table = error_table(results)
    ctx.files.append(write_text(ctx.out / "errors.csv", table.csv()))
    ctx.files.append(write_text(ctx.out / "errors.md", table.markdown()))
    classes = list(dict.fromkeys(c for r in results for c in r.class_names()))
    links = []
    used = set()
    for cls in classes + ([ALL] if len(classes) > 1 else []):
        slug = slugify(cls)
        while slug in used:
            slug += "_"
        used.add(slug)
        pdir = ctx.out / "parity"
        png = plots.parity_plot(results, cls, pdir / f"parity_{slug}.png",
                                max_points=cfg.max_parity_points, seed=cfg.seed)
        erows = []
        for r in results:
            s, _ = r.select(cls)
            er, ep = r.energy_per_atom(cls)
            erows += list(zip([r.name] * int(s.sum()), r.index[s], r.n_atoms[s], er, ep))
        ctx.files += [png,
                      write_csv(pdir / f"parity_{slug}_energy.csv",
                                ("set", "structure", "n_atoms", "E_ref_eV_per_atom",
                                 "E_ml_eV_per_atom"), erows),
                      _write_force_csv(pdir / f"parity_{slug}_forces.csv", results, cls)]
        links.append(f"[{cls}]({ctx.rel(png)})")
    warn = sum(r.n_extrapolation_warnings for r in results)
    text = ["## Errors per structure class", "",
            "Energy RMSE per atom (meV/atom) and force-component RMSE (eV/Å), R² in "
            "parentheses; MAE and maximum errors in `errors.csv`.", "",
            table.markdown(), "Parity plots: " + ", ".join(links) + ".", ""]
    if warn:
        text.append(f"The potential reported {warn} extrapolation warnings on these "
                    "sets (symmetry functions outside the training range).\n")
    return "\n".join(text)


def _write_force_csv(path, results, cls):
    """Force components of one class: set,structure,atom,component,F_ref,F_ml (eV/Å)."""
    buf = io.StringIO()
    buf.write("set,structure,atom,component,F_ref_eV_per_A,F_ml_eV_per_A\n")
    for r in results:
        _, a = r.select(cls)
        rows = np.flatnonzero(a)
        if not len(rows):
            continue
        owner = r.atom_structure[rows]
        local = rows - np.searchsorted(r.atom_structure, owner)
        for c, comp in enumerate("xyz"):
            data = np.column_stack([r.index[owner], local, r.force_ref[rows, c],
                                    r.force_ml[rows, c]])
            np.savetxt(buf, data, fmt=f"{r.name},%d,%d,{comp},%.8g,%.8g")
    return write_text(path, buf.getvalue())


def _reference_trajectories(ctx):
    """Reference trajectories: read from files, or MD with the reference labeler."""
    cfg = ctx.cfg
    refs = []
    if cfg.reference_trajs:
        temps = list(cfg.temperatures) or [None] * len(cfg.reference_trajs)
        for path, T in zip(cfg.reference_trajs, temps):
            tr = read_trajectory(path, cfg.frame_interval, T)
            _check_elements(ctx, tr.species, str(path))
            refs.append(tr)
            ctx.log(f"reference trajectory {path}: {tr.n_frames} frames, "
                    f"{frame_interval(tr):g} fs apart, {nominal_temperature(tr):g} K")
        return refs
    start = _md_structure(ctx)
    for T in cfg.temperatures:
        run = md_settings(T, cfg.md_frames or 400, cfg.frame_interval or 5.0,
                          cfg.md_timestep, cfg.md_equilibration, seed=cfg.seed)
        ctx.log(f"reference MD with {cfg.reference_labeler} at {T:g} K "
                f"({run.snapshots} frames)")
        path = ctx.out / "trajectories" / f"reference_{T:g}K.h5md"
        with _md_progress(ctx, f"reference MD {T:g} K", run.snapshots) as prog:
            refs.append(run_md(start, ctx.reference, run, path, progress=prog))
        ctx.files.append(path)
    return refs


def _trajectory_pairs(ctx):
    """Reference and potential trajectories, computed once for rdf/vdos/diffusion.

    The potential runs the reference's protocol from the reference's first frame
    (positions and velocities), unless --ml-traj gives its trajectories.
    """
    if ctx._pairs is not None:
        return ctx._pairs
    cfg = ctx.cfg
    refs = _reference_trajectories(ctx)
    labels = []
    for tr in refs:
        lab = f"{nominal_temperature(tr):g}K"
        if lab in labels:
            lab = f"{lab}_{Path(tr.name).stem}"
        labels.append(lab)
    pairs = []
    for k, (tr, lab) in enumerate(zip(refs, labels)):
        T, dt = nominal_temperature(tr), frame_interval(tr)
        if cfg.ml_trajs:
            ml = read_trajectory(cfg.ml_trajs[k], cfg.frame_interval or dt, T)
        else:
            run = md_settings(T, min(tr.n_frames, cfg.md_frames or tr.n_frames), dt,
                              cfg.md_timestep, cfg.md_equilibration, seed=cfg.seed)
            ctx.log(f"potential MD at {T:g} K: {run.snapshots} frames, {dt:g} fs apart")
            t0 = time.perf_counter()
            path = ctx.out / "trajectories" / f"hdnnp_{lab}.h5md"
            with _md_progress(ctx, f"potential MD {T:g} K", run.snapshots) as prog:
                ml = run_md(tr.atoms(0), ctx.calculator, run, path, progress=prog)
            ctx.log(f"  done in {time.perf_counter() - t0:.1f} s")
            ctx.files.append(path)
        pairs.append(TrajectoryPair(tr, ml, lab))
    ctx._pairs = pairs
    return pairs


def _md_structure(ctx):
    return _start_structure(ctx, ctx.cfg.md_structure, llzo_cubic, "MD start structure")


def _comparison_rows(rows, formats):
    """Table rows of a reference-vs-potential benchmark: temperature (K), the key
    (pair or element) and three numbers in ``formats``."""
    return [(f"{r[1]:g}", r[2], *(fmt(x, f) for x, f in zip(r[3:6], formats))) for r in rows]


def _plot_links(ctx, pairs, kind):
    """Markdown links to the ``kind`` plots (``KIND/KIND_LABEL.png``) of the pairs."""
    return ", ".join(f"[{p.label}]({ctx.rel(ctx.out / kind / f'{kind}_{p.label}.png')})"
                     for p in pairs)


def _step_rdf(ctx):
    pairs = _trajectory_pairs(ctx)
    header, rows, files = rdf_benchmark(pairs, ctx.out / "rdf", r_max=ctx.cfg.rdf_rmax)
    ctx.files += files
    table = md_table(["T / K", "pair", "first peak ref / Å", "first peak HDNNP / Å",
                      "rel. L2 difference"], _comparison_rows(rows, (".2f", ".2f", ".3f")))
    return ("## Partial radial distribution functions\n\n"
            "Reference trajectory vs MD with the potential at the same temperature; "
            "relative L2 difference = sqrt(∫(g_ML − g_ref)² dr / ∫g_ref² dr).\n\n"
            + table + f"\nPlots: {_plot_links(ctx, pairs, 'rdf')}.\n")


def _step_vdos(ctx):
    pairs = _trajectory_pairs(ctx)
    header, rows, files = vdos_benchmark(pairs, ctx.out / "vdos")
    ctx.files += files
    table = md_table(["T / K", "element", "overlap ∫min(D_ref, D_ML)dν",
                      "⟨ν⟩ ref / THz", "⟨ν⟩ HDNNP / THz"],
                     _comparison_rows(rows, (".3f", ".2f", ".2f")))
    return ("## Vibrational density of states\n\n"
            "Fourier transform of the velocity autocorrelation (Hann window), unit area; "
            "overlap 1 = identical spectra.\n\n" + table
            + f"\nPlots: {_plot_links(ctx, pairs, 'vdos')}.\n")


def _step_diffusion(ctx):
    cfg = ctx.cfg
    pairs = _trajectory_pairs(ctx)
    header, rows, files, arr = diffusion_benchmark(pairs, ctx.out / "diffusion",
                                                   cfg.species, tuple(cfg.fit_window),
                                                   cfg.blocks)
    ctx.files += files

    def d_cell(d, err, verdict):
        # a D from the ballistic/vibrational regime means nothing: say so beside it
        text = f"{d:.3e} ± {err:.1e}"
        return text if verdict == "converged" else text + " (not converged)"
    table = md_table(["T / K", f"D({cfg.species}) ref / cm² s⁻¹",
                      f"D({cfg.species}) HDNNP / cm² s⁻¹", "fit window / ps"],
                     [(f"{r[1]:g}", d_cell(r[2], r[3], r[9]), d_cell(r[4], r[5], r[10]),
                       f"{r[6] / 1000:.3g}–{r[7] / 1000:.3g}") for r in rows])
    reasons = sorted({v for r in rows for v in (r[9], r[10]) if v != "converged"})
    lines = ["## Li diffusion" if cfg.species == "Li" else f"## {cfg.species} diffusion", "",
             f"Tracer diffusivity from the MSD (centre-of-mass drift removed), linear fit "
             f"in {100 * cfg.fit_window[0]:g}–{100 * cfg.fit_window[1]:g} % of the run; "
             f"uncertainty: {rows[0][8] if rows else ''}.", "", table,
             f"MSD plot: [msd.png]({ctx.rel(ctx.out / 'diffusion' / 'msd.png')}).", ""]
    if reasons:
        lines += ["*Not converged* (the diffusivity is not quoted as a result; run longer "
                  "or hotter):", ""] + [f"- {v}" for v in reasons] + [""]
    if arr["reference"] is not None or arr["ml"] is not None:
        def ea(fit):
            return "n/a" if fit is None else \
                f"{fit.Ea:.3f} ± {fmt(fit.Ea_err, '.3f')} eV"
        lines.append(f"Arrhenius activation energy: reference {ea(arr['reference'])}, "
                     f"HDNNP {ea(arr['ml'])} "
                     f"([arrhenius.png]({ctx.rel(ctx.out / 'diffusion' / 'arrhenius.png')})).")
    if arr["message"]:
        lines.append(arr["message"])
    return "\n".join(lines) + "\n"


def _transition_engine(cfg):
    if cfg.transition_engine:
        return cfg.transition_engine
    return "lammps" if importlib.util.find_spec("lammps") is not None else "ase"


def _step_transition(ctx):
    cfg = ctx.cfg
    atoms = _start_structure(ctx, cfg.transition_structure, llzo_tetragonal,
                             "transition start structure")
    rep = tuple(int(x) for x in cfg.transition_repeat)
    if rep != (1, 1, 1):
        atoms = atoms.repeat(rep)
    engine = _transition_engine(cfg)
    t0, t1 = cfg.transition_range
    ctx.log(f"transition: NPT ramp {t0:g} -> {t1:g} K, {cfg.transition_steps} steps of "
            f"{cfg.md_timestep:g} fs, {len(atoms)} atoms ({engine})")
    with Progress("transition: NPT ramp", total=cfg.transition_steps, unit="steps",
                  out=ctx.log, interval=30.0) as progress:
        samples = npt_ramp(atoms, t0, t1, cfg.transition_steps, calculator=ctx.calculator,
                           potential_dir=cfg.potential, engine=engine,
                           timestep=cfg.md_timestep,
                           sample_every=cfg.transition_sample_every, seed=cfg.seed,
                           progress=progress)
    res = analyse_ramp(samples["T_set"], samples["cells"], repeat=rep,
                       bin_width=cfg.transition_bin, threshold=cfg.transition_threshold)
    tdir = ctx.out / "transition"
    cells = samples["cells"]
    ctx.files += [
        write_columns(tdir / "ramp_samples.csv",
                      {"time_fs": samples["time"], "T_set_K": samples["T_set"],
                       "T_K": samples["T"], "a_A": res.raw["a"], "c_A": res.raw["c"],
                       **{f"cell_{i}{j}_A": cells[:, i, j] for i in range(3)
                          for j in range(3)}}),
        write_text(tdir / "lattice_vs_T.csv", res.csv()),
        plots.transition_plot(res, tdir / "transition.png")]
    tc = "not found" if not np.isfinite(res.Tc) else \
        f"{res.Tc:.0f}" + (f" ± {res.Tc_err:.0f}" if np.isfinite(res.Tc_err) else "") + " K"
    write_csv(tdir / "transition.csv",
              ("Tc_K", "Tc_err_K", "criterion", "Tc_sigmoid_K", "Tc_sigmoid_err_K",
               "Tc_threshold_K", "threshold", "c_axis", "engine", "atoms", "steps",
               "timestep_fs"),
              [(res.Tc, res.Tc_err, res.criterion, res.Tc_sigmoid, res.Tc_sigmoid_err,
                res.Tc_threshold, res.threshold, res.c_axis, engine, len(atoms),
                cfg.transition_steps, cfg.md_timestep)])
    ctx.files.append(tdir / "transition.csv")
    return ("## Tetragonal → cubic transition\n\n"
            f"NPT heating ramp {t0:g} → {t1:g} K in {cfg.transition_steps} steps of "
            f"{cfg.md_timestep:g} fs ({engine}, {len(atoms)} atoms, {rep[0]}×{rep[1]}×"
            f"{rep[2]} cells, zero pressure), c axis = cell vector {res.c_axis + 1}; "
            f"binned in {cfg.transition_bin:g} K windows.\n\n"
            f"**T_c = {tc}** — criterion: {res.criterion}. Threshold criterion "
            f"(|c/a − 1| < {res.threshold:g}): {fmt(res.Tc_threshold, '.0f')} K. "
            "Experiment and earlier MD: about 900 K.\n\n"
            f"Plot: [transition.png]({ctx.rel(tdir / 'transition.png')}).\n")


def _step_quality(ctx):
    cfg = ctx.cfg
    bulk = _start_structure(ctx, cfg.quality_structure, llzo_cubic,
                            "quality-factor structure")
    try:
        mu = float(cfg.vacancy_mu)
    except ValueError:
        mu = cfg.vacancy_mu
    t0 = time.perf_counter()
    table = compare_properties(
        bulk, ctx.calculator, ctx.reference, log=lambda m: ctx.log(f"quality: {m}"),
        properties=tuple(cfg.quality_properties), fmax=cfg.fmax, steps=cfg.relax_steps,
        delta=cfg.strain, vacancy_element=cfg.species, mu=mu, surface_hkl=cfg.surface)
    ctx.log(f"quality: done in {time.perf_counter() - t0:.1f} s")
    qdir = ctx.out / "quality"
    ctx.files += [write_text(qdir / "quality.csv", table.csv()),
                  write_text(qdir / "quality.md", table.markdown())]
    for name, det in (("ml", table.details_ml), ("ref", table.details_ref)):
        if "C" in det:
            ctx.files.append(write_csv(qdir / f"elastic_tensor_{name}.csv",
                                       [f"C{j + 1}_GPa" for j in range(6)], det["C"]))
    notes = "".join(f"- {n}\n" for n in table.notes)
    return ("## Property quality factor\n\n"
            f"Structure: {table.structure} ({len(bulk)} atoms); reference: "
            f"{cfg.reference_labeler}. Q = sqrt(mean(((p_ML − p_ref)/p_ref)²)) over the "
            "properties below, each calculator at its own relaxed structure "
            f"(fmax {cfg.fmax:g} eV/Å, strain ±{cfg.strain:g} for C_ij, relaxed ions).\n\n"
            + table.markdown() + "\n" + notes)


def _step_teacher(ctx):
    """Teacher MD vs potential MD on the held-out cells (:mod:`.teacher`)."""
    spec = ctx.cfg.reference_labeler
    name, _, arg = str(spec).partition(":")
    if name.strip().lower() in LOCAL_CALCULATORS:
        teacher, options = ctx.reference, None
    else:
        teacher, options = name.strip().lower(), _parse_options(arg)
    summary = validate_against_teacher(ctx.cfg.potential, ctx.out / "teacher",
                                       teacher=teacher, teacher_options=options,
                                       protocol=TeacherProtocol(seed=ctx.cfg.seed),
                                       log=ctx.log)
    ctx.files += [ctx.out / "teacher" / f for f in summary["files"]]
    return teacher_markdown(summary, link_prefix="teacher/")


#: property name -> step function (each writes its files and returns Markdown)
STEPS = {"errors": _step_errors, "rdf": _step_rdf, "vdos": _step_vdos,
         "diffusion": _step_diffusion, "transition": _step_transition,
         "quality": _step_quality, "teacher": _step_teacher}


# ---------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------

def _select(cfg):
    have_data = bool(cfg.train or cfg.test or cfg.unseen)
    have_traj = bool(cfg.reference_trajs) or bool(cfg.reference_labeler and cfg.temperatures)
    if cfg.properties is None:
        props = [p for p, ok in (("errors", have_data), ("rdf", have_traj),
                                 ("vdos", have_traj), ("diffusion", have_traj),
                                 ("quality", bool(cfg.reference_labeler))) if ok]
        if not props:
            raise HpcnnpError("nothing to validate: give data sets (--train/--test/"
                              "--unseen), reference trajectories, a reference labeler or "
                              "--properties transition")
        return props
    props = []
    for p in cfg.properties:
        if p not in STEPS:
            raise HpcnnpError(f"unknown property {p!r} (choose from "
                              f"{', '.join(PROPERTY_NAMES)})")
        if p not in props:
            props.append(p)
    need = {"errors": (have_data, "--train, --test or --unseen"),
            "rdf": (have_traj, "--reference-traj (or --reference-labeler with "
                               "--temperatures)"),
            "quality": (bool(cfg.reference_labeler), "--reference-labeler"),
            "teacher": (bool(cfg.reference_labeler), "--reference-labeler")}
    need["vdos"] = need["diffusion"] = need["rdf"]
    for p in props:
        ok, what = need.get(p, (True, ""))
        if not ok:
            raise HpcnnpError(f"property {p!r} needs {what}")
    return props


def _check_inputs(cfg):
    """Every input checked before any computation (clear errors naming the option)."""
    _check_files(cfg)
    _check_numbers(cfg)


def _check_files(cfg):
    for _, path in _sets(cfg):
        if not path.is_file():
            raise InputFileError(path, None, "data file not found")
    for p in list(cfg.reference_trajs) + list(cfg.ml_trajs):
        if not Path(p).is_file():
            raise InputFileError(p, None, "trajectory file not found")
    if cfg.class_map and not Path(cfg.class_map).is_file():
        raise InputFileError(cfg.class_map, None, "class mapping file not found")
    if cfg.ml_trajs and len(cfg.ml_trajs) != len(cfg.reference_trajs):
        raise HpcnnpError(f"--ml-traj: {len(cfg.ml_trajs)} files for "
                          f"{len(cfg.reference_trajs)} reference trajectories")
    if cfg.reference_trajs and cfg.temperatures and \
            len(cfg.temperatures) != len(cfg.reference_trajs):
        raise HpcnnpError(f"--temperatures: {len(cfg.temperatures)} values for "
                          f"{len(cfg.reference_trajs)} reference trajectories")


def _check_numbers(cfg):
    if any(not t > 0 for t in cfg.temperatures):
        raise HpcnnpError("--temperatures must be > 0 K")
    if cfg.frame_interval is not None and not cfg.frame_interval > 0:
        raise HpcnnpError("--frame-interval must be > 0 fs")
    lo, hi = cfg.fit_window
    if not 0 <= lo < hi <= 1:
        raise HpcnnpError(f"--fit-window {lo:g} {hi:g}: need 0 <= start < end <= 1")
    for name in ("md_frames", "transition_steps", "transition_sample_every", "blocks"):
        if getattr(cfg, name) is not None and int(getattr(cfg, name)) < 1:
            raise HpcnnpError(f"--{name.replace('_', '-')} must be >= 1")
    if not cfg.md_timestep > 0 or not cfg.fmax > 0 or not cfg.strain > 0:
        raise HpcnnpError("--md-timestep, --fmax and --strain must be > 0")
    if cfg.md_equilibration < 0:
        raise HpcnnpError("--md-equilibration must be >= 0 fs")
    _check_property_options(cfg)


def _check_property_options(cfg):
    t0, t1 = cfg.transition_range
    if not (0 < t0 < t1):
        raise HpcnnpError(f"--transition-range {t0:g} {t1:g}: need 0 < start < end")
    if cfg.transition_engine not in (None, "ase", "lammps"):
        raise HpcnnpError(f"--transition-engine {cfg.transition_engine!r}: ase or lammps")
    if cfg.vacancy_mu not in ("bcc", "removal"):
        try:
            float(cfg.vacancy_mu)
        except ValueError:
            raise HpcnnpError(f"--vacancy-mu {cfg.vacancy_mu!r}: bcc, removal or a "
                              "number (eV)") from None


def _default_log(msg):
    print(f"hpcnnp validate: {msg}", file=sys.stderr, flush=True)


def run_validation(cfg, log=_default_log):
    """Run the selected validation steps; returns {"summary": path, "files": [...],
    "properties": [...], "sections": {name: markdown}}."""
    props = _select(cfg)
    _check_inputs(cfg)
    ctx = _Context(cfg, log)
    ctx.out.mkdir(parents=True, exist_ok=True)
    sections = {}
    t_all = time.perf_counter()
    for p in props:
        t0 = time.perf_counter()
        log(f"{p} ...")
        sections[p] = STEPS[p](ctx)
        log(f"{p} done ({time.perf_counter() - t0:.1f} s)")
    head = [f"# Validation of {Path(cfg.potential).resolve()}", "",
            f"hpcnnp {__version__}, {datetime.datetime.now().isoformat(timespec='seconds')}"
            f"; elements {' '.join(ctx.potential.elements)}; properties: "
            f"{', '.join(props)}; {time.perf_counter() - t_all:.0f} s.", "", ""]
    summary = write_text(ctx.out / "validation.md",
                         "\n".join(head) + "\n".join(sections[p] + "\n" for p in props))
    return {"summary": summary, "files": ctx.files + [summary], "properties": props,
            "sections": sections}
