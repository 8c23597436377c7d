"""Benchmark of the Kalman update (hpcnnp.training.kalman), serial or MPI.

Times one Kalman update (m observations) for the combined-strategy state of
the hpcnnp target potential — 5 elements × (225-20-20-1) networks = 5 × 4961 =
24 805 weights, one P of 24 805² doubles — and reports the memory per rank,
the bytes moved over P per update (traffic model of the module docstring)
against a STREAM-like bandwidth measured here.  n2p2 has no stand-alone Kalman
benchmark: its update is measured inside nnp-train on the same inputs by
``benchmarks/bench_train.py`` (N_w = 24 805) and ``benchmarks/bench_seed_scale.py``,
which print the ratios.

Run::

    python benchmarks/bench_kalman.py                       # 1 rank
    mpiexec -n 2 python benchmarks/bench_kalman.py          # P over 2 ranks
    mpiexec -n 2 python benchmarks/bench_kalman.py --replicated

Unless OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) is set, every rank gets
cores/ranks BLAS threads.  Needs 8·N_w² bytes of address space in total
(4.9 GB for N_w = 24 805; about half of it becomes resident, see
``lazy_pages``) plus 3 × 256 MiB per rank for the bandwidth test (run after the
peak RSS has been recorded).
"""

from __future__ import annotations

import argparse
import os
import sys


def _local_ranks():
    for key in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "PMI_SIZE"):
        if os.environ.get(key):
            return max(1, int(os.environ[key]))
    return 1


if "OPENBLAS_NUM_THREADS" not in os.environ and "OMP_NUM_THREADS" not in os.environ:
    _threads = max(1, (os.cpu_count() or 1) // _local_ranks())
    os.environ["OPENBLAS_NUM_THREADS"] = str(_threads)

import hashlib  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hpcnnp.training.kalman import KalmanFilter, traffic_model  # noqa: E402

GIB = 1024.0 ** 3


def get_comm():
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 else None


def bandwidth(comm, nbytes=256 << 20, repeat=10):
    """Node bandwidth (bytes/s) with all ranks streaming at once.

    ``read``: dot product of two arrays (2·nbytes read); ``copy``: copyto
    (nbytes read + nbytes written); ``triad``: a = b + s·c in place
    (3·nbytes).  Best of ``repeat``, summed over the ranks.
    """
    n = nbytes // 8
    a = np.ones(n)
    b = np.full(n, 2.0)
    c = np.full(n, 0.5)
    out = {}

    def timed(fn, moved):
        best = float("inf")
        for _ in range(repeat):
            if comm is not None:
                comm.Barrier()
            t = time.perf_counter()
            fn()
            if comm is not None:
                comm.Barrier()
            best = min(best, time.perf_counter() - t)
        ranks = 1 if comm is None else comm.Get_size()
        return ranks * moved / best

    out["read"] = timed(lambda: float(np.dot(a, b)), 2 * nbytes)
    out["copy"] = timed(lambda: np.copyto(a, b), 2 * nbytes)

    def triad():
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)

    out["triad"] = timed(triad, 5 * nbytes)   # two passes: 2r+1w, then 2r+1w
    return out


def maxrss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-weights", type=int, default=5 * 4961)
    ap.add_argument("--updates", type=int, default=48,
                    help="timed updates (default 48 = 3 folds at fold-every 16)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--fold-every", type=int, default=16)
    ap.add_argument("--m", type=int, default=1, help="observations per update")
    ap.add_argument("--replicated", action="store_true",
                    help="every rank holds the full P (n2p2 PM_TRAIN_ALL)")
    ap.add_argument("--no-lazy-pages", action="store_true",
                    help="allocate P with numpy (huge pages, all resident)")
    ap.add_argument("--json", action="store_true", help="print a JSON line")
    args = ap.parse_args(argv)

    comm = get_comm()
    rank = 0 if comm is None else comm.Get_rank()
    ranks = 1 if comm is None else comm.Get_size()
    n, m = args.n_weights, args.m

    def say(*a):
        if rank == 0:
            print(*a, flush=True)

    say(f"# bench_kalman: N_w = {n}, m = {m}, ranks = {ranks}, "
        f"{'replicated' if args.replicated else 'distributed'}, "
        f"fold_every = {args.fold_every}, "
        f"BLAS threads/rank = {os.environ.get('OPENBLAS_NUM_THREADS', '?')}")
    t0 = time.perf_counter()
    kf = KalmanFilter(n, epsilon=0.01, q0=0.01, qtau=2.302, qmin=1e-6,
                      eta=0.01, etatau=2.302, etamax=1.0,
                      updates_per_epoch=max(1, args.updates),
                      comm=comm, distributed=not args.replicated,
                      fold_every=args.fold_every,
                      lazy_pages=not args.no_lazy_pages)
    if comm is not None:
        comm.Barrier()
    t_init = time.perf_counter() - t0

    rng = np.random.default_rng(12345)      # same stream on every rank
    w = np.zeros(n)
    times, folded = [], []
    for i in range(args.warmup + args.updates):
        H = rng.standard_normal((n, m)) * 1e-2
        xi = rng.standard_normal(m)
        if comm is not None:
            comm.Barrier()
        t = time.perf_counter()
        kf.update(w, H, xi)
        if comm is not None:
            comm.Barrier()
        dt = time.perf_counter() - t
        if i >= args.warmup:
            times.append(dt)
            folded.append(kf.n_pending == 0)
    times = np.array(times)
    folded = np.array(folded)

    rss = maxrss_bytes()
    pbytes = kf.p_block_bytes
    t = time.perf_counter()
    st = kf.status(1)                       # collective
    t_status = time.perf_counter() - t
    # bandwidth last, so that its buffers do not count in the peak RSS above
    bw = bandwidth(comm)
    say(f"bandwidth (all ranks): read {bw['read'] / 1e9:.1f} GB/s, "
        f"copy {bw['copy'] / 1e9:.1f} GB/s, triad {bw['triad'] / 1e9:.1f} GB/s")
    if comm is not None:
        rss_all = comm.gather(rss, root=0)
        p_all = comm.gather(pbytes, root=0)
        digests = comm.gather(hashlib.sha256(w.tobytes()).hexdigest(), root=0)
    else:
        rss_all, p_all = [rss], [pbytes]
        digests = [hashlib.sha256(w.tobytes()).hexdigest()]
    if rank != 0:
        return 0

    per_update = float(times.mean())
    plain = float(times[~folded].mean()) if (~folded).any() else None
    fold_extra = (float(times[folded].mean()) - plain
                  if folded.any() and plain is not None else None)
    model = traffic_model(n, args.fold_every, m=m,
                          ranks=1 if args.replicated else ranks)
    copies = ranks if args.replicated else 1     # replicated: P per rank
    moved = model["total"] * copies
    bw_best = max(bw.values())          # the most optimistic of the three
    t_bound = moved / bw_best
    print(f"P init (allocate + touch owned half): {t_init:.2f} s")
    if plain is None:
        print(f"time per update: {per_update:.4f} s (mean of {len(times)}, "
              "every update folds)")
    else:
        fold = ("no fold in the timed updates" if fold_extra is None else
                f"a fold adds {fold_extra:.3f} s every {args.fold_every} updates")
        print(f"time per update: {per_update:.4f} s (mean of {len(times)}; "
              f"without fold {plain:.4f} s, {fold})")
        nf = times[~folded]
        print(f"  updates without fold: min {nf.min():.4f} s, median "
              f"{np.median(nf):.4f} s, max {nf.max():.4f} s")
    print(f"P memory per rank: {max(p_all) / GIB:.3f} GiB allocated "
          f"(total {sum(p_all) / GIB:.3f} GiB over {ranks} rank(s))")
    print("peak RSS per rank: "
          + ", ".join(f"{r / GIB:.3f}" for r in rss_all) + " GiB "
          f"(max {max(rss_all) / GIB:.3f}, sum {sum(rss_all) / GIB:.3f})")
    print(f"bytes moved over P per update (model, all ranks): "
          f"{moved / 1e9:.3f} GB = {copies} x (product "
          f"{model['product'] / 1e9:.3f} + fold {model['fold'] / 1e9:.3f}) "
          f"(n2p2 model {model['n2p2'] / 1e9:.2f} GB)")
    print(f"memory-bound limit: {moved / 1e9:.3f} GB / {bw_best / 1e9:.1f} "
          f"GB/s (best of read/copy/triad) = {t_bound:.4f} s/update -> "
          f"running at {100 * t_bound / per_update:.0f} % of the bandwidth "
          f"limit (effective {moved / per_update / 1e9:.1f} GB/s)")
    print(f"w identical on all ranks: {len(set(digests)) == 1}")
    print(f"status() after the run ({t_status:.2f} s): Pdiag {st['Pdiag']:.6e} "
          f"Poffdiag {st['Poffdiag']:.6e} Kmean {st['Kmean']:.3e}")
    if args.json:
        print(json.dumps({
            "n_weights": n, "m": m, "ranks": ranks,
            "replicated": args.replicated, "fold_every": args.fold_every,
            "s_per_update": per_update, "s_per_update_no_fold": plain,
            "fold_extra_s": fold_extra, "init_s": t_init,
            "s_per_update_min": float(times.min()),
            "s_per_update_median": float(np.median(times)),
            "p_bytes_per_rank": max(p_all), "p_bytes_total": sum(p_all),
            "maxrss_bytes": rss_all, "model_bytes_per_update": moved,
            "bandwidth_read": bw["read"], "bandwidth_copy": bw["copy"],
            "bandwidth_triad": bw["triad"],
            "fraction_of_bandwidth_limit": t_bound / per_update}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
