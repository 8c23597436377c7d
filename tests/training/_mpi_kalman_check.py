"""Run under ``mpiexec -n R``: checks of the distributed Kalman filter.

Used by ``test_kalman.py::test_mpi_distributed_kalman`` (R = 2, 4, 8).  For every
configuration (both filter types, m = 1 and 3, deferred and immediate
folding, even and odd N_w) it checks on every update that the weights are
bit-identical on all ranks (SHA-256 of the bytes, gathered on rank 0), and at
the end that distributed == replicated == serial to round-off, that the
P memory per rank is total/ranks, that status() agrees, and that a
state_dict round trip continues bit-identically.  Prints ``MPI-KALMAN-OK``
on rank 0 if everything passed; exits with 1 otherwise.  The decoupled filter
(block-diagonal P, groups of a small network per element and per layer) is checked
the same way.  ``--quick``: N_w 301 only (for many oversubscribed ranks).
"""

import hashlib
import sys

import numpy as np
from mpi4py import MPI

from hpcnnp.training.decoupled import DecoupledKalmanFilter, decoupling_groups
from hpcnnp.training.kalman import KalmanFilter

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


QUICK = "--quick" in sys.argv


def make(n, kt, fold_every, comm_, distributed, groups=None):
    if groups is not None:
        return DecoupledKalmanFilter(groups, epsilon=0.01, q0=0.01, qtau=2.302, qmin=1e-6,
                                     eta=0.01, etatau=2.302, etamax=1.0, kalman_type=kt,
                                     lambda_=0.98, nu=0.9987, updates_per_epoch=7,
                                     comm=comm_, distributed=distributed,
                                     fold_every=fold_every)
    return KalmanFilter(n, epsilon=0.01, q0=0.01, qtau=2.302, qmin=1e-6,
                        eta=0.01, etatau=2.302, etamax=1.0, kalman_type=kt,
                        lambda_=0.98, nu=0.9987, updates_per_epoch=7,
                        comm=comm_, distributed=distributed,
                        fold_every=fold_every)


def same_on_all_ranks(w):
    digest = hashlib.sha256(w.tobytes()).hexdigest()
    digests = comm.gather(digest, root=0)
    ok = comm.bcast(None if rank else len(set(digests)) == 1, root=0)
    return ok


def observations(n, m, count, seed):
    rng = np.random.default_rng(seed)    # same stream on every rank
    return [(rng.standard_normal((n, m)), rng.standard_normal(m))
            for _ in range(count)]


def relerr(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


for n in ((301,) if QUICK else (300, 301)):
    for kt in (0, 1):
        for m in (1, 3):
            for fold_every in (1, 5):
                tag = f"n={n} type={kt} m={m} fold_every={fold_every}"
                obs = observations(n, m, 25, seed=n + 10 * kt + m)
                kd = make(n, kt, fold_every, comm, True)
                kr = make(n, kt, fold_every, comm, False)
                ks = make(n, kt, fold_every, None, False)
                wd, wr, ws = np.zeros(n), np.zeros(n), np.zeros(n)
                for i, (H, xi) in enumerate(obs):
                    kd.update(wd, H, xi)
                    kr.update(wr, H, xi)
                    ks.update(ws, H, xi)
                    check(same_on_all_ranks(wd),
                          f"{tag}: distributed w differs between ranks "
                          f"after update {i + 1}")
                    check(same_on_all_ranks(wr),
                          f"{tag}: replicated w differs between ranks "
                          f"after update {i + 1}")
                check(relerr(wd, ws) < 1e-12, f"{tag}: w distributed vs "
                      f"serial {relerr(wd, ws):.2e}")
                check(relerr(wr, ws) < 1e-12, f"{tag}: w replicated vs "
                      f"serial {relerr(wr, ws):.2e}")
                Pd = kd.full_P(root=None)
                Pr = kr.full_P(root=None)
                Ps = ks.full_P(root=None)
                check(relerr(Pd, Ps) < 1e-12, f"{tag}: P distributed vs "
                      f"serial {relerr(Pd, Ps):.2e}")
                check(relerr(Pr, Ps) < 1e-12, f"{tag}: P replicated vs "
                      f"serial {relerr(Pr, Ps):.2e}")
                # memory: row block of N_w/ranks rows
                lo, hi = kd.row_range
                check(kd.p_block_bytes == 8 * n * (hi - lo),
                      f"{tag}: P block bytes {kd.p_block_bytes}")
                total = comm.allreduce(kd.p_block_bytes)
                check(total == 8 * n * n, f"{tag}: total P bytes {total}")
                check(abs(kd.p_block_bytes - total / size) <= 8 * n,
                      f"{tag}: P bytes per rank not total/{size}")
                check(kr.p_block_bytes == 8 * n * n,
                      f"{tag}: replicated P bytes {kr.p_block_bytes}")
                sd, ss = kd.status(3), ks.status(3)
                for key in ("Pdiag", "Poffdiag", "Kmean", "q"):
                    check(abs(sd[key] - ss[key]) <= 1e-12 * abs(ss[key]) + 1e-300,
                          f"{tag}: status {key} {sd[key]} vs {ss[key]}")

# decoupled filter: per element and per layer groups of a small 2-element network
for level in ("element", "layer"):
    groups = decoupling_groups(level, [[12, 9, 7, 1], [10, 9, 7, 1]])
    n = groups[-1][1]
    for m in (1, 3):
        tag = f"decoupled {level} m={m}"
        obs = observations(n, m, 20, seed=7 + m)
        kd = make(n, 0, 4, comm, True, groups)
        ks = make(n, 0, 4, None, False, groups)
        wd, ws = np.zeros(n), np.zeros(n)
        for i, (H, xi) in enumerate(obs):
            kd.update(wd, H, xi)
            ks.update(ws, H, xi)
            check(same_on_all_ranks(wd), f"{tag}: w differs between ranks after update "
                  f"{i + 1}")
        check(relerr(wd, ws) < 1e-12, f"{tag}: w distributed vs serial {relerr(wd, ws):.2e}")
        Pd, Ps = kd.full_P(root=None), ks.full_P(root=None)
        check(relerr(Pd, Ps) < 1e-12, f"{tag}: P distributed vs serial {relerr(Pd, Ps):.2e}")
        total = comm.allreduce(kd.p_block_bytes)
        check(total == sum(8 * (b - a) ** 2 for a, b in groups), f"{tag}: total P bytes")
        check(abs(kd.p_block_bytes - total / size) <= 8 * n * len(groups),
              f"{tag}: P bytes per rank not total/{size}")

# state_dict round trip, distributed: stop after k updates, restore, continue
n, m, kt = 301, 2, 0
obs = observations(n, m, 20, seed=99)
ka = make(n, kt, 6, comm, True)
wa = np.zeros(n)
for H, xi in obs:
    ka.update(wa, H, xi)
kb = make(n, kt, 6, comm, True)
wb = np.zeros(n)
for H, xi in obs[:9]:
    kb.update(wb, H, xi)
state = kb.state_dict()
state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
kc = make(n, kt, 6, comm, True)
kc.load_state_dict(state)
wc = wb.copy()
for H, xi in obs[9:]:
    kc.update(wc, H, xi)
check(np.array_equal(wa, wc), "distributed restart is not bit-identical")
check(np.array_equal(ka.full_P(root=None), kc.full_P(root=None)),
      "distributed restart: P not bit-identical")

all_failures = comm.gather(failures, root=0)
ok = None
if rank == 0:
    flat = [f"rank {r}: {msg}" for r, fs in enumerate(all_failures) for msg in fs]
    for line in flat:
        print("FAIL", line)
    ok = not flat
    if ok:
        print("MPI-KALMAN-OK")
    sys.stdout.flush()
ok = comm.bcast(ok, root=0)
sys.exit(0 if ok else 1)
