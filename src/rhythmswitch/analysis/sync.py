"""Synchrony, sync degree and the active subpopulation (METHOD section 7).

- Absolute sync strength in band m during mode m:
  S_ij = | < A_i A_j exp(i (phi_i - phi_j)) >_t | = | < Z_i conj(Z_j) >_t |, with Z the analytic
  signal, so the N x N matrix is one product Z^T conj(Z) / T.  Units of r^2.  S_ii = <A_i^2>.
- Sync degree d_i = sum over j != i of S_ij; Spearman rho(tau, d).
- Active subpopulation of mode m: the top 20 % of neurons by sync degree
  (``round(0.2 N)`` neurons, at least one; ties broken by neuron index).
- Turnover between modes: Jaccard |A cap B| / |A cup B| of active sets, and the Spearman
  correlation between the matched amplitude vectors A(., m, m) of two modes.  For random
  active sets of 20 of 100 neurons the expected Jaccard is about 0.11 (METHOD section 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rhythmswitch.analysis.amplitude import spearman

ACTIVE_FRACTION = 0.2


def sync_matrix(analytic_tn: np.ndarray) -> np.ndarray:
    """S (N, N) from the analytic signals of N neurons over T samples."""
    z = np.asarray(analytic_tn)
    return np.abs(z.T @ np.conj(z)) / z.shape[0]


def sync_degree(S: np.ndarray) -> np.ndarray:
    """d_i = sum_{j != i} S_ij."""
    return S.sum(axis=1) - np.diag(S)


def n_active(n_units: int, fraction: float = ACTIVE_FRACTION) -> int:
    return max(1, int(np.floor(fraction * n_units + 0.5)))


def active_set(degree_n: np.ndarray, fraction: float = ACTIVE_FRACTION) -> np.ndarray:
    """Boolean mask of the top ``fraction`` of neurons by sync degree."""
    d = np.asarray(degree_n, dtype=np.float64)
    k = n_active(d.size, fraction)
    order = np.argsort(-d, kind="stable")
    mask = np.zeros(d.size, bool)
    mask[order[:k]] = True
    return mask


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.sum(a | b)
    return float(np.sum(a & b) / union) if union else float("nan")


@dataclass(frozen=True)
class SyncResult:
    S_mnn: np.ndarray  # (M, N, N)
    degree_mn: np.ndarray  # (M, N)
    rho_tau_degree_m: np.ndarray  # (M,)
    active_mn: np.ndarray  # (M, N) bool
    jaccard_mm: np.ndarray  # (M, M)
    amp_spearman_mm: np.ndarray  # (M, M)
    reasons: dict[str, str]


def sync_analysis(
    S_mnn: np.ndarray,
    tau_s: np.ndarray,
    matched_nm: np.ndarray,
    mode_names,
    valid_m: np.ndarray | None = None,
) -> SyncResult:
    """Degrees, active sets and turnover from the per-mode sync matrices."""
    S = np.asarray(S_mnn, dtype=np.float64)
    m = S.shape[0]
    valid = np.ones(m, bool) if valid_m is None else np.asarray(valid_m, bool)
    degree = np.stack([sync_degree(S[j]) for j in range(m)])
    active = np.stack([active_set(degree[j]) for j in range(m)])
    reasons: dict[str, str] = {}
    rho = np.full(m, np.nan)
    for j, name in enumerate(mode_names):
        if not valid[j]:
            reasons[f"rho_tau_sync_{name}"] = f"mode {name}: no oscillation"
            continue
        rho[j], why = spearman(tau_s, degree[j])
        if why:
            reasons[f"rho_tau_sync_{name}"] = why
    jac = np.full((m, m), np.nan)
    amp_rho = np.full((m, m), np.nan)
    for p in range(m):
        for q in range(m):
            if not (valid[p] and valid[q]):
                continue
            jac[p, q] = jaccard(active[p], active[q])
            amp_rho[p, q], _ = spearman(matched_nm[:, p], matched_nm[:, q])
    return SyncResult(
        S_mnn=S,
        degree_mn=degree,
        rho_tau_degree_m=rho,
        active_mn=active,
        jaccard_mm=jac,
        amp_spearman_mm=amp_rho,
        reasons=reasons,
    )
