"""Tests of the decoupled Kalman filter (hpcnnp.training.decoupled) against a
plainly written dense block-diagonal reference."""

import math

import numpy as np
import pytest

from _helpers import random_observations

from hpcnnp.training.decoupled import (DecoupledKalmanFilter, decoupling_groups)
from hpcnnp.training.kalman import KalmanError, KalmanFilter

EPS, Q0, QTAU, QMIN = 0.01, 0.01, 2.302, 1e-6
ETA0, ETATAU, ETAMAX = 0.01, 2.302, 1.0
LAMBDA0, NU = 0.98, 0.9987
U = 10


def relerr(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def make(groups, kalman_type=0, fold_every=1, **kw):
    args = dict(epsilon=EPS, q0=Q0, qtau=QTAU, qmin=QMIN, eta=ETA0, etatau=ETATAU,
                etamax=ETAMAX, kalman_type=kalman_type, lambda_=LAMBDA0, nu=NU,
                updates_per_epoch=U, fold_every=fold_every)
    args.update(kw)
    return DecoupledKalmanFilter(groups, **args)


class BlockReference:
    """DEKF written plainly: X_g = P_g H_g, A = Σ H_gᵀX_g + R, K_g = X_g A⁻¹,
    P_g ← P_g − K_g X_gᵀ (/λ) + qI; P between groups stays exactly zero."""

    def __init__(self, groups, kalman_type=0):
        n = groups[-1][1]
        self.groups = groups
        self.P = np.eye(n) / EPS
        self.type = kalman_type
        self.q, self.eta, self.lam = Q0, ETA0, LAMBDA0
        self.K = None

    def update(self, w, H, xi):
        n, m = H.shape
        if self.type == 0 and self.eta < ETAMAX:
            self.eta *= math.exp(ETATAU / U)
        mask = np.zeros((n, n), dtype=bool)
        for a, b in self.groups:
            mask[a:b, a:b] = True
        Pb = np.where(mask, self.P, 0.0)
        X = Pb @ H
        R = np.eye(m) / self.eta if self.type == 0 else self.lam * np.eye(m)
        A = H.T @ X + R
        K = X @ np.linalg.inv(A)
        new = Pb - np.where(mask, K @ X.T, 0.0)
        if self.type == 1:
            new /= self.lam
        self.P = new + self.q * np.eye(n)
        w += K @ xi
        self.K = K
        if self.q > QMIN:
            self.q *= math.exp(-QTAU / U)
        if self.type == 1:
            self.lam = NU * self.lam + 1.0 - NU


def small_network_groups(level):
    # two elements, networks 6-4-3-1 and 5-4-3-1 (a small HDNNP)
    return decoupling_groups(level, [[6, 4, 3, 1], [5, 4, 3, 1]])


def test_groups_of_levels():
    el = small_network_groups("element")
    assert el == [(0, 47), (47, 90)]          # 6*4+4 + 4*3+3 + 3+1 = 47; 43
    la = small_network_groups("layer")
    assert la == [(0, 28), (28, 43), (43, 47), (47, 71), (71, 86), (86, 90)]
    assert small_network_groups("none") == [(0, 90)]
    with pytest.raises(KalmanError, match="unknown decoupling level"):
        decoupling_groups("node", [[6, 4, 1]])
    # the published networks: element = 1/5 of P, layer ~ 1/6
    pub = [[225, 20, 20, 1]] * 5
    for level, frac in (("element", 0.2), ("layer", 0.168)):
        g = decoupling_groups(level, pub)
        assert g[-1][1] == 24805
        assert sum((b - a) ** 2 for a, b in g) / 24805 ** 2 == pytest.approx(frac, abs=2e-3)


@pytest.mark.parametrize("level", ["element", "layer"])
@pytest.mark.parametrize("kalman_type", [0, 1])
@pytest.mark.parametrize("m", [1, 3])
@pytest.mark.parametrize("fold_every", [1, 5])
def test_matches_block_reference(level, kalman_type, m, fold_every):
    groups = small_network_groups(level)
    n = groups[-1][1]
    rng = np.random.default_rng(len(groups) + m + 10 * kalman_type)
    ref = BlockReference(groups, kalman_type)
    kf = make(groups, kalman_type, fold_every)
    w_ref, w = np.zeros(n), np.zeros(n)
    for H, xi in random_observations(rng, n, m, 25):
        ref.update(w_ref, H, xi)
        kf.update(w, H, xi)
    assert relerr(w, w_ref) < 1e-12
    P = kf.full_P()
    assert relerr(P, ref.P) < 1e-12
    for (a, b) in groups:                      # nothing between the groups
        assert not P[a:b, :a].any() and not P[a:b, b:].any()
    st = kf.status(2)
    d = np.abs(np.diag(ref.P))
    assert st["nupdates"] == 25
    assert st["Pdiag"] == pytest.approx(d.mean(), rel=1e-12)
    assert st["Poffdiag"] == pytest.approx((np.abs(ref.P).sum() - d.sum()) / (n * n - n),
                                           rel=1e-10)
    assert st["Kmean"] == pytest.approx(np.abs(ref.K).mean(), rel=1e-10)


def test_one_group_is_the_global_filter_bit_for_bit():
    n, m = 90, 2
    rng = np.random.default_rng(3)
    kd = make([(0, n)], fold_every=4)
    kg = KalmanFilter(n, epsilon=EPS, q0=Q0, qtau=QTAU, qmin=QMIN, eta=ETA0,
                      etatau=ETATAU, etamax=ETAMAX, updates_per_epoch=U, fold_every=4)
    wd, wg = np.zeros(n), np.zeros(n)
    for _ in range(12):
        H, xi = rng.standard_normal((n, m)), rng.standard_normal(m)
        kd.update(wd, H, xi)
        kg.update(wg, H, xi)
    assert np.array_equal(wd, wg)
    assert kd.status_line(1) == kg.status_line(1)


def test_memory_is_the_sum_of_the_blocks():
    groups = small_network_groups("layer")
    kf = make(groups)
    assert kf.p_block_bytes == sum(8 * (b - a) ** 2 for a, b in groups)
    assert kf.p_stored_bytes == sum(4 * (b - a) * (b - a + 1) for a, b in groups)
    assert sum(c.size for c in kf.p_chunks()) * 8 == kf.p_stored_bytes


@pytest.mark.parametrize("fold_every", [1, 4])
def test_state_round_trip_continues_bit_identically(fold_every):
    groups = small_network_groups("element")
    n = groups[-1][1]
    rng = np.random.default_rng(11)
    obs = [(rng.standard_normal((n, 2)), rng.standard_normal(2)) for _ in range(14)]
    ka, wa = make(groups, fold_every=fold_every), np.zeros(n)
    for H, xi in obs:
        ka.update(wa, H, xi)
    kb, wb = make(groups, fold_every=fold_every), np.zeros(n)
    for H, xi in obs[:6]:
        kb.update(wb, H, xi)
    state = kb.state_dict(include_P=False)
    chunks = [c.copy() for c in kb.p_chunks()]
    kc = make(groups, fold_every=fold_every)
    kc.load_state_dict(state)
    for dst, src in zip(kc.p_chunks(), chunks):
        dst[...] = src
    wc = wb.copy()
    for H, xi in obs[6:]:
        kc.update(wc, H, xi)
    assert np.array_equal(wa, wc)
    with pytest.raises(KalmanError, match="decoupling groups"):
        make(small_network_groups("layer")).load_state_dict(state)
