r"""Pass/fail criteria of the property validation against the teacher.

Each metric compares an observable of MD with the potential (ML) to the same
observable of MD with the teacher (ref) on the same cell, at the same temperature,
with the same protocol.  The formulas, exactly as computed:

Relative L2 difference of a partial RDF
    .. math::

        \Delta_g = \sqrt{\frac{\int_0^{r_\mathrm{max}} (g_\mathrm{ML}(r) -
        g_\mathrm{ref}(r))^2\,\mathrm dr}{\int_0^{r_\mathrm{max}}
        g_\mathrm{ref}(r)^2\,\mathrm dr}}

    (trapezoidal rule over the bin centres); 0 for identical curves, 1 when
    g_ML = 0 or g_ML = 2 g_ref.  Judged for every partial **with a peak**:
    :math:`\max_r g_\mathrm{ref}(r) \ge 1.5` (:data:`PEAK_MIN`); partials without
    one (pairs farther apart than r_max, or featureless) carry no structure to
    compare.  Pass: :math:`\Delta_g \le 0.15`.

Spectral overlap of two vDOS
    .. math::

        O = \int_0^{\nu_\mathrm{max}} \min\big(D_\mathrm{ref}(\nu),
        D_\mathrm{ML}(\nu)\big)\,\mathrm d\nu

    of spectra normalised to unit area (:math:`\int D\,\mathrm d\nu = 1`); 1 for
    identical spectra, 0 for disjoint ones; :math:`1 - O` is half the L1 distance of
    the two spectra.  Pass: :math:`O \ge 0.90` for the total vDOS (all atoms).

First-peak position of a partial RDF
    The first peak is the region from the first bin where :math:`g > 1` to the next
    bin where :math:`g < 1`; its position :math:`r_1` is the vertex of the parabola
    through the highest bin of that region and its two neighbours (sub-bin
    resolution, robust to single-bin noise).  Pass for every cation-O pair:
    :math:`|r_1^\mathrm{ML} - r_1^\mathrm{ref}| \le 0.1` Å.

Smallest interatomic distance
    :math:`d_\mathrm{min}` = the smallest minimum-image distance between any two
    atoms in any frame.  Pass: :math:`d_\mathrm{min}^\mathrm{ML} \ge 0.85\,
    d_\mathrm{min}^\mathrm{ref}` (the potential does not let atoms approach much
    closer than the teacher does) **and** :math:`d_\mathrm{min}^\mathrm{ML} \ge 1.4`
    Å (the production criterion: no pair closer in any frame) whenever the teacher
    itself keeps every pair beyond 1.4 Å (:func:`d_min_threshold`).

Convergence of the comparison itself: the noise floor
    The teacher's run is cut into B = 4 consecutive blocks.  Two independent runs of
    the same model differ by statistical noise alone by the **noise floor**

    .. math::

        \Delta_g^\mathrm{noise} = \sqrt{\frac{(2/B)\int s_g^2(r)\,\mathrm dr}
        {\int g_\mathrm{ref}(r)^2\,\mathrm dr}}, \qquad
        \delta r_1^\mathrm{noise} = \sqrt{2/B}\; s_{r_1},

    with :math:`s_g^2(r)` and :math:`s_{r_1}` the sample variance / standard deviation
    of the block RDFs and block first-peak positions (the variance of a full-run mean
    is :math:`s^2/B`, of the difference of two runs twice that).  For the vDOS (blocks
    would have a coarser frequency resolution than the full run) the two halves are
    compared and scaled to the full run: :math:`1 - (1 - O_{1/2})/\sqrt 2`.  When the
    noise floor itself fails the threshold, the run is too short to judge that
    quantity and the verdict is "not converged" (neither pass nor fail).  Caveat:
    blocks correlated in time (runs not much longer than the slowest relaxation)
    underestimate the noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hpcnnp.analysis import MinimumDistance, first_peak  # noqa: F401  (re-exported)

__all__ = ["Thresholds", "rdf_distance", "spectral_overlap", "first_peak",
           "min_distance", "has_peak", "CATIONS", "PEAK_MIN", "judge", "d_min_threshold",
           "rdf_noise_floor", "peak_noise_floor", "overlap_noise_floor", "NOISE_BLOCKS"]

#: smallest maximum of g_ref for a partial to count as one "with a peak"
PEAK_MIN = 1.5
#: cations whose first peak against O is checked
CATIONS = ("Li", "La", "Zr", "Co")


@dataclass(frozen=True)
class Thresholds:
    """The pass/fail thresholds (see the module docstring)."""

    rdf_l2: float = 0.15
    vdos_overlap: float = 0.90
    peak_shift: float = 0.10            # Å
    d_min: float = 1.4                  # Å
    d_min_ratio: float = 0.85

    def as_dict(self):
        return asdict(self)


def rdf_distance(r, g_ref, g_ml):
    """Relative L2 difference Δ_g of two RDFs on the same bins (module docstring)."""
    r = np.asarray(r, dtype=float)
    g_ref = np.nan_to_num(np.asarray(g_ref, dtype=float))
    g_ml = np.nan_to_num(np.asarray(g_ml, dtype=float))
    den = np.trapezoid(g_ref ** 2, r)
    if not den > 0:
        return float("nan")
    return float(np.sqrt(np.trapezoid((g_ml - g_ref) ** 2, r) / den))


def spectral_overlap(nu, d1, d2):
    """Overlap O = ∫ min(D1, D2) dν of two spectra, each first normalised to unit area."""
    nu = np.asarray(nu, dtype=float)
    out = []
    for d in (d1, d2):
        d = np.clip(np.nan_to_num(np.asarray(d, dtype=float)), 0.0, None)
        area = np.trapezoid(d, nu)
        if not area > 0:
            return float("nan")
        out.append(d / area)
    return float(np.trapezoid(np.minimum(out[0], out[1]), nu))


def has_peak(g, peak_min=PEAK_MIN):
    """True when the RDF has a peak worth comparing (max g >= peak_min)."""
    g = np.nan_to_num(np.asarray(g, dtype=float))
    return bool(len(g) and g.max() >= peak_min)


def min_distance(traj, step=1, r_search=2.5):
    """Smallest minimum-image interatomic distance (Å) over the frames ``::step``
    (:class:`hpcnnp.analysis.MinimumDistance`)."""
    return MinimumDistance(traj, r_search=r_search).run(step=step).results.overall


def d_min_threshold(d_ref, thresholds=Thresholds()):
    """Smallest distance (Å) the potential's run must keep, given the teacher's."""
    rel = thresholds.d_min_ratio * d_ref
    return max(thresholds.d_min, rel) if d_ref >= thresholds.d_min else rel


def _verdict(value, ok, floor_ok):
    if not np.isfinite(value):
        return "n/a"
    if not floor_ok:
        return "not converged"
    return "pass" if ok else "fail"


#: blocks of the teacher's run for the noise floors
NOISE_BLOCKS = 4


def rdf_noise_floor(r, g_blocks, g_ref):
    """Noise floor of Δ_g from the RDFs of B blocks of the teacher's run (docstring)."""
    g_blocks = np.nan_to_num(np.asarray(g_blocks, dtype=float))
    B = len(g_blocks)
    den = np.trapezoid(np.nan_to_num(np.asarray(g_ref, dtype=float)) ** 2, r)
    if B < 2 or not den > 0:
        return float("nan")
    s2 = g_blocks.var(axis=0, ddof=1)
    return float(np.sqrt(2.0 / B * np.trapezoid(s2, r) / den))


def peak_noise_floor(positions):
    """Noise floor of a first-peak shift from the block peak positions (Å)."""
    x = np.asarray(positions, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return float("nan")
    return float(np.sqrt(2.0 / len(x)) * x.std(ddof=1))


def overlap_noise_floor(halves_overlap):
    """Noise floor of a vDOS overlap from the overlap of the teacher's two halves."""
    return 1.0 - (1.0 - float(halves_overlap)) / np.sqrt(2.0)


def judge(metric, value, threshold, floor=None, **extra):
    """One judged row: metric, value, threshold, noise floor, verdict.

    ``metric`` is one of ``rdf_l2``, ``vdos_overlap``, ``peak_shift`` (values: smaller
    or larger is better as the module docstring says), ``d_min``; ``floor`` its noise
    floor (None: not estimated).
    """
    larger_better = metric in ("vdos_overlap", "d_min")
    ok = value >= threshold if larger_better else value <= threshold
    floor_ok = True
    if floor is not None and np.isfinite(floor):
        floor_ok = floor >= threshold if larger_better else floor <= threshold
    row = {"metric": metric, "value": float(value), "threshold": float(threshold),
           "noise_floor": None if floor is None else float(floor),
           "verdict": _verdict(float(value), bool(ok), floor_ok)}
    row.update(extra)
    return row
