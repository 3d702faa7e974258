import jax
import numpy as np
import pytest

from rhythmswitch.config import TaskConfig
from rhythmswitch.task import (
    pulse_schedule,
    sample_modes,
    sequence_protocol,
    transition_protocols,
    trial_inputs,
    window_starts,
)


def test_pulses_land_where_the_config_says():
    cfg = TaskConfig(
        wait_steps=7,
        pulse_steps=5,
        transient_steps=11,
        window_steps=20,
        switch_num=3,
        pulse_amp=0.5,
    )
    modes = np.array([[2, 0, 3]], np.int32)
    u = np.asarray(trial_inputs(cfg, modes))[0]
    assert u.shape == (7 + 3 * 31, 4)
    expected = np.zeros_like(u)
    for j, m in enumerate([2, 0, 3]):
        start = 7 + j * 31
        expected[start : start + 5, m] = 0.5
    np.testing.assert_array_equal(u, expected)
    np.testing.assert_array_equal(window_starts(cfg), [7 + 11, 7 + 31 + 11, 7 + 62 + 11])
    idx, on = pulse_schedule(cfg)
    assert idx[6] == -1 and idx[7] == 0 and idx[7 + 31] == 1 and on.sum() == 15


def test_modes_are_uniform_and_reproducible():
    cfg = TaskConfig()
    a = np.asarray(sample_modes(cfg, jax.random.PRNGKey(0), 4000))
    b = np.asarray(sample_modes(cfg, jax.random.PRNGKey(0), 4000))
    np.testing.assert_array_equal(a, b)
    counts = np.bincount(a.ravel(), minlength=4) / a.size
    assert np.all(np.abs(counts - 0.25) < 0.02)


def test_evaluation_protocols():
    cfg = TaskConfig()
    seq = sequence_protocol(cfg)
    assert seq.n_steps == 100 + 4 * 8000
    for j, seg in enumerate(seq.segments):
        assert seg.mode == j and seg.stop - seg.start == 8000
        assert seg.analysis_slice.stop - seg.analysis_slice.start == 7500
        assert np.all(seq.u_tm[seg.start : seg.start + 100, j] == 1.0)
        assert seq.u_tm[seg.start + 100 : seg.stop].sum() == 0
    trans = transition_protocols(cfg)
    assert len(trans) == 12 and len({p.name for p in trans}) == 12
    assert trans[0].name == "theta->alpha"


def test_balanced_modes_are_stratified_per_interval_with_uniform_marginals():
    cfg = TaskConfig()
    draws = np.stack(
        [np.asarray(sample_modes(cfg, jax.random.PRNGKey(i), 6, balanced=True)) for i in range(600)]
    )  # (600, 6 trials, 3 intervals)
    for d in draws[:50]:
        for j in range(cfg.switch_num):
            counts = np.bincount(d[:, j], minlength=4)
            assert counts.max() - counts.min() <= 1  # 6 trials over 4 modes: 1 or 2 each
    # every (trial, interval) entry is still uniform over the modes
    for b in range(6):
        for j in range(cfg.switch_num):
            freq = np.bincount(draws[:, b, j], minlength=4) / len(draws)
            assert np.all(np.abs(freq - 0.25) < 0.07)
    # intervals are drawn independently: repeats (same mode twice in a row) still occur
    assert np.mean(draws[:, :, 0] == draws[:, :, 1]) == pytest.approx(0.25, abs=0.04)
