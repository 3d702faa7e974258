"""Spectrum, peak frequency and band power of the population output z per mode.

- Spectrum for figures: Welch (Hann window, ``nperseg = min(L, 2048)``, 50 % overlap,
  mean removed), units z^2 / Hz.
- Peak frequency: the largest bin of the periodogram of the analysed segment (the loss's
  estimator, METHOD section 4: P(f_k) = |rfft(z)_k|^2 / (Fs L), k = 1 .. L/2, DC dropped),
  resolution Fs / L (0.13 Hz for the paper's 7500 samples).
- Band power of band k: the one-sided power in [low, high), 2 sum P(f_k) df (z^2; a sinusoid
  of amplitude A in the band contributes A^2 / 2, its variance), and the in-band ratio (band power / total power), the quantity the loss and evaluation use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from rhythmswitch.loss import band_mask

WELCH_NPERSEG = 2048


def periodogram(z_t: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(f_k, P(f_k)) for k = 1 .. L//2 as in the loss (DC dropped, no window)."""
    z = np.asarray(z_t, dtype=np.float64)
    n = z.shape[-1]
    p = np.abs(np.fft.rfft(z))[1 : n // 2 + 1] ** 2 / (fs_hz * n)
    f = np.arange(1, n // 2 + 1) * fs_hz / n
    return f, p


def welch_spectrum(z_t: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density of z (Hann, nperseg = min(L, 2048))."""
    z = np.asarray(z_t, dtype=np.float64)
    return signal.welch(z, fs=fs_hz, nperseg=min(z.shape[-1], WELCH_NPERSEG))


@dataclass(frozen=True)
class SpectrumResult:
    """Spectral summary of z in one segment."""

    freqs_hz: np.ndarray  # Welch frequencies (F,)
    psd: np.ndarray  # Welch PSD (F,)
    peak_hz: float  # periodogram peak (NaN when z is constant)
    band_power: np.ndarray  # (K,) z^2 per band
    band_ratio: np.ndarray  # (K,) fraction of total power per band
    z_sd: float


def spectrum_of_segment(z_t: np.ndarray, fs_hz: float, bands_hz) -> SpectrumResult:
    """Spectrum, peak and band powers of one analysed segment of z."""
    z = np.asarray(z_t, dtype=np.float64)
    f, p = periodogram(z, fs_hz)
    total = float(p.sum())
    n = z.shape[-1]
    df = fs_hz / n
    masks = [band_mask(n, fs_hz, (float(lo), float(hi))) for lo, hi in np.asarray(bands_hz)]
    # one-sided power: every bin but Nyquist counts twice, so a sinusoid of amplitude A has A^2/2
    p1 = 2.0 * p
    if n % 2 == 0:
        p1[-1] = p[-1]
    power = np.array([p1[m].sum() * df for m in masks])
    if np.ptp(z) > 0 and total > 0 and np.isfinite(total):
        peak = float(f[int(np.argmax(p))])
        ratio = np.array([p[m].sum() / total for m in masks])
    else:
        peak = float("nan")
        ratio = np.full(len(masks), np.nan)
    wf, wp = welch_spectrum(z, fs_hz)
    return SpectrumResult(
        freqs_hz=wf, psd=wp, peak_hz=peak, band_power=power, band_ratio=ratio, z_sd=float(z.std())
    )
