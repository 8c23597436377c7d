"""Plots of the validation stage (matplotlib figures without pyplot, PNG).

Every plot has axis labels with units, a legend and, for parity plots, the y = x line
and the RMSE of each set in the legend.  Reference data are drawn in black/grey
(solid), the potential in colour (dashed where curves overlap), so that overlays stay
readable in greyscale.  Files are written atomically (temporary file + rename).

No global matplotlib state is touched: figures are ``matplotlib.figure.Figure``
objects (no pyplot, no backend selection) and the house style (:data:`STYLE`) is
applied inside a ``matplotlib.rc_context`` around each plot only.
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from hpcnnp.fileio import atomic_path

from .metrics import rmse

__all__ = ["parity_plot", "rdf_plot", "vdos_plot", "msd_plot", "arrhenius_plot",
           "transition_plot", "SET_COLORS"]

#: colours of the data sets in parity plots: train, test, unseen 1, unseen 2, ...
SET_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
              "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
REF_STYLE = dict(color="black", lw=1.6, ls="-")
ML_STYLE = dict(color="tab:red", lw=1.4, ls="--")


#: the house style of these plots, applied per plot (rc_context), never globally
STYLE = {"font.size": 10, "axes.titlesize": 10, "legend.fontsize": 8,
         "axes.grid": True, "grid.alpha": 0.3}


def styled(fn):
    """Run a plotting function inside ``matplotlib.rc_context(STYLE)``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)
    return wrapper


def _subplots(nrows=1, ncols=1, figsize=(6.4, 4.8)):
    fig = Figure(figsize=figsize)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig, path, title=""):
    """Lay out ``fig`` (with ``title`` above all panels) and write it as PNG to
    ``path`` atomically; returns the path."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png")
    return path


def _grid(n, ncols=3, size=(3.6, 3.0)):
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = _subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows))
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def _label(ax, xlabel, ylabel, title, legend=None):
    """Axis labels and title of one panel; a legend at location ``legend`` if given."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend:
        ax.legend(loc=legend)


def _reference_vs_model(ax, x, ref, model, key, labels):
    """Curve ``key`` of the reference and, where it has one, of the model on ``ax``
    (``labels``: legend entries of both)."""
    ax.plot(x, ref[key], label=labels[0], **REF_STYLE)
    if key in model:
        ax.plot(x, model[key], label=labels[1], **ML_STYLE)
    ax.legend(loc="upper right")


def _diag(ax, lo, hi):
    pad = 0.04 * (hi - lo if hi > lo else 1.0)
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--", label="y = x", zorder=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    ax.ticklabel_format(useOffset=False)


@styled
def parity_plot(sets, cls, path, max_points=50000, seed=0):
    """Parity plot of one class: energy per atom and force components, sets in colour.

    Parameters
    ----------
    sets : sequence of DataSetResult
    cls : str
        Class name (or "all").
    max_points : int
        At most this many force components per set are drawn (random subset, all of
        them count in the RMSE); the title says when points were left out.
    """
    fig, axes = _subplots(1, 2, figsize=(10.5, 4.8))
    ax_e, ax_f = axes[0]
    rng = np.random.default_rng(seed)
    e_lo, e_hi, f_lo, f_hi = np.inf, -np.inf, np.inf, -np.inf
    thinned = False
    for k, s in enumerate(sets):
        mask, _ = s.select(cls)
        if not mask.any():
            continue
        color = SET_COLORS[k % len(SET_COLORS)]
        er, ep = s.energy_per_atom(cls)
        fr, fp = s.forces(cls)
        ax_e.scatter(er, ep, s=14, alpha=0.75, color=color, edgecolors="none",
                     label=f"{s.name} ({len(er)}): RMSE {1000 * rmse(er, ep):.2f} meV/atom")
        sel = np.arange(len(fr))
        if len(fr) > max_points:
            sel = rng.choice(len(fr), max_points, replace=False)
            thinned = True
        ax_f.scatter(fr[sel], fp[sel], s=3, alpha=0.4, color=color, edgecolors="none",
                     rasterized=True,
                     label=f"{s.name}: RMSE {rmse(fr, fp):.3f} eV/Å")
        e_lo, e_hi = min(e_lo, er.min(), ep.min()), max(e_hi, er.max(), ep.max())
        f_lo, f_hi = min(f_lo, fr.min(), fp.min()), max(f_hi, fr.max(), fp.max())
    _diag(ax_e, e_lo, e_hi)
    _diag(ax_f, f_lo, f_hi)
    _label(ax_e, "reference energy / eV atom$^{-1}$", "HDNNP energy / eV atom$^{-1}$",
           f"{cls}: energy per atom")
    _label(ax_f, "reference force component / eV Å$^{-1}$",
           "HDNNP force component / eV Å$^{-1}$",
           f"{cls}: force components"
           + (f" (≤ {max_points} points per set drawn)" if thinned else ""))
    for ax, scale in ((ax_e, 1.5), (ax_f, 4)):
        ax.legend(loc="upper left", framealpha=0.9, markerscale=scale)
        ax.tick_params(axis="x", labelrotation=30)
    return _save(fig, path)


@styled
def rdf_plot(r, g_ref, g_ml, path, title="", labels=("reference", "HDNNP")):
    """Partial RDFs, one panel per element pair, reference vs potential."""
    pairs = list(g_ref)
    fig, axes = _grid(len(pairs))
    for ax, p in zip(axes, pairs):
        _reference_vs_model(ax, r, g_ref, g_ml, p, labels)
        _label(ax, "r / Å", "g(r)", f"{p[0]}–{p[1]}")
    return _save(fig, path, title)


@styled
def vdos_plot(nu, d_ref, d_ml, path, title="", labels=("reference", "HDNNP"), nu_max=None):
    """vDOS per element (+ total), reference vs potential."""
    keys = list(d_ref)
    fig, axes = _grid(len(keys))
    if nu_max is None:
        tot = d_ref.get("total", next(iter(d_ref.values())))
        cum = np.cumsum(tot) / max(np.sum(tot), 1e-300)
        nu_max = float(nu[min(np.searchsorted(cum, 0.995) + 1, len(nu) - 1)]) * 1.1
    for ax, k in zip(axes, keys):
        _reference_vs_model(ax, nu, d_ref, d_ml, k, labels)
        ax.set_xlim(0, nu_max)
        _label(ax, "frequency / THz", "vDOS / THz$^{-1}$", "all atoms" if k == "total" else k)
    return _save(fig, path, title)


@styled
def msd_plot(results_ref, results_ml, path, labels=("reference", "HDNNP")):
    """MSD(t) per temperature, with the fitted lines over their windows and D in the legend.

    results_ref, results_ml : lists of Diffusivity results of
    :func:`hpcnnp.validation.benchmarks.diffusion` (same order of temperatures)
    """
    fig, axes = _grid(len(results_ref), ncols=3, size=(4.2, 3.4))
    for ax, rr, rm in zip(axes, results_ref, results_ml):
        for res, lab, style in ((rr, labels[0], REF_STYLE), (rm, labels[1], ML_STYLE)):
            if res is None:
                continue
            note = "" if res.converged else " (not converged)"
            ax.plot(res.lagtimes / 1000.0, res.msd, color=style["color"], ls=style["ls"],
                    lw=1.2, label=f"{lab}: D = {res.D_cm2_s:.2e} ± {res.D_err_cm2_s:.1e} "
                                  f"cm²/s{note}")
            tt = np.asarray(res.fit_window, dtype=float)
            ax.plot(tt / 1000.0, res.slope * tt + res.intercept, color=style["color"],
                    lw=3.0, alpha=0.35)
        _label(ax, "t / ps", f"MSD({rr.species}) / Å²",
               f"{rr.species} at {rr.temperature:g} K (fit window: thick lines)",
               legend="upper left")
    return _save(fig, path)


@styled
def arrhenius_plot(data, path, species="Li"):
    """log10 D vs 1000/T with error bars and Arrhenius lines.

    data : list of (label, T (K), D (cm²/s), D_err, ArrheniusFit or None, style dict)
    """
    fig, axes = _subplots(figsize=(5.4, 4.2))
    ax = axes[0, 0]
    for label, T, D, err, fit, style in data:
        T, D, err = (np.asarray(x, dtype=float) for x in (T, D, err))
        ok = D > 0
        x = 1000.0 / T[ok]
        lo = np.log10(D[ok]) - np.log10(np.clip(D[ok] - err[ok], D[ok] * 1e-3, None))
        hi = np.log10(D[ok] + err[ok]) - np.log10(D[ok])
        lab = label
        if fit is not None:
            ea = f"{fit.Ea:.3f}" + (f" ± {fit.Ea_err:.3f}" if np.isfinite(fit.Ea_err) else "")
            lab += f": E$_a$ = {ea} eV"
        ax.errorbar(x, np.log10(D[ok]), yerr=[lo, hi], fmt="o", color=style["color"],
                    capsize=3, label=lab)
        if fit is not None:
            tt = np.linspace(T.min() * 0.97, T.max() * 1.03, 50)
            ax.plot(1000.0 / tt, np.log10(fit(tt)), color=style["color"], ls=style["ls"],
                    lw=1.2)
    _label(ax, "1000 K / T", f"log$_{{10}}$(D$_{{{species}}}$ / cm² s$^{{-1}}$)",
           f"{species} tracer diffusivity (Arrhenius)", legend="lower left")
    return _save(fig, path)


@styled
def transition_plot(result, path, label="HDNNP", reference=None):
    """Lattice parameters a, c and c/a vs temperature of an NPT heating ramp.

    result : TransitionResult; reference : optional TransitionResult drawn in black.
    """
    fig, axes = _subplots(1, 2, figsize=(10.5, 4.2))
    ax1, ax2 = axes[0]
    for res, lab, style in ((reference, "reference", REF_STYLE), (result, label, ML_STYLE)):
        if res is None:
            continue
        c = style["color"]
        ax1.errorbar(res.T, res.a, yerr=res.a_err, fmt="o-", ms=3, color=c, capsize=2,
                     label=f"{lab}: a")
        ax1.errorbar(res.T, res.c, yerr=res.c_err, fmt="s--", ms=3, color=c, capsize=2,
                     mfc="white", label=f"{lab}: c")
        ax2.errorbar(res.T, res.ca, yerr=res.ca_err, fmt="o", ms=3, color=c, capsize=2,
                     label=f"{lab}: c/a")
        if res.sigmoid is not None:
            tt = np.linspace(res.T.min(), res.T.max(), 200)
            ax2.plot(tt, res.sigmoid(tt), color=c, ls=style["ls"], lw=1.2,
                     label=f"{lab}: sigmoid fit")
        if np.isfinite(res.Tc):
            ax2.axvline(res.Tc, color=c, lw=0.9, ls=":",
                        label=f"{lab}: T$_c$ = {res.Tc:.0f} K ({res.criterion_short})")
    ax2.axhline(1.0, color="0.4", lw=0.8)
    _label(ax1, "T / K", "lattice parameter / Å", "lattice parameters (per conventional cell)",
           legend="best")
    _label(ax2, "T / K", "c / a", "tetragonal → cubic: c/a", legend="best")
    return _save(fig, path)
