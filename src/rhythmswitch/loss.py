"""The in-band power-ratio loss of METHOD section 4.

For a window of L samples of z: P(f_k) = |rfft(z)_k|^2 / (Fs L) for k = 1 .. L//2 (DC dropped),
f_k = k Fs / L.  ratio = sum of P over the band [low, high) / sum of P over all k.
loss = mean over batch and intervals of (ratio - 1)^2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def band_mask(n_samples: int, fs_hz: float, band_hz: tuple[float, float]) -> np.ndarray:
    """Boolean mask over bins k = 1 .. L//2 (DC dropped) with low <= f_k < high."""
    k = np.arange(1, n_samples // 2 + 1)
    f = k * fs_hz / n_samples
    lo, hi = band_hz
    return (f >= lo) & (f < hi)


def band_masks(n_samples: int, fs_hz: float, bands_hz) -> np.ndarray:
    """Masks of every band, shape (M, L//2), float32."""
    return np.stack([band_mask(n_samples, fs_hz, tuple(b)) for b in bands_hz]).astype(np.float32)


def power_spectrum(z: jax.Array, fs_hz: float) -> jax.Array:
    """P(f_k) for k = 1 .. L//2 along the last axis (DC dropped)."""
    n = z.shape[-1]
    spec = jnp.fft.rfft(z, axis=-1)[..., 1 : n // 2 + 1]
    return (spec.real**2 + spec.imag**2) / (fs_hz * n)


def band_ratio(z: jax.Array, mask: jax.Array, fs_hz: float) -> jax.Array:
    """In-band power ratio along the last axis; ``mask`` is (L//2,) or broadcastable."""
    p = power_spectrum(z, fs_hz)
    total = jnp.sum(p, axis=-1)
    return jnp.sum(p * mask, axis=-1) / jnp.maximum(total, jnp.finfo(p.dtype).tiny)


def windows(z_bt: jax.Array, starts: np.ndarray, window: int) -> jax.Array:
    """The loss windows of a batch of outputs (B, T): shape (B, J, window), one per start."""
    return jnp.stack([z_bt[:, s : s + window] for s in starts.tolist()], axis=1)


def window_loss(
    z_bt: jax.Array,
    modes_bj: jax.Array,
    starts: np.ndarray,
    window: int,
    masks_ml: jax.Array,
    fs_hz: float,
) -> tuple[jax.Array, jax.Array]:
    """Loss of a batch: windows of ``window`` samples at ``starts`` (one per interval).

    Returns (loss, ratios of shape (B, J)).
    """
    segs = windows(z_bt, starts, window)
    masks = jnp.asarray(masks_ml)[modes_bj]  # (B, J, L//2)
    ratios = band_ratio(segs, masks, fs_hz)
    return jnp.mean((ratios - 1.0) ** 2), ratios


def amplitude_penalty(z_bt: jax.Array, starts: np.ndarray, window: int, floor: float) -> jax.Array:
    """mean over trials and windows of (1 - std(z_w) / floor)_+^2 (``train.amp_floor``): zero
    for every window whose output varies at least ``floor`` (standard deviation)."""
    return jnp.mean(
        jnp.maximum(1.0 - jnp.std(windows(z_bt, starts, window), axis=-1) / floor, 0.0) ** 2
    )


def ratio_numpy(z: np.ndarray, fs_hz: float, band_hz: tuple[float, float]) -> float:
    """NumPy reference of :func:`band_ratio` for one signal (used by evaluation and tests)."""
    z = np.asarray(z, dtype=np.float64)
    n = z.shape[-1]
    p = np.abs(np.fft.rfft(z))[1 : n // 2 + 1] ** 2 / (fs_hz * n)
    total = p.sum()
    if total <= 0:
        return float("nan")
    return float(p[band_mask(n, fs_hz, band_hz)].sum() / total)
