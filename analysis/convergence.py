r"""Is an MD result converged?  Verdicts that travel with the numbers.

A diffusivity fitted to the ballistic/vibrational part of an MSD, or a Gibbs excess
from a run in which the dopant never left its site, is a number without meaning.
The analyses attach a :class:`Verdict` to their results (``results.convergence``)
so that a report can print "not converged" with the reason beside the number.

Diffusivity (:func:`diffusion_convergence`)
===========================================
Three conditions, all on quantities of the MSD and its fit window
:math:`[\tau_0, \tau_1]`:

1. **diffusive regime**: the log-log slope

   .. math:: \alpha = \frac{\mathrm d \ln \mathrm{MSD}}{\mathrm d \ln \tau},

   fitted by least squares over the window, satisfies :math:`|\alpha - 1| \le
   \alpha_\mathrm{tol}` (default 0.2).  Ballistic motion gives 2, atoms rattling in
   their cages a plateau (:math:`\alpha \to 0`), normal diffusion 1.
2. **beyond the vibrations**: :math:`\mathrm{MSD}(\tau_1) \ge f\,
   \mathrm{MSD}(\tau_\mathrm{vib})` (default f = 4: the RMS displacement at the end
   of the window is at least twice the vibrational amplitude).  The vibrational
   plateau is read at :math:`\tau_\mathrm{vib}` = 0.2 ps: Li and O vibrate at 5-20
   THz (periods 0.05-0.2 ps), so by 0.2 ps the vibrational part of the MSD has
   saturated.  A run shorter than :math:`\tau_\mathrm{vib}` fails.
3. **resolved**: :math:`D - 2\sigma_D > 0`.

Segregation excess (:func:`segregation_convergence`)
====================================================
1. **block averages exist**: at least three blocks (error bar and trend need them);
2. **no drift**: the least-squares trend of the block excesses
   :math:`\Gamma_b = a + b\,t_b` is not significant, :math:`|b| \le 2\,
   \mathrm{SE}(b)` -- a run still segregating (or still relaxing from the initial
   distribution) shows a trend;
3. **the species moved**: the RMS displacement of the species over the analysed
   run is at least the integration half-width :math:`w` of the excess (otherwise
   the atoms could not have reached the boundary from the bulk region, and the
   profile is the initial one).  Needs image flags (or continuous positions); without
   them the condition counts as not met.

The simulated time is reported with every verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Verdict", "diffusion_convergence", "segregation_convergence",
           "loglog_slope", "TAU_VIB_FS"]

#: lag time (fs) at which the vibrational MSD plateau is read (see module docstring)
TAU_VIB_FS = 200.0


@dataclass(frozen=True)
class Verdict:
    """Converged or not, and why; ``details`` holds the numbers tested."""

    converged: bool
    reasons: tuple = ()
    details: dict = field(default_factory=dict)

    def __str__(self):
        return "converged" if self.converged else \
            "not converged: " + "; ".join(self.reasons)

    def as_dict(self):
        """Plain dict (JSON-ready)."""
        return {"converged": bool(self.converged), "reasons": list(self.reasons),
                "details": {k: (float(v) if isinstance(v, (int, float, np.number))
                                else v) for k, v in self.details.items()}}


def loglog_slope(t, y):
    """Least-squares slope of ln y against ln t (points with t, y > 0; NaN if < 2)."""
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = (t > 0) & (y > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(t[ok]), np.log(y[ok]), 1)[0])


def diffusion_convergence(lagtimes, msd, fit_window, D, D_err, tau_vib=TAU_VIB_FS,
                          slope_tol=0.2, displacement_factor=4.0):
    """Verdict on a diffusivity (see the module docstring for the three conditions).

    Parameters
    ----------
    lagtimes : (T,) array, fs
    msd : (T,) array, Å²
    fit_window : (float, float), fs
    D, D_err : float
        Diffusivity and its uncertainty (any one unit).
    tau_vib : float, fs
    slope_tol : float
    displacement_factor : float
    """
    t = np.asarray(lagtimes, dtype=float)
    m = np.asarray(msd, dtype=float)
    t0, t1 = float(fit_window[0]), float(fit_window[1])
    sel = (t >= t0) & (t <= t1)
    alpha = loglog_slope(t[sel], m[sel])
    details = {"simulated_time_ps": float(t[-1]) / 1000.0, "loglog_slope": alpha,
               "tau_vib_fs": float(tau_vib)}
    reasons = []
    if not abs(alpha - 1.0) <= slope_tol:
        reasons.append(f"MSD not diffusive in the fit window {t0 / 1000:.3g}-"
                       f"{t1 / 1000:.3g} ps: log-log slope {alpha:.2f} (needs "
                       f"1 ± {slope_tol:g}; ~0: vibrating in cages, 2: ballistic)")
    if t[-1] < tau_vib:
        reasons.append(f"run of {t[-1] / 1000:.3g} ps is shorter than the vibrational "
                       f"time {tau_vib / 1000:.3g} ps")
    else:
        m_vib = float(np.interp(tau_vib, t, m))
        m_end = float(np.interp(t1, t, m))
        details.update(msd_vibrational_A2=m_vib, msd_window_end_A2=m_end)
        if not m_end >= displacement_factor * m_vib:
            reasons.append(f"displacement within the vibrational amplitude: MSD "
                           f"{m_end:.3g} Å² at {t1 / 1000:.3g} ps < {displacement_factor:g}"
                           f" x the vibrational plateau {m_vib:.3g} Å²")
    if not D - 2.0 * D_err > 0:
        reasons.append(f"D = {D:.3g} ± {D_err:.2g} is not larger than twice its error")
    return Verdict(not reasons, tuple(reasons), details)


def segregation_convergence(block_times, block_excess, window, rms_displacement=None,
                            simulated_time=None):
    """Verdict on a Gibbs excess (see the module docstring for the three conditions).

    Parameters
    ----------
    block_times : (B,) array, fs
        Mean time of each block.
    block_excess : (B,) array, atoms/Å²
        Excess of each block (one boundary, or folded).
    window : float, Å
        Integration half-width w of the excess.
    rms_displacement : float, Å, optional
        RMS displacement of the species from the first to the last analysed frame
        (None: unknown, counts as not met).
    simulated_time : float, fs, optional
        Length of the analysed run (reported).
    """
    tb = np.asarray(block_times, dtype=float)
    gb = np.asarray(block_excess, dtype=float)
    details = {"simulated_time_ps": (np.nan if simulated_time is None
                                     else float(simulated_time) / 1000.0),
               "n_blocks": int(len(gb))}
    reasons = []
    if len(gb) < 3:
        reasons.append(f"{len(gb)} block(s): block averages need at least 3 (run longer "
                       "or analyse more frames)")
    else:
        A = np.column_stack([tb, np.ones_like(tb)])
        coef, *_ = np.linalg.lstsq(A, gb, rcond=None)
        res = gb - A @ coef
        s2 = float(res @ res) / (len(gb) - 2) if len(gb) > 2 else np.nan
        se = float(np.sqrt(s2 * np.linalg.inv(A.T @ A)[0, 0]))
        span = float(tb[-1] - tb[0])
        details.update(drift_per_ps=float(coef[0]) * 1000.0,
                       drift_over_run=float(coef[0]) * span,
                       drift_err_over_run=se * span)
        if abs(coef[0]) > 2.0 * se:
            reasons.append(f"the excess drifts: {coef[0] * span:+.3g} ± {2 * se * span:.2g}"
                           " atoms/Å² over the run (block-average trend beyond 2 standard "
                           "errors)")
    if rms_displacement is None:
        reasons.append("mobility of the species unknown (no image flags to unwrap its "
                       "positions)")
    else:
        details["rms_displacement_A"] = float(rms_displacement)
        if not rms_displacement >= window:
            reasons.append(f"the species moved {rms_displacement:.2g} Å (RMS) in "
                           f"{details['simulated_time_ps']:.3g} ps, less than the "
                           f"integration half-width {window:.3g} Å: the profile is still "
                           "the initial distribution")
    return Verdict(not reasons, tuple(reasons), details)
