"""``hpcnnp analyze``: trajectory analyses of an H5MD file (see :mod:`hpcnnp.analysis`).

Every requested analysis writes a CSV table and a PNG into the output folder, all
results go into ``analysis.h5`` (one group per analysis) and ``summary.md`` lists
the key numbers.  Under ``mpiexec -n N`` the frames (or, for MSD/vDOS, the atoms)
are split over the ranks; rank 0 writes the files.
"""

from __future__ import annotations

import argparse
import sys

from hpcnnp import mpi
from hpcnnp.analysis.pipeline import AnalysisRequest, analyze_trajectory
from hpcnnp.mpi import rank_size, world

_EPILOG = """\
examples:
  hpcnnp analyze traj.h5md --segregation Co --li-density --rdf --msd Li -o results
  hpcnnp analyze traj.h5md --rdf Li-O Co-O --r-max 8 --start 100 --step 5 -o rdf
  mpiexec -n 4 hpcnnp analyze traj.h5md --segregation Co --clusters Co -o out
"""


def register(subparsers):
    """Add the ``analyze`` parser to the ``hpcnnp`` sub-command parsers."""
    p = subparsers.add_parser(
        "analyze",
        help="analyse an H5MD trajectory (segregation, Li density, RDF, MSD, ...)",
        description="Trajectory analyses of an H5MD file: Co segregation profiles and "
        "excess, Li probability density (cube + maps), interdiffusion profiles, "
        "cluster sizes, partial g(r), MSD/diffusivity, vDOS.  Lengths in Angstrom, "
        "times in fs.  Runs in parallel under mpiexec.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trajectory", help="H5MD trajectory file")
    p.add_argument("-o", "--output-dir", required=True, metavar="DIR",
                   help="folder for CSV, PNG, cube, analysis.h5 and summary.md "
                   "(created if missing)")
    p.add_argument("--start", type=int, default=None, help="first frame (default 0)")
    p.add_argument("--stop", type=int, default=None, help="stop before this frame")
    p.add_argument("--step", type=int, default=None, help="use every STEP-th frame")
    a = p.add_argument_group("analyses")
    a.add_argument("--segregation", nargs="+", metavar="EL", default=[],
                   help="segregation profile and excess of these species at the "
                   "GB/interface planes of the metadata")
    a.add_argument("--li-density", action="store_true",
                   help="Li probability density: cube file + projections")
    a.add_argument("--profiles", action="store_true",
                   help="number-density profiles of all species along the interface "
                   "normal per time window (interdiffusion)")
    a.add_argument("--clusters", nargs="+", metavar="EL", default=[],
                   help="cluster-size distribution of these species")
    a.add_argument("--rdf", nargs="*", metavar="A-B", default=None,
                   help="partial g(r); without values: all species pairs")
    a.add_argument("--msd", nargs="+", metavar="EL", default=[],
                   help="MSD and diffusivity of these species")
    a.add_argument("--min-distance", action="store_true",
                   help="smallest interatomic distance per frame")
    a.add_argument("--vdos", action="store_true",
                   help="vibrational DOS per species (needs velocities, else from "
                   "positions)")
    o = p.add_argument_group("parameters")
    o.add_argument("--bin-width", type=float, default=0.2,
                   help="segregation bin width in Angstrom (default 0.2)")
    o.add_argument("--profile-bin-width", type=float, default=0.5,
                   help="interdiffusion-profile bin width in Angstrom (default 0.5)")
    o.add_argument("--no-fold", action="store_true",
                   help="segregation: one profile per plane instead of folding")
    o.add_argument("--windows", type=int, default=5,
                   help="time windows of segregation, profiles and clusters (default 5)")
    o.add_argument("--blocks", type=int, default=None,
                   help="blocks of the error bars (default: 5 for segregation, 10 for "
                   "MSD)")
    o.add_argument("--grid", type=int, nargs=3, metavar=("NX", "NY", "NZ"),
                   help="Li-density grid (default: from --spacing)")
    o.add_argument("--spacing", type=float, default=0.5,
                   help="Li-density voxel edge in Angstrom when --grid is not given")
    o.add_argument("--density-species", default="Li",
                   help="species of --li-density (default Li)")
    o.add_argument("--cutoff", type=float, default=3.0,
                   help="cluster bond cutoff in Angstrom (default 3.0)")
    o.add_argument("--r-max", type=float, default=6.0,
                   help="RDF range in Angstrom (default 6.0)")
    o.add_argument("--nbins", type=int, default=120, help="RDF bins (default 120)")
    o.add_argument("--fit-window", type=float, nargs=2, metavar=("T0", "T1"),
                   help="MSD fit window in fs (default 10-50%% of the longest lag)")
    o.add_argument("--progress", action="store_true", help="print frames/s")
    p.set_defaults(func=run)
    return p


def run(args):
    """Execute ``hpcnnp analyze``; returns the exit code (0)."""
    req = AnalysisRequest(
        segregation=args.segregation, li_density=args.li_density,
        density_species=args.density_species, profiles=args.profiles,
        clusters=args.clusters, rdf=args.rdf, msd=args.msd, vdos=args.vdos,
        min_distance=args.min_distance, bin_width=args.bin_width,
        profile_bin_width=args.profile_bin_width, no_fold=args.no_fold,
        windows=args.windows, blocks=args.blocks, grid=args.grid, spacing=args.spacing,
        cutoff=args.cutoff, r_max=args.r_max, nbins=args.nbins, fit_window=args.fit_window)
    comm = world()
    rank, _ = rank_size(comm)
    # a stale trajectory or other options on one rank: one error instead of a hang
    mpi.check_consistency(comm, {**mpi.options_items(args),
                                 "trajectory": mpi.FileDigest(str(args.trajectory))})
    result = analyze_trajectory(args.trajectory, args.output_dir, req, start=args.start,
                                stop=args.stop, step=args.step, comm=comm,
                                progress=args.progress)
    if rank == 0:
        print(f"hpcnnp analyze: {len(result['files'])} files -> {args.output_dir}/ "
              "(summary.md)", file=sys.stderr)
    return 0


__all__ = ["register", "run"]
