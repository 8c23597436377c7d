"""Tests of hpcnnp.training.kalman (n2p2's extended Kalman filter, §11)."""

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _helpers import random_observations

from hpcnnp.training.kalman import (KalmanError, KalmanFilter, row_partition,
                                    traffic_model)

REPO = Path(__file__).resolve().parents[2]

EPS, Q0, QTAU, QMIN = 0.01, 0.01, 2.302, 1e-6
ETA0, ETATAU, ETAMAX = 0.01, 2.302, 1.0
LAMBDA0, NU = 0.98, 0.9987
U = 10


def make(n, kalman_type=0, fold_every=1, **kw):
    args = dict(epsilon=EPS, q0=Q0, qtau=QTAU, qmin=QMIN, eta=ETA0,
                etatau=ETATAU, etamax=ETAMAX, kalman_type=kalman_type,
                lambda_=LAMBDA0, nu=NU, updates_per_epoch=U,
                fold_every=fold_every)
    args.update(kw)
    return KalmanFilter(n, **args)


class DenseReference:
    """The textbook filter of n2p2-formats.md §11, written plainly."""

    def __init__(self, n, kalman_type=0, etatau=ETATAU, etamax=ETAMAX):
        self.P = np.eye(n) / EPS
        self.type = kalman_type
        self.q, self.eta, self.lam = Q0, ETA0, LAMBDA0
        if etatau is None or etamax is None:
            self.etamax, self.etatau = ETA0, 0.0
        else:
            self.etamax, self.etatau = etamax, etatau / U
        self.K = None

    def update(self, w, H, xi):
        n, m = H.shape
        if self.type == 0:
            if self.eta < self.etamax:
                self.eta *= math.exp(self.etatau)
            X = self.P @ H
            A = H.T @ X + np.eye(m) / self.eta
            K = X @ np.linalg.inv(A)
            self.P = self.P - K @ X.T + self.q * np.eye(n)
        else:
            X = self.P @ H
            A = H.T @ X + self.lam * np.eye(m)
            K = X @ np.linalg.inv(A)
            self.P = (self.P - K @ X.T) / self.lam + self.q * np.eye(n)
        w += K @ xi
        self.K = K
        if self.q > QMIN:
            self.q *= math.exp(-QTAU / U)
        if self.type == 1:
            self.lam = NU * self.lam + 1.0 - NU
        return w


def relerr(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("kalman_type", [0, 1])
@pytest.mark.parametrize("m", [1, 3])
@pytest.mark.parametrize("fold_every", [1, 7])
@pytest.mark.parametrize("n", [250, 201])
def test_matches_dense_reference(n, m, kalman_type, fold_every):
    rng = np.random.default_rng(n + m + 10 * kalman_type)
    ref = DenseReference(n, kalman_type)
    kf = make(n, kalman_type, fold_every)
    w_ref, w = np.zeros(n), np.zeros(n)
    for H, xi in random_observations(rng, n, m, 30):
        ref.update(w_ref, H, xi)
        kf.update(w, H, xi)
        assert kf.q == pytest.approx(ref.q, rel=1e-15)
        if kalman_type == 0:
            assert kf.eta == pytest.approx(ref.eta, rel=1e-15)
        else:
            assert kf.lambda_ == pytest.approx(ref.lam, rel=1e-15)
    assert relerr(w, w_ref) < 1e-12
    P = kf.full_P()
    assert relerr(P, ref.P) < 1e-12
    assert np.array_equal(P, P.T)
    # status columns as defined by n2p2 (updater.000.out)
    st = kf.status(3)
    d = np.abs(np.diag(ref.P))
    assert st["epoch"] == 3 and st["nupdates"] == 30
    assert st["Pdiag"] == pytest.approx(d.mean(), rel=1e-12)
    assert st["Poffdiag"] == pytest.approx(
        (np.abs(ref.P).sum() - d.sum()) / (n * n - n), rel=1e-12)
    assert st["Pasym"] == 0.0
    assert st["Kmean"] == pytest.approx(np.abs(ref.K).mean(), rel=1e-10)
    if kalman_type == 1:
        assert st["lambda"] == pytest.approx(ref.lam, rel=1e-15)


def test_eta_and_q_schedules():
    """η grows by exp(etatau/U) until it reaches η_max, overshooting by at
    most one factor; q decays by exp(−qtau/U) down to just below q_min."""
    n = 5
    kf = make(n, etatau=2.302, etamax=0.05, qmin=1e-3)
    w = np.zeros(n)
    rng = np.random.default_rng(0)
    f_eta, f_q = math.exp(2.302 / U), math.exp(-QTAU / U)
    eta, q = ETA0, Q0
    etas, qs = [], []
    for _ in range(40):
        kf.update(w, rng.standard_normal((n, 1)), rng.standard_normal(1))
        if eta < 0.05:
            eta *= f_eta          # before it is used in the same update
        if q > 1e-3:
            q *= f_q              # after the update
        etas.append(kf.eta)
        qs.append(kf.q)
        assert kf.eta == eta and kf.q == q
    assert etas[0] == ETA0 * f_eta
    assert 0.05 <= etas[-1] < 0.05 * f_eta
    assert etas[-1] == etas[-2]
    assert 1e-3 * f_q < qs[-1] <= 1e-3
    assert qs[-1] == qs[-2]


@pytest.mark.parametrize("etatau, etamax", [(None, 1.0), (2.302, None),
                                            (None, None)])
def test_eta_frozen_without_etatau_or_etamax(etatau, etamax):
    kf = make(4, etatau=etatau, etamax=etamax)
    w = np.zeros(4)
    for _ in range(5):
        kf.update(w, np.ones((4, 1)), np.ones(1))
    assert kf.eta == ETA0


def test_initial_status_and_header(refdata):
    kf = make(7)
    st = kf.status(0)
    assert st == {"epoch": 0, "nupdates": 0, "Pdiag": 1.0 / EPS,
                  "Poffdiag": 0.0, "Pasym": 0.0, "Kmean": 0.0, "q": Q0,
                  "eta": ETA0}
    ref = (refdata / "nnp-train-sample" / "Cu2S_PBE" / "updater.000.out")
    lines = ref.read_text().splitlines(keepends=True)
    header = kf.status_header()
    assert lines[:len(header)] == header
    assert lines[len(header)] == kf.status_line(0)
    fm = make(7, kalman_type=1).status_header()
    assert fm[-2].split()[-2:] == ["lambda", "kgamma"]


def test_schedules_match_n2p2_updater_file(refdata):
    """q and η per epoch as in n2p2's Cu2S updater.000.out (209 updates per
    epoch, kalman_q0/qtau/qmin = 0.01/2.302/1e-6, eta/etatau/etamax =
    0.01/2.302/1.0), including η overshooting η_max and q undershooting
    q_min by less than one factor."""
    path = refdata / "nnp-train-sample" / "Cu2S_PBE" / "updater.000.out"
    rows = [line.split() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    kf = KalmanFilter(2, epsilon=0.01, q0=0.01, qtau=2.302, qmin=1e-6,
                      eta=0.01, etatau=2.302, etamax=1.0,
                      updates_per_epoch=209, fold_every=64)
    w = np.zeros(2)
    h = np.array([[1e-3], [0.0]])
    done = 0
    for row in rows:
        epoch, nupdates = int(row[0]), int(row[1])
        while done < nupdates:
            kf.update(w, h, np.zeros(1))
            done += 1
        line = kf.status_line(epoch).split()
        assert line[:2] == row[:2]
        assert float(line[6]) == pytest.approx(float(row[6]), rel=2e-8)   # q
        assert float(line[7]) == pytest.approx(float(row[7]), rel=2e-8)   # eta


@pytest.mark.parametrize("m", [1, 3])
def test_recovers_linear_model(m):
    """Noise-free linear model y = x·w*: the filter finds w*."""
    n = 20
    rng = np.random.default_rng(7)
    w_true = rng.standard_normal(n)
    kf = KalmanFilter(n, epsilon=1e-3, q0=0.0, qtau=0.0, qmin=0.0, eta=1e6,
                      updates_per_epoch=1, fold_every=4)
    w = np.zeros(n)
    for _ in range(60):
        H = rng.standard_normal((n, m))
        xi = H.T @ w_true - H.T @ w
        kf.update(w, H, xi)
    assert np.abs(w - w_true).max() < 1e-6


@pytest.mark.parametrize("kalman_type", [0, 1])
@pytest.mark.parametrize("fold", [False, True])
def test_state_dict_round_trip_is_bit_identical(kalman_type, fold):
    n, m, k = 123, 2, 8
    rng = np.random.default_rng(3)
    obs = [(rng.standard_normal((n, m)), rng.standard_normal(m))
           for _ in range(20)]
    whole = make(n, kalman_type, fold_every=5)
    part = make(n, kalman_type, fold_every=5)
    w_whole, w_part = np.zeros(n), np.zeros(n)
    for i, (H, xi) in enumerate(obs):
        whole.update(w_whole, H, xi)
        if i == k - 1 and fold:
            whole.fold()                 # what state_dict(fold=True) does
    for H, xi in obs[:k]:
        part.update(w_part, H, xi)
    assert part.n_pending == k % 5
    state = {key: (val.copy() if isinstance(val, np.ndarray) else val)
             for key, val in part.state_dict(fold=fold).items()}
    del part
    restored = make(n, kalman_type, fold_every=5)
    restored.load_state_dict(state)
    w = w_part.copy()
    for H, xi in obs[k:]:
        restored.update(w, H, xi)
    assert np.array_equal(w, w_whole)
    assert np.array_equal(restored.full_P(), whole.full_P())
    assert restored.status(1) == whole.status(1)


def test_state_dict_rejects_other_layout():
    state = make(10).state_dict()
    with pytest.raises(KalmanError, match="n_weights"):
        make(11).load_state_dict(state)
    with pytest.raises(KalmanError, match="kalman_type"):
        make(10, kalman_type=1).load_state_dict(state)


def test_bad_inputs():
    kf = make(6)
    with pytest.raises(KalmanError, match="shape"):
        kf.update(np.zeros(6), np.zeros((5, 1)), np.zeros(1))
    with pytest.raises(KalmanError, match="xi"):
        kf.update(np.zeros(6), np.zeros((6, 2)), np.zeros(1))
    with pytest.raises(KalmanError, match="w must be"):
        kf.update(np.zeros(6, dtype=np.float32), np.zeros(6), np.zeros(1))
    with pytest.raises(KalmanError, match="kalman_eta"):
        KalmanFilter(6, EPS, Q0, QTAU, QMIN)
    with pytest.raises(KalmanError, match="lambda"):
        KalmanFilter(6, EPS, Q0, QTAU, QMIN, kalman_type=1)
    with pytest.raises(KalmanError, match="float64"):
        make(6, dtype=np.float32)


def test_layout_and_traffic_model():
    assert list(row_partition(10, 3)) == [0, 4, 7, 10]
    t = traffic_model(24805, fold_every=16)
    tri = 8.0 * 24805 * 24806 / 2
    assert t["product"] == tri and t["fold"] == 2 * tri / 16
    assert t["total"] == pytest.approx(2.769e9, rel=1e-3)
    # m > 1: the C kernel reads P once; undivided P with m = 2: two dsymv passes
    assert traffic_model(24805, m=8, ranks=2)["product"] == tri
    assert traffic_model(24805, m=2, ranks=1)["product"] == 2 * tri
    kf = make(50)
    assert kf.p_block_bytes == 8 * 50 * 50
    assert kf.memory_bytes() >= kf.p_block_bytes


def _mpiexec():
    exe = Path(sys.executable).parent / "mpiexec"
    if exe.exists():
        return str(exe)
    return shutil.which("mpiexec")


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [2, 4, 8])
def test_mpi_distributed_kalman(ranks):
    """mpiexec -n 2, 4 and 8 (oversubscribed on a small machine): w bit-identical on
    all ranks after every update, distributed == replicated == serial to 1e-12 (global
    and decoupled filters), P memory per rank = total/ranks, restart bit-identical
    (see _mpi_kalman_check.py)."""
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("mpiexec not found next to the Python interpreter or on PATH")
    pytest.importorskip("mpi4py")
    env = dict(os.environ)
    lib = str(Path(sys.executable).parent.parent / "lib")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (lib, env.get("LD_LIBRARY_PATH")) if p)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["OPENBLAS_NUM_THREADS"] = "1"
    script = Path(__file__).with_name("_mpi_kalman_check.py")
    args = [] if ranks == 2 else ["--quick"]      # more ranks: fewer configurations
    proc = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, str(script)] + args,
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "MPI-KALMAN-OK" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("m", [1, 2, 3, 5, 7, 8, 11, 17, 36])
@pytest.mark.parametrize("n", [7, 256, 600])
def test_covariance_product_kernels_match_numpy(n, m):
    """The C products over a stored triangle/rectangle of P (used for m > 1)
    equal the dense products, blocked paths (n > 256 rows; m > 8: column tiles and
    chunks of eight observations) included."""
    from hpcnnp import _core
    rng = np.random.default_rng(n * 13 + m)
    lda = n + 5                          # a block inside a taller storage
    store = np.asfortranarray(rng.standard_normal((lda, n + 3)))
    d0 = 2                               # block starts at row 2, column 1
    A = store[d0:d0 + n, 1:1 + n]
    S = np.tril(A) + np.tril(A, -1).T    # the symmetric matrix the lower triangle means
    H = rng.standard_normal((n + 4, m))
    X = rng.standard_normal((n + 4, m))
    want = X.copy()
    want[d0:d0 + n] += S @ H[d0:d0 + n]
    flat = store.reshape(-1, order="F")
    _core.kalman_sym_lower_product(flat, d0 + 1 * lda, lda, n, H, X, d0)
    assert np.allclose(X, want, rtol=1e-12, atol=1e-10)
    # rectangle p × q standing for P[i0:i0+p, j0:j0+q] (and its transpose)
    p, q = n, max(1, n // 2)
    R = store[:p, 2:2 + q]
    Hb = rng.standard_normal((p + q, m))
    Xb = np.zeros_like(Hb)
    _core.kalman_rect_product(flat, 2 * lda, lda, p, q, Hb, Xb, 0, p)
    want = np.zeros_like(Hb)
    want[:p] = R @ Hb[p:]
    want[p:] = R.T @ Hb[:p]
    assert np.allclose(Xb, want, rtol=1e-12, atol=1e-10)
    with pytest.raises(ValueError):
        _core.kalman_rect_product(flat, 2 * lda, lda, p, n + 10, Hb, Xb, 0, p)


@pytest.mark.parametrize("m", [2, 8])
def test_blocked_product_matches_dense_reference(m):
    """N_w above the kernel's row block (256): the filter with m > 1 still
    equals the dense textbook update."""
    n = 700
    rng = np.random.default_rng(m)
    ref = DenseReference(n, 0)
    kf = make(n, 0, 4)
    w = rng.standard_normal(n)
    wr = w.copy()
    for _ in range(6):
        H = rng.standard_normal((n, m)) * 0.1
        xi = rng.standard_normal(m)
        kf.update(w, H, xi)
        wr = ref.update(wr, H, xi)
    assert relerr(w, wr) < 1e-10


def test_seed_scale_rank_emulation_does_one_ranks_share(monkeypatch):
    """benchmarks/bench_seed_scale.py projects a node from the local work of one rank
    of R, run alone: that rank must hold exactly its 1/R of P and run whole updates
    (m = R observations, folds) through the stand-in communicator."""
    import importlib.util

    from hpcnnp.training.kalman import KalmanFilter

    bench_dir = REPO / "benchmarks"
    monkeypatch.syspath_prepend(str(bench_dir))
    spec = importlib.util.spec_from_file_location("bench_seed_scale",
                                                  bench_dir / "bench_seed_scale.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    n = 301
    for ranks in (2, 5):
        for rank in (0, ranks - 1):
            kf = KalmanFilter(n, epsilon=0.01, q0=0.0, qtau=0.0, qmin=0.0, eta=0.01,
                              updates_per_epoch=4, comm=bench._OneOfR(ranks, rank),
                              fold_every=2)
            assert kf.distributed and kf.row_range == tuple(
                int(o) for o in np.array_split(np.arange(n), ranks)[rank][[0, -1]] + [0, 1])
            assert kf.p_block_bytes <= 8 * n * (n // ranks + 1)
            w = np.zeros(n)
            rng = np.random.default_rng(rank)
            for _ in range(3):
                kf.update(w, 1e-3 * rng.standard_normal((n, ranks)),
                          1e-2 * rng.standard_normal(ranks))
            assert np.isfinite(w).all() and np.any(w != 0.0)
        assert bench.rank_update_seconds(n, ranks, updates=4, fold_every=2) > 0.0
