"""Which mechanism switches each pair of modes, and how much networks disagree (METHOD 1, 8).

For every network and every *unordered* pair of modes {p, q} this module gives a score for each
of the three mechanisms of claim 3, a boolean saying whether it is present, and the evidence
(which numbers crossed which threshold).  Every score is a distance from a null model, and
every threshold is justified against that null by ``python benchmarks/null_models.py``
(:func:`null_model_report`), which prints the null distributions and the chosen thresholds.

The rule
--------
**Turnover of the active subpopulation.**  The active set of mode m is the top 20 % of neurons
by sync degree (METHOD 7), recomputed from neurons.csv with two safeguards for hand-built and
degenerate networks: degrees within 0.1 % of the k-th largest are ties and all count
(identical neurons are not split by their index), and neurons below 5 % of the mode's largest
degree never count (when fewer than k neurons take part in a rhythm, the set is not padded
with silent ones).  J = Jaccard(active_p, active_q); pairs.csv's top-20 % Jaccard is used when
the degrees are missing, and quoted in the evidence.

- score ``turnover_score = (1 - J) / (1 - E[J_rand])``: 0 when the same neurons are active in
  both modes (the *no-turnover* null, J = 1 up to ranking noise), 1 when the two sets overlap as
  little as two random sets of the same sizes (E[J_rand] from the exact hypergeometric law of
  the overlap: 0.113 for k = 20 of N = 100), above 1 when they overlap less than chance.
- present when J < :data:`TURNOVER_JACCARD_MAX` = 1/3, i.e. fewer than half of the active
  neurons are shared (J = 1/3 exactly when k/2 are shared).  Against the two nulls: random sets
  fall below it with probability > 0.99 (power), and sets that differ only by multiplicative
  noise of the sync degrees (the same neurons carry both rhythms) fall below it with
  probability 0 at noise CV <= 0.5, 0.008 at CV 0.75 and 0.06 at CV 1.0 (the null report
  tabulates both).

**Baseline shift.**  Measured on the neurons that oscillate in *both* modes (rate SD at least
:data:`OSC_REL` x the mode's largest rate SD, and >= :data:`OSC_ABS_MIN`): a baseline shift
moves the operating point of the population that keeps oscillating.  Neurons that are silenced
in one mode (which in this model class means saturated, so their mean rate moves as well) are
turnover, not a baseline shift; with fewer than :data:`MIN_SHARED` shared neurons (all of
them in a smaller network) the baseline mechanism is absent (score 0).

- score ``baseline_score = RMS_S(b_q - b_p) / RMS_S(within-mode spread)``, the within-mode
  spread being the SD of a neuron's mean over 4 sub-windows of one mode (a z-like ratio; under
  the null of no shift with independent sub-windows its median is ~0.8 and its 99.9th
  percentile 1.9 for 100 neurons, its 99th percentile 2.2 for 3 neurons).
- present when ``baseline_score >= BASELINE_Z_MIN`` (3) AND the effect is large compared with
  the oscillation: ``RMS_S(b_q - b_p) / RMS_S(rate SD) >= BASELINE_EFFECT_MIN``.  The second
  condition is needed because noise-free runs have almost no within-mode spread, so any shift is
  "significant".  Its null: an amplitude change at a fixed operating point also moves the mean
  of tanh (curvature); over operating points |x*| <= 1.5 and amplitude ratios up to 3 that
  apparent effect has 99th percentile 0.67, 99.9th 0.76 and maximum 0.81, below the
  threshold 0.85.
- the paper's signature of this mechanism is a *different unstable fixed point*.  When
  fixed_points.csv gives both modes' dominant frequencies and they differ by at least
  :data:`FP_FREQ_REL_MIN` (10 %) of the larger, the amplitude-only null (one operating point,
  hence one fixed point and one frequency) is already excluded, and the effect bar drops to
  :data:`BASELINE_EFFECT_FP_MIN` = 0.25 (the shift must still be a visible fraction of the
  oscillation and pass the z test).  The evidence quotes both frequencies.

**Phase reorganisation.**  Direction p -> q asks whether the p-band component persists in single
neurons in mode q while it cancels in z.  Carriers: neurons whose p-band amplitude in mode p is
at least :data:`CARRIER_REL` x the largest.  kappa_i = A_i(band p, mode q) / A_i(band p, mode p)
over carriers; persistence is the paper's rule on carriers (median kappa > 0.3 and at least 20 %
of carriers with kappa > 0.5).  Cancellation is the loss of coherence
``c = ln(eta_from / eta)`` with eta_from = eta(mode p, band p), eta = eta(mode q, band p).
The null is an amplitude-only change (phases fixed, amplitudes rescaled neuron by neuron), under
which eta stays put: c ~ 0.

- score ``phase_score`` = the largest c over the two directions that pass the persistence
  rule and whose eta_from exceeds what N random phases give with probability 0.99,
  sqrt(ln(100) / N) (0.215 for N = 100; a coherent population rhythm to lose); 0 when no
  direction qualifies.
- present when ``phase_score >= PHASE_LOG_ETA_MIN`` (ln 3: coherence cut to a third or
  less).  Under the amplitude-only null (phase concentrations 0-20, amplitude-change CVs
  0.25-1), pooled over the coherent populations, c has 99th percentile 0.30, 99.9th 0.71 and
  maximum 0.78 (only barely coherent populations with 100 % amplitude CV get there), below
  ln 3 = 1.10.  ln 3 is also what the task implies: z keeps a population rhythm's amplitude
  in proportion to (mean amplitude ratio ~ kappa) x (eta ratio), so a converged network whose
  neurons keep kappa >= 0.3 of the band while z loses ~90 % of its amplitude must cut eta by
  at least ~3.

When an input is missing (a file, a column, a value) the affected score is NaN, its boolean is
empty (undetermined) and the evidence says what was missing; nothing raises.  Networks that did
not converge are classified like the others and flagged (``converged`` column, evidence).

Degeneracy (claim 4): :func:`degeneracy_summary` counts, per pair, the networks showing each
mechanism and each *profile* (the set of present mechanisms), the entropy of the profile
distribution, and the agreement between networks; it states claim 4 with a verdict.
:func:`compare_ensembles` compares mechanism frequencies between ensembles (claim 5).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from rhythmswitch.store import atomic_write_text, csv_text, format_cell, record

log = logging.getLogger(__name__)

MECHANISMS = ("turnover", "baseline", "phase")

# -- thresholds (justified by null_model_report / benchmarks/null_models.py) ----------------
ACTIVE_FRACTION = 0.2
#: active sets: degrees within this relative distance of the k-th largest count as tied
ACTIVE_TIE_REL = 1e-3
#: active sets: a neuron below this fraction of the mode's largest sync degree is not active
ACTIVE_FLOOR_REL = 0.05
TURNOVER_JACCARD_MAX = 1.0 / 3.0
#: Jaccard values are rationals read back from CSV: J = 1/3 exactly is not turnover
JACCARD_TOL = 1e-6
OSC_REL = 0.2
OSC_ABS_MIN = 1e-3
MIN_SHARED = 3
BASELINE_Z_MIN = 3.0
BASELINE_EFFECT_MIN = 0.85
#: lower effect bar when the two modes' fixed points have different dominant frequencies
BASELINE_EFFECT_FP_MIN = 0.25
#: fixed points "differ" when their dominant frequencies differ by this fraction of the larger
FP_FREQ_REL_MIN = 0.1
CARRIER_REL = 0.1
KAPPA_MEDIAN_MIN = 0.3
KAPPA_NEURON_MIN = 0.5
KAPPA_CARRIER_FRACTION = 0.2
#: eta_from must exceed this quantile of |mean of N random unit phasors| (Rayleigh law)
ETA_FROM_QUANTILE = 0.99
PHASE_LOG_ETA_MIN = math.log(3.0)
#: degeneracy verdicts need at least this many (converged) networks
CLAIM_MIN_NETWORKS = 4
#: claim 5 test level (Bonferroni over the three mechanisms)
CLAIM5_ALPHA = 0.05

MECHANISM_COLUMNS = (
    "turnover",
    "baseline",
    "phase",
    "turnover_score",
    "baseline_score",
    "phase_score",
    "evidence",
)


# -- null models ---------------------------------------------------------------------------


def jaccard_null_pmf(n: int, k: int, k2: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact law of the Jaccard index of two independent random subsets of n neurons.

    Sizes k and k2 (default k).  The overlap X is hypergeometric(n, k, k2) and
    J = X / (k + k2 - X).  Returns (J values, probabilities).
    """
    k2 = k if k2 is None else k2
    if not (1 <= k <= n and 1 <= k2 <= n):
        raise ValueError(f"k = {k}, k2 = {k2} must lie in 1 .. n = {n}")
    x = np.arange(max(0, k + k2 - n), min(k, k2) + 1)
    p = stats.hypergeom(n, k, k2).pmf(x)
    return x / (k + k2 - x), p


def jaccard_null_mean(n: int, k: int, k2: int | None = None) -> float:
    """E[J] for two random subsets of sizes k, k2 of n (0.113 for k = k2 = 20, n = 100)."""
    j, p = jaccard_null_pmf(n, k, k2)
    return float(np.sum(j * p))


def jaccard_null_cdf(n: int, k: int, value: float) -> float:
    """P(J_rand <= value)."""
    j, p = jaccard_null_pmf(n, k)
    return float(np.sum(p[j <= value + 1e-12]))


def n_active(n: int, fraction: float = ACTIVE_FRACTION) -> int:
    return max(1, int(round(fraction * n)))


def active_set(degree_n: np.ndarray, k: int) -> np.ndarray:
    """The top-k neurons by sync degree, made robust for hand-built and degenerate networks.

    Neurons within a relative :data:`ACTIVE_TIE_REL` of the k-th largest degree are all
    included (a tie is not broken by neuron index), and neurons below :data:`ACTIVE_FLOOR_REL`
    x the largest degree are excluded (a neuron that does not take part in the mode's rhythm is
    not active, even when fewer than k neurons do).  Empty when no neuron has a positive degree.
    """
    d = np.asarray(degree_n, dtype=np.float64)
    ok = np.isfinite(d)
    if not ok.any() or np.max(d[ok]) <= 0:
        return np.zeros(d.shape, dtype=bool)
    dd = np.where(ok, d, -np.inf)
    kth = np.sort(dd)[::-1][min(k, d.size) - 1]
    return ok & (dd >= kth * (1 - ACTIVE_TIE_REL)) & (dd >= ACTIVE_FLOOR_REL * np.max(d[ok]))


def _jaccard_sets(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = np.sum(a & b, axis=-1)
    union = np.sum(a | b, axis=-1)
    return inter / np.maximum(union, 1)


def _top_k(x: np.ndarray, k: int) -> np.ndarray:
    idx = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(x.shape, dtype=bool)
    np.put_along_axis(mask, idx, True, axis=-1)
    return mask


def simulate_no_turnover_jaccard(
    n: int, k: int, noise_cv: float, n_draws: int, *, rng: np.random.Generator
) -> np.ndarray:
    """J under the no-turnover null: the same sync degrees, rescaled by per-neuron noise.

    Degrees d_i ~ lognormal(0, 1) (heavy-tailed, like trained networks); mode q's degrees are
    d_i * exp(e_i), e_i ~ N(0, s^2) with s chosen so that the multiplicative noise has CV
    ``noise_cv``.  Any rank-preserving (amplitude-only) change gives J = 1 exactly.
    """
    s = math.sqrt(math.log1p(noise_cv**2))
    d = rng.lognormal(0.0, 1.0, size=(n_draws, n))
    d2 = d * np.exp(s * rng.standard_normal((n_draws, n)))
    return _jaccard_sets(_top_k(d, k), _top_k(d2, k))


def simulate_baseline_noise_scores(
    n: int, n_draws: int, *, rng: np.random.Generator, n_sub: int = 4
) -> np.ndarray:
    """baseline_score under the null of no shift: every neuron's 4 sub-window means are
    independent draws around the same baseline in both modes (neuron-specific SD)."""
    sd = rng.lognormal(-5.0, 1.0, size=(n_draws, 1, n))  # heterogeneous wander per neuron
    sub_p = sd * rng.standard_normal((n_draws, n_sub, n))
    sub_q = sd * rng.standard_normal((n_draws, n_sub, n))
    shift = np.sqrt(np.mean((sub_q.mean(1) - sub_p.mean(1)) ** 2, axis=-1))
    spread = np.sqrt(np.mean((sub_p.std(1) ** 2 + sub_q.std(1) ** 2) / 2, axis=-1))
    return shift / spread


def amplitude_only_baseline_effect(
    x_star: np.ndarray, amp_p: np.ndarray, amp_q: np.ndarray, n_phase: int = 256
) -> np.ndarray:
    """Apparent baseline effect (shift / pooled rate SD) of a pure amplitude change.

    A neuron at operating point x* oscillating as x* + A sin(phase): its mean rate
    E[tanh(x* + A sin)] depends on A through the curvature of tanh, so an amplitude change
    alone moves the baseline.  Broadcasts over the three arrays.
    """
    ph = np.linspace(0, 2 * np.pi, n_phase, endpoint=False)
    x_star, amp_p, amp_q = np.broadcast_arrays(x_star, amp_p, amp_q)
    rp = np.tanh(x_star[..., None] + amp_p[..., None] * np.sin(ph))
    rq = np.tanh(x_star[..., None] + amp_q[..., None] * np.sin(ph))
    shift = np.abs(rq.mean(-1) - rp.mean(-1))
    pooled = np.sqrt((rp.std(-1) ** 2 + rq.std(-1) ** 2) / 2)
    return shift / np.maximum(pooled, 1e-12)


def simulate_amplitude_only_phase(
    n: int,
    concentration: float,
    amp_cv: float,
    n_draws: int,
    *,
    rng: np.random.Generator,
    n_t: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """(eta_from, c = ln(eta_from / eta_to)) under an amplitude-only change.

    Neurons oscillate at one frequency with fixed phase offsets drawn from a von Mises law of
    the given concentration (0: uniform) and lognormal amplitudes; the change rescales each
    neuron's amplitude by an independent lognormal factor of CV ``amp_cv`` and keeps every
    phase.  eta is averaged over ``n_t`` instants of one cycle.
    """
    s = math.sqrt(math.log1p(amp_cv**2))
    if concentration > 0:
        offs = rng.vonmises(0.0, concentration, size=(n_draws, n))
    else:
        offs = rng.uniform(-np.pi, np.pi, size=(n_draws, n))
    amp = rng.lognormal(0.0, 0.5, size=(n_draws, n))
    scale = np.exp(s * rng.standard_normal((n_draws, n)))
    t = np.linspace(0, 2 * np.pi, n_t, endpoint=False)

    def eta(a: np.ndarray) -> np.ndarray:
        z = a[:, None, :] * np.exp(1j * (offs[:, None, :] + t[None, :, None]))
        return np.abs(z.mean(-1)).mean(-1) / np.abs(z).mean(-1).mean(-1)

    e_from = eta(amp)
    return e_from, np.log(e_from / eta(amp * scale))


def eta_random_floor(n: int, quantile: float = ETA_FROM_QUANTILE) -> float:
    """The ``quantile`` of |mean of n independent unit phasors| (Rayleigh, sigma^2 = 1 / 2n):
    sqrt(-ln(1 - q) / n); 0.215 for n = 100 at q = 0.99."""
    return math.sqrt(-math.log1p(-quantile) / n)


def eta_random_level(n: int) -> float:
    """E|mean of n independent unit phasors| ~ sqrt(pi / (4 n)) (Rayleigh mean)."""
    return math.sqrt(math.pi / (4.0 * n))


def null_model_report(*, seed: int = 0, n: int = 100, n_draws: int = 2000) -> dict:
    """The null distributions behind every threshold, as a JSON-ready dict.

    Reproduce with ``python benchmarks/null_models.py``.
    """
    rng = np.random.default_rng(seed)
    k = n_active(n)
    j_vals, j_p = jaccard_null_pmf(n, k)
    cdf = np.cumsum(j_p)
    q = lambda level: float(j_vals[np.searchsorted(cdf, level)])  # noqa: E731
    no_turn = {}
    for cv in (0.1, 0.25, 0.5, 0.75, 1.0, 1.5):
        jj = simulate_no_turnover_jaccard(n, k, cv, n_draws, rng=rng)
        no_turn[f"cv={cv}"] = {
            "mean": float(jj.mean()),
            "p01": float(np.quantile(jj, 0.01)),
            "p05": float(np.quantile(jj, 0.05)),
            "false_positive_rate": float(np.mean(jj < TURNOVER_JACCARD_MAX - JACCARD_TOL)),
        }
    z = simulate_baseline_noise_scores(n, n_draws, rng=rng)
    z_small = simulate_baseline_noise_scores(MIN_SHARED, n_draws, rng=rng)
    n_eff = 10 * n_draws
    xs = rng.uniform(-1.5, 1.5, n_eff)
    a1 = rng.uniform(0.05, 1.5, n_eff)
    ratio = np.exp(rng.uniform(-np.log(3), np.log(3), n_eff))
    eff = amplitude_only_baseline_effect(xs, a1, a1 * ratio)
    phase = {}
    coherent_all = []
    floor = eta_random_floor(n)
    for conc in (0.0, 0.5, 1.0, 2.0, 5.0, 20.0):
        for cv in (0.25, 0.5, 1.0):
            e_from, c = simulate_amplitude_only_phase(n, conc, cv, max(50, n_draws // 5), rng=rng)
            ok = e_from >= floor
            coherent_all.append(c[ok])
            phase[f"concentration={conc},amp_cv={cv}"] = {
                "eta_from_median": float(np.median(e_from)),
                "share_coherent": float(ok.mean()),
                "p99_all": float(np.quantile(c, 0.99)),
                "p99_coherent": float(np.quantile(c[ok], 0.99)) if ok.any() else None,
                "max_coherent": float(c[ok].max()) if ok.any() else None,
            }
    pooled = np.concatenate(coherent_all)
    return {
        "n_units": n,
        "k_active": k,
        "seed": seed,
        "turnover": {
            "rule": f"present when jaccard < {TURNOVER_JACCARD_MAX:.4f} (half the active set "
            "replaced); score = (1 - J) / (1 - E[J_rand])",
            "threshold_jaccard": TURNOVER_JACCARD_MAX,
            "random_sets_exact": {
                "mean": jaccard_null_mean(n, k),
                "p95": q(0.95),
                "p99": q(0.99),
                "power_P(J_rand<threshold)": jaccard_null_cdf(
                    n, k, TURNOVER_JACCARD_MAX - JACCARD_TOL
                ),
            },
            "no_turnover_multiplicative_noise": no_turn,
        },
        "baseline": {
            "rule": f"present when shift/spread >= {BASELINE_Z_MIN} and shift/osc_sd >= "
            f"{BASELINE_EFFECT_MIN}, on >= {MIN_SHARED} neurons oscillating in both modes",
            "threshold_z": BASELINE_Z_MIN,
            "threshold_effect": BASELINE_EFFECT_MIN,
            "within_mode_noise_score": {
                "n": n,
                "median": float(np.median(z)),
                "p99": float(np.quantile(z, 0.99)),
                "p999": float(np.quantile(z, 0.999)),
            },
            "within_mode_noise_score_smallest_set": {
                "n": MIN_SHARED,
                "median": float(np.median(z_small)),
                "p99": float(np.quantile(z_small, 0.99)),
            },
            "amplitude_only_effect": {
                "operating_points": "|x*| <= 1.5",
                "amplitude_ratio": "1/3 .. 3",
                "median": float(np.median(eff)),
                "p95": float(np.quantile(eff, 0.95)),
                "p99": float(np.quantile(eff, 0.99)),
                "p999": float(np.quantile(eff, 0.999)),
                "max": float(eff.max()),
            },
        },
        "phase": {
            "rule": f"present when, in a direction with persisting kappa (median > "
            f"{KAPPA_MEDIAN_MIN}, >= {KAPPA_CARRIER_FRACTION:.0%} of carriers > "
            f"{KAPPA_NEURON_MIN}) and eta_from above the {ETA_FROM_QUANTILE:.0%} random-phase level, "
            f"ln(eta_from/eta) >= {PHASE_LOG_ETA_MIN:.4f}",
            "threshold_log_eta": PHASE_LOG_ETA_MIN,
            "eta_random_level": eta_random_level(n),
            "eta_from_floor": floor,
            "amplitude_only_log_eta_loss": phase,
            "amplitude_only_coherent_pooled": {
                "n": int(pooled.size),
                "p99": float(np.quantile(pooled, 0.99)),
                "p999": float(np.quantile(pooled, 0.999)),
                "max": float(pooled.max()),
                "false_positive_rate": float(np.mean(pooled >= PHASE_LOG_ETA_MIN)),
            },
        },
    }


# -- the classifier (pure kernels) ---------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One mechanism for one pair: present (None = undetermined), score, evidence."""

    present: bool | None
    score: float
    evidence: str
    extras: dict = field(default_factory=dict)


def _nan(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def turnover_call(jaccard: float, n: int, k: int, k2: int | None = None, note: str = "") -> Call:
    """Turnover from the Jaccard overlap of two active sets (sizes k and k2 of n neurons).

    The decision needs J only; the score also needs the sizes (NaN when unknown).
    """
    j = _nan(jaccard)
    k2 = k if k2 is None else k2
    if not np.isfinite(j):
        return Call(None, float("nan"), "turnover: jaccard missing" + note)
    if n >= 1 and 1 <= k <= n and 1 <= k2 <= n:
        jr = jaccard_null_mean(n, k, k2)
        score = (1.0 - j) / (1.0 - jr) if jr < 1 else float("nan")
        sizes = f"k={k}" if k == k2 else f"k={k} and {k2}"
        null = f"random-set null {jr:.3f}, {sizes} of {n}"
    else:
        score, null = float("nan"), "set sizes unknown: no score"
    present = j < TURNOVER_JACCARD_MAX - JACCARD_TOL
    op = "<" if present else ">="
    return Call(
        present,
        score,
        f"turnover: jaccard {j:.3f} {op} {TURNOVER_JACCARD_MAX:.3f} ({null}){note}",
    )


def oscillating(osc_sd_n: np.ndarray) -> np.ndarray:
    """Neurons whose rate SD is at least OSC_REL x the mode's largest (and >= OSC_ABS_MIN)."""
    s = np.asarray(osc_sd_n, dtype=np.float64)
    ok = np.isfinite(s)
    if not ok.any():
        return np.zeros(s.shape, dtype=bool)
    thr = max(OSC_ABS_MIN, OSC_REL * float(np.max(s[ok])))
    return ok & (s >= thr)


def fixed_points_differ(freq_p_hz: float, freq_q_hz: float) -> bool | None:
    """Do the two modes' fixed points have different dominant frequencies (>= FP_FREQ_REL_MIN
    of the larger)?  None when either is unknown (no fixed-point analysis, or no unstable
    oscillatory eigenvalue)."""
    fp, fq = _nan(freq_p_hz), _nan(freq_q_hz)
    if not (np.isfinite(fp) and np.isfinite(fq)) or max(fp, fq) <= 0:
        return None
    return bool(abs(fp - fq) >= FP_FREQ_REL_MIN * max(fp, fq))


def baseline_call(
    base_p: np.ndarray,
    base_q: np.ndarray,
    spread_p: np.ndarray,
    spread_q: np.ndarray,
    osc_p: np.ndarray,
    osc_q: np.ndarray,
    fp_freq_hz: tuple[float, float] = (float("nan"), float("nan")),
) -> Call:
    """Baseline shift of the neurons oscillating in both modes (arrays of shape (N,)).

    ``fp_freq_hz``: dominant frequency of each mode's fixed point (fixed_points.csv), which
    lowers the effect-size bar to BASELINE_EFFECT_FP_MIN when the two differ.
    """
    arrs = [np.asarray(x, dtype=np.float64) for x in (base_p, base_q, spread_p, spread_q)]
    shared = oscillating(osc_p) & oscillating(osc_q)
    for x in arrs:
        shared &= np.isfinite(x)
    n_sh = int(shared.sum())
    need = min(MIN_SHARED, shared.size)  # networks smaller than MIN_SHARED use every unit
    if n_sh < need or n_sh == 0:
        return Call(
            False,
            0.0,
            f"baseline: only {n_sh} neuron(s) oscillate in both modes (< {max(need, 1)})",
            {"n_shared": n_sh},
        )
    bp, bq, sp, sq = (x[shared] for x in arrs)
    op_, oq_ = (np.asarray(x, dtype=np.float64)[shared] for x in (osc_p, osc_q))
    shift = float(np.sqrt(np.mean((bq - bp) ** 2)))
    spread = float(np.sqrt(np.mean((sp**2 + sq**2) / 2)))
    osc = float(np.sqrt(np.mean((op_**2 + oq_**2) / 2)))
    z = shift / spread if spread > 0 else (float("inf") if shift > 0 else 0.0)
    effect = shift / osc if osc > 0 else float("nan")
    fp_diff = fixed_points_differ(*fp_freq_hz)
    bar = BASELINE_EFFECT_FP_MIN if fp_diff else BASELINE_EFFECT_MIN
    present = bool(z >= BASELINE_Z_MIN and effect >= bar)
    why = " (fixed points of different frequency)" if fp_diff else ""
    return Call(
        present,
        z,
        f"baseline: shift {shift:.3g} on {n_sh} shared neurons = {z:.3g} x within-mode spread "
        f"({'>=' if z >= BASELINE_Z_MIN else '<'} {BASELINE_Z_MIN:g}) and {effect:.3g} x rate SD "
        f"({'>=' if effect >= bar else '<'} {bar:g}{why})",
        {"n_shared": n_sh, "shift": shift, "effect": effect, "fp_differ": fp_diff},
    )


@dataclass(frozen=True)
class Direction:
    """Inputs of one direction p -> q of the phase rule."""

    kappa_median: float
    kappa_frac: float  # fraction of carriers (or neurons) with kappa > 0.5
    eta: float  # eta(mode q, band p)
    eta_from: float  # eta(mode p, band p)
    n_units: int
    source: str = "arrays"  # where kappa came from


def kappa_on_carriers(A_nkm: np.ndarray, p: int, q: int) -> tuple[float, float, int]:
    """(median kappa, fraction > 0.5, number of carriers) over the p-band carriers of mode p."""
    A = np.asarray(A_nkm, dtype=np.float64)
    den, num = A[:, p, p], A[:, p, q]
    ok = np.isfinite(den) & np.isfinite(num)
    if not ok.any() or np.nanmax(den[ok]) <= 0:
        return float("nan"), float("nan"), 0
    carriers = ok & (den >= CARRIER_REL * np.max(den[ok])) & (den > 0)
    kap = num[carriers] / den[carriers]
    return float(np.median(kap)), float(np.mean(kap > KAPPA_NEURON_MIN)), int(carriers.sum())


def phase_direction(d: Direction, label: str) -> tuple[float, bool | None, str]:
    """(coherence loss c if the direction qualifies else 0, qualifies?, evidence)."""
    vals = (d.kappa_median, d.kappa_frac, d.eta, d.eta_from)
    if not all(np.isfinite(v) for v in vals):
        return float("nan"), None, f"{label}: kappa or eta missing"
    persists = d.kappa_median > KAPPA_MEDIAN_MIN and d.kappa_frac >= KAPPA_CARRIER_FRACTION
    coherent = d.eta_from >= eta_random_floor(max(d.n_units, 1))
    loss = math.log(d.eta_from / d.eta) if d.eta > 0 else float("inf")
    txt = (
        f"{label}: kappa median {d.kappa_median:.2f}, {d.kappa_frac:.0%} > {KAPPA_NEURON_MIN} "
        f"({'persists' if persists else 'suppressed'}; {d.source}); eta {d.eta_from:.2f} -> "
        f"{d.eta:.2f} (ln ratio {loss:.2f})"
    )
    if not coherent:
        txt += " [from-band not coherent in its own mode]"
    ok = persists and coherent
    return (loss if ok else 0.0), ok, txt


def phase_call(dirs: list[tuple[str, Direction | None]]) -> Call:
    """Phase reorganisation from the two directions of a pair."""
    scores, texts, undetermined = [], [], False
    for label, d in dirs:
        if d is None:
            texts.append(f"{label}: inputs missing")
            undetermined = True
            continue
        s, ok, txt = phase_direction(d, label)
        texts.append(txt)
        if ok is None:
            undetermined = True
        else:
            scores.append(s)
    if not scores:
        return Call(None, float("nan"), "phase: " + "; ".join(texts))
    score = float(max(scores))
    present = score >= PHASE_LOG_ETA_MIN
    if not present and undetermined:
        return Call(None, score, "phase: " + "; ".join(texts))
    return Call(
        present,
        score,
        f"phase: score {score:.2f} {'>=' if present else '<'} {PHASE_LOG_ETA_MIN:.2f}; "
        + "; ".join(texts),
    )


# -- reading the analysis tables -----------------------------------------------------------


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]] | None:
    if not path.exists():
        return None
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        log.warning("%s: unreadable (%s)", path, exc)
        return None


def _cell(text) -> float:
    """A numeric CSV cell; booleans ('true'/'false') read as 1/0, anything else NaN."""
    b = _bool(text)
    return float(b) if b is not None and not str(text).strip().isdigit() else _nan(text)


def _bool(text) -> bool | None:
    t = str(text).strip().lower()
    if t in ("true", "1", "yes"):
        return True
    if t in ("false", "0", "no"):
        return False
    return None


@dataclass
class PairResult:
    """The classification of one unordered pair of one network."""

    network: str
    mode_a: str
    mode_b: str
    converged: bool | None
    calls: dict[str, Call]
    fp_freq_hz: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def profile(self) -> str | None:
        """'+'-joined present mechanisms, 'none', or None when any is undetermined."""
        if any(c.present is None for c in self.calls.values()):
            return None
        names = [m for m in MECHANISMS if self.calls[m].present]
        return "+".join(names) if names else "none"

    @property
    def evidence(self) -> str:
        parts = [self.calls[m].evidence for m in MECHANISMS]
        f = self.fp_freq_hz
        if any(np.isfinite(f)):
            parts.append(
                f"fixed-point dominant frequency {f[0]:.1f} Hz ({self.mode_a}) vs "
                f"{f[1]:.1f} Hz ({self.mode_b})"
            )
        if self.converged is False:
            parts.append("network NOT converged")
        return " | ".join(parts)


class _Tables:
    """Lazy access to the analysis tables of one directory; records what was missing."""

    def __init__(self, analysis_dir: Path) -> None:
        self.dir = Path(analysis_dir)
        self.missing: list[str] = []
        self.pairs = _read_csv(self.dir / "pairs.csv")
        self.neurons = self._index(_read_csv(self.dir / "neurons.csv"), "neurons.csv")
        nets = _read_csv(self.dir / "networks.csv")
        self.networks = {r.get("network", ""): r for r in nets[1]} if nets else {}
        if nets is None:
            self.missing.append("networks.csv")
        fps = _read_csv(self.dir / "fixed_points.csv")
        self.fp: dict[tuple[str, str], float] = {}
        if fps is not None:
            for r in fps[1]:
                self.fp[(r.get("network", ""), r.get("mode", ""))] = _nan(r.get("dominant_freq_hz"))
        self.eta: dict[tuple[str, str, str], float] = {}
        etas = _read_csv(self.dir / "eta.csv")
        if etas is not None:
            for r in etas[1]:
                self.eta[(r.get("network", ""), r.get("mode", ""), r.get("band", ""))] = _nan(
                    r.get("eta")
                )
        self._arrays: dict[str, dict | None] = {}

    def _index(self, table, name: str) -> dict[str, list[dict[str, str]]]:
        if table is None:
            self.missing.append(name)
            return {}
        out: dict[str, list[dict[str, str]]] = {}
        for r in table[1]:
            out.setdefault(r.get("network", ""), []).append(r)
        for rows in out.values():
            rows.sort(key=lambda r: _nan(r.get("neuron")))
        return out

    def neuron_column(self, net: str, col: str) -> np.ndarray | None:
        rows = self.neurons.get(net)
        if not rows or col not in rows[0]:
            return None
        return np.array([_cell(r.get(col)) for r in rows])

    def arrays(self, net: str) -> dict | None:
        if net not in self._arrays:
            path = self.dir / "arrays" / f"{net}.npz"
            try:
                with np.load(path, allow_pickle=False) as data:
                    self._arrays[net] = {k: data[k] for k in data.files}
            except (OSError, ValueError, KeyError, EOFError):
                self._arrays[net] = None
        return self._arrays[net]

    def converged(self, net: str) -> bool | None:
        row = self.networks.get(net)
        return _bool(row.get("converged", "")) if row else None


def _mode_order(tables: _Tables, net: str, rows: list[dict[str, str]]) -> list[str]:
    arr = tables.arrays(net)
    if arr is not None and "mode_names" in arr:
        return [str(x) for x in np.asarray(arr["mode_names"]).tolist()]
    modes: list[str] = []
    for r in rows:
        for m in (r.get("mode_from", ""), r.get("mode_to", "")):
            if m and m not in modes:
                modes.append(m)
    return modes


def _direction(
    tables: _Tables,
    net: str,
    row: dict[str, str] | None,
    p: int,
    q: int,
    names: list[str],
    n_units: int,
) -> Direction | None:
    arr = tables.arrays(net)
    eta = eta_from = float("nan")
    if row is not None:
        eta, eta_from = _nan(row.get("eta")), _nan(row.get("eta_from"))
    if not np.isfinite(eta):
        eta = tables.eta.get((net, names[q], names[p]), float("nan"))
    if not np.isfinite(eta_from):
        eta_from = tables.eta.get((net, names[p], names[p]), float("nan"))
    if arr is not None and "eta_mk" in arr:
        e = np.asarray(arr["eta_mk"], dtype=np.float64)
        if e.shape[0] > max(p, q) and e.shape[1] > p:
            eta = eta if np.isfinite(eta) else float(e[q, p])
            eta_from = eta_from if np.isfinite(eta_from) else float(e[p, p])
    if arr is not None and "A_nkm" in arr and np.asarray(arr["A_nkm"]).ndim == 3:
        med, frac, _ = kappa_on_carriers(arr["A_nkm"], p, q)
        return Direction(med, frac, eta, eta_from, n_units, "carriers, arrays")
    if row is None:
        return None
    return Direction(
        _nan(row.get("kappa_median")),
        _nan(row.get("kappa_frac_above_05")),
        eta,
        eta_from,
        n_units,
        "all neurons, pairs.csv",
    )


def classify_network(tables: _Tables, net: str, rows: list[dict[str, str]]) -> list[PairResult]:
    """Classify every unordered pair of one network from its pairs.csv rows and the tables."""
    names = _mode_order(tables, net, rows)
    by_pair = {(r.get("mode_from", ""), r.get("mode_to", "")): r for r in rows}
    conv = tables.converged(net)
    n_units = len(tables.neurons.get(net, []))
    arr = tables.arrays(net)
    if n_units == 0 and arr is not None and "tau_s" in arr:
        n_units = int(np.asarray(arr["tau_s"]).size)
    if n_units == 0:
        n_net = _nan(tables.networks.get(net, {}).get("n_units"))
        n_units = int(n_net) if np.isfinite(n_net) and n_net >= 1 else 0
    out = []
    for i, j in combinations(range(len(names)), 2):
        a, b = names[i], names[j]
        r_ab, r_ba = by_pair.get((a, b)), by_pair.get((b, a))
        jac = _nan((r_ab or r_ba or {}).get("jaccard"))
        k = n_active(n_units) if n_units else 0
        deg_a = tables.neuron_column(net, f"sync_degree_{a}")
        deg_b = tables.neuron_column(net, f"sync_degree_{b}")
        if deg_a is not None and deg_b is not None and k:
            set_a, set_b = active_set(deg_a, k), active_set(deg_b, k)
            if set_a.any() and set_b.any():
                j_own = float(np.sum(set_a & set_b) / np.sum(set_a | set_b))
                note = f"; sets of {int(set_a.sum())}/{int(set_b.sum())} with ties, 5% floor"
                if np.isfinite(jac):
                    note += f"; plain top-20% J {jac:.3f}"
                tc = turnover_call(j_own, n_units, int(set_a.sum()), int(set_b.sum()), note)
            else:
                tc = Call(None, float("nan"), "turnover: no neuron is synchronised in one mode")
        elif np.isfinite(jac):
            tc = turnover_call(jac, n_units, k, k, "; jaccard from pairs.csv")
        else:
            why = "no pairs.csv row" if r_ab is None and r_ba is None else "jaccard is NaN"
            tc = Call(None, float("nan"), f"turnover: {why}")
        cols = {
            (key, m): tables.neuron_column(net, f"{key}_{m}")
            for key in ("baseline", "baseline_sd", "osc_amp")
            for m in (a, b)
        }
        lacking = [f"{key}_{m}" for (key, m), v in cols.items() if v is None]
        if lacking:
            bc = Call(
                None,
                float("nan"),
                "baseline: neurons.csv lacks " + ", ".join(lacking)
                if "neurons.csv" not in tables.missing
                else "baseline: neurons.csv missing",
            )
        else:
            # order: baseline a, b; baseline_sd a, b; osc_amp a, b (baseline_call's arguments)
            v6 = [v for v in cols.values() if v is not None]
            bc = baseline_call(
                v6[0],
                v6[1],
                v6[2],
                v6[3],
                v6[4],
                v6[5],
                fp_freq_hz=(
                    tables.fp.get((net, a), float("nan")),
                    tables.fp.get((net, b), float("nan")),
                ),
            )
        pc = phase_call(
            [
                (f"{a}->{b}", _direction(tables, net, r_ab, i, j, names, n_units)),
                (f"{b}->{a}", _direction(tables, net, r_ba, j, i, names, n_units)),
            ]
        )
        out.append(
            PairResult(
                network=net,
                mode_a=a,
                mode_b=b,
                converged=conv,
                calls={"turnover": tc, "baseline": bc, "phase": pc},
                fp_freq_hz=(
                    tables.fp.get((net, a), float("nan")),
                    tables.fp.get((net, b), float("nan")),
                ),
            )
        )
    return out


def classify_dir(analysis_dir: str | Path) -> tuple[list[PairResult], list[str]]:
    """Classify every network of an analysis directory (read-only).

    Returns (results, problems): problems lists missing files in words.
    """
    tables = _Tables(Path(analysis_dir))
    problems = [f"{m} missing" for m in tables.missing]
    if tables.pairs is None:
        return [], ["pairs.csv missing", *problems]
    by_net: dict[str, list[dict[str, str]]] = {}
    for r in tables.pairs[1]:
        by_net.setdefault(r.get("network", ""), []).append(r)
    results = []
    for net, rows in by_net.items():
        try:
            results.extend(classify_network(tables, net, rows))
        except Exception as exc:  # never let one network sink the annotation
            log.warning("%s: mechanism classification failed: %s", net, exc)
            problems.append(f"{net}: classification failed ({type(exc).__name__}: {exc})")
    return results, problems


# -- writing -------------------------------------------------------------------------------


def _fmt(v) -> str:
    return format_cell(v, digits=6)


def _csv6(columns: list[str], rows: list[dict]) -> str:
    return csv_text(columns, rows, digits=6)


def _mech_fields(res: PairResult) -> dict:
    out: dict = {}
    for m in MECHANISMS:
        out[m] = res.calls[m].present
        out[f"{m}_score"] = res.calls[m].score
    out["evidence"] = res.evidence
    return out


MECHANISMS_CSV_COLUMNS = [
    "network",
    "converged",
    "mode_a",
    "mode_b",
    "pair",
    *MECHANISM_COLUMNS[:6],
    "profile",
    "fp_freq_a_hz",
    "fp_freq_b_hz",
    "evidence",
]


def _find_run_dir(analysis_dir: Path) -> Path:
    """The directory whose manifest records these files (the run dir, else analysis_dir)."""
    parent = analysis_dir.parent
    return parent if (parent / "manifest.json").exists() else analysis_dir


def annotate_pairs(analysis_dir: str | Path) -> None:
    """Add the mechanism columns to ``pairs.csv``; write ``mechanisms.csv``, ``degeneracy.json``.

    Never raises on missing or malformed inputs: scores become NaN, booleans empty and the
    evidence says what was missing.  Files are written atomically and recorded in the run's
    manifest.
    """
    analysis_dir = Path(analysis_dir)
    try:
        results, problems = classify_dir(analysis_dir)
    except Exception as exc:  # pragma: no cover - classify_dir already guards per network
        log.warning("mechanism classification failed: %s", exc)
        results, problems = [], [f"classification failed ({exc})"]
    for p in problems:
        log.warning("%s: %s", analysis_dir, p)
    written = []
    pairs = _read_csv(analysis_dir / "pairs.csv")
    if pairs is not None:
        cols, rows = pairs
        base_cols = [c for c in cols if c not in MECHANISM_COLUMNS]
        index: dict[tuple[str, str, str], dict] = {}
        for res in results:
            mf = _mech_fields(res)
            index[(res.network, res.mode_a, res.mode_b)] = mf
            index[(res.network, res.mode_b, res.mode_a)] = mf
        out_rows = []
        for r in rows:
            row = {c: r.get(c, "") for c in base_cols}
            fields = index.get((r.get("network", ""), r.get("mode_from", ""), r.get("mode_to", "")))
            if fields is None:
                fields = {m: None for m in MECHANISMS}
                fields.update({f"{m}_score": float("nan") for m in MECHANISMS})
                fields["evidence"] = "not classified (row lacks network or modes)"
            row.update({k: _fmt(v) for k, v in fields.items()})
            out_rows.append(row)
        atomic_write_text(
            analysis_dir / "pairs.csv", _csv6([*base_cols, *MECHANISM_COLUMNS], out_rows)
        )
        written.append(analysis_dir / "pairs.csv")
    mech_rows = []
    for res in results:
        row = {
            "network": res.network,
            "converged": _fmt(res.converged),
            "mode_a": res.mode_a,
            "mode_b": res.mode_b,
            "pair": f"{res.mode_a}-{res.mode_b}",
            "profile": res.profile if res.profile is not None else "",
            "fp_freq_a_hz": _fmt(res.fp_freq_hz[0]),
            "fp_freq_b_hz": _fmt(res.fp_freq_hz[1]),
        }
        row.update({k: _fmt(v) for k, v in _mech_fields(res).items()})
        mech_rows.append(row)
    atomic_write_text(analysis_dir / "mechanisms.csv", _csv6(MECHANISMS_CSV_COLUMNS, mech_rows))
    written.append(analysis_dir / "mechanisms.csv")
    deg = degeneracy_summary(results)
    deg["problems"] = problems
    atomic_write_text(analysis_dir / "degeneracy.json", json.dumps(_jsonable(deg), indent=1) + "\n")
    written.append(analysis_dir / "degeneracy.json")
    try:
        record(_find_run_dir(analysis_dir), *written)
    except (OSError, ValueError) as exc:
        log.warning("%s: could not record the manifest (%s)", analysis_dir, exc)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# -- degeneracy ----------------------------------------------------------------------------


def profile_entropy_bits(profiles: list[str]) -> float:
    """Shannon entropy (bits) of the distribution of profiles; 0 when all agree."""
    if not profiles:
        return float("nan")
    c = np.array(list(Counter(profiles).values()), dtype=np.float64)
    p = c / c.sum()
    return float(0.0 - (p * np.log2(p)).sum())  # 0.0 - x: all agreeing gives 0.0, not -0.0


def _set(profile: str) -> set[str]:
    return set() if profile == "none" else set(profile.split("+"))


def agreement(profiles_by_net: dict[str, dict[str, str]]) -> dict:
    """Agreement between networks over the pairs both classified.

    ``identical``: mean over network pairs of the fraction of mode pairs with the same profile.
    ``jaccard``: mean over network pairs and mode pairs of the Jaccard index of the present
    mechanisms (two empty sets count as 1).
    """
    nets = sorted(profiles_by_net)
    same, jac = [], []
    for x, y in combinations(nets, 2):
        common = [p for p in profiles_by_net[x] if p in profiles_by_net[y]]
        if not common:
            continue
        same.append(np.mean([profiles_by_net[x][p] == profiles_by_net[y][p] for p in common]))
        js = []
        for p in common:
            a, b = _set(profiles_by_net[x][p]), _set(profiles_by_net[y][p])
            js.append(1.0 if not a and not b else len(a & b) / len(a | b))
        jac.append(np.mean(js))
    return {
        "n_network_pairs": len(same),
        "identical": float(np.mean(same)) if same else float("nan"),
        "jaccard": float(np.mean(jac)) if jac else float("nan"),
    }


CLAIM4_TEXT = (
    "Which mechanism serves which pair of modes differs between independently trained networks "
    "(degeneracy); the paper analysed 20 networks."
)
CLAIM4_RULE = (
    f"supported: some mode pair shows two different mechanism profiles each held by at least "
    f"max(2, 10% of n) networks; not supported: on every mode pair one profile is held by at "
    f">= 90% of the networks; otherwise inconclusive; always inconclusive with fewer than "
    f"{CLAIM_MIN_NETWORKS} classified networks.  Uses converged networks when the run says which "
    f"converged, else all networks."
)


def degeneracy_summary(results: list[PairResult]) -> dict:
    """Counts per pair per mechanism, profile entropy, agreement and the claim-4 verdict."""
    any_conv_info = any(r.converged is not None for r in results)
    use_conv = any(r.converged for r in results)
    pool = [r for r in results if r.converged] if use_conv else list(results)
    pairs = sorted({(r.mode_a, r.mode_b) for r in results}, key=lambda p: _pair_key(results, p))
    nets_all = sorted({r.network for r in results})
    nets = sorted({r.network for r in pool})
    per_pair: dict[str, dict[str, Any]] = {}
    profiles_by_net: dict[str, dict[str, str]] = {n: {} for n in nets}
    supported_pairs, agreeing_pairs = [], []
    for a, b in pairs:
        label = f"{a}-{b}"
        rows = [r for r in pool if (r.mode_a, r.mode_b) == (a, b)]
        counts = {m: int(sum(1 for r in rows if r.calls[m].present is True)) for m in MECHANISMS}
        undetermined = {
            m: int(sum(1 for r in rows if r.calls[m].present is None)) for m in MECHANISMS
        }
        profs = [r.profile for r in rows if r.profile is not None]
        for r in rows:
            if r.profile is not None:
                profiles_by_net[r.network][label] = r.profile
        pc = Counter(profs)
        n = len(profs)
        h = profile_entropy_bits(profs)
        need = max(2, math.ceil(0.1 * n))
        big = [p for p, c in pc.items() if c >= need]
        if len(big) >= 2:
            supported_pairs.append(label)
        if n and pc.most_common(1)[0][1] >= 0.9 * n:
            agreeing_pairs.append(label)
        per_pair[label] = {
            "n_networks": len(rows),
            "n_classified": n,
            "counts": counts,
            "undetermined": undetermined,
            "profiles": dict(pc.most_common()),
            "entropy_bits": h,
            "entropy_normalised": h / math.log2(min(n, 8)) if n > 1 else float("nan"),
        }
    agr = agreement(profiles_by_net)
    n_class = sum(1 for n in nets if profiles_by_net[n])
    if n_class < CLAIM_MIN_NETWORKS:
        verdict = "inconclusive"
        reason = f"{n_class} classified network(s) < {CLAIM_MIN_NETWORKS}"
    elif supported_pairs:
        verdict = "supported"
        reason = "pairs with two well-populated profiles: " + ", ".join(supported_pairs)
    elif len(agreeing_pairs) == len(per_pair):
        verdict = "not supported"
        reason = "every mode pair: one profile held by >= 90% of networks"
    else:
        verdict = "inconclusive"
        reason = "networks differ, but no second profile is held by enough networks"
    overall = {m: int(sum(1 for r in pool if r.calls[m].present is True)) for m in MECHANISMS}
    n_cases = sum(1 for r in pool if r.profile is not None)
    return {
        "networks": nets_all,
        "networks_used": nets,
        "used_converged_only": use_conv,
        "converged_known": any_conv_info,
        "n_networks": len(nets_all),
        "n_networks_used": len(nets),
        "pairs": per_pair,
        "overall_counts": overall,
        "n_classified_cases": n_cases,
        "n_cases_with_mechanism": int(
            sum(1 for r in pool if r.profile is not None and r.profile != "none")
        ),
        "mean_pairwise_agreement": agr["identical"],
        "mean_pairwise_jaccard": agr["jaccard"],
        "n_network_pairs": agr["n_network_pairs"],
        "mean_entropy_bits": float(np.nanmean([v["entropy_bits"] for v in per_pair.values()]))
        if per_pair and any(np.isfinite(v["entropy_bits"]) for v in per_pair.values())
        else float("nan"),
        "thresholds": thresholds(),
        "claim4": {
            "claim": CLAIM4_TEXT,
            "verdict": verdict,
            "rule": CLAIM4_RULE,
            "reason": reason,
        },
    }


def _pair_key(results: list[PairResult], pair: tuple[str, str]) -> int:
    for idx, r in enumerate(results):
        if (r.mode_a, r.mode_b) == pair:
            return idx
    return 0


def thresholds() -> dict:
    """The module constants of the rule (recorded next to every output)."""
    return {
        "active_fraction": ACTIVE_FRACTION,
        "active_tie_rel": ACTIVE_TIE_REL,
        "active_floor_rel": ACTIVE_FLOOR_REL,
        "turnover_jaccard_max": TURNOVER_JACCARD_MAX,
        "osc_rel": OSC_REL,
        "osc_abs_min": OSC_ABS_MIN,
        "min_shared": MIN_SHARED,
        "baseline_z_min": BASELINE_Z_MIN,
        "baseline_effect_min": BASELINE_EFFECT_MIN,
        "baseline_effect_fp_min": BASELINE_EFFECT_FP_MIN,
        "fp_freq_rel_min": FP_FREQ_REL_MIN,
        "carrier_rel": CARRIER_REL,
        "kappa_median_min": KAPPA_MEDIAN_MIN,
        "kappa_neuron_min": KAPPA_NEURON_MIN,
        "kappa_carrier_fraction": KAPPA_CARRIER_FRACTION,
        "eta_from_quantile": ETA_FROM_QUANTILE,
        "phase_log_eta_min": PHASE_LOG_ETA_MIN,
    }


# -- comparing ensembles (claim 5) ---------------------------------------------------------

CLAIM5_TEXT = "How time constants are initialised can bias which mechanism emerges."


def _ensemble_label(analysis_dir: Path) -> tuple[str, dict]:
    run_dir = analysis_dir.parent
    info: dict = {}
    cfg_path = run_dir / "config.toml"
    if cfg_path.exists():
        try:
            from rhythmswitch.config import RunConfig

            m = RunConfig.load(cfg_path).model
            info = {
                "tau_init": m.tau_init,
                "tau_init_s": m.tau_init_s,
                "tau_lo_s": m.tau_lo_s,
                "tau_hi_s": m.tau_hi_s,
                "train_tau": m.train_tau,
            }
        except Exception as exc:  # a bad config must not stop the comparison
            info = {"config_error": str(exc)}
    return run_dir.name or str(analysis_dir), info


def _test(table: np.ndarray) -> dict:
    """Fisher exact (2 ensembles) or chi-square (more) on an ensembles x (yes, no) table."""
    table = np.asarray(table, dtype=np.int64)
    if table.shape[0] < 2 or table.sum() == 0 or np.any(table.sum(axis=1) == 0):
        return {"test": "none", "p_value": float("nan"), "note": "too few cases"}
    if np.all(table[:, 0] == 0) or np.all(table[:, 1] == 0):
        return {"test": "none", "p_value": 1.0, "note": "no variation (all yes or all no)"}
    if table.shape[0] == 2:
        res = stats.fisher_exact(table)
        return {"test": "fisher_exact", "p_value": float(res.pvalue)}
    chi2, p, dof, expected = stats.chi2_contingency(table)
    out = {"test": "chi2_contingency", "p_value": float(p), "chi2": float(chi2), "dof": int(dof)}
    if np.any(expected < 5):
        out["note"] = "some expected counts < 5: the chi-square approximation is rough"
    return out


def compare_ensembles(analysis_dirs: list[Path]) -> dict:
    """Compare mechanism frequencies between ensembles (claim 5).

    For each ensemble (an ``analysis`` directory; read-only) and each mechanism: the number of
    networks that use it on at least one mode pair (the primary, independent unit) and the
    number of (network, pair) cases.  Tests per mechanism across ensembles: Fisher's exact test
    for two ensembles, chi-square for more, at level CLAIM5_ALPHA / 3 (Bonferroni).  Converged
    networks only when a run says which converged.
    """
    dirs = [Path(d) for d in analysis_dirs]
    ens: list[dict[str, Any]] = []
    for d in dirs:
        results, problems = classify_dir(d)
        use_conv = any(r.converged for r in results)
        pool = [r for r in results if r.converged] if use_conv else results
        label, info = _ensemble_label(d)
        nets = sorted({r.network for r in pool})
        per_net = {
            n: {
                m: any(r.calls[m].present is True for r in pool if r.network == n)
                for m in MECHANISMS
            }
            for n in nets
        }
        cases = {
            m: {
                "yes": int(sum(1 for r in pool if r.calls[m].present is True)),
                "no": int(sum(1 for r in pool if r.calls[m].present is False)),
            }
            for m in MECHANISMS
        }
        per_pair: dict[str, dict[str, int]] = {}
        for r in pool:
            slot = per_pair.setdefault(f"{r.mode_a}-{r.mode_b}", {m: 0 for m in MECHANISMS})
            for m in MECHANISMS:
                slot[m] += int(r.calls[m].present is True)
        ens.append(
            {
                "name": label,
                "analysis_dir": str(d),
                "config": info,
                "n_networks": len(nets),
                "used_converged_only": use_conv,
                "networks_using": {m: int(sum(v[m] for v in per_net.values())) for m in MECHANISMS},
                "cases": cases,
                "per_pair": per_pair,
                "problems": problems,
            }
        )
    tests = {}
    level = CLAIM5_ALPHA / len(MECHANISMS)
    for m in MECHANISMS:
        net_table = np.array(
            [[e["networks_using"][m], e["n_networks"] - e["networks_using"][m]] for e in ens]
        )
        case_table = np.array([[e["cases"][m]["yes"], e["cases"][m]["no"]] for e in ens])
        tests[m] = {
            "networks": {"table": net_table.tolist(), **_test(net_table)},
            "cases": {"table": case_table.tolist(), **_test(case_table)},
        }
    small = [e["name"] for e in ens if e["n_networks"] < CLAIM_MIN_NETWORKS]
    sig = [m for m in MECHANISMS if tests[m]["networks"]["p_value"] < level]
    if len(ens) < 2:
        verdict, reason = "inconclusive", "fewer than two ensembles"
    elif sig:
        verdict, reason = "supported", "mechanism frequency differs for: " + ", ".join(sig)
    elif small:
        verdict = "inconclusive"
        reason = f"no significant difference, and ensemble(s) {', '.join(small)} have fewer than {CLAIM_MIN_NETWORKS} networks"
    else:
        verdict, reason = "not supported", "no mechanism's frequency differs significantly"
    return _jsonable(
        {
            "ensembles": ens,
            "tests": tests,
            "level": level,
            "claim5": {
                "claim": CLAIM5_TEXT,
                "verdict": verdict,
                "rule": f"supported when, for some mechanism, the number of networks using it "
                f"(on any mode pair) differs between ensembles at p < {level:.4f} (Fisher exact "
                f"for 2 ensembles, chi-square for more; {CLAIM5_ALPHA} Bonferroni-corrected over "
                f"3 mechanisms); inconclusive with < 2 ensembles or < {CLAIM_MIN_NETWORKS} "
                f"networks in one; case-level tests (network x pair) are reported but pairs of "
                f"one network are not independent",
                "reason": reason,
            },
        }
    )
