"""Sync strength, active sets, coherence ratio, kappa rule and baselines on known inputs."""

import numpy as np
import pytest

from rhythmswitch.analysis.baseline import baseline_analysis, baseline_shift, baseline_stats
from rhythmswitch.analysis.phase import (
    AMPLITUDE_SUPPRESSION,
    PHASE_INTERFERENCE,
    coherence_ratio,
    kappa,
    kappa_summary,
    min_kappa_count,
)
from rhythmswitch.analysis.signals import analytic_signal
from rhythmswitch.analysis.sync import active_set, jaccard, n_active, sync_degree, sync_matrix

FS = 1000.0
T = np.arange(6000) / FS
MID = slice(1000, 5000)


def _z(x_tn, band=(8.0, 13.0)):
    return analytic_signal(x_tn, band, FS)[MID]


def test_sync_phase_locked_vs_independent():
    amps = np.array([0.5, 1.0, 2.0])
    locked = amps * np.sin(2 * np.pi * 10 * T[:, None] + np.array([0.0, 0.7, 2.0]))
    S = sync_matrix(_z(locked))
    np.testing.assert_allclose(S, np.outer(amps, amps), rtol=0.02)
    np.testing.assert_allclose(sync_degree(S), np.outer(amps, amps).sum(1) - amps**2, rtol=0.02)
    # independent: the same amplitudes, but each unit at its own frequency inside the band
    indep = amps * np.sin(2 * np.pi * np.array([9.5, 10.5, 11.0]) * T[:, None])
    S = sync_matrix(_z(indep))
    off = S[~np.eye(3, dtype=bool)] / np.outer(amps, amps)[~np.eye(3, dtype=bool)]
    assert off.max() < 0.05
    np.testing.assert_allclose(np.diag(S), amps**2, rtol=0.02)


def test_active_set_and_jaccard():
    d = np.arange(100.0)
    assert n_active(100) == 20 and n_active(3) == 1
    a = active_set(d)
    assert a.sum() == 20 and a[80:].all()
    b = active_set(d[::-1])
    assert jaccard(a, b) == 0.0 and jaccard(a, a) == 1.0
    c = np.zeros(100, bool)
    c[70:90] = True
    assert jaccard(a, c) == pytest.approx(10 / 30)


def test_coherence_ratio_in_phase_and_spread():
    n = 12
    inphase = np.sin(2 * np.pi * 10 * T[:, None] + np.zeros(n))
    assert coherence_ratio(_z(inphase)) == pytest.approx(1.0, abs=1e-6)
    spread = np.sin(2 * np.pi * 10 * T[:, None] + 2 * np.pi * np.arange(n) / n)
    assert coherence_ratio(_z(spread)) < 1e-3
    # two equal groups in anti-phase plus a third in phase: |1/3 e^0| -> 1/3
    third = np.sin(2 * np.pi * 10 * T[:, None] + np.array([0.0, np.pi, 0.0]))
    assert coherence_ratio(_z(third)) == pytest.approx(1 / 3, abs=1e-3)


def test_kappa_and_the_papers_rule():
    n = 100
    A = np.ones((n, 2, 2))
    A[:, 0, 1] = 0.2  # most neurons lose 80 % of their from-band amplitude
    A[:20, 0, 1] = 0.8  # 20 neurons keep 80 %
    k = kappa(A, 0, 1)
    assert k[0] == pytest.approx(0.8) and k[50] == pytest.approx(0.2)
    s = kappa_summary(k)
    # median 0.2 <= 0.3 -> suppression even with 20 neurons above 0.5
    assert s.rule == AMPLITUDE_SUPPRESSION and s.n_above == 20 and s.frac_above == 0.2
    A[:, 0, 1] = 0.4
    A[:20, 0, 1] = 0.8
    assert kappa_summary(kappa(A, 0, 1)).rule == PHASE_INTERFERENCE
    A[19, 0, 1] = 0.4  # only 19 above 0.5
    assert kappa_summary(kappa(A, 0, 1)).rule == AMPLITUDE_SUPPRESSION
    assert min_kappa_count(100) == 20 and min_kappa_count(50) == 10 and min_kappa_count(16) == 4
    A[:, 0, 0] = 0.0  # no from-band amplitude: kappa undefined
    assert kappa_summary(kappa(A, 0, 1)).rule == ""


def test_baselines_by_hand():
    t = np.arange(4000)
    c = np.array([0.1, -0.3])
    r = c + 0.2 * np.sin(2 * np.pi * t[:, None] / 100)  # 40 whole cycles
    b, sd, spread = baseline_stats(r)
    np.testing.assert_allclose(b, c, atol=1e-12)
    np.testing.assert_allclose(sd, 0.2 / np.sqrt(2), rtol=1e-9)
    np.testing.assert_allclose(spread, 0.0, atol=1e-12)
    step = np.concatenate([np.zeros(2000), np.ones(2000)])[:, None]
    _, _, spread = baseline_stats(step)
    assert spread[0] == pytest.approx(0.5)  # sub-window means 0, 0, 1, 1
    assert baseline_shift(np.array([0.0, 0.0]), np.array([0.3, -0.4])) == pytest.approx(
        np.sqrt((0.09 + 0.16) / 2)
    )
    res = baseline_analysis([r, r + 0.1])
    assert res.shift_mm[0, 1] == pytest.approx(0.1) and res.shift_mm[1, 1] == 0.0
    with pytest.raises(ValueError, match="sub-windows"):
        baseline_stats(np.zeros((3, 2)))
