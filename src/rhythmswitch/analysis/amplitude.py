"""Amplitudes per neuron, band and mode, and their relation to time constants (METHOD 7).

- ``A_nkm[i, k, m]``: A_i(band k, mode m), the time-mean Hilbert envelope of neuron i's rate
  band-passed to band k during mode m (analysed part only).  Units of r (dimensionless).
- Matched-mode amplitude A_i(m, m) = ``A_nkm[i, m, m]``.
- tau-amplitude correlation: Spearman rho between tau_i and A_i(m, m) over the N neurons.
- Shape of each A(m, m) distribution: sample skewness and excess (Fisher) kurtosis
  (``scipy.stats.skew`` / ``kurtosis`` with their default biased estimators) and the Gini
  coefficient G = sum_i (2 i - n - 1) v_(i) / (n sum v), v sorted ascending (0 when all equal,
  (n - 1)/n when one neuron carries everything).
- Selectivity of neuron i for mode m: (A_i(m, m) - Abar) / (A_i(m, m) + Abar), where
  Abar = mean over the other modes m' of A_i(band m, mode m'); in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def mean_envelope(analytic_tn: np.ndarray) -> np.ndarray:
    """Time-mean envelope of each column, shape (N,)."""
    return np.abs(analytic_tn).mean(axis=0)


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    """Spearman rho of two vectors and a reason when it is undefined ('' when fine)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan"), f"fewer than 3 finite values ({int(ok.sum())})"
    x, y = x[ok], y[ok]
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        which = "first" if np.ptp(x) == 0 else "second"
        return float("nan"), f"the {which} vector is constant (rank correlation undefined)"
    return float(stats.spearmanr(x, y).statistic), ""


def gini(v: np.ndarray) -> float:
    """Gini coefficient of a non-negative vector (NaN if empty, negative or all zero)."""
    v = np.sort(np.asarray(v, dtype=np.float64).ravel())
    n = v.size
    if n == 0 or not np.all(np.isfinite(v)) or np.any(v < 0) or v.sum() <= 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * v) / (n * v.sum()))


def selectivity(A_nkm: np.ndarray) -> np.ndarray:
    """Selectivity (N, M) of every neuron for every mode (NaN where both terms are 0)."""
    A = np.asarray(A_nkm, dtype=np.float64)
    n, k, m = A.shape
    if k != m:
        raise ValueError(f"A_nkm must have as many bands as modes, got shape {A.shape}")
    if m < 2:
        return np.full((n, m), np.nan)
    matched = np.einsum("nmm->nm", A)
    # mean over the other modes m' of A_i(band m, mode m')
    others = (A.sum(axis=2) - matched) / (m - 1)  # (N, band m)
    den = matched + others
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (matched - others) / den, np.nan)


@dataclass(frozen=True)
class AmplitudeResult:
    A_nkm: np.ndarray  # (N, K, M)
    matched_nm: np.ndarray  # (N, M)
    rho_tau_amp_m: np.ndarray  # (M,)
    skew_m: np.ndarray
    kurtosis_m: np.ndarray
    gini_m: np.ndarray
    selectivity_nm: np.ndarray
    reasons: dict[str, str]  # quantity name -> why it is NaN


def amplitude_analysis(
    A_nkm: np.ndarray, tau_s: np.ndarray, mode_names, valid_m: np.ndarray | None = None
) -> AmplitudeResult:
    """All amplitude statistics from ``A_nkm``; modes with ``valid_m`` False get NaN + reason."""
    A = np.asarray(A_nkm, dtype=np.float64)
    n, _, m = A.shape
    valid = np.ones(m, bool) if valid_m is None else np.asarray(valid_m, bool)
    matched = np.einsum("nmm->nm", A)
    rho = np.full(m, np.nan)
    sk = np.full(m, np.nan)
    ku = np.full(m, np.nan)
    gi = np.full(m, np.nan)
    reasons: dict[str, str] = {}
    for j, name in enumerate(mode_names):
        if not valid[j]:
            reasons[f"rho_tau_amp_{name}"] = f"mode {name}: no oscillation"
            continue
        v = matched[:, j]
        rho[j], why = spearman(tau_s, v)
        if why:
            reasons[f"rho_tau_amp_{name}"] = why
        if n >= 3 and np.ptp(v) > 0:
            sk[j] = float(stats.skew(v))
            ku[j] = float(stats.kurtosis(v))
        gi[j] = gini(v)
    return AmplitudeResult(
        A_nkm=A,
        matched_nm=matched,
        rho_tau_amp_m=rho,
        skew_m=sk,
        kurtosis_m=ku,
        gini_m=gi,
        selectivity_nm=selectivity(A),
        reasons=reasons,
    )
