"""Property benchmarks: reference trajectories against trajectories of the potential.

For every pair (reference trajectory, potential trajectory at the same temperature)
the partial RDFs, the vDOS and the MSD/diffusivity of a species (Li) are computed
with the same code (:mod:`hpcnnp.validation.observables`) and overlaid: PNG and CSV
per temperature, plus a summary row per quantity (first RDF peak positions and the
relative L2 difference, vDOS overlap and mean frequencies, D ± σ of both); with two or
more temperatures an Arrhenius fit of both sets of diffusivities.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpcnnp.geometry import perpendicular_widths

from . import observables as obs
from . import plots
from .report import write_columns, write_csv

__all__ = ["TrajectoryPair", "rdf_benchmark", "vdos_benchmark", "diffusion_benchmark"]


@dataclass
class TrajectoryPair:
    """A reference and a potential trajectory at one temperature; ``label`` names files."""

    reference: object
    ml: object
    label: str

    @property
    def temperature(self):
        return self.reference.temperature


def _first_peak(r, g):
    """Position (Å) of the first maximum of g(r) above 1 (NaN if none)."""
    g = np.asarray(g)
    above = np.flatnonzero(g > 1.0)
    if not len(above):
        return float("nan")
    k = above[0]
    while k + 1 < len(g) and g[k + 1] >= g[k]:
        k += 1
    return float(r[k])


def rdf_benchmark(pairs, out_dir, r_max=None, n_bins=200):
    """Partial RDF overlays per temperature; returns summary rows.

    Rows: (label, T, pair, first peak ref (Å), first peak ML (Å), relative L2 difference).
    """
    out_dir = Path(out_dir)
    rows, files = [], []
    for p in pairs:
        if r_max is None:
            rm = min(perpendicular_widths(p.reference.cells[0]).min(),
                     perpendicular_widths(p.ml.cells[0]).min()) * 0.5
            rm = min(8.0, rm)
        else:
            rm = r_max
        r, g_ref = obs.rdf(p.reference, r_max=rm, n_bins=n_bins)
        _, g_ml = obs.rdf(p.ml, r_max=rm, n_bins=n_bins, pairs=list(g_ref))
        cols = {"r_A": r}
        for pair in g_ref:
            name = f"{pair[0]}-{pair[1]}"
            cols[f"g_{name}_ref"] = g_ref[pair]
            cols[f"g_{name}_ml"] = g_ml[pair]
            rows.append((p.label, p.temperature, name, _first_peak(r, g_ref[pair]),
                         _first_peak(r, g_ml[pair]), obs.rdf_distance(r, g_ref[pair],
                                                                      g_ml[pair])))
        files.append(write_columns(out_dir / f"rdf_{p.label}.csv", cols))
        files.append(plots.rdf_plot(r, g_ref, g_ml, out_dir / f"rdf_{p.label}.png",
                                    title=f"partial RDFs at {p.temperature:g} K"))
    header = ("label", "T_K", "pair", "first_peak_ref_A", "first_peak_ml_A",
              "relative_L2_difference")
    files.append(write_csv(out_dir / "rdf_summary.csv", header, rows))
    return header, rows, files


def vdos_benchmark(pairs, out_dir, n_lags=None):
    """vDOS overlays per temperature; returns summary rows.

    Rows: (label, T, element, overlap, mean frequency ref (THz), mean frequency ML).
    """
    out_dir = Path(out_dir)
    rows, files = [], []
    for p in pairs:
        nl = n_lags
        if nl is None:
            nl = min(p.reference.n_frames, p.ml.n_frames) // 2
        nu, d_ref = obs.vdos(p.reference, n_lags=nl)
        nu_ml, d_ml = obs.vdos(p.ml, n_lags=nl)
        if len(nu_ml) != len(nu) or not np.allclose(nu_ml, nu):
            d_ml = {k: np.interp(nu, nu_ml, v) for k, v in d_ml.items()}
        cols = {"frequency_THz": nu}
        for k in d_ref:
            cols[f"vdos_{k}_ref"] = d_ref[k]
            cols[f"vdos_{k}_ml"] = d_ml.get(k, np.full_like(nu, np.nan))
            if k in d_ml:
                rows.append((p.label, p.temperature, k,
                             obs.spectral_overlap(nu, d_ref[k], d_ml[k]),
                             float(np.trapezoid(nu * d_ref[k], nu)),
                             float(np.trapezoid(nu * d_ml[k], nu))))
        files.append(write_columns(out_dir / f"vdos_{p.label}.csv", cols))
        files.append(plots.vdos_plot(nu, d_ref, d_ml, out_dir / f"vdos_{p.label}.png",
                                     title=f"vDOS at {p.temperature:g} K "
                                     "(Fourier transform of the VACF)"))
    header = ("label", "T_K", "element", "overlap", "mean_frequency_ref_THz",
              "mean_frequency_ml_THz")
    files.append(write_csv(out_dir / "vdos_summary.csv", header, rows))
    return header, rows, files


def diffusion_benchmark(pairs, out_dir, species="Li", window=(0.1, 0.5), n_blocks=4):
    """MSD overlays, diffusivities and (>= 2 temperatures) Arrhenius fits.

    Returns (header, rows, files, arrhenius) with rows (label, T, D_ref, err_ref, D_ML,
    err_ML, fit window start/end in fs) in cm²/s and ``arrhenius`` a dict
    {"reference": ArrheniusFit|None, "ml": ArrheniusFit|None, "message": str}.
    """
    out_dir = Path(out_dir)
    res_ref = [obs.diffusion(p.reference, species, window, n_blocks) for p in pairs]
    res_ml = [obs.diffusion(p.ml, species, window, n_blocks) for p in pairs]
    files = []
    rows = []
    for p, rr, rm in zip(pairs, res_ref, res_ml):
        rows.append((p.label, p.temperature, rr.D, rr.D_err, rm.D, rm.D_err,
                     rr.fit["t_lo"], rr.fit["t_hi"], rr.error_method))
        n = min(len(rr.t), len(rm.t))
        files.append(write_columns(out_dir / f"msd_{p.label}.csv",
                                   {"t_fs": rr.t[:n], "msd_ref_A2": rr.msd[:n],
                                    "msd_ml_A2": rm.msd[:n]}))
    files.append(plots.msd_plot(res_ref, res_ml, out_dir / "msd.png"))
    header = ("label", "T_K", "D_ref_cm2_s", "D_ref_err_cm2_s", "D_ml_cm2_s",
              "D_ml_err_cm2_s", "fit_start_fs", "fit_end_fs", "error_method")
    files.append(write_csv(out_dir / "diffusion.csv", header, rows))
    arr = {"reference": None, "ml": None, "message": ""}
    temps = [p.temperature for p in pairs]
    if len(set(temps)) >= 2:
        data, arows = [], []
        for key, res, label, style in (("reference", res_ref, "reference", plots.REF_STYLE),
                                       ("ml", res_ml, "HDNNP", plots.ML_STYLE)):
            T = np.array([r.temperature for r in res])
            D = np.array([r.D for r in res])
            E = np.array([r.D_err for r in res])
            try:
                fit = obs.arrhenius_fit(T, D, E)
            except obs.ObservableError as exc:
                fit = None
                arr["message"] += f"{label}: {exc}. "
            arr[key] = fit
            data.append((label, T, D, E, fit, style))
            if fit is not None:
                arows.append((label, fit.Ea, fit.Ea_err, fit.D0, fit.lnD0_err))
        files.append(plots.arrhenius_plot(data, out_dir / "arrhenius.png", species))
        files.append(write_csv(out_dir / "arrhenius.csv",
                               ("model", "Ea_eV", "Ea_err_eV", "D0_cm2_s", "lnD0_err"),
                               arows))
    else:
        arr["message"] = "Arrhenius fit needs two or more temperatures."
    return header, rows, files, arr
