"""Several analyses of one trajectory in one go: CSV + PNG per analysis, one
``analysis.h5``, a ``summary.md`` with the key numbers and a ``summary.json`` with
the numbers a program needs (first-peak positions, D with its convergence verdict,
the segregation excess with its verdict, the smallest interatomic distance).

``hpcnnp analyze`` and the analysis stage of ``hpcnnp run`` both call
:func:`analyze_trajectory`; what to compute is an :class:`AnalysisRequest`.  Under
MPI (``comm``) the frames (for MSD/vDOS the atoms) are split over the ranks and
rank 0 writes the files.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpcnnp.errors import HpcnnpError
from hpcnnp.fileio import write_atomic

from . import _output
from .clusters import ClusterSizes
from .density import LiDensity
from .profiles import InterdiffusionProfiles
from .segregation import Segregation
from .structure import MSD, RDF, VDOS, Diffusivity, MinimumDistance, first_peak
from .trajectory import as_trajectory

__all__ = ["AnalysisRequest", "analyze_trajectory", "ANALYSES"]


@dataclass
class AnalysisRequest:
    """What :func:`analyze_trajectory` computes (empty: nothing) and how.

    Lengths in Å, times in fs.
    """

    segregation: list = field(default_factory=list)    # species
    li_density: bool = False
    density_species: str = "Li"
    profiles: bool = False
    clusters: list = field(default_factory=list)       # species
    rdf: list | None = None                            # ["Li-O", ...]; [] = all pairs
    msd: list = field(default_factory=list)            # species
    vdos: bool = False
    min_distance: bool = False
    bin_width: float = 0.2
    profile_bin_width: float = 0.5
    no_fold: bool = False
    windows: int = 5
    blocks: int | None = None
    grid: tuple | None = None
    spacing: float = 0.5
    cutoff: float = 3.0
    r_max: float = 6.0
    nbins: int = 120
    fit_window: tuple | None = None

    def any(self):
        return bool(self.segregation or self.li_density or self.profiles or self.clusters
                    or self.rdf is not None or self.msd or self.vdos or self.min_distance)


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
    """What every analysis of one call shares."""

    req: "AnalysisRequest"
    traj: object
    out: Path
    frames: dict
    rank: int
    files: list = field(default_factory=list)
    numbers: dict = field(default_factory=dict)

    @property
    def h5(self):
        return self.out / "analysis.h5"

    def done(self, name, obj, csv, png):
        """Write CSV, PNG and the HDF5 group of a finished analysis (rank 0)."""
        if self.rank != 0:
            return
        obj.to_csv(self.out / csv)
        obj.plot(self.out / png)
        _output.write_h5(self.h5, name, obj.results)
        self.files.extend([csv, png])


def _segregation(run):
    a, lines = run.req, []
    for el in a.segregation:
        seg = Segregation(run.traj, species=el, bin_width=a.bin_width,
                          fold=not a.no_fold, n_blocks=a.blocks or 5,
                          windows=a.windows).run(**run.frames)
        run.done(f"segregation_{el}", seg, f"segregation_{el}.csv", f"segregation_{el}.png")
        r = seg.results
        ex, exe = np.atleast_1d(r.excess), np.atleast_1d(r.excess_err)
        run.numbers[f"segregation_{el}"] = {
            "excess": ex.tolist(), "excess_err": exe.tolist(), "unit": "atoms/Å²",
            "window": float(r.window), "converged": bool(r.converged),
            "convergence": str(r.convergence), "simulated_time_fs": float(r.simulated_time)}
        lines += [f"## Segregation of {el}",
                  f"- excess Γ (|x| < {r.window:g} Å, per boundary): " +
                  ", ".join(_fmt(x, e, "atoms/Å²") for x, e in zip(ex, exe)) +
                  f" — {r.convergence} ({r.simulated_time / 1000:.3g} ps analysed)",
                  f"- peak enrichment c/c_bulk: {np.nanmax(r.profile):.3g}; bulk density "
                  f"{np.atleast_1d(r.bulk_density)[0]:.4g} Å⁻³; {len(r.planes)} planes, "
                  f"fold={r.fold}", ""]
    return lines


def _li_density(run):
    a = run.req
    if not a.li_density:
        return []
    el = a.density_species
    den = LiDensity(run.traj, species=el, grid=a.grid, spacing=a.spacing).run(
        **run.frames)
    if run.rank == 0:
        den.write_cube(run.out / f"density_{el}.cube")
        for ax in (0, 1, 2):
            den.plot(run.out / f"density_{el}_proj{'abc'[ax]}.png", axis=ax)
        _output.write_h5(run.h5, f"density_{el}", den.results)
        run.files.extend([f"density_{el}.cube"] + [f"density_{el}_proj{c}.png"
                                                   for c in "abc"])
    r = den.results
    return [f"## {el} probability density",
            f"- grid {tuple(int(g) for g in r.grid)}, voxel {r.voxel_volume:.4g} Å³, "
            f"mean N = {r.n_mean:.2f}, max density {r.density.max():.4g} Å⁻³", ""]


def _profiles(run):
    a = run.req
    if not a.profiles:
        return []
    pr = InterdiffusionProfiles(run.traj, bin_width=a.profile_bin_width,
                                  windows=a.windows).run(**run.frames)
    run.done("profiles", pr, "profiles.csv", "profiles.png")
    return ["## Interdiffusion profiles",
            f"- {len(pr.results.species)} species, {len(pr.results.window_times)} "
            f"time windows, {len(pr.results.bin_centers)} bins", ""]


def _clusters(run):
    a, lines = run.req, []
    for el in a.clusters:
        cl = ClusterSizes(run.traj, species=el, cutoff=a.cutoff,
                            windows=a.windows).run(**run.frames)
        run.done(f"clusters_{el}", cl, f"clusters_{el}.csv", f"clusters_{el}.png")
        r = cl.results
        lines += [f"## {el} clusters (cutoff {a.cutoff} Å)",
                  f"- mean size {r.mean_size.mean():.3g}, weight-average "
                  f"{r.weight_mean_size.mean():.3g}, largest {int(r.largest.max())} atoms; "
                  f"isolated atoms {r.atom_fraction[0]:.1%}", ""]
    return lines


def _rdf(run):
    a = run.req
    if a.rdf is None:
        return []
    rdf = RDF(run.traj, pairs=_pairs(a.rdf), r_max=a.r_max, nbins=a.nbins).run(
        **run.frames)
    run.done("rdf", rdf, "rdf.csv", "rdf.png")
    r = rdf.results
    run.numbers["first_peaks"] = {p: first_peak(r.bins, r.rdf[p]) for p in r.pairs}
    peaks = ", ".join(f"{p} {first_peak(r.bins, r.rdf[p]):.2f} Å" for p in r.pairs)
    return ["## Partial g(r)", f"- first-peak positions: {peaks}", ""]


def _msd(run):
    a, lines = run.req, []
    for el in a.msd:
        msd = MSD(run.traj, species=el, n_blocks=a.blocks or 10).run(**run.frames)
        dif = Diffusivity(msd, fit_window=a.fit_window)
        if run.rank == 0:
            msd.to_csv(run.out / f"msd_{el}.csv")
            msd.plot(run.out / f"msd_{el}.png", diffusivity=dif)
            _output.write_h5(run.h5, f"msd_{el}", msd.results)
            _output.write_h5(run.h5, f"diffusivity_{el}", dif.results)
            run.files.extend([f"msd_{el}.csv", f"msd_{el}.png"])
        d = dif.results
        run.numbers[f"diffusivity_{el}"] = {
            "D_cm2_s": float(d.D_cm2_s), "D_err_cm2_s": float(d.D_err_cm2_s),
            "fit_window_fs": [float(x) for x in d.fit_window],
            "converged": bool(d.converged), "convergence": str(d.convergence),
            "simulated_time_fs": float(d.simulated_time)}
        lines += [f"## MSD and diffusivity of {el}",
                  f"- D = {_fmt(d.D_cm2_s, d.D_err_cm2_s, 'cm²/s')} ({d.error_method}; "
                  f"fit window {d.fit_window[0]:.4g}-{d.fit_window[1]:.4g} fs)",
                  f"- {d.convergence} ({d.simulated_time / 1000:.3g} ps analysed)", ""]
    return lines


def _vdos(run):
    if not run.req.vdos:
        return []
    vd = VDOS(run.traj).run(**run.frames)
    run.done("vdos", vd, "vdos.csv", "vdos.png")
    return ["## Vibrational DOS", "- peak frequencies: " + ", ".join(
        f"{s} {f:.2f} THz" for s, f in vd.results.peak_frequency.items()), ""]


def _min_distance(run):
    if not run.req.min_distance:
        return []
    md = MinimumDistance(run.traj).run(**run.frames)
    r = md.results
    k = int(np.argmin(r.d_min))
    times = np.asarray(run.traj.times, dtype=float)[np.asarray(md.frames, dtype=int)]
    if run.rank == 0:
        _output.write_csv(run.out / "min_distance.csv", {"time_fs": times, "d_min": r.d_min},
                          header="smallest interatomic distance per frame (Angstrom)")
        fig = _output.new_figure(figsize=(6, 3.5))
        ax = fig.add_subplot()
        ax.plot(times / 1000.0, r.d_min, lw=1)
        ax.set_xlabel("time (ps)")
        ax.set_ylabel("smallest distance (Å)")
        _output.save_figure(fig, run.out / "min_distance.png")
        _output.write_h5(run.h5, "min_distance", r)
        run.files.extend(["min_distance.csv", "min_distance.png"])
    run.numbers["min_distance"] = {"overall": float(r.overall), "frame": int(r.overall_frame),
                                   "pair": str(r.pair_species[k])}
    return ["## Smallest interatomic distance",
            f"- {r.overall:.3f} Å over all frames (frame {r.overall_frame}, "
            f"{r.pair_species[k]})", ""]


#: the analyses, in the order of summary.md
ANALYSES = (_min_distance, _segregation, _li_density, _profiles, _clusters, _rdf, _msd,
            _vdos)


def analyze_trajectory(trajectory, output_dir, request, *, start=None, stop=None, step=None,
                       comm=None, progress=False, title=None):
    """Run the requested analyses of one trajectory; write the files (rank 0).

    Parameters
    ----------
    trajectory : path or trajectory
        An H5MD file or a member of the trajectory family.
    output_dir : path
    request : AnalysisRequest
    start, stop, step : int, optional
        Frame selection.
    comm : mpi4py communicator, optional
    progress : bool
        Frames/s lines.
    title : str, optional
        First line of summary.md.

    Returns
    -------
    dict
        ``numbers`` (see the module docstring), ``files``, ``n_atoms``,
        ``n_frames``, ``simulated_time_fs`` (of the selection) -- also written to
        ``summary.json``.
    """
    if not request.any():
        raise HpcnnpError("no analysis requested (segregation, li_density, profiles, "
                          "clusters, rdf, msd, vdos or min_distance)")
    rank = 0 if comm is None else comm.Get_rank()
    size = 1 if comm is None else comm.Get_size()
    out = Path(output_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    traj = as_trajectory(trajectory)
    frames = dict(start=start, stop=stop, step=step, comm=comm, progress=progress)
    run = _Run(request, traj, out, frames, rank)
    summary = [f"# {title or f'hpcnnp analyze: {trajectory}'}", "",
               f"{traj.n_atoms} atoms, {traj.n_frames} frames in the file; selection "
               f"start={start} stop={stop} step={step}; {size} MPI rank(s).", ""]
    sc = traj.metadata.get("structure_class")
    if sc:
        summary += [f"Structure: {sc}", ""]
    t_all = time.perf_counter()
    if rank == 0 and run.h5.exists():
        run.h5.unlink()
    for analysis in ANALYSES:
        summary += analysis(run)
    times = np.asarray(traj.times, dtype=float)[slice(start, stop, step)]
    result = {"numbers": run.numbers, "files": run.files + ["analysis.h5"],
              "n_atoms": int(traj.n_atoms), "n_frames": int(len(times)),
              "simulated_time_fs": float(times[-1] - times[0]) if len(times) > 1 else 0.0}
    if rank == 0:
        summary += ["## Files", *[f"- `{f}`" for f in result["files"]], "",
                    f"Wall time {time.perf_counter() - t_all:.1f} s on {size} rank(s)."]
        write_atomic(out / "summary.md", "\n".join(summary) + "\n")
        write_atomic(out / "summary.json", json.dumps(result, indent=1, default=float) + "\n")
    return result


