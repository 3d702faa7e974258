"""Ensemble statistics: exact Page-test p-values, monotone shares, bootstrap CIs."""

import math

import numpy as np
import pytest

from rhythmswitch.analysis.summary import bootstrap_ci, monotone, trend_stats

MODES = ("theta", "alpha", "beta", "gamma")


def test_perfect_falling_trend_has_the_exact_page_p_value():
    # every network ranks the bands in the predicted order: under H0 each row has probability
    # 1/4! of that ranking, so P(L >= L_max) = (1/24)^n exactly
    rho = np.array([[-0.1, -0.3, -0.5, -0.8], [0.0, -0.2, -0.4, -0.6], [-0.2, -0.25, -0.3, -0.9]])
    out = trend_stats(rho, MODES, "down")
    assert out["share_monotone"] == 1.0
    assert out["page_trend"]["p_value"] == pytest.approx(24.0**-3, rel=1e-6)
    assert out["page_trend"]["L"] == 3 * (4 * 4 + 3 * 3 + 2 * 2 + 1 * 1)
    assert out["per_band"]["theta"]["mean"] == pytest.approx(-0.1)
    assert out["per_band"]["gamma"]["sd"] == pytest.approx(np.std([-0.8, -0.6, -0.9], ddof=1))
    # the same data predicted to rise gives the largest p-value
    assert trend_stats(rho, MODES, "up")["page_trend"]["p_value"] == pytest.approx(1.0)
    assert trend_stats(rho, MODES, "up")["share_monotone"] == 0.0


def test_monotone_share_and_incomplete_rows():
    x = np.array([[3, 2, 1, 0], [3, 2, 2, 0], [0, 1, 2, 3.0], [np.nan, 1, 0, -1]])
    assert monotone(x[:3], "down").tolist() == [True, False, False]
    out = trend_stats(x, MODES, "down")
    assert out["n_complete"] == 3 and out["share_monotone"] == pytest.approx(1 / 3)
    assert out["per_band"]["theta"]["n"] == 3


def test_too_few_bands_or_networks_give_a_reason_not_an_error():
    out = trend_stats(np.array([[1.0, 0.0]]), ("a", "b"), "down")
    assert out["page_trend"]["p_value"] is None and ">= 3 bands" in out["page_trend"]["reason"]
    assert math.isnan(out["per_band"]["a"]["sd"])


def test_bootstrap_ci_is_reproducible_and_brackets_the_mean():
    v = np.random.default_rng(0).normal(0.5, 1.0, 40)
    lo, hi = bootstrap_ci(v)
    assert (lo, hi) == bootstrap_ci(v)
    assert lo < v.mean() < hi
    # about 2 standard errors either side
    se = v.std(ddof=1) / np.sqrt(v.size)
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert all(math.isnan(c) for c in bootstrap_ci(np.array([1.0])))
