"""Phase organisation of the population (METHOD section 7, last paragraph).

- Coherence ratio for band k during mode m:
  eta(m, k) = < | mean_i A_i exp(i phi_i) | >_t / < mean_i A_i >_t = < |mean_i Z_i| > / < mean_i |Z_i| >.
  1 when all neurons are in phase, ~ 1/sqrt(N) for independent uniform phases, 0 when their
  phases cancel exactly.  Dimensionless, in [0, 1].
- kappa_i for the ordered pair (from, to) = A_i(band from, mode to) / A_i(band from, mode from):
  how much of neuron i's from-band oscillation survives after switching to mode ``to``.
- The paper's rule (stated for alpha -> beta, applied here to every ordered pair):
  'phase_interference' when median kappa > 0.3 and at least 20 neurons have kappa > 0.5, else
  'amplitude_suppression'.  The paper's N was 100; for other N the count threshold scales as
  ceil(0.2 N) (20 for N = 100).  Neurons with A_i(band from, mode from) = 0 have no kappa (NaN)
  and are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

KAPPA_MEDIAN_MIN = 0.3
KAPPA_NEURON_MIN = 0.5
KAPPA_COUNT_FRACTION = 0.2
PHASE_INTERFERENCE = "phase_interference"
AMPLITUDE_SUPPRESSION = "amplitude_suppression"


def coherence_ratio(analytic_tn: np.ndarray) -> float:
    """eta of one band in one mode from the analytic signals (T, N)."""
    z = np.asarray(analytic_tn)
    num = np.abs(z.mean(axis=1)).mean()
    den = np.abs(z).mean()
    return float(num / den) if den > 0 else float("nan")


def kappa(A_nkm: np.ndarray, m_from: int, m_to: int) -> np.ndarray:
    """kappa_i = A_i(band from, mode to) / A_i(band from, mode from), NaN where undefined."""
    A = np.asarray(A_nkm, dtype=np.float64)
    num, den = A[:, m_from, m_to], A[:, m_from, m_from]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def min_kappa_count(n_units: int) -> int:
    """Neurons with kappa > 0.5 the rule needs: ceil(0.2 N) (20 for the paper's N = 100)."""
    return max(1, math.ceil(KAPPA_COUNT_FRACTION * n_units - 1e-9))


@dataclass(frozen=True)
class KappaSummary:
    median: float
    n_above: int  # neurons with kappa > 0.5
    frac_above: float  # n_above / N
    rule: str  # PHASE_INTERFERENCE, AMPLITUDE_SUPPRESSION or '' when undefined


def kappa_summary(kappa_n: np.ndarray) -> KappaSummary:
    k = np.asarray(kappa_n, dtype=np.float64)
    n = k.size
    ok = np.isfinite(k)
    if not ok.any():
        return KappaSummary(float("nan"), 0, float("nan"), "")
    med = float(np.median(k[ok]))
    n_above = int(np.sum(k[ok] > KAPPA_NEURON_MIN))
    rule = (
        PHASE_INTERFERENCE
        if med > KAPPA_MEDIAN_MIN and n_above >= min_kappa_count(n)
        else AMPLITUDE_SUPPRESSION
    )
    return KappaSummary(med, n_above, n_above / n, rule)


@dataclass(frozen=True)
class PhaseResult:
    eta_mk: np.ndarray  # (M modes, K bands)
    kappa: dict[tuple[int, int], KappaSummary]  # ordered pair (from, to) -> summary


def phase_analysis(eta_mk: np.ndarray, A_nkm: np.ndarray) -> PhaseResult:
    m = A_nkm.shape[2]
    kap = {(p, q): kappa_summary(kappa(A_nkm, p, q)) for p in range(m) for q in range(m) if p != q}
    return PhaseResult(eta_mk=np.asarray(eta_mk, dtype=np.float64), kappa=kap)
