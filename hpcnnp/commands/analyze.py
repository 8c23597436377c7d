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
from pathlib import Path

from hpcnnp.errors import HpcnnpError

_EPILOG = """\
examples:
  hpcnnp analyze traj.h5 --segregation Co --li-density --rdf --msd Li -o results
  hpcnnp analyze traj.h5 --rdf Li-O Co-O --r-max 8 --start 100 --step 5 -o rdf
  mpiexec -n 4 hpcnnp analyze traj.h5 --segregation Co --clusters Co -o out
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


def _mpi_comm():
    """COMM_WORLD when started by mpiexec with more than one rank, else None."""
    from hpcnnp import mpi
    return mpi.world()


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


def run(args):
    """Execute ``hpcnnp analyze``; returns the exit code (0)."""
    from hpcnnp import analysis as A
    from hpcnnp.analysis._output import write_h5

    from hpcnnp import mpi

    comm = _mpi_comm()
    rank = comm.Get_rank() if comm is not None else 0
    size = comm.Get_size() if comm is not None else 1
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
    h5 = out / "analysis.h5"
    summary = [f"# hpcnnp analyze: {args.trajectory}", "",
               f"{traj.n_atoms} atoms, {traj.n_frames} frames in the file; selection "
               f"start={args.start} stop={args.stop} step={args.step}; {size} MPI rank(s).",
               ""]
    sc = traj.metadata.get("structure_class")
    if sc:
        summary += [f"Structure: {sc}", ""]
    files = []
    t_all = time.perf_counter()

    def done(name, obj, csv, png, extra=()):
        if rank != 0:
            return
        obj.to_csv(out / csv)
        obj.plot(out / png)
        write_h5(h5, name, obj.results)
        files.extend([csv, png, *extra])

    if rank == 0 and h5.exists():
        h5.unlink()
    for el in args.segregation:
        seg = A.Segregation(traj, species=el, bin_width=args.bin_width,
                            fold=not args.no_fold, n_blocks=args.blocks or 5,
                            windows=args.windows).run(**frames)
        done(f"segregation_{el}", seg, f"segregation_{el}.csv", f"segregation_{el}.png")
        r = seg.results
        import numpy as np
        ex = np.atleast_1d(r.excess)
        exe = np.atleast_1d(r.excess_err)
        summary += [f"## Segregation of {el}",
                    f"- excess Γ (|x| < {r.window:g} Å, per boundary): " +
                    ", ".join(_fmt(a, b, "atoms/Å²") for a, b in zip(ex, exe)),
                    f"- peak enrichment c/c_bulk: {np.nanmax(r.profile):.3g}; bulk density "
                    f"{np.atleast_1d(r.bulk_density)[0]:.4g} Å⁻³; {len(r.planes)} planes, "
                    f"fold={r.fold}", ""]
    if args.li_density:
        el = args.density_species
        den = A.LiDensity(traj, species=el, grid=args.grid, spacing=args.spacing).run(
            **frames)
        if rank == 0:
            den.write_cube(out / f"density_{el}.cube")
            for ax in (0, 1, 2):
                den.plot(out / f"density_{el}_proj{'abc'[ax]}.png", axis=ax)
            write_h5(h5, f"density_{el}", den.results)
            files.extend([f"density_{el}.cube"] + [f"density_{el}_proj{c}.png"
                                                    for c in "abc"])
        summary += [f"## {el} probability density",
                    f"- grid {tuple(int(g) for g in den.results.grid)}, voxel "
                    f"{den.results.voxel_volume:.4g} Å³, mean N = {den.results.n_mean:.2f}, "
                    f"max density {den.results.density.max():.4g} Å⁻³", ""]
    if args.profiles:
        pr = A.InterdiffusionProfiles(traj, bin_width=args.profile_bin_width,
                                      windows=args.windows).run(**frames)
        done("profiles", pr, "profiles.csv", "profiles.png")
        summary += ["## Interdiffusion profiles",
                    f"- {len(pr.results.species)} species, {len(pr.results.window_times)} "
                    f"time windows, {len(pr.results.bin_centers)} bins", ""]
    for el in args.clusters:
        cl = A.ClusterSizes(traj, species=el, cutoff=args.cutoff,
                            windows=args.windows).run(**frames)
        done(f"clusters_{el}", cl, f"clusters_{el}.csv", f"clusters_{el}.png")
        r = cl.results
        summary += [f"## {el} clusters (cutoff {args.cutoff} Å)",
                    f"- mean size {r.mean_size.mean():.3g}, weight-average "
                    f"{r.weight_mean_size.mean():.3g}, largest {int(r.largest.max())} atoms; "
                    f"isolated atoms {r.atom_fraction[0]:.1%}", ""]
    if args.rdf is not None:
        rdf = A.RDF(traj, pairs=_pairs(args.rdf), r_max=args.r_max,
                    nbins=args.nbins).run(**frames)
        done("rdf", rdf, "rdf.csv", "rdf.png")
        import numpy as np
        r = rdf.results
        peaks = ", ".join(f"{p} {r.bins[np.nanargmax(r.rdf[p])]:.2f} Å" for p in r.pairs)
        summary += ["## Partial g(r)", f"- first-peak positions: {peaks}", ""]
    for el in args.msd:
        msd = A.MSD(traj, species=el, n_blocks=args.blocks or 10).run(**frames)
        dif = A.Diffusivity(msd, fit_window=args.fit_window)
        if rank == 0:
            msd.to_csv(out / f"msd_{el}.csv")
            msd.plot(out / f"msd_{el}.png", diffusivity=dif)
            write_h5(h5, f"msd_{el}", msd.results)
            write_h5(h5, f"diffusivity_{el}", dif.results)
            files.extend([f"msd_{el}.csv", f"msd_{el}.png"])
        d = dif.results
        summary += [f"## MSD and diffusivity of {el}",
                    f"- D = {_fmt(d.D_cm2_s, d.D_err_cm2_s, 'cm²/s')} ({d.error_method}; "
                    f"fit window {d.fit_window[0]:.4g}-{d.fit_window[1]:.4g} fs)", ""]
    if args.vdos:
        vd = A.VDOS(traj).run(**frames)
        done("vdos", vd, "vdos.csv", "vdos.png")
        summary += ["## Vibrational DOS",
                    "- peak frequencies: " + ", ".join(
                        f"{s} {f:.2f} THz" for s, f in vd.results.peak_frequency.items()), ""]
    if rank == 0:
        files.append("analysis.h5")
        summary += ["## Files", *[f"- `{f}`" for f in files], "",
                    f"Wall time {time.perf_counter() - t_all:.1f} s on {size} rank(s)."]
        (out / "summary.md").write_text("\n".join(summary) + "\n", encoding="utf-8")
        print(f"hpcnnp analyze: {len(files)} files -> {out}/ (summary.md)", file=sys.stderr)
    return 0


__all__ = ["register", "run"]
