"""Amplitude statistics against hand computations and scipy."""

import numpy as np
import pytest
from scipy import stats

from rhythmswitch.analysis.amplitude import amplitude_analysis, gini, selectivity, spearman


def test_gini_known_distributions():
    assert gini(np.ones(10)) == pytest.approx(0.0, abs=1e-15)
    for n in (2, 5, 100):
        v = np.zeros(n)
        v[3 % n] = 2.5
        assert gini(v) == pytest.approx((n - 1) / n)
    # the definition by mean absolute difference, on a random vector
    v = np.random.default_rng(0).exponential(size=50)
    mad = np.abs(v[:, None] - v[None, :]).sum() / (2 * v.size**2 * v.mean())
    assert gini(v) == pytest.approx(mad)
    # a large uniform sample on [0, 1] has Gini 1/3
    assert gini(np.random.default_rng(1).uniform(size=100_000)) == pytest.approx(1 / 3, abs=0.01)
    assert np.isnan(gini(np.zeros(4)))
    assert np.isnan(gini(np.array([1.0, -1.0])))


def test_spearman_matches_scipy_and_reports_constant_input():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=30), rng.normal(size=30)
    rho, why = spearman(x, y)
    assert why == "" and rho == pytest.approx(stats.spearmanr(x, y).statistic)
    rho, why = spearman(x, np.ones(30))
    assert np.isnan(rho) and "constant" in why


def test_selectivity_by_hand():
    # one neuron, three modes; A[0, k, m] = band k during mode m
    A = np.zeros((1, 3, 3))
    A[0, 0] = [0.9, 0.3, 0.1]  # band 0: matched 0.9, others mean 0.2 -> (0.7) / (1.1)
    A[0, 1] = [0.5, 0.5, 0.5]  # band 1: not selective -> 0
    A[0, 2] = [0.4, 0.4, 0.0]  # band 2: matched 0, others 0.4 -> -1
    np.testing.assert_allclose(selectivity(A)[0], [0.7 / 1.1, 0.0, -1.0])


def test_amplitude_analysis_against_scipy():
    rng = np.random.default_rng(3)
    n, m = 40, 4
    A = rng.gamma(2.0, size=(n, m, m))
    tau = rng.uniform(0.005, 0.2, n)
    res = amplitude_analysis(A, tau, ("a", "b", "c", "d"))
    for j in range(m):
        v = A[:, j, j]
        assert res.rho_tau_amp_m[j] == pytest.approx(stats.spearmanr(tau, v).statistic)
        assert res.skew_m[j] == pytest.approx(stats.skew(v))
        assert res.kurtosis_m[j] == pytest.approx(stats.kurtosis(v))
        assert res.gini_m[j] == pytest.approx(gini(v))
    res = amplitude_analysis(A, tau, ("a", "b", "c", "d"), valid_m=np.array([1, 0, 1, 1], bool))
    assert np.isnan(res.rho_tau_amp_m[1]) and "no oscillation" in res.reasons["rho_tau_amp_b"]
