"""The pass/fail metrics of the property validation on analytic cases."""
import numpy as np
import pytest
from scipy.special import erfc

from hpcnnp.io.trajectory import ArrayTrajectory
from hpcnnp.validation.criteria import (d_min_threshold, first_peak, has_peak, judge,
                                        min_distance, overlap_noise_floor,
                                        peak_noise_floor, rdf_distance, rdf_noise_floor,
                                        spectral_overlap)
from hpcnnp.validation.teacher import status_of

R = np.linspace(0.0, 8.0, 801)                    # 0.01 Å bins


def _gauss(x, x0, s):
    return np.exp(-0.5 * ((x - x0) / s) ** 2)


def test_rdf_distance_analytic():
    g = 3.0 * _gauss(R, 2.0, 0.1)
    assert rdf_distance(R, g, g) == 0.0                          # identical: 0
    assert rdf_distance(R, g, 0 * g) == pytest.approx(1.0)       # nothing: 1
    assert rdf_distance(R, g, 2 * g) == pytest.approx(1.0)       # doubled: 1
    # shifted Gaussian: sqrt(2 - 2 exp(-d^2 / (4 s^2)))
    for d in (0.02, 0.05, 0.1):
        exact = np.sqrt(2 - 2 * np.exp(-d ** 2 / (4 * 0.1 ** 2)))
        assert rdf_distance(R, g, 3.0 * _gauss(R, 2.0 + d, 0.1)) == pytest.approx(
            exact, rel=1e-3)
    thr = 0.15
    shifted = 3.0 * _gauss(R, 2.1, 0.1)
    assert judge("rdf_l2", rdf_distance(R, g, g), thr)["verdict"] == "pass"
    assert judge("rdf_l2", rdf_distance(R, g, shifted), thr)["verdict"] == "fail"
    assert np.isnan(rdf_distance(R, 0 * g, g))                   # no reference peak


def test_spectral_overlap_analytic():
    nu = np.linspace(0, 60, 6001)
    d = _gauss(nu, 15.0, 2.0)
    assert spectral_overlap(nu, d, 5 * d) == pytest.approx(1.0)   # normalised first
    assert spectral_overlap(nu, d, _gauss(nu, 45.0, 2.0)) == pytest.approx(0.0, abs=1e-9)
    for shift in (0.5, 1.0, 3.0):                                 # erfc(|d| / (2√2 s))
        got = spectral_overlap(nu, d, _gauss(nu, 15.0 + shift, 2.0))
        assert got == pytest.approx(erfc(shift / (2 * np.sqrt(2) * 2.0)), rel=1e-4)
    assert judge("vdos_overlap", 0.95, 0.9)["verdict"] == "pass"
    assert judge("vdos_overlap", 0.85, 0.9)["verdict"] == "fail"


def test_first_peak_with_noise_and_baseline():
    rng = np.random.default_rng(0)
    r = np.linspace(0.01, 6.0, 300)                               # 0.02 Å bins
    for r0 in (1.923, 2.111):
        g = 1.0 - np.exp(-((r / 1.8) ** 12)) + 4.0 * _gauss(r, r0, 0.09) \
            + 0.6 * _gauss(r, 3.4, 0.3)
        g[r < 1.5] = 0.0
        assert first_peak(r, g) == pytest.approx(r0, abs=0.004)
        noisy = g + rng.normal(0, 0.05, len(r))
        assert first_peak(r, noisy) == pytest.approx(r0, abs=0.02)
    g1 = 4.0 * _gauss(r, 1.92, 0.09)
    g2 = 4.0 * _gauss(r, 2.04, 0.09)
    shift = abs(first_peak(r, g2) - first_peak(r, g1))
    assert judge("peak_shift", shift, 0.1)["verdict"] == "fail"
    assert judge("peak_shift", 0.05, 0.1)["verdict"] == "pass"
    assert np.isnan(first_peak(r, 0.5 * np.ones_like(r)))         # never above 1
    assert has_peak(g1) and not has_peak(1.2 * np.ones_like(r))


def test_min_distance_through_the_boundary():
    box = np.eye(3) * 10.0
    pos = np.array([[[0.2, 5, 5], [9.5, 5, 5], [5, 5, 5]],       # 0.7 Å across the wall
                    [[0.2, 5, 5], [2.5, 5, 5], [5, 5, 5]]])      # 2.3 Å
    tr = ArrayTrajectory(pos, box, ["Li", "O", "Co"])
    assert min_distance(tr) == pytest.approx(0.7)
    assert min_distance(ArrayTrajectory(pos[1:], box, ["Li", "O", "Co"])) == \
        pytest.approx(2.3)
    # pass needs 0.85 x the teacher's distance and the absolute 1.4 Å where the
    # teacher stays above it
    assert d_min_threshold(1.6) == pytest.approx(1.4)
    assert d_min_threshold(1.8) == pytest.approx(0.85 * 1.8)
    assert d_min_threshold(1.3) == pytest.approx(0.85 * 1.3)      # teacher below 1.4 Å
    assert judge("d_min", 1.45, d_min_threshold(1.6))["verdict"] == "pass"
    assert judge("d_min", 1.45, d_min_threshold(1.8))["verdict"] == "fail"
    assert judge("d_min", 1.3, d_min_threshold(1.5))["verdict"] == "fail"
    assert judge("d_min", 1.3, d_min_threshold(1.35))["verdict"] == "pass"
    assert judge("d_min", 0.05, d_min_threshold(1.35))["verdict"] == "fail"  # collapse


def test_verdicts_with_noise_floor():
    # the noise floor fails the threshold: too short to judge
    assert judge("rdf_l2", 0.05, 0.15, floor=0.2)["verdict"] == "not converged"
    assert judge("rdf_l2", 0.05, 0.15, floor=0.1)["verdict"] == "pass"
    assert judge("rdf_l2", 0.20, 0.15, floor=0.1)["verdict"] == "fail"
    assert judge("vdos_overlap", 0.95, 0.9, floor=0.85)["verdict"] == "not converged"
    assert overlap_noise_floor(0.8) == pytest.approx(1 - 0.2 / np.sqrt(2))
    assert judge("rdf_l2", float("nan"), 0.15)["verdict"] == "n/a"
    assert status_of(["pass", "pass", "n/a"]) == "pass"
    assert status_of(["pass", "not converged"]) == "not converged"
    assert status_of(["not converged", "fail"]) == "fail"


def test_noise_floors_match_independent_runs():
    """The block estimate of the noise floor equals the distance of two independent
    noisy measurements (Monte Carlo with a known per-bin noise)."""
    rng = np.random.default_rng(5)
    g = 1.0 + 3.0 * _gauss(R, 2.0, 0.1)
    sigma, B = 0.2, 4
    floors, direct = [], []
    for _ in range(200):
        blocks = g + rng.normal(0, sigma, (B, len(R)))          # blocks of one run
        floors.append(rdf_noise_floor(R, blocks, g))
        run1 = g + rng.normal(0, sigma / np.sqrt(B), len(R))      # two full runs
        run2 = g + rng.normal(0, sigma / np.sqrt(B), len(R))
        direct.append(rdf_distance(R, run1, run2))
    assert np.mean(floors) == pytest.approx(np.mean(direct), rel=0.03)
    assert rdf_noise_floor(R, [g, g, g, g], g) == 0.0
    pk = [1.90, 1.92, 1.94, 1.92]
    assert peak_noise_floor(pk) == pytest.approx(np.sqrt(2 / 4) * np.std(pk, ddof=1))
    assert np.isnan(peak_noise_floor([1.9]))
