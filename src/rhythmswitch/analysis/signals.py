"""Band-pass filtering and the analytic signal (METHOD section 7, first paragraph).

A rate trace r_i in a mode's segment is band-passed with a 4th-order Butterworth filter
(``scipy.signal.butter(4, ..., output='sos')``) applied forward and backward
(``sosfiltfilt``, zero phase), then ``scipy.signal.hilbert`` gives the analytic signal
Z_i(t) = A_i(t) exp(i phi_i(t)): envelope A = |Z|, phase phi = arg Z.  All N neurons are filtered
at once along the time axis (axis 0, arrays ``_tn``).

The whole segment (transient included) is filtered, so the filter's edge transient at the start
falls inside the dropped part; averages use only the analysed part (``Segment.analysis_slice``).

Too few cycles.  An envelope or phase average over a segment holding only a few cycles of a band
is dominated by edge effects and by the envelope's own slow fluctuations.  :func:`cycles_in_segment`
counts the cycles of the band's low edge in the analysed part; below :data:`MIN_CYCLES` the
pipeline attaches a warning to its output tables instead of silently reporting the number.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal

from rhythmswitch.task import Segment

FILTER_ORDER = 4
MIN_CYCLES = 10.0


@lru_cache(maxsize=256)
def butter_sos(band_hz: tuple[float, float], fs_hz: float, order: int = FILTER_ORDER) -> np.ndarray:
    """Second-order sections of a Butterworth band-pass for [low, high) Hz.

    A band starting at 0 Hz becomes a low-pass at ``high``; a band reaching Nyquist becomes a
    high-pass at ``low``.  Raises ValueError naming the band when neither edge is usable.
    """
    lo, hi = float(band_hz[0]), float(band_hz[1])
    nyq = 0.5 * fs_hz
    if not (0 <= lo < hi) or lo >= nyq:
        raise ValueError(
            f"band_hz = [{lo}, {hi}] is invalid: need 0 <= low < high and low < Nyquist ({nyq:g} Hz)"
        )
    if lo <= 0 and hi >= nyq:
        raise ValueError(
            f"band_hz = [{lo}, {hi}] is invalid: it spans 0 Hz to Nyquist, nothing to filter"
        )
    if lo <= 0:
        return signal.butter(order, hi, btype="lowpass", fs=fs_hz, output="sos")
    if hi >= nyq:
        return signal.butter(order, lo, btype="highpass", fs=fs_hz, output="sos")
    return signal.butter(order, [lo, hi], btype="bandpass", fs=fs_hz, output="sos")


def bandpass(x_tn: np.ndarray, band_hz, fs_hz: float, axis: int = 0) -> np.ndarray:
    """Zero-phase band-pass of every column of ``x_tn`` (time on ``axis``, default 0)."""
    sos = butter_sos((float(band_hz[0]), float(band_hz[1])), float(fs_hz))
    return signal.sosfiltfilt(sos, np.asarray(x_tn, dtype=np.float64), axis=axis)


def analytic_signal(x_tn: np.ndarray, band_hz, fs_hz: float, axis: int = 0) -> np.ndarray:
    """Z(t) = A(t) exp(i phi(t)) of the band-passed signal, complex, same shape as ``x_tn``."""
    return signal.hilbert(bandpass(x_tn, band_hz, fs_hz, axis=axis), axis=axis)


def envelope_phase(x_tn: np.ndarray, band_hz, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Envelope A(t) and phase phi(t) (radians, in (-pi, pi]) of the band-passed signal."""
    z = analytic_signal(x_tn, band_hz, fs_hz)
    return np.abs(z), np.angle(z)


def segment_analytic(r_tn: np.ndarray, seg: Segment, band_hz, fs_hz: float) -> np.ndarray:
    """Analytic signal of a protocol segment, filtered over the whole segment and returned on
    its analysed part only (transient dropped), shape (T_analysed, N)."""
    # time on the last, contiguous axis: the FFTs of the Hilbert transform run ~3x faster
    x_nt = np.ascontiguousarray(np.asarray(r_tn[seg.start : seg.stop], dtype=np.float64).T)
    z_nt = analytic_signal(x_nt, band_hz, fs_hz, axis=-1)
    return z_nt[:, seg.drop :].T


def cut_analytic(r_tn: np.ndarray, seg: Segment, band_hz, fs_hz: float) -> np.ndarray:
    """The alternative order: cut the transient first, then filter the analysed part only.

    Used as a robustness check of :func:`segment_analytic` (the two differ only by edge
    effects: the pulse's ringing versus the filter's start-up at the cut)."""
    x_nt = np.ascontiguousarray(np.asarray(r_tn[seg.analysis_slice], dtype=np.float64).T)
    return analytic_signal(x_nt, band_hz, fs_hz, axis=-1).T


def cut_segment(x_t: np.ndarray, seg: Segment) -> np.ndarray:
    """The analysed part of a segment of any array with time on axis 0."""
    return np.asarray(x_t)[seg.analysis_slice]


def cycles_in_segment(band_hz, n_samples: int, fs_hz: float) -> float:
    """Cycles of the band's low edge (its high edge if low = 0) in ``n_samples`` samples."""
    lo, hi = float(band_hz[0]), float(band_hz[1])
    f = lo if lo > 0 else hi
    return n_samples / fs_hz * f


def cycle_warning(
    band_name: str, band_hz, n_samples: int, fs_hz: float, min_cycles: float = MIN_CYCLES
) -> str:
    """A warning string when a band's analysed segment holds fewer than ``min_cycles``; else ''."""
    c = cycles_in_segment(band_hz, n_samples, fs_hz)
    if c >= min_cycles:
        return ""
    return (
        f"band {band_name} [{float(band_hz[0]):g}, {float(band_hz[1]):g}) Hz: the analysed segment "
        f"({n_samples} samples = {n_samples / fs_hz:g} s) holds only {c:.1f} cycles of its low edge "
        f"(< {min_cycles:g}); its amplitudes, phases and spectra are unreliable"
    )
