"""Property benchmarks: reference trajectories against trajectories of the potential.

For every pair (reference trajectory, potential trajectory at the same temperature)
the partial RDFs, the vDOS and the MSD/diffusivity of a species (Li) are computed
with the project's one implementation of each (:mod:`hpcnnp.analysis`: ``RDF``,
``VDOS``, ``MSD``, ``Diffusivity``, ``arrhenius``) and overlaid: PNG and CSV per
temperature, plus a summary row per quantity (first RDF peak positions and the
relative L2 difference, vDOS overlap and mean frequencies, D ± σ of both with the
convergence verdict); with two or more temperatures an Arrhenius fit of both sets
of diffusivities.  The metrics are defined in :mod:`hpcnnp.validation.criteria`.

Choices made here, on top of the analyses' defaults: RDFs up to min(8 Å, half the
smallest cell width), averaged over at most 100 evenly strided frames; vDOS spectra
normalised to unit area (per element and for all atoms); MSDs with the centre of mass
of the whole cell removed, unwrapped with image flags when the trajectory has them
(else by minimum-image steps between frames).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpcnnp.analysis import MSD, RDF, VDOS, AnalysisError, Diffusivity, arrhenius
from hpcnnp.analysis._pbc import perpendicular_widths
from hpcnnp.errors import HpcnnpError

from . import plots
from .criteria import first_peak, rdf_distance, spectral_overlap
from .report import write_columns, write_csv
from .trajectory import frame_interval, nominal_temperature

__all__ = ["TrajectoryPair", "rdf_benchmark", "vdos_benchmark", "diffusion_benchmark",
           "partial_rdfs", "vdos_spectra", "diffusion", "rdf_range", "ObservableError"]


class ObservableError(HpcnnpError, ValueError):
    """An observable cannot be computed from the given trajectory."""


@dataclass
class TrajectoryPair:
    """A reference and a potential trajectory at one temperature; ``label`` names files."""

    reference: object
    ml: object
    label: str

    @property
    def temperature(self):
        return nominal_temperature(self.reference)


def rdf_range(*trajs, cap=8.0):
    """min(cap, half the smallest perpendicular cell width of the first frames), Å."""
    half = min(0.5 * perpendicular_widths(t.frame(0)["box"]).min() for t in trajs)
    return min(cap, half)


def partial_rdfs(traj, r_max, n_bins=200, pairs=None, max_frames=100, frames=(None, None)):
    """Partial RDFs of ``traj`` (hpcnnp.analysis.RDF over <= max_frames strided frames
    of ``frames`` = (start, stop)).

    Returns
    -------
    r : (n_bins,) bin centres, Å
    g : dict (a, b) -> (n_bins,) array (NaN of absent pairs as 0)
    """
    start, stop = frames
    n = len(range(traj.n_frames)[start:stop])
    step = max(1, -(-n // int(max_frames)))
    res = RDF(traj, pairs=pairs, r_max=r_max, nbins=int(n_bins)).run(
        start, stop, step).results
    return res.bins, {tuple(p.split("-")): np.nan_to_num(res.rdf[p]) for p in res.pairs}


def vdos_spectra(traj, frames=(None, None)):
    """vDOS per element and total (all atoms), each normalised to unit area over ν,
    of the frames ``frames`` = (start, stop).

    Returns ``nu`` (THz) and a dict element -> spectrum plus ``"total"``.
    """
    res = VDOS(traj, dt=frame_interval(traj)).run(*frames).results
    nu = np.asarray(res.frequencies)

    def unit(d):
        d = np.clip(np.asarray(d, dtype=float), 0.0, None)
        area = np.trapezoid(d, nu)
        return d / area if area > 0 else d
    out = {el: unit(res.vdos[el]) for el in res.species}
    out["total"] = unit(res.total)
    return nu, out


def diffusion(traj, species="Li", window=(0.1, 0.5), n_blocks=4):
    """MSD and diffusivity of ``species`` (centre-of-mass drift removed).

    ``window``: fit window as fractions of the longest lag.  Returns the
    :class:`~hpcnnp.analysis.Diffusivity` results with ``msd``, ``lagtimes`` (fs) and
    ``temperature`` (K) added.
    """
    lo_f, hi_f = window
    if not 0.0 <= lo_f < hi_f <= 1.0:
        raise ObservableError(f"fit window {window}: need 0 <= start < end <= 1 "
                              "(fractions of the run)")
    unwrap = "image" if "image" in traj.fields else "nojump"
    try:
        m = MSD(traj, species, unwrap=unwrap, n_blocks=max(int(n_blocks), 1),
                remove_drift=True).run()
    except AnalysisError as exc:
        raise ObservableError(str(exc)) from None
    t = np.asarray(m.results.lagtimes)
    n_in = int(np.sum((t >= lo_f * t[-1]) & (t <= hi_f * t[-1])))
    if n_in < 3:
        raise ObservableError(f"fit window {lo_f:g}-{hi_f:g} of {t[-1]:g} fs holds "
                              f"{n_in} MSD points (need >= 3): the trajectory is too short")
    r = Diffusivity(m, fit_window=(lo_f * t[-1], hi_f * t[-1])).results
    r.msd, r.lagtimes = np.asarray(m.results.msd), t
    r.temperature = nominal_temperature(traj)
    return r


def rdf_benchmark(pairs, out_dir, r_max=None, n_bins=200, labels=("reference", "HDNNP")):
    """Partial RDF overlays per temperature; returns summary rows.

    Rows: (label, T, pair, first peak ref (Å), first peak ML (Å), relative L2 difference).
    """
    out_dir = Path(out_dir)
    rows, files = [], []
    for p in pairs:
        rm = rdf_range(p.reference, p.ml) if r_max is None else r_max
        r, g_ref = partial_rdfs(p.reference, rm, n_bins)
        _, g_ml = partial_rdfs(p.ml, rm, n_bins, pairs=list(g_ref))
        cols = {"r_A": r}
        for pair in g_ref:
            name = f"{pair[0]}-{pair[1]}"
            cols[f"g_{name}_ref"] = g_ref[pair]
            cols[f"g_{name}_ml"] = g_ml[pair]
            rows.append((p.label, p.temperature, name, first_peak(r, g_ref[pair]),
                         first_peak(r, g_ml[pair]), rdf_distance(r, g_ref[pair],
                                                                 g_ml[pair])))
        files.append(write_columns(out_dir / f"rdf_{p.label}.csv", cols))
        files.append(plots.rdf_plot(r, g_ref, g_ml, out_dir / f"rdf_{p.label}.png",
                                    title=f"partial RDFs: {p.label}, {p.temperature:g} K",
                                    labels=labels))
    header = ("label", "T_K", "pair", "first_peak_ref_A", "first_peak_ml_A",
              "relative_L2_difference")
    files.append(write_csv(out_dir / "rdf_summary.csv", header, rows))
    return header, rows, files


def vdos_benchmark(pairs, out_dir, labels=("reference", "HDNNP")):
    """vDOS overlays per temperature; returns summary rows.

    Rows: (label, T, element, overlap, mean frequency ref (THz), mean frequency ML).
    """
    out_dir = Path(out_dir)
    rows, files = [], []
    for p in pairs:
        nu, d_ref = vdos_spectra(p.reference)
        nu_ml, d_ml = vdos_spectra(p.ml)
        if len(nu_ml) != len(nu) or not np.allclose(nu_ml, nu):
            d_ml = {k: np.interp(nu, nu_ml, v) for k, v in d_ml.items()}
        cols = {"frequency_THz": nu}
        for k in d_ref:
            cols[f"vdos_{k}_ref"] = d_ref[k]
            cols[f"vdos_{k}_ml"] = d_ml.get(k, np.full_like(nu, np.nan))
            if k in d_ml:
                rows.append((p.label, p.temperature, k,
                             spectral_overlap(nu, d_ref[k], d_ml[k]),
                             float(np.trapezoid(nu * d_ref[k], nu)),
                             float(np.trapezoid(nu * d_ml[k], nu))))
        files.append(write_columns(out_dir / f"vdos_{p.label}.csv", cols))
        files.append(plots.vdos_plot(nu, d_ref, d_ml, out_dir / f"vdos_{p.label}.png",
                                     title=f"vDOS: {p.label}, {p.temperature:g} K "
                                     "(Fourier transform of the VACF)", labels=labels))
    header = ("label", "T_K", "element", "overlap", "mean_frequency_ref_THz",
              "mean_frequency_ml_THz")
    files.append(write_csv(out_dir / "vdos_summary.csv", header, rows))
    return header, rows, files


def _arrhenius_fits(res_ref, res_ml, out_dir, species):
    """Arrhenius fits of both sets (>= 2 temperatures): plot, CSV and messages."""
    arr = {"reference": None, "ml": None, "message": ""}
    data, arows = [], []
    for key, res, label, style in (("reference", res_ref, "reference", plots.REF_STYLE),
                                   ("ml", res_ml, "HDNNP", plots.ML_STYLE)):
        T = np.array([r.temperature for r in res])
        D = np.array([r.D_cm2_s for r in res])
        E = np.array([r.D_err_cm2_s for r in res])
        try:
            fit = arrhenius(T, D, E)
        except AnalysisError as exc:
            fit = None
            arr["message"] += f"{label}: {exc}. "
        arr[key] = fit
        data.append((label, T, D, E, fit, style))
        if fit is not None:
            arows.append((label, fit.Ea, fit.Ea_err, fit.D0, fit.lnD0_err))
    files = [plots.arrhenius_plot(data, out_dir / "arrhenius.png", species),
             write_csv(out_dir / "arrhenius.csv",
                       ("model", "Ea_eV", "Ea_err_eV", "D0_cm2_s", "lnD0_err"), arows)]
    return arr, files


def diffusion_benchmark(pairs, out_dir, species="Li", window=(0.1, 0.5), n_blocks=4,
                        labels=("reference", "HDNNP")):
    """MSD overlays, diffusivities and (>= 2 temperatures) Arrhenius fits.

    Returns (header, rows, files, arrhenius) with rows (label, T, D_ref, err_ref, D_ML,
    err_ML, fit window start/end in fs, error method, verdict ref, verdict ML) in cm²/s
    and ``arrhenius`` a dict {"reference": ArrheniusFit|None, "ml": ArrheniusFit|None,
    "message": str}.
    """
    out_dir = Path(out_dir)
    res_ref = [diffusion(p.reference, species, window, n_blocks) for p in pairs]
    res_ml = [diffusion(p.ml, species, window, n_blocks) for p in pairs]
    files, rows = [], []
    for p, rr, rm in zip(pairs, res_ref, res_ml):
        rows.append((p.label, p.temperature, rr.D_cm2_s, rr.D_err_cm2_s, rm.D_cm2_s,
                     rm.D_err_cm2_s, rr.fit_window[0], rr.fit_window[1], rr.error_method,
                     str(rr.convergence), str(rm.convergence)))
        n = min(len(rr.lagtimes), len(rm.lagtimes))
        files.append(write_columns(out_dir / f"msd_{p.label}.csv",
                                   {"t_fs": rr.lagtimes[:n], "msd_ref_A2": rr.msd[:n],
                                    "msd_ml_A2": rm.msd[:n]}))
    files.append(plots.msd_plot(res_ref, res_ml, out_dir / "msd.png", labels=labels))
    header = ("label", "T_K", "D_ref_cm2_s", "D_ref_err_cm2_s", "D_ml_cm2_s",
              "D_ml_err_cm2_s", "fit_start_fs", "fit_end_fs", "error_method",
              "convergence_ref", "convergence_ml")
    files.append(write_csv(out_dir / "diffusion.csv", header, rows))
    if len({p.temperature for p in pairs}) >= 2:
        arr, more = _arrhenius_fits(res_ref, res_ml, out_dir, species)
        files += more
    else:
        arr = {"reference": None, "ml": None,
               "message": "Arrhenius fit needs two or more temperatures."}
    return header, rows, files, arr
