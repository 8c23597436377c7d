"""Plots of the validation stage (matplotlib figures on the Agg canvas, PNG).

Every plot has axis labels with units, a legend and, for parity plots, the y = x line
and the RMSE of each set in the legend.  Reference data are drawn in black/grey
(solid), the potential in colour (dashed where curves overlap), so that overlays stay
readable in greyscale.  Files are written atomically (temporary file + rename).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure     # the Agg canvas: no pyplot, no backend switch

__all__ = ["parity_plot", "rdf_plot", "vdos_plot", "msd_plot", "arrhenius_plot",
           "transition_plot", "SET_COLORS"]

#: colours of the data sets in parity plots: train, test, unseen 1, unseen 2, ...
SET_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
              "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
REF_STYLE = dict(color="black", lw=1.6, ls="-")
ML_STYLE = dict(color="tab:red", lw=1.4, ls="--")


#: Style of the validation figures, applied per figure (never to matplotlib's globals).
STYLE = {"font.size": 10, "axes.titlesize": 10, "legend.fontsize": 8, "axes.grid": True,
         "grid.alpha": 0.3}


def _styled(plot):
    """Run a plot function with :data:`STYLE` in effect (rc_context: global state is
    restored afterwards, also after an error)."""
    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        import matplotlib
        with matplotlib.rc_context(STYLE):
            return plot(*args, **kwargs)
    return wrapper


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=130, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def _grid(n, ncols=3, size=(3.6, 3.0)):
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n]


def _diag(ax, lo, hi):
    pad = 0.04 * (hi - lo if hi > lo else 1.0)
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--", label="y = x", zorder=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    ax.ticklabel_format(useOffset=False)


@_styled
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
    from .metrics import rmse

    fig = Figure(figsize=(10.5, 4.8))
    ax_e, ax_f = fig.subplots(1, 2)
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
    ax_e.set_xlabel("reference energy / eV atom$^{-1}$")
    ax_e.set_ylabel("HDNNP energy / eV atom$^{-1}$")
    ax_e.set_title(f"{cls}: energy per atom")
    ax_f.set_xlabel("reference force component / eV Å$^{-1}$")
    ax_f.set_ylabel("HDNNP force component / eV Å$^{-1}$")
    ax_f.set_title(f"{cls}: force components" +
                   (f" (≤ {max_points} points per set drawn)" if thinned else ""))
    for ax, scale in ((ax_e, 1.5), (ax_f, 4)):
        ax.legend(loc="upper left", framealpha=0.9, markerscale=scale)
        ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    return _save(fig, path)


@_styled
def rdf_plot(r, g_ref, g_ml, path, title="", labels=("reference", "HDNNP")):
    """Partial RDFs, one panel per element pair, reference vs potential."""
    pairs = list(g_ref)
    fig, axes = _grid(len(pairs))
    for ax, p in zip(axes, pairs):
        ax.plot(r, g_ref[p], label=labels[0], **REF_STYLE)
        if p in g_ml:
            ax.plot(r, g_ml[p], label=labels[1], **ML_STYLE)
        ax.set_title(f"{p[0]}–{p[1]}")
        ax.set_xlabel("r / Å")
        ax.set_ylabel("g(r)")
        ax.legend(loc="upper right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


@_styled
def vdos_plot(nu, d_ref, d_ml, path, title="", labels=("reference", "HDNNP"), nu_max=None):
    """vDOS per element (+ total), reference vs potential."""
    keys = list(d_ref)
    fig, axes = _grid(len(keys))
    if nu_max is None:
        tot = d_ref.get("total", next(iter(d_ref.values())))
        cum = np.cumsum(tot) / max(np.sum(tot), 1e-300)
        nu_max = float(nu[min(np.searchsorted(cum, 0.995) + 1, len(nu) - 1)]) * 1.1
    for ax, k in zip(axes, keys):
        ax.plot(nu, d_ref[k], label=labels[0], **REF_STYLE)
        if k in d_ml:
            ax.plot(nu, d_ml[k], label=labels[1], **ML_STYLE)
        ax.set_xlim(0, nu_max)
        ax.set_title("all atoms" if k == "total" else k)
        ax.set_xlabel("frequency / THz")
        ax.set_ylabel("vDOS / THz$^{-1}$")
        ax.legend(loc="upper right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


@_styled
def msd_plot(results_ref, results_ml, path, labels=("reference", "HDNNP")):
    """MSD(t) per temperature, with the fitted lines over their windows and D in the legend.

    results_ref, results_ml : lists of DiffusionResult (same order of temperatures)
    """
    fig, axes = _grid(len(results_ref), ncols=3, size=(4.2, 3.4))
    for ax, rr, rm in zip(axes, results_ref, results_ml):
        for res, lab, style in ((rr, labels[0], REF_STYLE), (rm, labels[1], ML_STYLE)):
            if res is None:
                continue
            ax.plot(res.t / 1000.0, res.msd, color=style["color"], ls=style["ls"], lw=1.2,
                    label=f"{lab}: D = {res.D:.2e} ± {res.D_err:.1e} cm²/s")
            f = res.fit
            tt = np.array([f["t_lo"], f["t_hi"]])
            ax.plot(tt / 1000.0, f["slope"] * tt + f["intercept"], color=style["color"],
                    lw=3.0, alpha=0.35)
        ax.set_xlabel("t / ps")
        ax.set_ylabel(f"MSD({rr.species}) / Å²")
        ax.set_title(f"{rr.species} at {rr.temperature:g} K (fit window: thick lines)")
        ax.legend(loc="upper left")
    fig.tight_layout()
    return _save(fig, path)


@_styled
def arrhenius_plot(data, path, species="Li"):
    """log10 D vs 1000/T with error bars and Arrhenius lines.

    data : list of (label, T (K), D (cm²/s), D_err, ArrheniusFit or None, style dict)
    """
    fig = Figure(figsize=(5.4, 4.2))
    ax = fig.subplots()
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
    ax.set_xlabel("1000 K / T")
    ax.set_ylabel(f"log$_{{10}}$(D$_{{{species}}}$ / cm² s$^{{-1}}$)")
    ax.set_title(f"{species} tracer diffusivity (Arrhenius)")
    ax.legend(loc="lower left")
    fig.tight_layout()
    return _save(fig, path)


@_styled
def transition_plot(result, path, label="HDNNP", reference=None):
    """Lattice parameters a, c and c/a vs temperature of an NPT heating ramp.

    result : TransitionResult; reference : optional TransitionResult drawn in black.
    """
    fig = Figure(figsize=(10.5, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
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
    ax1.set_xlabel("T / K")
    ax1.set_ylabel("lattice parameter / Å")
    ax1.set_title("lattice parameters (per conventional cell)")
    ax1.legend(loc="best")
    ax2.set_xlabel("T / K")
    ax2.set_ylabel("c / a")
    ax2.set_title("tetragonal → cubic: c/a")
    ax2.legend(loc="best")
    fig.tight_layout()
    return _save(fig, path)
