"""Ensemble summary: the paper's Table 1 and the trend statistics of METHOD section 7.

For each per-network, per-band statistic X (the tau-amplitude Spearman rho, the Gini of the
matched amplitudes, the tau-sync-degree rho):

- mean, SD (ddof = 1) across networks and a percentile bootstrap 95 % CI of the mean
  (:data:`N_BOOT` resamples of networks, ``numpy.random.default_rng(BOOT_SEED)``);
- the share of networks whose X changes strictly monotonically with band frequency in the
  predicted direction (rho falls, Gini rises), with a bootstrap CI;
- Page's L test of an ordered trend across bands (``scipy.stats.page_trend_test``).  Page's test
  fits the design exactly: every network (block) is measured in every band (treatment), the
  alternative is an *ordered* trend (not just "some difference", as in Friedman's test), and it
  uses only within-network ranks, so networks with different overall rho levels are comparable.
  Jonckheere's test assumes independent groups and would ignore this pairing.  It needs >= 3
  bands and >= 2 networks; otherwise the p-value is null with a reason.

The claim statistics use converged networks only (``converged`` block); the same numbers over
all analysed networks are reported beside them (``all`` block).  Bands are ordered by their
frequency, i.e. in mode order (the configuration enforces ascending, non-overlapping bands).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
from scipy import stats

N_BOOT = 10_000
BOOT_SEED = 20260
ALPHA = 0.05


def _clean(obj):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj


def bootstrap_ci(
    values: np.ndarray, stat=np.mean, *, n_boot: int = N_BOOT, seed: int = BOOT_SEED
) -> tuple[float, float]:
    """Percentile bootstrap 95 % CI of ``stat`` over the first axis (NaN if < 2 values)."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape[0] < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.shape[0], size=(n_boot, v.shape[0]))
    boots = stat(v[idx], axis=1)
    lo, hi = np.percentile(boots, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return float(lo), float(hi)


def monotone(x_sm: np.ndarray, direction: str) -> np.ndarray:
    """Per row: strictly decreasing ('down') or increasing ('up') along the bands."""
    d = np.diff(np.asarray(x_sm, dtype=np.float64), axis=1)
    return np.all(d < 0, axis=1) if direction == "down" else np.all(d > 0, axis=1)


def trend_stats(x_sm: np.ndarray, mode_names, direction: str) -> dict:
    """Per-band summary and trend statistics of a (networks, bands) table."""
    x = np.asarray(x_sm, dtype=np.float64)
    n_m = len(mode_names)
    per_band = {}
    for j, name in enumerate(mode_names):
        col = x[:, j][np.isfinite(x[:, j])] if x.size else np.array([])
        lo, hi = bootstrap_ci(col)
        per_band[name] = {
            "n": int(col.size),
            "mean": float(col.mean()) if col.size else float("nan"),
            "sd": float(col.std(ddof=1)) if col.size > 1 else float("nan"),
            "ci95": [lo, hi],
        }
    complete = x[np.all(np.isfinite(x), axis=1)] if x.size else np.zeros((0, n_m))
    out: dict = {"per_band": per_band, "n_complete": int(complete.shape[0])}
    if complete.shape[0] == 0:
        out.update(share_monotone=None, share_monotone_ci95=[None, None])
    else:
        mono = monotone(complete, direction).astype(float)
        out["share_monotone"] = float(mono.mean())
        out["share_monotone_ci95"] = list(bootstrap_ci(mono))
    # predicted ranks: 'down' -> the first (lowest-frequency) band is largest
    ranks = np.arange(n_m, 0, -1) if direction == "down" else np.arange(1, n_m + 1)
    page: dict[str, Any] = {
        "test": "Page's L (scipy.stats.page_trend_test)",
        "predicted_ranks": ranks.tolist(),
    }
    if n_m < 3 or complete.shape[0] < 2:
        page.update(
            L=None,
            p_value=None,
            reason=f"needs >= 3 bands and >= 2 networks (have {n_m} and {complete.shape[0]})",
        )
    else:
        try:
            res = stats.page_trend_test(complete, predicted_ranks=ranks)
            page.update(L=float(res.statistic), p_value=float(res.pvalue), method=res.method)
        except ValueError as exc:
            page.update(L=None, p_value=None, reason=str(exc))
    out["page_trend"] = page
    out["direction"] = "falls with frequency" if direction == "down" else "rises with frequency"
    return out


def _stack(analyses, getter, n_m: int) -> np.ndarray:
    return np.array([getter(a) for a in analyses], dtype=np.float64).reshape(-1, n_m)


def _block(analyses, mode_names) -> dict:
    n_m = len(mode_names)
    rho = _stack(analyses, lambda a: a.amplitude.rho_tau_amp_m, n_m)
    gini = _stack(analyses, lambda a: a.amplitude.gini_m, n_m)
    rho_sync = _stack(analyses, lambda a: a.sync.rho_tau_degree_m, n_m)
    block = {
        "n_networks": len(analyses),
        "networks": [a.name for a in analyses],
        "rho_tau_amp": trend_stats(rho, mode_names, "down"),
        "gini": trend_stats(gini, mode_names, "up"),
        "rho_tau_sync": trend_stats(rho_sync, mode_names, "down"),
    }
    rules: dict[str, Counter] = {}
    jac: dict[str, list[float]] = {}
    for a in analyses:
        for (p, q), ks in a.phase.kappa.items():
            key = f"{mode_names[p]}->{mode_names[q]}"
            rules.setdefault(key, Counter())[ks.rule or "undefined"] += 1
            jac.setdefault(key, []).append(float(a.sync.jaccard_mm[p, q]))
    block["phase_rule_counts"] = {k: dict(v) for k, v in rules.items()}
    block["jaccard_mean"] = {
        k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in jac.items()
    }
    return block


def _claims(block: dict, mode_names) -> dict:
    rho = block["rho_tau_amp"]
    gini = block["gini"]
    uppers = [rho["per_band"][m]["ci95"][1] for m in mode_names]
    neg = [bool(u < 0) if u is not None and np.isfinite(u) else None for u in uppers]
    p_rho = rho["page_trend"].get("p_value")
    p_gini = gini["page_trend"].get("p_value")
    n = block["n_networks"]
    return {
        "claim1_high_freq_concentrated": {
            "statement": "Gini of matched amplitudes rises from low to high bands",
            "page_p_value": p_gini,
            "share_monotone": gini.get("share_monotone"),
            "supported": None if p_gini is None or n < 2 else bool(p_gini < ALPHA),
        },
        "claim2_rho_negative": {
            "statement": "rho(tau, A(m, m)) < 0 in every band (upper bootstrap CI bound < 0)",
            "negative_per_band": dict(zip(mode_names, neg, strict=True)),
            "supported": None if n < 2 or None in neg else bool(all(neg)),
        },
        "claim2_rho_trend": {
            "statement": "rho(tau, A(m, m)) falls monotonically from the lowest to highest band",
            "page_p_value": p_rho,
            "share_monotone": rho.get("share_monotone"),
            "supported": None if p_rho is None or n < 2 else bool(p_rho < ALPHA),
        },
    }


def ensemble_summary(analyses, failures, mode_names) -> dict:
    """summary.json content (JSON-safe) from the analyses of one run."""
    mode_names = tuple(mode_names)
    converged = [a for a in analyses if a.converged]
    conv_block = _block(converged, mode_names)
    out = {
        "mode_names": list(mode_names),
        "bands_hz": analyses[0].bands_hz.tolist() if analyses else None,
        "n_files": len(analyses) + len(failures),
        "n_analysed": len(analyses),
        "n_failed": len(failures),
        "failed": {f.name: f.reason for f in failures},
        "n_converged": len(converged),
        "n_converged_unknown": sum(a.converged is None for a in analyses),
        "n_paper_converged": sum(bool(a.paper_converged) for a in analyses),
        "bootstrap": {"n_boot": N_BOOT, "seed": BOOT_SEED, "ci": "percentile 95 %"},
        "claims_basis": "converged networks",
        "claims": _claims(conv_block, mode_names),
        "converged": conv_block,
        "all": _block(analyses, mode_names),
        "warnings": {a.name: a.warnings for a in analyses if a.warnings},
        "non_oscillating": {
            a.name: [m for m, o in zip(a.mode_names, a.oscillates_m, strict=True) if not o]
            for a in analyses
            if not np.all(a.oscillates_m)
        },
    }
    return _clean(out)
