"""Output files of ``hpcnnp train`` in n2p2's formats (n2p2-formats.md §12).

Headers are produced by :func:`hpcnnp.training.updaters.file_header` (n2p2's
``createFileHeader``); data lines use n2p2's printf formats.  Written by rank 0
only.  Files that grow by one line per epoch (learning-curve.out, updater.*.out,
timing.out) are rewritten completely from the history kept by the trainer, so a
restarted run never leaves lines of epochs that are not in its checkpoint.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hpcnnp.fileio import atomic_open
from hpcnnp.training.updaters import file_header

__all__ = ["learning_curve_header", "learning_curve_line", "timing_header",
           "timing_line", "points_header", "forces_header", "neuron_stats_header",
           "trainlog_header", "write_text", "log_header_lines", "log_epoch_lines",
           "make_plots", "learning_curve_names", "ENERGY_METRICS", "FORCE_METRICS"]

ENERGY_METRICS = ("RMSEpa", "RMSE", "MAEpa", "MAE")
FORCE_METRICS = ("RMSE", "MAE")
_TEXT = {"RMSEpa": "RMSE of %s %s per atom", "RMSE": "RMSE of %s %s",
         "MAEpa": "MAE of %s %s per atom", "MAE": "MAE of %s %s"}
_TINY = {"energy": "E", "force": "F"}
_PLURAL = {"energy": "energies", "force": "forces"}
_METRICS = {"energy": ENERGY_METRICS, "force": FORCE_METRICS}


def write_text(path, lines):
    """Write a text file atomically (:func:`hpcnnp.fileio.atomic_open`: temporary file
    + rename, removed on any error; OSError -> OutputError naming the file)."""
    with atomic_open(path, "w") as f:
        f.writelines(lines)


# ------------------------------------------------------------------ learning curve
def learning_curve_header(props, normalized):
    title = ["Learning curves for training properties:"] + [f" * {_PLURAL[p]}"
                                                            for p in props]
    cols = [("epoch", "Current epoch.", 10)]
    units = [("pu", "physical units")] + ([("iu", "training units")] if normalized else [])
    for suffix, unit in units:
        for p in props:
            for m in _METRICS[p]:
                for which, word in (("train", "training"), ("test", "test")):
                    cols.append((f"{m}_{_TINY[p]}{which}_{suffix}",
                                 (_TEXT[m] % (word, _PLURAL[p])) + f" ({unit})", 16))
    return file_header(title, cols)


def learning_curve_line(epoch, props, errors, units):
    """``errors[p][set][metric]`` in training units; physical columns first, then
    (with normalisation) the training-unit columns (n2p2's layout)."""
    out = "%10d" % epoch
    conv = {"energy": units.energy_metric_phys, "force": units.force_metric_phys}
    blocks = [True] + ([False] if units.normalized else [])
    for phys in blocks:
        for p in props:
            for m in _METRICS[p]:
                tr, te = errors[p]["train"][m], errors[p]["test"][m]
                if phys:
                    tr, te = conv[p](tr), conv[p](te)
                out += " %16.8E %16.8E" % (tr, te)
    return out + "\n"


# ------------------------------------------------------------------------- timing
def timing_header(props):
    cols = [("epoch", "Current epoch.", 10), ("train", "Time for training.", 11),
            ("ptrain", "Time for training (percentage of loop).", 7),
            ("error", "Time for error calculation.", 11),
            ("perror", "Time for error calculation (percentage of loop).", 7),
            ("epoch", "Time for this epoch.", 11), ("total", "Total time for all epochs.", 11)]
    for p in props:
        cols += [(_TINY[p] + "train", "", 11), (_TINY[p] + "ptrain", "", 7)]
    for sub in ("_err", "_com", "_upd", "_log"):
        for p in props:
            cols += [(_TINY[p] + sub, "", 11), (_TINY[p] + "p" + sub, "", 7)]
    return file_header("Timing data for training loop.", cols)


def _ratio(a, b):
    return a / b if b > 0 else 0.0


def timing_line(epoch, t, props):
    """``t``: dict with loop, train, error, total and per property p: p, p_err,
    p_com, p_upd, p_log (seconds of this epoch)."""
    s = "%10d" % epoch
    s += " %11.3E %7.3f" % (t["train"], _ratio(t["train"], t["loop"]))
    s += " %11.3E %7.3f" % (t["error"], _ratio(t["error"], t["loop"]))
    s += " %11.3E %11.3E" % (t["loop"], t["total"])
    for p in props:
        s += " %11.3E %7.3f" % (t[p], _ratio(t[p], t["train"]))
    for sub in ("_err", "_com", "_upd", "_log"):
        for p in props:
            s += " %11.3E %7.3f" % (t[p + sub], _ratio(t[p + sub], t[p]))
    return s + "\n"


# ------------------------------------------------------------------ comparisons
def points_header():
    return file_header("Energy comparison.", [
        ("index", "Structure index.", 10),
        ("Eref", "Reference potential energy per atom (training units).", 16),
        ("Ennp", "NNP potential energy per atom (training units).", 16)])


def forces_header():
    return file_header("Force comparison.", [
        ("index_s", "Structure index.", 10),
        ("index_a", "Atom index (x, y, z components in consecutive lines).", 10),
        ("Fref", "Reference force (training units).", 16),
        ("Fnnp", "NNP force (training units).", 16)])


def neuron_stats_header():
    return file_header('Statistics for individual neurons of network "short" gathered '
                       'during RMSE calculation.', [
                           ("element", "Element index.", 10),
                           ("neuron", "Neuron number.", 10),
                           ("count", "Number of neuron value computations.", 10),
                           ("min", "Minimum neuron value encounterd.", 16),
                           ("max", "Maximum neuron value encounterd.", 16),
                           ("mean", "Mean neuron value.", 16),
                           ("sigma", "Standard deviation of neuron value.", 16)])


def trainlog_header():
    return file_header("Detailed information on each weight update.", [
        ("U", "Update type (E = energy, F = force, Q = charge).", 3),
        ("epoch", "Current training epoch.", 5),
        ("count", "Update counter (Multiple lines with identical count for "
                  "multi-streaming!).", 10),
        ("proc", "MPI process providing this update candidate.", 5),
        ("tl", "Threshold loop counter.", 3),
        ("rmse_frac", "Update candidates error divided by this epochs RMSE.", 10),
        ("s_ind_g", "Global structure index.", 10),
        ("s_ind", "Local structure index on this MPI process.", 5),
        ("a_ind", "Atom index.", 5),
        ("c", "Force component (0 = x, 1 = y, 2 = z).", 2)])


def trainlog_line(kind, epoch, count, proc, tl, frac, isg, isl, ia=None, ic=None):
    if kind == "E":
        return "  E %5d %10d %5d %3d %10.2E %10d %5d\n" % (epoch, count, proc, tl, frac,
                                                           isg, isl)
    return "  F %5d %10d %5d %3d %10.2E %10d %5d %5d %2d\n" % (epoch, count, proc, tl, frac,
                                                               isg, isl, ia, ic)


def neuron_stats_lines(stats):
    """``stats``: per element (count, min, max, sum, sum2) arrays over all neurons."""
    out = []
    for e, (cnt, mn, mx, sm, s2) in enumerate(stats):
        for j in range(len(cnt)):
            m = int(cnt[j])
            if m > 1:
                sigma = math.sqrt(max(0.0, (m * s2[j] - sm[j] * sm[j]) / (m * (m - 1))))
            else:
                sigma = float("nan")
            mean = sm[j] / m if m else float("nan")
            out.append("%10d %10d %10d %16.8E %16.8E %16.8E %16.8E\n"
                       % (e + 1, j + 1, m, mn[j] if m else 0.0, mx[j] if m else 0.0,
                          mean, sigma))
    return out


# ------------------------------------------------------------------------- log
def log_header_lines(props, cfg):
    lines = ["The training loop output covers different errors, update and\n",
             "timing information. The following quantities are organized\n",
             "according to the matrix scheme below:\n",
             "-" * 67 + "\n", "ep ........ Epoch.\n"]
    for p in props:
        dm = cfg.display_metric(p)
        metric = "RMSE" if "RMSE" in dm else "MAE"
        pa = " per atom" if "pa" in dm else ""
        t = _TINY[p]
        lines += [f"{t}_count ... Number of {p} updates.\n",
                  f"{t}_train ... {metric} of training {_PLURAL[p]}{pa}.\n",
                  f"{t}_test .... {metric} of test     {_PLURAL[p]}{pa}.\n",
                  f"{t}_pt ...... Percentage of time for {p} updates w.r.t. to t_train.\n"]
    lines += ["count ..... Total number of updates.\n",
              "train ..... Percentage of time for training.\n",
              "error ..... Percentage of time for error calculation.\n",
              "other ..... Percentage of time for other purposes.\n",
              "epoch ..... Total time for this epoch (seconds).\n",
              "total ..... Total time for all epochs (seconds).\n",
              "-" * 67 + "\n"]
    for p in props:
        t = _TINY[p]
        lines.append("%-6s  %5s  %7s   %11s   %11s   %5s\n"
                     % (p, "ep", t + "_count", t + "_train", t + "_test", t + "_pt"))
    lines.append("%-6s  %5s  %7s  %5s  %5s  %5s  %9s  %9s\n"
                 % ("timing", "ep", "count", "train", "error", "other", "epoch", "total"))
    lines.append("-" * 67 + "\n")
    return lines


def log_epoch_lines(epoch, props, counts, errors, units, cfg, t):
    """ENERGY/FORCE/TIMING lines of one epoch (nnp-train.log format, physical units)."""
    out = []
    conv = {"energy": units.energy_metric_phys, "force": units.force_metric_phys}
    total = 0
    for p in props:
        total += counts[p]
        dm = cfg.display_metric(p)
        tr = conv[p](errors[p]["train"][dm])
        te = conv[p](errors[p]["test"][dm])
        pt = 0.0 if epoch == 0 else 100.0 * _ratio(t[p], t["train"])
        out.append("%-6s  %5d  %7d   %11.5E   %11.5E   %5.1f\n"
                   % (p.upper(), epoch, counts[p], tr, te, pt))
    other = t["loop"] - t["error"] - t["train"]
    out.append("%-6s  %5d  %7d  %5.1f  %5.1f  %5.1f  %9.2f  %9.2f\n"
               % ("TIMING", epoch, total, 100 * _ratio(t["train"], t["loop"]),
                  100 * _ratio(t["error"], t["loop"]), 100 * _ratio(other, t["loop"]),
                  t["loop"], t["total"]))
    return out


# ----------------------------------------------------------------------- plots
def learning_curve_names(props, normalized):
    """Column names of learning-curve.out."""
    names = ["epoch"]
    for suffix in ["pu"] + (["iu"] if normalized else []):
        for p in props:
            for m in _METRICS[p]:
                names += [f"{m}_{_TINY[p]}train_{suffix}", f"{m}_{_TINY[p]}test_{suffix}"]
    return names


def make_plots(folder, curve, props, names, parity=None, title="hpcnnp train"):
    """learning-curve.png (+ learning-curve.csv) and parity plots with their CSVs.

    Parameters
    ----------
    curve : ndarray (n_epochs, 1 + …)
        Rows of learning-curve.out (physical columns first).
    names : list of str
        Its column names (:func:`learning_curve_names`).
    parity : dict or None
        ``energy``: (index, is_train, Eref, Ennp) per-atom energies (physical units,
        offsets removed); ``force``: (index_s, index_a, comp, is_train, Fref, Fnnp).
    Returns the list of files written.
    """
    from matplotlib.figure import Figure    # Agg canvas, no pyplot state

    folder = Path(folder)
    files = []
    curve = np.atleast_2d(np.asarray(curve, dtype=float))
    # column indices (physical units): energy RMSEpa train/test = 1, 2; forces after
    # the 8 energy columns: RMSE train/test = 9, 10
    # physical units = the units of input.data (eV and Å for data made by hpcnnp)
    panels = [("energy", 1, "energy RMSE per atom (data units, eV/atom)")]
    if "force" in props:
        panels.append(("force", 9, "force RMSE (data units, eV/Å)"))
    fig = Figure(figsize=(5.5 * len(panels), 4))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (p, col, label) in zip(axes[0], panels):
        ep = curve[:, 0]
        for off, name, style in ((0, "train", "-o"), (1, "test", "--s")):
            y = curve[:, col + off]
            ok = np.isfinite(y) & (y > 0)
            if ok.any():
                ax.semilogy(ep[ok], y[ok], style, ms=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(folder / "learning-curve.png", dpi=120)
    files.append(folder / "learning-curve.png")
    with open(folder / "learning-curve.csv", "w") as f:
        f.write(",".join(names) + "\n")
        for row in curve:
            f.write(",".join(["%d" % row[0]] + ["%.10e" % v for v in row[1:]]) + "\n")
    files.append(folder / "learning-curve.csv")

    if parity:
        if "energy" in parity:
            idx, tr, ref, nnp = parity["energy"]
            with open(folder / "parity-energy.csv", "w") as f:
                f.write("index,set,Eref_per_atom,Ennp_per_atom\n")
                for i, t, a, b in zip(idx, tr, ref, nnp):
                    f.write("%d,%s,%.10e,%.10e\n" % (i, "train" if t else "test", a, b))
            _parity_png(folder / "parity-energy.png", tr, ref, nnp,
                        "energy per atom (data units, eV/atom; offsets removed)")
            files += [folder / "parity-energy.csv", folder / "parity-energy.png"]
        if "force" in parity:
            si, ai, ci, tr, ref, nnp = parity["force"]
            with open(folder / "parity-forces.csv", "w") as f:
                f.write("index_s,index_a,component,set,Fref,Fnnp\n")
                for a, b, c, t, x, y in zip(si, ai, ci, tr, ref, nnp):
                    f.write("%d,%d,%d,%s,%.10e,%.10e\n" % (a, b, c, "train" if t else "test",
                                                           x, y))
            _parity_png(folder / "parity-forces.png", tr, ref, nnp,
                        "force component (data units, eV/Å)")
            files += [folder / "parity-forces.csv", folder / "parity-forces.png"]
    return files


def _parity_png(path, is_train, ref, nnp, label):
    from matplotlib.figure import Figure

    is_train = np.asarray(is_train, dtype=bool)
    ref, nnp = np.asarray(ref, float), np.asarray(nnp, float)
    fig = Figure(figsize=(4.6, 4.4))
    ax = fig.subplots()
    for mask, name, mk in ((is_train, "train", "o"), (~is_train, "test", "s")):
        if mask.any():
            rmse = float(np.sqrt(np.mean((ref[mask] - nnp[mask]) ** 2)))
            ax.plot(ref[mask], nnp[mask], mk, ms=2.5, alpha=0.6,
                    label=f"{name} (RMSE {rmse:.3g})")
    if len(ref):
        lo = float(min(ref.min(), nnp.min()))
        hi = float(max(ref.max(), nnp.max()))
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.set_xlabel("reference " + label)
    ax.set_ylabel("NNP")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
