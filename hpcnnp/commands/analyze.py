"""``hpcnnp analyze``: trajectory analyses of an H5MD file (see :mod:`hpcnnp.analysis`).

Every requested analysis writes a CSV table and a PNG into the output folder, all
results go into ``analysis.h5`` (one group per analysis) and ``summary.md`` lists
the key numbers.  Under ``mpiexec -n N`` the frames (or, for MSD/vDOS, the atoms)
are split over the ranks; rank 0 writes the files.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpcnnp import analysis as A
from hpcnnp.analysis._output import write_h5
from hpcnnp.errors import HpcnnpError
from hpcnnp import mpi
from hpcnnp.mpi import rank_size, world
from hpcnnp.validation.criteria import first_peak

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


def _pairs(values):
    if values is None or not values:
        return None
    out = []
    for v in values:
        parts = v.split("-")
        if len(parts) != 2 or not all(parts):
            raise HpcnnpError(f"--rdf: pair {v!r} must look like Li-O")
        out.append(tuple(parts))
    return out


def _fmt(x, e=None, unit=""):
    s = f"{x:.4g}"
    if e is not None:
        s += f" ± {e:.2g}"
    return s + (f" {unit}" if unit else "")


@dataclass
class _Run:
    """What every analysis of one ``hpcnnp analyze`` call shares."""

    args: argparse.Namespace
    traj: object
    out: Path
    frames: dict
    rank: int
    files: list = field(default_factory=list)

    @property
    def h5(self):
        return self.out / "analysis.h5"

    def done(self, name, obj, csv, png):
        """Write CSV, PNG and the HDF5 group of a finished analysis (rank 0)."""
        if self.rank != 0:
            return
        obj.to_csv(self.out / csv)
        obj.plot(self.out / png)
        write_h5(self.h5, name, obj.results)
        self.files.extend([csv, png])


def _segregation(run):
    a, lines = run.args, []
    for el in a.segregation:
        seg = A.Segregation(run.traj, species=el, bin_width=a.bin_width,
                            fold=not a.no_fold, n_blocks=a.blocks or 5,
                            windows=a.windows).run(**run.frames)
        run.done(f"segregation_{el}", seg, f"segregation_{el}.csv", f"segregation_{el}.png")
        r = seg.results
        ex, exe = np.atleast_1d(r.excess), np.atleast_1d(r.excess_err)
        lines += [f"## Segregation of {el}",
                  f"- excess Γ (|x| < {r.window:g} Å, per boundary): " +
                  ", ".join(_fmt(x, e, "atoms/Å²") for x, e in zip(ex, exe)) +
                  f" — {r.convergence} ({r.simulated_time / 1000:.3g} ps analysed)",
                  f"- peak enrichment c/c_bulk: {np.nanmax(r.profile):.3g}; bulk density "
                  f"{np.atleast_1d(r.bulk_density)[0]:.4g} Å⁻³; {len(r.planes)} planes, "
                  f"fold={r.fold}", ""]
    return lines


def _li_density(run):
    a = run.args
    if not a.li_density:
        return []
    el = a.density_species
    den = A.LiDensity(run.traj, species=el, grid=a.grid, spacing=a.spacing).run(
        **run.frames)
    if run.rank == 0:
        den.write_cube(run.out / f"density_{el}.cube")
        for ax in (0, 1, 2):
            den.plot(run.out / f"density_{el}_proj{'abc'[ax]}.png", axis=ax)
        write_h5(run.h5, f"density_{el}", den.results)
        run.files.extend([f"density_{el}.cube"] + [f"density_{el}_proj{c}.png"
                                                   for c in "abc"])
    r = den.results
    return [f"## {el} probability density",
            f"- grid {tuple(int(g) for g in r.grid)}, voxel {r.voxel_volume:.4g} Å³, "
            f"mean N = {r.n_mean:.2f}, max density {r.density.max():.4g} Å⁻³", ""]


def _profiles(run):
    a = run.args
    if not a.profiles:
        return []
    pr = A.InterdiffusionProfiles(run.traj, bin_width=a.profile_bin_width,
                                  windows=a.windows).run(**run.frames)
    run.done("profiles", pr, "profiles.csv", "profiles.png")
    return ["## Interdiffusion profiles",
            f"- {len(pr.results.species)} species, {len(pr.results.window_times)} "
            f"time windows, {len(pr.results.bin_centers)} bins", ""]


def _clusters(run):
    a, lines = run.args, []
    for el in a.clusters:
        cl = A.ClusterSizes(run.traj, species=el, cutoff=a.cutoff,
                            windows=a.windows).run(**run.frames)
        run.done(f"clusters_{el}", cl, f"clusters_{el}.csv", f"clusters_{el}.png")
        r = cl.results
        lines += [f"## {el} clusters (cutoff {a.cutoff} Å)",
                  f"- mean size {r.mean_size.mean():.3g}, weight-average "
                  f"{r.weight_mean_size.mean():.3g}, largest {int(r.largest.max())} atoms; "
                  f"isolated atoms {r.atom_fraction[0]:.1%}", ""]
    return lines


def _rdf(run):
    a = run.args
    if a.rdf is None:
        return []
    rdf = A.RDF(run.traj, pairs=_pairs(a.rdf), r_max=a.r_max, nbins=a.nbins).run(
        **run.frames)
    run.done("rdf", rdf, "rdf.csv", "rdf.png")
    r = rdf.results
    peaks = ", ".join(f"{p} {first_peak(r.bins, r.rdf[p]):.2f} Å" for p in r.pairs)
    return ["## Partial g(r)", f"- first-peak positions: {peaks}", ""]


def _msd(run):
    a, lines = run.args, []
    for el in a.msd:
        msd = A.MSD(run.traj, species=el, n_blocks=a.blocks or 10).run(**run.frames)
        dif = A.Diffusivity(msd, fit_window=a.fit_window)
        if run.rank == 0:
            msd.to_csv(run.out / f"msd_{el}.csv")
            msd.plot(run.out / f"msd_{el}.png", diffusivity=dif)
            write_h5(run.h5, f"msd_{el}", msd.results)
            write_h5(run.h5, f"diffusivity_{el}", dif.results)
            run.files.extend([f"msd_{el}.csv", f"msd_{el}.png"])
        d = dif.results
        lines += [f"## MSD and diffusivity of {el}",
                  f"- D = {_fmt(d.D_cm2_s, d.D_err_cm2_s, 'cm²/s')} ({d.error_method}; "
                  f"fit window {d.fit_window[0]:.4g}-{d.fit_window[1]:.4g} fs)",
                  f"- {d.convergence} ({d.simulated_time / 1000:.3g} ps analysed)", ""]
    return lines


def _vdos(run):
    if not run.args.vdos:
        return []
    vd = A.VDOS(run.traj).run(**run.frames)
    run.done("vdos", vd, "vdos.csv", "vdos.png")
    return ["## Vibrational DOS", "- peak frequencies: " + ", ".join(
        f"{s} {f:.2f} THz" for s, f in vd.results.peak_frequency.items()), ""]


#: the analyses of ``hpcnnp analyze``, in the order of summary.md
ANALYSES = (_segregation, _li_density, _profiles, _clusters, _rdf, _msd, _vdos)


def run(args):
    """Execute ``hpcnnp analyze``; returns the exit code (0)."""
    comm = world()
    rank, size = rank_size(comm)
    # a stale trajectory or other options on one rank: one error instead of a hang
    mpi.check_consistency(comm, {**mpi.options_items(args),
                                 "trajectory": mpi.FileDigest(str(args.trajectory))})
    todo = (args.segregation or args.li_density or args.profiles or args.clusters
            or args.rdf is not None or args.msd or args.vdos)
    if not todo:
        raise HpcnnpError("no analysis requested (use --segregation, --li-density, "
                          "--profiles, --clusters, --rdf, --msd or --vdos)")
    out = Path(args.output_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    traj = A.as_trajectory(args.trajectory)
    frames = dict(start=args.start, stop=args.stop, step=args.step, comm=comm,
                  progress=args.progress)
    run_ = _Run(args, traj, out, frames, rank)
    summary = [f"# hpcnnp analyze: {args.trajectory}", "",
               f"{traj.n_atoms} atoms, {traj.n_frames} frames in the file; selection "
               f"start={args.start} stop={args.stop} step={args.step}; {size} MPI rank(s).",
               ""]
    sc = traj.metadata.get("structure_class")
    if sc:
        summary += [f"Structure: {sc}", ""]
    t_all = time.perf_counter()
    if rank == 0 and run_.h5.exists():
        run_.h5.unlink()
    for analysis in ANALYSES:
        summary += analysis(run_)
    if rank == 0:
        run_.files.append("analysis.h5")
        summary += ["## Files", *[f"- `{f}`" for f in run_.files], "",
                    f"Wall time {time.perf_counter() - t_all:.1f} s on {size} rank(s)."]
        (out / "summary.md").write_text("\n".join(summary) + "\n", encoding="utf-8")
        print(f"hpcnnp analyze: {len(run_.files)} files -> {out}/ (summary.md)",
              file=sys.stderr)
    return 0


__all__ = ["register", "run", "ANALYSES"]
