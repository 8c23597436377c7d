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

from hpcnnp.fileio import atomic_open, write_atomic

__all__ = ["write_json", "read_json", "sigma_histogram", "CSV_COLUMNS", "write_csv",
           "plot_histogram", "plot_summary"]

#: columns of active-learning.csv: name -> function(record) -> value
CSV_COLUMNS = {
    "iteration": lambda r: r["iteration"],
    "explored": lambda r: r["counts"]["explored"],
    "accurate": lambda r: r["counts"]["accurate"],
    "candidate": lambda r: r["counts"]["candidate"],
    "failed": lambda r: r["counts"]["failed"],
    "selected": lambda r: r["counts"]["selected"],
    "labelled": lambda r: r["counts"]["labelled"],
    "label_failed": lambda r: r["counts"]["label_failed"],
    "fraction_accurate": lambda r: r["fraction_accurate"],
    "sigma_f_mean": lambda r: r["sigma_f"]["mean"],
    "sigma_f_median": lambda r: r["sigma_f"]["median"],
    "sigma_f_max": lambda r: r["sigma_f"]["max"],
    "energy_rmse_test": lambda r: r["committee"]["mean_errors"].get("energy_test"),
    "force_rmse_test": lambda r: r["committee"]["mean_errors"].get("force_test"),
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


def plot_histogram(path, record, sigma_after=None):
    """σ_F histogram of one iteration (and, if given, of the same frames as seen by
    the retrained committee) with the trust band."""
    from matplotlib.figure import Figure    # the Agg canvas: no pyplot state

    h = record["histogram"]
    edges = np.asarray(h["edges"])
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
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
    fig.savefig(path, dpi=100)
    return path


def plot_summary(path, records):
    """Fraction of accurate frames, counts, mean σ_F and test errors over iterations."""
    from matplotlib.figure import Figure

    it = [r["iteration"] for r in records]
    fig = Figure(figsize=(9, 6.5))
    axes = fig.subplots(2, 2)
    ax = axes[0, 0]
    ax.plot(it, [r["fraction_accurate"] for r in records], "o-")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("fraction accurate")
    ax = axes[0, 1]
    for key in ("candidate", "failed", "selected", "labelled"):
        ax.plot(it, [r["counts"][key] for r in records], "o-", label=key)
    ax.set_ylabel("frames")
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    ax.plot(it, [r["sigma_f"]["mean"] for r in records], "o-", label="explored frames")
    after = [(r["iteration"], r["reevaluation"]["sigma_f_mean_after"]) for r in records
             if r.get("reevaluation")]
    if after:
        ax.plot(*zip(*after), "s--", label="same frames, retrained committee")
    ax.set_yscale("log")
    ax.set_ylabel("mean σ_F (eV/Å)")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    for key, label in (("force_test", "force RMSE test (eV/Å)"),
                       ("energy_test", "energy RMSE test (eV/atom)")):
        vals = [r["committee"]["mean_errors"].get(key) for r in records]
        if any(v is not None for v in vals):
            ax.plot(it, [np.nan if v is None else v for v in vals], "o-", label=label)
    ax.set_yscale("log")
    ax.set_ylabel("committee mean error")
    ax.legend(fontsize=8)
    for a in axes.ravel():
        a.set_xlabel("iteration")
        a.set_xticks(it)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
