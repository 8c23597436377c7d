"""Structural and dynamical observables of MD trajectories, for reference-vs-potential
benchmarks: partial RDFs, vDOS from the velocity autocorrelation, MSD, tracer
diffusivity and Arrhenius fits.

When :mod:`hpcnnp.analysis` is installed (it is part of hpcnnp), :func:`rdf`,
:func:`vdos` and :func:`diffusion` delegate to its ``RDF``, ``VDOS``, ``MSD`` and
``Diffusivity`` classes, so that validation and production analyses share one
implementation; the small in-memory versions below are the fallback (same formulas,
``use_analysis=False`` selects them).

Partial radial distribution functions
=====================================
g_ab(r) = <n_ab(r)> / (N_a ρ_b 4π r² Δr),  ρ_b = (N_b - δ_ab) / V,

where n_ab(r) counts the b neighbours (all periodic images) of the a atoms in the shell
[r, r + Δr); averaged over frames, each frame with its own volume (NPT).  An ideal gas
gives g = 1.  Keep r_max below half the smallest cell width, where the image of an atom
itself would enter the shell.

Vibrational density of states
=============================
From the velocity autocorrelation C_i(τ) = <v_i(t)·v_i(t+τ)>_t (all time origins,
computed by FFT with zero padding, Wiener-Khinchin), the vDOS is its cosine transform
D(ν) ∝ ∫ C(τ) w(τ) cos(2πντ) dτ with a Hann window w to suppress truncation ripples;
spectra are normalised to unit area over ν (THz).  Per element: atoms of that element
with equal weight; total: all atoms with equal weight.  The
frame interval must resolve the fastest vibration (Nyquist: ν_max = 1/(2Δt), 50 THz at
10 fs; O-H stretches need Δt <= 5 fs).  Without stored velocities they are taken as
central differences of the unwrapped positions, which damps high frequencies.

Mean-squared displacement and diffusivity
=========================================
MSD(τ) = <|r_i(t+τ) - r_i(t)|²>_{i,t} of *unwrapped* positions (positions written
wrapped into the cell are unwrapped here by the minimum-image frame-to-frame jump,
which requires that no atom moves more than half a cell width between frames), all
time origins, by the FFT algorithm (Calandrini et al., J. Chim. Phys. 2011,
https://doi.org/10.1051/sfn/201112010).  The centre-of-mass drift of the whole system
is removed by default.  The tracer diffusivity D* = slope / 6 comes from a
least-squares line through MSD(τ) in a fitting window (default 10 %–50 % of the run:
after the ballistic/caged regime, before the long lags with few time origins).  The
uncertainty is the standard error of D over ``n_blocks`` independent blocks of the
trajectory (each analysed with the same relative window); the fit's own standard error
is reported beside it but underestimates the error (MSD points are correlated).
D in cm²/s = D in Å²/fs × 0.1.

Arrhenius
=========
ln D = ln D0 - E_a / (k_B T), weighted least squares with σ(ln D) = σ_D / D;
E_a in eV with its standard error (needs three or more temperatures for an error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpcnnp.errors import HpcnnpError
from hpcnnp.geometry import perpendicular_widths
from hpcnnp.units import A2_PER_FS_TO_CM2_PER_S, KB_EV

__all__ = ["unwrap", "rdf", "vacf", "vdos", "msd", "fit_diffusivity", "diffusion",
           "DiffusionResult", "arrhenius_fit", "ArrheniusFit", "KB_EV",
           "A2_PER_FS_TO_CM2_PER_S", "element_pairs", "spectral_overlap", "rdf_distance"]


class ObservableError(HpcnnpError, ValueError):
    """An observable cannot be computed from the given trajectory."""


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

def unwrap(positions, cells):
    """Unwrapped positions (F, N, 3) from positions wrapped into the cell.

    Frame-to-frame jumps are taken in fractional coordinates with the minimum-image
    convention and accumulated; each jump is converted with its frame's cell (works
    for NPT).  Already unwrapped input is returned unchanged (up to rounding) as long
    as no atom moves more than half a cell width between frames.
    """
    pos = np.asarray(positions, dtype=float)
    cells = np.asarray(cells, dtype=float)
    if cells.ndim == 2:
        cells = np.broadcast_to(cells, (len(pos), 3, 3))
    inv = np.linalg.inv(cells)
    frac = np.einsum("fni,fij->fnj", pos, inv)
    d = np.diff(frac, axis=0)
    d -= np.round(d)
    steps = np.einsum("fni,fij->fnj", d, cells[1:])
    out = np.empty_like(pos)
    out[0] = pos[0]
    out[1:] = pos[0] + np.cumsum(steps, axis=0)
    return out


def element_pairs(elements):
    """Unordered element pairs (a, b), a before b in the given order."""
    elements = list(elements)
    return [(a, b) for i, a in enumerate(elements) for b in elements[i:]]


def _analysis(use=True):
    """(hpcnnp.analysis.structure, ArrayTrajectory) or None."""
    if not use:
        return None
    try:
        from hpcnnp.analysis import structure
        from hpcnnp.analysis.trajectory import ArrayTrajectory
    except ImportError:
        return None
    return structure, ArrayTrajectory


# ---------------------------------------------------------------------------------------
# RDF
# ---------------------------------------------------------------------------------------

def rdf(traj, r_max=None, n_bins=200, pairs=None, max_frames=100, use_analysis=True):
    """Partial RDFs g_ab(r) averaged over (up to ``max_frames``, evenly spaced) frames.

    Parameters
    ----------
    traj : hpcnnp.validation.trajectory.Trajectory
    r_max : float, Å
        Default: min(8, half the smallest cell width of the first frame).
    n_bins : int
    pairs : list of (a, b), optional
        Default: all pairs of the elements present.

    Returns
    -------
    r : (n_bins,) bin centres, Å
    g : dict (a, b) -> (n_bins,) array
    """
    half = 0.5 * perpendicular_widths(traj.cells[0]).min()
    r_max = min(8.0, half) if r_max is None else float(r_max)
    if not r_max > 0:
        raise ObservableError("rdf: r_max must be > 0")
    symbols = np.asarray(traj.symbols)
    present = list(dict.fromkeys(symbols.tolist()))
    pairs = element_pairs(present) if pairs is None else [tuple(p) for p in pairs]
    edges = np.linspace(0.0, r_max, int(n_bins) + 1)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    counts = {p: np.zeros(n_bins) for p in pairs}
    n_of = {el: int(np.sum(symbols == el)) for el in present}
    frames = np.unique(np.linspace(0, traj.n_frames - 1,
                                   min(max_frames, traj.n_frames)).round().astype(int))
    ana = _analysis(use_analysis)
    if ana is not None and all(r_max <= 0.5 * perpendicular_widths(traj.cells[f]).min() for f in frames):
        structure, ArrayTrajectory = ana
        at = ArrayTrajectory(traj.positions[frames], traj.cells[frames], symbols,
                             masses=traj.masses, name=traj.name)
        res = structure.RDF(at, pairs=pairs, r_max=r_max, nbins=int(n_bins)).run().results
        return res.bins, {p: np.nan_to_num(res.rdf[f"{p[0]}-{p[1]}"]) for p in pairs}
    norm = {p: np.zeros(n_bins) for p in pairs}
    for f in frames:
        i, j, d = _pairs_within(symbols, traj.positions[f], traj.cells[f], r_max)
        vol = abs(np.linalg.det(traj.cells[f]))
        si, sj = symbols[i], symbols[j]
        for a, b in pairs:
            if a not in n_of or b not in n_of:
                continue
            sel = (si == a) & (sj == b)
            counts[(a, b)] += np.histogram(d[sel], bins=edges)[0]
            rho_b = (n_of[b] - (a == b)) / vol
            norm[(a, b)] += n_of[a] * rho_b * shell
    r = 0.5 * (edges[1:] + edges[:-1])
    g = {p: np.divide(counts[p], norm[p], out=np.zeros(n_bins), where=norm[p] > 0)
         for p in pairs}
    return r, g


def _pairs_within(symbols, positions, cell, r_max, max_dense=2500):
    """Ordered pairs (i, j, d), i != j, closer than r_max (all periodic images).

    Small cells: dense minimum-image search (orthorhombic: rounding of fractional
    differences; otherwise the minimum over the 27 neighbouring images), exact for
    r_max up to half the smallest cell width; large cells: ASE's neighbour list.
    """
    n = len(positions)
    if n > max_dense or r_max > 0.5 * perpendicular_widths(cell).min():
        from ase import Atoms
        from ase.neighborlist import neighbor_list
        atoms = Atoms(symbols=list(symbols), positions=positions, cell=cell, pbc=True)
        return neighbor_list("ijd", atoms, r_max)
    cell = np.asarray(cell, dtype=float)
    frac = positions @ np.linalg.inv(cell)
    shifts = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1)
                       for c in (-1, 0, 1)], dtype=float) @ cell
    out_i, out_j, out_d = [], [], []
    ortho = np.allclose(cell - np.diag(np.diag(cell)), 0.0, atol=1e-8)
    block = max(1, int(2e6 // ((1 if ortho else 27) * n)))
    for lo in range(0, n, block):
        df = frac[None, :, :] - frac[lo:lo + block, None, :]
        df -= np.round(df)
        dv = df @ cell
        if ortho:
            d2 = np.einsum("ijk,ijk->ij", dv, dv)
        else:
            d2 = np.min(np.sum((dv[:, :, None, :] + shifts) ** 2, axis=3), axis=2)
        ii, jj = np.nonzero(d2 < r_max * r_max)
        ii += lo
        keep = ii != jj
        out_i.append(ii[keep])
        out_j.append(jj[keep])
        out_d.append(np.sqrt(d2[ii[keep] - lo, jj[keep]]))
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)


def rdf_distance(r, g_ref, g_ml):
    """Relative L2 difference sqrt(∫(g_ml - g_ref)² dr / ∫ g_ref² dr) (0 = identical)."""
    den = np.trapezoid(np.asarray(g_ref) ** 2, r)
    if den <= 0:
        return float("nan")
    return float(np.sqrt(np.trapezoid((np.asarray(g_ml) - g_ref) ** 2, r) / den))


# ---------------------------------------------------------------------------------------
# VACF / vDOS
# ---------------------------------------------------------------------------------------

def vacf(velocities, n_lags=None, block=256):
    """Velocity autocorrelation per atom, averaged over all time origins.

    Parameters
    ----------
    velocities : (F, N, 3) array
    n_lags : int, optional
        Number of lags τ = 0 .. n_lags-1 (default F // 2).

    Returns
    -------
    (n_lags, N) array: C_i(τ) = <v_i(t)·v_i(t+τ)>_t
    """
    v = np.asarray(velocities, dtype=float)
    nf, n = v.shape[:2]
    n_lags = nf // 2 if n_lags is None else int(n_lags)
    if not 1 <= n_lags <= nf:
        raise ObservableError(f"vacf: n_lags must be in 1..{nf}")
    nfft = 1 << int(np.ceil(np.log2(2 * nf)))
    out = np.empty((n_lags, n))
    norm = (nf - np.arange(n_lags))[:, None]
    for lo in range(0, n, block):
        vb = v[:, lo:lo + block]
        spec = np.fft.rfft(vb, n=nfft, axis=0)
        ac = np.fft.irfft((spec * spec.conj()).real, n=nfft, axis=0)[:n_lags].sum(axis=2)
        out[:, lo:lo + block] = ac / norm
    return out


def _spectrum(c, dt_fs):
    """Hann-windowed cosine transform of C(τ), τ = k dt; returns ν (THz), D (unit area)."""
    m = len(c)
    w = np.cos(0.5 * np.pi * np.arange(m) / m) ** 2
    cw = c * w
    sym = np.concatenate([cw, cw[-2:0:-1]]) if m > 2 else cw
    spec = np.fft.rfft(sym).real * dt_fs
    nu = np.fft.rfftfreq(len(sym), d=dt_fs) * 1000.0      # 1/fs -> THz
    spec = np.clip(spec, 0.0, None)
    area = np.trapezoid(spec, nu)
    return nu, (spec / area if area > 0 else spec)


def vdos(traj, n_lags=None, elements=None, use_analysis=True):
    """vDOS per element and total (all atoms), each normalised to unit area.

    Parameters
    ----------
    traj : Trajectory
        With velocities (Å/fs) or positions close enough in time for finite
        differences (see the module docstring).
    n_lags : int, optional
        Correlation length in frames (default half the run); the frequency resolution
        is 1 / (2 n_lags Δt) (the :mod:`hpcnnp.analysis` path uses the whole run).

    Returns
    -------
    nu : (M,) THz
    dos : dict element -> (M,), plus "total"
    """
    v = traj.velocities_or_differences()
    dt = traj.frame_interval
    symbols = np.asarray(traj.symbols)
    elements = list(dict.fromkeys(symbols.tolist())) if elements is None else elements
    ana = _analysis(use_analysis)
    if ana is not None:
        structure, ArrayTrajectory = ana
        at = ArrayTrajectory(traj.positions, traj.cells, symbols, velocities=v, dt=dt,
                             masses=traj.masses, name=traj.name)
        res = structure.VDOS(at, dt=dt).run().results
        nu = np.asarray(res.frequencies)

        def unit(d):
            d = np.clip(np.asarray(d, dtype=float), 0.0, None)
            area = np.trapezoid(d, nu)
            return d / area if area > 0 else d
        out = {el: unit(res.vdos[el]) for el in elements if el in res.vdos}
        out["total"] = unit(res.total)
        return nu, out
    c = vacf(v, n_lags)
    out = {}
    nu = None
    for el in elements:
        sel = symbols == el
        if not sel.any():
            continue
        nu, out[el] = _spectrum(c[:, sel].mean(axis=1), dt)
    nu, out["total"] = _spectrum(c.mean(axis=1), dt)
    return nu, out


def spectral_overlap(nu, d1, d2):
    """Overlap ∫ min(D1, D2) dν of two unit-area spectra (1 = identical, 0 = disjoint)."""
    return float(np.trapezoid(np.minimum(d1, d2), nu))


# ---------------------------------------------------------------------------------------
# MSD and diffusivity
# ---------------------------------------------------------------------------------------

def _msd_fft(x):
    """MSD(τ) for τ = 0..F-1, averaged over time origins, per atom; x (F, N, 3)."""
    nf, n = x.shape[:2]
    nfft = 1 << int(np.ceil(np.log2(2 * nf)))
    spec = np.fft.rfft(x, n=nfft, axis=0)
    s2 = np.fft.irfft((spec * spec.conj()).real, n=nfft, axis=0)[:nf].sum(axis=2)
    s2 /= (nf - np.arange(nf))[:, None]
    d = np.einsum("fnc,fnc->fn", x, x)
    dd = np.concatenate([d, np.zeros((1, n))])
    q = 2.0 * d.sum(axis=0)
    s1 = np.empty((nf, n))
    for m in range(nf):
        q = q - dd[m - 1] - dd[nf - m]
        s1[m] = q / (nf - m)
    return s1 - 2.0 * s2


def msd(traj, species="Li", remove_drift=True):
    """MSD of one species: times (fs) and MSD (Å²), lags 0 .. F-1.

    Positions are unwrapped first; with ``remove_drift`` the mass-weighted centre of
    mass of the whole system is subtracted in every frame.
    """
    symbols = np.asarray(traj.symbols)
    sel = symbols == species
    if not sel.any():
        raise ObservableError(f"{traj.name}: no {species} atoms in the trajectory")
    x = unwrap(traj.positions, traj.cells)
    if remove_drift:
        m = np.asarray(traj.masses, dtype=float)
        com = np.einsum("fnc,n->fc", x, m) / m.sum()
        x = x - com[:, None, :]
    values = _msd_fft(x[:, sel]).mean(axis=1)
    return np.arange(traj.n_frames) * traj.frame_interval, values


def fit_diffusivity(t, values, window=(0.1, 0.5)):
    """Least-squares line through MSD(t) for t in the window (fractions of t_max).

    Returns
    -------
    dict: ``D`` (Å²/fs), ``D_err`` (standard error of the fit, Å²/fs), ``slope``,
    ``intercept``, ``t_lo``, ``t_hi`` (fs), ``n_points``.
    """
    t = np.asarray(t, dtype=float)
    values = np.asarray(values, dtype=float)
    lo_f, hi_f = window
    if not 0.0 <= lo_f < hi_f <= 1.0:
        raise ObservableError(f"fit window {window}: need 0 <= start < end <= 1 "
                              "(fractions of the run)")
    t_max = t[-1]
    sel = (t >= lo_f * t_max) & (t <= hi_f * t_max)
    if sel.sum() < 3:
        raise ObservableError(f"fit window {lo_f:g}-{hi_f:g} of {t_max:g} fs holds "
                              f"{int(sel.sum())} MSD points (need >= 3): the trajectory "
                              "is too short")
    tt, yy = t[sel], values[sel]
    a = np.vstack([tt, np.ones_like(tt)]).T
    coef, res, *_ = np.linalg.lstsq(a, yy, rcond=None)
    n = len(tt)
    resid = yy - a @ coef
    s2 = float(resid @ resid) / max(n - 2, 1)
    cov = s2 * np.linalg.inv(a.T @ a)
    return {"D": coef[0] / 6.0, "D_err": float(np.sqrt(cov[0, 0])) / 6.0,
            "slope": float(coef[0]), "intercept": float(coef[1]),
            "t_lo": float(tt[0]), "t_hi": float(tt[-1]), "n_points": int(n)}


@dataclass
class DiffusionResult:
    """Tracer diffusivity of one species at one temperature.

    ``D`` and ``D_err`` in cm²/s (``D_err``: block standard error if ``n_blocks`` >= 2
    blocks could be used, else the fit's standard error, see ``error_method``);
    ``t`` (fs) and ``msd`` (Å²) the full curve; ``fit`` the line of the whole run
    (Å²/fs units, window in fs); ``block_D`` the per-block values (cm²/s).
    """

    species: str
    temperature: float
    D: float
    D_err: float
    error_method: str
    D_fit_err: float
    t: np.ndarray
    msd: np.ndarray
    fit: dict
    block_D: np.ndarray
    window: tuple


def diffusion(traj, species="Li", window=(0.1, 0.5), n_blocks=4, remove_drift=True,
              min_block_frames=20, use_analysis=True):
    """MSD, diffusivity and its uncertainty (see the module docstring)."""
    ana = _analysis(use_analysis)
    if ana is not None:
        return _diffusion_analysis(ana, traj, species, window, n_blocks, remove_drift)
    t, values = msd(traj, species, remove_drift)
    fit = fit_diffusivity(t, values, window)
    blocks = []
    nb = int(n_blocks)
    if nb >= 2 and traj.n_frames // nb >= min_block_frames:
        for k in range(nb):
            lo, hi = k * traj.n_frames // nb, (k + 1) * traj.n_frames // nb
            tb, mb = msd(traj.slice(lo, hi), species, remove_drift)
            blocks.append(fit_diffusivity(tb, mb, window)["D"])
    conv = A2_PER_FS_TO_CM2_PER_S
    block_d = np.asarray(blocks) * conv
    if len(block_d) >= 2:
        err, method = float(block_d.std(ddof=1) / np.sqrt(len(block_d))), \
            f"standard error over {len(block_d)} blocks"
    else:
        err, method = fit["D_err"] * conv, "standard error of the fit"
    return DiffusionResult(species, float(traj.temperature), fit["D"] * conv, err, method,
                           fit["D_err"] * conv, t, values, fit, block_d, tuple(window))


def _diffusion_analysis(ana, traj, species, window, n_blocks, remove_drift):
    """:func:`diffusion` through hpcnnp.analysis' MSD and Diffusivity."""
    structure, ArrayTrajectory = ana
    symbols = np.asarray(traj.symbols)
    if not np.any(symbols == species):
        raise ObservableError(f"{traj.name}: no {species} atoms in the trajectory")
    x = unwrap(traj.positions, traj.cells)
    if remove_drift:
        m = np.asarray(traj.masses, dtype=float)
        x = x - (np.einsum("fnc,n->fc", x, m) / m.sum())[:, None, :]
    lo_f, hi_f = window
    if not 0.0 <= lo_f < hi_f <= 1.0:
        raise ObservableError(f"fit window {window}: need 0 <= start < end <= 1 "
                              "(fractions of the run)")
    at = ArrayTrajectory(x, traj.cells, symbols, dt=traj.frame_interval,
                         masses=traj.masses, name=traj.name)
    m = structure.MSD(at, species, unwrap="none", n_blocks=max(int(n_blocks), 1)).run()
    t = np.asarray(m.results.lagtimes)
    t_max = t[-1]
    n_in = int(np.sum((t >= lo_f * t_max) & (t <= hi_f * t_max)))
    if n_in < 3:
        raise ObservableError(f"fit window {lo_f:g}-{hi_f:g} of {t_max:g} fs holds "
                              f"{n_in} MSD points (need >= 3): the trajectory is too short")
    r = structure.Diffusivity(m, fit_window=(lo_f * t_max, hi_f * t_max)).results
    fit = {"D": r.D, "D_err": r.D_fit_stderr, "slope": r.slope, "intercept": r.intercept,
           "t_lo": float(r.fit_window[0]), "t_hi": float(r.fit_window[1]),
           "n_points": n_in}
    return DiffusionResult(species, float(traj.temperature), float(r.D_cm2_s),
                           float(r.D_err_cm2_s), str(r.error_method),
                           float(r.D_fit_stderr) * A2_PER_FS_TO_CM2_PER_S, t,
                           np.asarray(m.results.msd), fit,
                           np.asarray(r.D_blocks) * A2_PER_FS_TO_CM2_PER_S, tuple(window))


# ---------------------------------------------------------------------------------------
# Arrhenius
# ---------------------------------------------------------------------------------------

@dataclass
class ArrheniusFit:
    """D(T) = D0 exp(-E_a / (k_B T)); ``Ea``/``Ea_err`` in eV, ``D0`` in the unit of D."""

    Ea: float
    Ea_err: float
    D0: float
    lnD0_err: float
    temperatures: np.ndarray

    def __call__(self, temperature):
        return self.D0 * np.exp(-self.Ea / (KB_EV * np.asarray(temperature, dtype=float)))


def arrhenius_fit(temperatures, D, D_err=None):
    """Weighted fit of ln D against 1/T (see the module docstring).

    Parameters
    ----------
    temperatures : (n,) K
    D : (n,) diffusivities (> 0)
    D_err : (n,) uncertainties of D, optional (weights 1/σ(ln D)²)
    """
    T = np.asarray(temperatures, dtype=float)
    D = np.asarray(D, dtype=float)
    if len(T) < 2 or len(np.unique(T)) < 2:
        raise ObservableError("Arrhenius fit needs diffusivities at two or more "
                              "temperatures")
    if np.any(D <= 0):
        raise ObservableError("Arrhenius fit needs positive diffusivities (got "
                              f"{', '.join(f'{d:.3g}' for d in D)})")
    x = 1.0 / (KB_EV * T)
    y = np.log(D)
    if D_err is not None and np.all(np.asarray(D_err) > 0):
        w = (D / np.asarray(D_err, dtype=float)) ** 2
    else:
        w = np.ones_like(y)
    a = np.vstack([-x, np.ones_like(x)]).T
    aw = a * w[:, None]
    cov0 = np.linalg.inv(a.T @ aw)
    coef = cov0 @ (aw.T @ y)
    n = len(T)
    resid = y - a @ coef
    chi2 = float(np.sum(w * resid ** 2)) / (n - 2) if n > 2 else None
    if D_err is not None and np.all(np.asarray(D_err) > 0):
        cov = cov0 * max(chi2, 1.0) if chi2 is not None else cov0   # known errors
    elif chi2 is not None:
        cov = cov0 * chi2                                          # errors from scatter
    else:
        cov = np.full((2, 2), np.nan)
    ea_err, ln_err = float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1]))
    return ArrheniusFit(float(coef[0]), ea_err, float(np.exp(coef[1])), ln_err, T)
