import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhythmswitch.loss import (
    amplitude_penalty,
    band_mask,
    band_masks,
    band_ratio,
    ratio_numpy,
    window_loss,
)


def test_band_mask_is_half_open_and_drops_dc():
    # L = 1000 at 1 kHz: bins at 1, 2, ... 500 Hz
    m = band_mask(1000, 1000.0, (4, 7))
    freqs = np.arange(1, 501)
    assert set(freqs[m]) == {4, 5, 6}
    assert m.shape == (500,)
    m = band_mask(2000, 1000.0, (4, 7))  # 0.5 Hz bins
    assert set(np.arange(1, 1001)[m] * 0.5) == {4.0, 4.5, 5.0, 5.5, 6.0, 6.5}


def test_ratio_of_sinusoids_is_computable_by_hand():
    fs, n = 1000.0, 1000
    t = np.arange(n) / fs
    # on-bin sinusoids: power proportional to amplitude^2, no leakage; DC is ignored
    z = 3.0 + 2.0 * np.sin(2 * np.pi * 5 * t) + 1.0 * np.cos(2 * np.pi * 40 * t + 0.3)
    expected = 4.0 / (4.0 + 1.0)
    assert ratio_numpy(z, fs, (4, 7)) == pytest.approx(expected, abs=1e-9)
    got = float(
        band_ratio(
            jnp.asarray(z, jnp.float32), jnp.asarray(band_mask(n, fs, (4, 7)), jnp.float32), fs
        )
    )
    assert got == pytest.approx(expected, abs=1e-5)


def test_amplitude_penalty_by_hand():
    fs, win = 1000.0, 1000
    t = np.arange(win) / fs
    # an on-bin sinusoid of amplitude A has standard deviation A / sqrt(2) over its window
    loud = 0.4 * np.sin(2 * np.pi * 5 * t) + 0.3  # std 0.2828 (the offset does not count)
    quiet = 0.1 * np.sin(2 * np.pi * 40 * t)  # std 0.0707
    z = jnp.asarray(np.concatenate([np.zeros(7), loud, quiet])[None, :], jnp.float32)
    starts = np.array([7, 7 + win])
    floor = 0.2
    expected = (0.0 + (1 - 0.1 / np.sqrt(2) / floor) ** 2) / 2
    assert float(amplitude_penalty(z, starts, win, floor)) == pytest.approx(expected, rel=1e-4)
    # a window at or above the floor adds nothing and gets no gradient
    grad = jax.grad(lambda v: amplitude_penalty(v, starts, win, floor))(z)
    assert np.all(np.asarray(grad)[0, 7 : 7 + win] == 0.0)
    assert np.any(np.asarray(grad)[0, 7 + win :] != 0.0)


def test_window_loss_by_hand():
    fs, win = 1000.0, 1000
    t = np.arange(win) / fs
    inband = np.sin(2 * np.pi * 5 * t)
    mixed = np.sin(2 * np.pi * 5 * t) + np.sin(2 * np.pi * 40 * t)  # ratio 1/2 for theta
    z = np.concatenate([np.zeros(10), inband, np.zeros(5), mixed])[None, :]
    masks = band_masks(win, fs, [(4, 7), (30, 50)])
    modes = np.array([[0, 0]])
    loss, ratios = window_loss(
        jnp.asarray(z, jnp.float32),
        jnp.asarray(modes),
        np.array([10, 1015]),
        win,
        jnp.asarray(masks),
        fs,
    )
    np.testing.assert_allclose(np.asarray(ratios), [[1.0, 0.5]], atol=1e-5)
    assert float(loss) == pytest.approx((0.0 + 0.25) / 2, abs=1e-5)
    # the same windows scored against gamma
    _, ratios = window_loss(
        jnp.asarray(z, jnp.float32),
        jnp.asarray([[1, 1]]),
        np.array([10, 1015]),
        win,
        jnp.asarray(masks),
        fs,
    )
    np.testing.assert_allclose(np.asarray(ratios), [[0.0, 0.5]], atol=1e-5)


def test_leakage_of_the_evaluation_segment_matches_the_dirichlet_kernel():
    """A sinusoid with a whole number of cycles in the segment keeps all its power in one bin;
    5 Hz in 7500 samples (37.5 cycles, half a bin off the grid) leaks ~2 % out of the 4-7 Hz
    band, so even a perfect rhythm there fails the 0.99 criterion (benchmarks/criterion_leakage.py).
    The leak below the band is sum over bins at 7.5 + j of sin^2(pi/2) / (pi^2 (7.5 + j)^2)."""
    t = np.arange(7500) / 1000.0
    on_grid = ratio_numpy(np.sin(2 * np.pi * 5.2 * t + 0.3), 1000.0, (4.0, 7.0))  # 39 cycles
    assert on_grid == pytest.approx(1.0, abs=1e-9)
    half_off = ratio_numpy(np.sin(2 * np.pi * 5.0 * t + 0.3), 1000.0, (4.0, 7.0))
    j = np.arange(0, 200000)
    below = np.sum(1.0 / (np.pi**2 * (7.5 + j) ** 2))  # bins 0..29 of the 7500 grid (< 4 Hz)
    above = np.sum(1.0 / (np.pi**2 * (15.5 + j) ** 2))  # bins >= 53 (>= 7 Hz), 15.5 bins away
    assert half_off < 0.99
    assert 1.0 - half_off == pytest.approx(below + above, rel=0.1)
