"""Baselines and oscillation amplitudes of the rates (METHOD section 7).

For neuron i in the analysed part of mode m's segment (T samples of r_i):

- baseline b_i(m) = mean_t r_i(t)                               (units of r)
- oscillation amplitude s_i(m) = SD_t r_i(t) (population SD, ddof = 0)
- within-mode baseline spread w_i(m): split the analysed part into :data:`N_SUBWINDOWS` = 4
  equal consecutive sub-windows (a remainder of < 4 samples is dropped at the end), take
  neuron i's mean in each, and report the SD (ddof = 0) of those 4 means.  It measures how far
  a baseline wanders *within* one mode, a null model for calling a between-mode shift real.
- baseline shift between modes p and q: RMS over neurons of b_i(q) - b_i(p).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_SUBWINDOWS = 4


def baseline_stats(
    r_tn: np.ndarray, n_sub: int = N_SUBWINDOWS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(baseline, oscillation amplitude, within-segment baseline spread), each (N,)."""
    r = np.asarray(r_tn, dtype=np.float64)
    t = r.shape[0]
    if t < n_sub:
        raise ValueError(f"a segment of {t} samples cannot be split into {n_sub} sub-windows")
    w = t // n_sub
    sub = r[: w * n_sub].reshape(n_sub, w, -1).mean(axis=1)  # (n_sub, N)
    return r.mean(axis=0), r.std(axis=0), sub.std(axis=0)


def baseline_shift(b_from: np.ndarray, b_to: np.ndarray) -> float:
    """RMS over neurons of the baseline difference."""
    d = np.asarray(b_to, dtype=np.float64) - np.asarray(b_from, dtype=np.float64)
    return float(np.sqrt(np.mean(d**2)))


@dataclass(frozen=True)
class BaselineResult:
    baseline_mn: np.ndarray  # (M, N)
    osc_amp_mn: np.ndarray  # (M, N)
    spread_mn: np.ndarray  # (M, N)
    shift_mm: np.ndarray  # (M, M), shift_mm[p, q] = RMS_i (b_i(q) - b_i(p))

    @property
    def spread_rms_m(self) -> np.ndarray:
        """RMS over neurons of the within-mode spread, (M,): comparable with a shift."""
        return np.sqrt(np.mean(self.spread_mn**2, axis=1))


def baseline_analysis(segments_r: list[np.ndarray]) -> BaselineResult:
    """From the analysed rate segment (T, N) of every mode."""
    stats = [baseline_stats(r) for r in segments_r]
    base = np.stack([s[0] for s in stats])
    m = base.shape[0]
    shift = np.array([[baseline_shift(base[p], base[q]) for q in range(m)] for p in range(m)])
    return BaselineResult(
        baseline_mn=base,
        osc_amp_mn=np.stack([s[1] for s in stats]),
        spread_mn=np.stack([s[2] for s in stats]),
        shift_mm=shift,
    )
