"""Benchmark of ``hpcnnp train``: time per epoch on the hpcnnp target potential.

A synthetic 5-element data set (LLZO-like random cells with Li La Zr O Co, the
published 225-SF set per element, 20-20 tanh networks: 5 × 4961 = 24 805 weights,
one combined Kalman filter with a 24 805² covariance, n2p2's default training
settings of the synth5_A reference run) is trained for a few epochs with 1 and 2
MPI ranks.  Per epoch the time is split into

* SF/derivatives – symmetry functions and dG/dr of the update candidates' structures
  (recomputed per candidate unless memorize_symfunc_results),
* Jacobians      – errors and Jacobian rows of the candidates (network gradients),
* Kalman         – the filter updates (distributed P),
* communication  – all-gather of the Jacobian rows,
* error eval.    – the end-of-epoch evaluation of all structures (SFs, energies, forces),

and the peak resident memory per rank is reported.  Then n2p2's nnp-train
(``HPCNNP_N2P2_BIN``, default /work/n2p2/bin) and a default ``hpcnnp train``
(checkpoints on) run back to back on the same files for one epoch, 1 rank, under
``/usr/bin/time -v``: seconds per update (timing.out of each), wall and CPU time and
peak memory, and their ratios (``--no-n2p2`` skips this).

Run::

    python benchmarks/bench_train.py                    # prepares data, runs 1 and 2 ranks
    python benchmarks/bench_train.py --ranks 2 --epochs 2 --structures 16

The driver starts ``mpiexec -n R python bench_train.py --worker DIR`` for every R.
Memory: the combined filter needs 8·N_w² = 4.9 GB of address space in total (split
over the ranks; about half of it becomes resident).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _measure

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ELEMENTS = ("Li", "La", "Zr", "O", "Co")
FORMULA = {"Li": 56, "La": 24, "Zr": 16, "O": 96, "Co": 12}

#: n2p2's Kalman settings (hpcnnp.testing.KALMAN_TRAINING) of the synth5_A reference
#: run, without normalisation or a Nguyen-Widrow start; force_weight 10
TRAIN = dict(force_weight=10.0, normalize_data_set=None, nguyen_widrow_weights_short=None)


def prepare(folder, n_structures, atoms_min, atoms_max, epochs, force_fraction, strategy,
            memorize, seed=1):
    """Teacher potential + labelled LLZO-like structures + input.nn for training."""
    import numpy as np

    from hpcnnp.testing import (label_with_potential, llzo_like_cell, synthetic_potential,
                                with_training_settings)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    structures = [llzo_like_cell(int(rng.integers(atoms_min, atoms_max + 1)),
                                 seed=seed * 1000 + k, formula=FORMULA)
                  for k in range(n_structures)]
    teacher = synthetic_potential(folder / "teacher", elements=ELEMENTS, hidden=(20, 20),
                                  seed=seed, structures=structures,
                                  atom_energy={"Li": -0.19, "La": -0.55, "Zr": -1.42,
                                               "O": -0.44, "Co": -1.85})
    label_with_potential(structures, teacher, folder / "input.data")
    shutil.copy(teacher / "scaling.data", folder / "scaling.data")
    (folder / "input.nn").write_text(with_training_settings(
        (teacher / "input.nn").read_text(), **TRAIN, random_seed=seed, epochs=epochs,
        update_strategy=strategy, short_force_fraction=force_fraction,
        memorize_symfunc_results="" if memorize else None))
    return folder


def worker(folder, out_name):
    """Run the training in this (MPI) process; rank 0 prints one JSON line."""
    from hpcnnp.training.comm import get_comm
    from hpcnnp.training.trainer import Trainer

    comm = get_comm(True)
    folder = Path(folder)
    tr = Trainer(settings=folder / "input.nn", data=folder / "input.data",
                 scaling=folder / "scaling.data", output_dir=folder / out_name, comm=comm,
                 checkpoint_dir=False, plots=False, stream=None)
    t0 = time.perf_counter()
    summary = tr.run()
    wall = time.perf_counter() - t0
    if comm.rank != 0:
        return
    epochs = [t for t in tr.history["timers"] if t["epoch"] > 0]
    keys = ("sf", "jac", "com", "upd")
    per = {k: sum(t.get(f"{p}_{k}", 0.0) for t in epochs for p in tr.props) / len(epochs)
           for k in keys}
    n_upd = sum(tr.plans[p].n_updates for p in tr.props)
    res = {"ranks": comm.size, "epochs": len(epochs), "updates_per_epoch": n_upd,
           "patterns_per_update": {p: sum(tr.per_update_all[p]) for p in tr.props},
           "n_weights": tr.n_w_total, "structures": tr.n_structures,
           "atoms": int(tr.n_atoms_global.sum()),
           "epoch_s": sum(t["loop"] for t in epochs) / len(epochs),
           "train_s": sum(t["train"] for t in epochs) / len(epochs),
           "error_s": sum(t["error"] for t in epochs) / len(epochs),
           "sf_s": per["sf"], "jacobian_s": per["jac"], "comm_s": per["com"],
           "kalman_s": per["upd"], "peak_rss": summary["peak_rss"], "wall_s": wall,
           "blas_threads": tr.blas_threads_used,
           "rmse": {p: tr.errors[p]["train"][tr.cfg.display_metric(p)] for p in tr.props}}
    print("BENCH-RESULT " + json.dumps(res), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default="/tmp/hpcnnp-bench-train")
    ap.add_argument("--structures", type=int, default=12)
    ap.add_argument("--atoms-min", type=int, default=64)
    ap.add_argument("--atoms-max", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--force-fraction", type=float, default=0.003)
    ap.add_argument("--strategy", type=int, default=0, help="update_strategy (0 combined)")
    ap.add_argument("--memorize", action="store_true")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-n2p2", action="store_true",
                    help="skip the side-by-side run of n2p2's nnp-train")
    ap.add_argument("--worker", metavar="DIR", help=argparse.SUPPRESS)
    ap.add_argument("--out", default="out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.out)
        return 0
    t0 = time.perf_counter()
    folder = prepare(args.workdir, args.structures, args.atoms_min, args.atoms_max,
                     args.epochs, args.force_fraction, args.strategy, args.memorize)
    print(f"data prepared in {time.perf_counter() - t0:.1f} s: {folder}", flush=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    results = []
    for ranks in args.ranks:
        cmd = [_measure.mpiexec(), "-n", str(ranks), sys.executable, str(Path(__file__).resolve()),
               "--worker", str(folder), "--out", f"out_{ranks}"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines()
                     if ln.startswith("BENCH-RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            return 1
        results.append(json.loads(line[len("BENCH-RESULT "):]))
    r0 = results[0]
    print(f"\nhpcnnp train benchmark: {r0['structures']} structures ({r0['atoms']} atoms), "
          f"5 elements x 225 SFs, 20-20 networks, N_w = {r0['n_weights']}, "
          f"update_strategy {args.strategy}, {'memorized' if args.memorize else 'recomputed'}"
          " SFs")
    head = ("ranks", "upd/ep", "epoch s", "SF+dG s", "Jacob. s", "Kalman s", "comm s",
            "err.eval s", "s/update", "peak RSS/rank")
    print(" ".join(f"{h:>10s}" for h in head))
    for r in results:
        su = r["train_s"] / max(1, r["updates_per_epoch"])
        rss = "/".join(f"{b / 2**30:.2f}" for b in r["peak_rss"]) + " GiB"
        print(f"{r['ranks']:>10d} {r['updates_per_epoch']:>10d} {r['epoch_s']:>10.2f} "
              f"{r['sf_s']:>10.2f} {r['jacobian_s']:>10.2f} {r['kalman_s']:>10.2f} "
              f"{r['comm_s']:>10.3f} {r['error_s']:>10.2f} {su:>10.3f} {rss:>14s}")
    print("(times per epoch, averaged over the epochs after epoch 0)")
    sbs = None
    if not args.no_n2p2:
        text = (folder / "input.nn").read_text()
        side = folder / "side_by_side"
        side.mkdir(exist_ok=True)
        for name in ("input.data", "scaling.data"):
            if not (side / name).exists():
                os.link(folder / name, side / name)
        sbs = _measure.side_by_side(side, text)
        _measure.print_side_by_side(sbs, f"N_w = {r0['n_weights']}, same files, "
                                         f"{args.epochs} epoch(s), hpcnnp with checkpoints")
        shutil.rmtree(side)
    print(json.dumps({"split": results, "side_by_side": sbs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
