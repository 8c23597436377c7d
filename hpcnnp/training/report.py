"""Log lines of a training run: the setup block (n2p2's "SETUP: TRAINING" plus
hpcnnp's memory estimate) and the final summary."""

from __future__ import annotations

from hpcnnp.training.config import SELECTION_NAMES, SM_THRESHOLD
from hpcnnp.training.memory import MIB, format_estimate

__all__ = ["setup_lines", "final_lines"]


def _split_lines(tr):
    lines = []
    for p in tr.props:
        n_tr, n_te = tr.n_train[p], tr.n_test[p]
        lines += [f'Training/test split of data set for property "{p}":',
                  f"- Total    patterns : {n_tr + n_te}",
                  f"- Training patterns : {n_tr}",
                  f"- Test     patterns : {n_te}",
                  "- Test set fraction : %f" % (n_te / max(1, n_tr + n_te))]
    if tr.data.tagged:
        lines.append(f"{tr.data.tagged} structures have a set= tag in {tr.data_path}")
    return lines


def _weights_lines(tr):
    cfg = tr.cfg
    if tr.restart:
        return ["Weights and filter state: from the checkpoint"]
    if cfg.use_old_weights:
        return ["Initial weights: read from weights.%03d.data"]
    lines = ["Initial weights selected randomly in interval [%f, %f)."
             % (cfg.weights_min, cfg.weights_max)]
    lines += (["Weights modified according to Nguyen Widrow scheme."] if cfg.nguyen_widrow
              else ["Weights modified accoring to Glorot Bengio scheme.", "Biases set to zero."])
    return lines


def _updater_lines(tr):
    cfg, c = tr.cfg, tr.comm
    strategy = "combined" if cfg.update_strategy == 0 else "per element"
    lines = [f"Forces will be used for training (force_weight {cfg.force_weight:10.2E})."
             if cfg.use_forces else "Only energies will be used for training."]
    lines.append(
        f"Updater: {'Kalman filter' if cfg.updater_type == 1 else 'gradient descent'}"
        f", jacobian_mode {cfg.jacobian_mode}, update_strategy {cfg.update_strategy} "
        f"({strategy}, {tr.n_updaters} updater(s)), parallel_mode {cfg.parallel_mode} "
        "(hpcnnp: all ranks update; P "
        + ("distributed over the ranks)" if tr.distributed_kalman and c.size > 1
           else "replicated)"))
    if cfg.updater_type == 1:
        groups = sum(len(tr.group_sizes(a, b)) for a, b in tr.updater_cols)
        lines.append(f"Kalman decoupling: {cfg.kalman_decoupling} ({groups} block(s) of P: "
                     + " ".join(str(g) for a, b in tr.updater_cols
                                for g in tr.group_sizes(a, b)[:16])
                     + (" …" if groups > 16 else "") + ")")
    lines.append(f"Total fit parameters: {tr.n_w_total} "
                 f"({' + '.join(str(n) for n in tr.n_w_el)})")
    for p in tr.props:
        pc = cfg.properties[p]
        lines.append(f'Selection mode for property "{p}": '
                     + ", ".join(f"from epoch {ep}: {SELECTION_NAMES[m]} ({m})"
                                 for ep, m in sorted(pc.selection.items()))
                     + (f"; threshold {pc.threshold:.2f} * RMSE, {pc.trials} trials"
                        if SM_THRESHOLD in pc.selection.values() else ""))
    for p in tr.props:
        pl = tr.plans[p]
        lines += [f'Update plan for property "{p}":',
                  "- Per-task batch size                          : %d" % pl.batch,
                  "- Fraction of patterns used per epoch          : %.6f" % pl.fraction,
                  "- Updates per epoch                            : %d" % pl.n_updates,
                  "- Patterns used per update (rank %3d / global) : %10d / %d"
                  % (c.rank, pl.per_update, sum(tr.per_update_all[p]))]
    return lines


def setup_lines(tr, estimates, node):
    """The setup block; ``estimates``: the :class:`MemoryEstimate` of every rank,
    ``node``: (node total, in use, available) of rank 0's node."""
    cfg, c = tr.cfg, tr.comm
    lines = ["*** SETUP: TRAINING " + "*" * 59 + "\n"]
    lines += list(cfg.warnings) + list(tr.settings.warnings)
    lines += [f"Settings file      : {tr.settings_path}",
              f"Data file          : {tr.data_path} ({tr.data.n_structures} structures)",
              f"Scaling file       : {tr.scaling_path}",
              f"MPI ranks          : {c.size}",
              "Elements           : " + " ".join(f"{e}:{el}" for e, el in
                                                 enumerate(tr.elements)),
              "Random numbers     : numpy PCG64 streams from SeedSequence(random_seed "
              f"= {cfg.random_seed}) (n2p2's GSL streams cannot be reproduced)",
              "Structures per rank: " + " ".join(str(int((tr.data.owner == r).sum()))
                                                  for r in range(c.size))]
    lines += _split_lines(tr)
    lines += _weights_lines(tr)
    u = tr.units
    if u.normalized:
        lines.append("Data set normalization: mean_energy %.16E conv_energy %.16E "
                     "conv_length %.16E" % u.as_tuple())
    lines += _updater_lines(tr)
    lines.append("Symmetry functions: " + (
        "memorized (memorize_symfunc_results)" if cfg.memorize else
        f"recomputed (force candidates: the atom's neighbourhood only), values of at "
        f"most {tr.sf.capacity} structures and {tr.sf.max_bytes / MIB:.0f} MiB cached"))
    worst = max(estimates, key=lambda e: e.total)
    lines.append("Memory estimate per rank (MiB; the rank with the largest total):")
    lines += format_estimate(worst)
    need, now, avail = node
    lines.append("Memory of the node of rank 0: %.2f GiB estimated for its ranks, %s"
                 % (need / 2**30, "available unknown" if avail is None else
                    "%.2f GiB available beyond the %.2f GiB in use" % (avail / 2**30,
                                                                         now / 2**30)))
    lines.append(f"Checkpoints: {tr.checkpoint_dir if tr.checkpoint_dir else 'off'}"
                 + (f" (every {tr.checkpoint_every} epoch(s), P written in the background)"
                    if tr.checkpoint_dir else ""))
    lines.append("*" * 79 + "\n")
    return lines


def final_lines(tr, elapsed, peak, estimate_total):
    conv = {"energy": tr.units.energy_metric_phys, "force": tr.units.force_metric_phys}
    lines = [f"TIMING Training finished: {elapsed:.2f} seconds.",
             "Final errors (physical units): " + "; ".join(
                 f"{p} {tr.cfg.display_metric(p)} train "
                 f"{conv[p](tr.errors[p]['train'][tr.cfg.display_metric(p)]):.6E} test "
                 f"{conv[p](tr.errors[p]['test'][tr.cfg.display_metric(p)]):.6E}"
                 for p in tr.props)]
    if tr.check_sync:
        lines.append(f"Weights compared between the {tr.comm.size} ranks after "
                     f"{getattr(tr, 'sync_checks', 0)} updates (--check-sync "
                     f"{tr.check_sync}): bit-identical on all ranks.")
    lines.append("Peak memory (RSS) per rank: " + " ".join(f"{b / MIB:.0f} MiB" for b in peak)
                 + f" (estimated {estimate_total / MIB:.0f} MiB for the largest rank)")
    if tr.checkpoint_dir is not None and tr.ckpt_writer is not None:
        w = tr.ckpt_writer
        lines.append(f"Checkpoints: {w.seconds_main:.2f} s of waiting in the training "
                     f"loop in all, last one {w.bytes_last / 2**30:.3f} GiB written in "
                     f"{w.seconds_write:.2f} s (background)")
    lines.append("Final weights written to weights.ZZZ.data in " + str(tr.output_dir))
    return lines
