"""Records of an active-learning campaign: JSON per iteration, CSV and plots.

``iteration_NNN/record.json``
    Everything about one iteration: counts of explored / accurate / candidate /
    failed / selected / labelled / label-failed frames, the fraction of accurate
    frames, σ_F statistics and its histogram (log-spaced bin edges and counts),
    the committee's train/test errors (per member and mean), the re-evaluation of
    the explored frames by the retrained committee, data-set sizes, the stop
    decision and the time per step.
``iteration_NNN/sigma-histogram.png``
    σ_F distribution of the explored frames with the trust band.
``active-learning.csv`` and ``active-learning.png``
    One row per iteration (rebuilt from the record files, so it is always
    consistent with them) and the summary plot over iterations.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from hpcnnp.fileio import atomic_open, atomic_path, write_atomic

__all__ = ["write_json", "read_json", "sigma_histogram", "CSV_COLUMNS", "write_csv",
           "plot_histogram", "plot_summary"]

def _test(r, cls, prop):
    """Test RMSE of class ``cls`` of the committee that explored in iteration r."""
    return ((r["committee"].get("test_by_class") or {}).get(cls) or {}).get(prop)


#: columns of active-learning.csv: name -> function(record) -> value
CSV_COLUMNS = {
    "iteration": lambda r: r["iteration"],
    "explored": lambda r: r["counts"]["explored"],
    "accurate": lambda r: r["counts"]["accurate"],
    "candidate": lambda r: r["counts"]["candidate"],
    "failed": lambda r: r["counts"]["failed"],
    "runs": lambda r: len(r.get("runs", [])),
    "runs_failed": lambda r: r.get("runs_failed"),
    "selected": lambda r: r["counts"]["selected"],
    "labelled": lambda r: r["counts"]["labelled"],
    "labelled_test": lambda r: r["counts"].get("labelled_test"),
    "label_failed": lambda r: r["counts"]["label_failed"],
    "fraction_accurate": lambda r: r["fraction_accurate"],
    "warnings_per_atom_frame": lambda r: (r.get("warnings") or {}).get("rate"),
    "sigma_f_mean": lambda r: r["sigma_f"]["mean"],
    "sigma_f_median": lambda r: r["sigma_f"]["median"],
    "sigma_f_max": lambda r: r["sigma_f"]["max"],
    "energy_rmse_test": lambda r: _test(r, "all", "energy_rmse"),
    "force_rmse_test": lambda r: _test(r, "all", "force_rmse"),
    "sigma_f_mean_retrained": lambda r: (r.get("reevaluation") or {}).get("sigma_f_mean_after"),
    "n_data": lambda r: r["data"]["before"],
    "n_data_after": lambda r: r["data"].get("after"),
    "stop": lambda r: r.get("stop") or "",
}

def write_json(path, obj):
    """Write JSON atomically (temporary file + rename)."""
    write_atomic(path, json.dumps(obj, indent=1, default=_default))


def read_json(path):
    return json.loads(Path(path).read_text())


def _default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sigma_histogram(sigma_f, sigma_low, sigma_high, bins=30):
    """Histogram of finite σ_F values on log-spaced edges spanning the band.

    Returns ``{"edges": [...], "counts": [...], "below": int, "above": int}``
    (below/above: values outside the edges; NaN values are not counted).
    """
    s = np.asarray(sigma_f, dtype=float)
    s = s[np.isfinite(s)]
    lo = sigma_low / 10.0 if sigma_low > 0 else sigma_high / 100.0
    hi = sigma_high * 10.0
    if s.size and s[s > 0].size:
        lo = min(lo, float(s[s > 0].min()))
        hi = max(hi, float(s.max()) * 1.0001)
    edges = np.geomspace(lo, hi, bins + 1)
    counts, _ = np.histogram(s, edges)
    return {"edges": edges.tolist(), "counts": counts.tolist(),
            "below": int((s < edges[0]).sum()), "above": int((s > edges[-1]).sum())}


def write_csv(path, records):
    """``active-learning.csv``: one row per record (atomic write)."""
    path = Path(path)
    with atomic_open(path, newline="") as f:
        w = csv.writer(f)
        w.writerow(list(CSV_COLUMNS))
        for r in records:
            row = []
            for fn in CSV_COLUMNS.values():
                try:
                    v = fn(r)
                except (KeyError, TypeError):
                    v = None
                row.append("" if v is None or (isinstance(v, float) and math.isnan(v))
                           else (f"{v:.6g}" if isinstance(v, float) else v))
            w.writerow(row)


def _figure(**kw):
    """A matplotlib Figure on the Agg canvas (no pyplot, no global state)."""
    from matplotlib.figure import Figure
    return Figure(**kw)


def plot_histogram(path, record, sigma_after=None):
    """σ_F histogram of one iteration (and, if given, of the same frames as seen by
    the retrained committee) with the trust band."""
    h = record["histogram"]
    edges = np.asarray(h["edges"])
    fig = _figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.stairs(h["counts"], edges, fill=True, alpha=0.5,
              label=f"committee of iteration {record['iteration']}")
    if sigma_after is not None:
        s = np.asarray(sigma_after, dtype=float)
        counts, _ = np.histogram(s[np.isfinite(s)], edges)
        ax.stairs(counts, edges, label="retrained committee", linewidth=1.5)
    band = record["thresholds"]
    ax.axvspan(band["sigma_low"], band["sigma_high"], color="tab:orange", alpha=0.15,
               label="candidate band")
    ax.set_xscale("log")
    ax.set_xlabel("σ_F = max_i committee force deviation (eV/Å)")
    ax.set_ylabel("frames")
    c = record["counts"]
    ax.set_title(f"iteration {record['iteration']}: {c['accurate']} accurate, "
                 f"{c['candidate']} candidates, {c['failed']} failed")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path


def plot_summary(path, records, sigma=None):
    """The convergence of a campaign over iterations, four panels: the σ_F
    distribution of the explored frames (box: quartiles, whiskers 5-95 %, with the
    trust band), the fraction of accurate frames and the warning rate, the test
    force RMSE per structure class, and the test energy RMSE per class.

    ``sigma``: per record the σ_F values of its explored frames (``sigma.json``);
    without them the box panel shows mean and median only.
    """
    it = [r["iteration"] for r in records]
    fig = _figure(figsize=(11, 7.5))
    axes = fig.subplots(2, 2)
    ax = axes[0, 0]
    if sigma and any(len(v) for v in sigma):
        data = [np.asarray(v, float) if len(v) else np.array([np.nan]) for v in sigma]
        ax.boxplot(data, positions=it, whis=(5, 95), showfliers=False, widths=0.5)
    for key, marker in (("median", "o"), ("mean", "x")):
        values = [r["sigma_f"].get(key) for r in records]
        if any(v is not None for v in values):
            ax.plot(it, [np.nan if v is None else v for v in values], marker, ms=4,
                    label=key)
    band = records[-1]["thresholds"]
    ax.axhspan(band["sigma_low"], band["sigma_high"], color="tab:orange", alpha=0.15,
               label="candidate band")
    ax.set_yscale("log")
    ax.set_ylabel("σ_F of explored frames (eV/Å)")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    ax.plot(it, [r["fraction_accurate"] for r in records], "o-", label="fraction below σ_low")
    ax.plot(it, [r.get("runs_failed", 0) / max(1, len(r.get("runs", []))) for r in records],
            "s--", label="fraction of runs failed")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("fraction")
    ax2 = ax.twinx()
    ax2.plot(it, [(r.get("warnings") or {}).get("rate", np.nan) for r in records], "^:",
             color="tab:red", label="warnings / atom-frame")
    ax2.set_ylabel("extrapolation warnings per atom and frame", color="tab:red")
    lines = ax.get_legend_handles_labels()
    more = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center right")
    classes = sorted({c for r in records for c in (r["committee"].get("test_by_class") or {})})
    for ax, prop, unit, scale in ((axes[1, 0], "force_rmse", "eV/Å", 1.0),
                                  (axes[1, 1], "energy_rmse", "meV/atom", 1e3)):
        for cls in classes:
            vals = [_test(r, cls, prop) for r in records]
            vals = [np.nan if v is None else v * scale for v in vals]
            style = dict(lw=2.5, color="k") if cls == "all" else dict(lw=1)
            ax.plot(it, vals, "o-", label=cls, **style)
        ax.set_ylabel(f"test {prop.split('_')[0]} RMSE ({unit}), committee member 0")
        if classes:
            ax.legend(fontsize=7, ncol=2)
    for a in axes.ravel():
        a.set_xlabel("iteration")
        a.set_xticks(it)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path
