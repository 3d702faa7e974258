"""The claims table: each claim of METHOD section 1 tested on an ensemble, never assumed.

Every claim is evaluated on the *converged* networks (METHOD section 6 criterion) and yields
our numbers, a verdict and the rule that produced it.  Verdicts:

* ``supported``: enough networks and every part of the rule holds;
* ``not supported``: enough networks and some part of the rule fails;
* ``inconclusive``: too few converged networks (< :data:`MIN_NETWORKS`), or a table/column the
  rule needs is missing (the reason is stated).

Rules (ALPHA = 0.05, one-sided tests across networks, so networks are the replicates):

1. *Low bands carried by many neurons, high bands by a few short-tau neurons*: the Gini
   coefficient of A(m, m) is larger in the fastest band than in the slowest (Wilcoxon
   signed-rank, one-sided) AND rho(tau, A(m, m)) in the fastest band is below 0 (Wilcoxon
   signed-rank against 0, one-sided).
2. *rho(tau, A) negative and stronger from slow to fast bands*: rho < 0 in every band
   (one-sided Wilcoxon against 0, per band) AND rho decreases with band order (Page's L trend
   test on -rho with the band order as predicted ranks; with two bands a one-sided Wilcoxon).
   The share of networks whose rho falls strictly monotonically is reported beside it.
3. *Switching uses one or more of three mechanisms*: at least :data:`CLAIM3_COVERAGE` of
   classified (network, mode pair) cases show at least one mechanism AND each of turnover,
   baseline shift and phase reorganisation occurs at least once.
4. *Degeneracy*: the verdict of ``analysis/degeneracy.json`` (rhythmswitch.mechanisms) when it
   states one; otherwise ours: some mode pair shows two different mechanism profiles, each in at
   least two converged networks.
5. *tau initialisation biases the mechanism*: ``rhythmswitch.mechanisms.compare_ensembles`` on
   the given run directories; with one directory the claim is inconclusive ("one ensemble").

Beside the verdicts, :func:`evaluate_relaxed_claims` applies rules 1-4 to the networks that meet
a *relaxed* criterion (every mode's in-band ratio >= :data:`RELAXED_MIN_RATIO` in all evaluation
runs; claim 4 by our rule, not a stated one).  It is not the study's criterion and never
replaces a verdict: it says whether the claims' direction already shows in networks that hold all
four rhythms but miss 0.99, which is where short training leaves most of them.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from rhythmswitch.mechanisms import profile_entropy_bits
from rhythmswitch.report.data import Ensemble, MissingData, Table
from rhythmswitch.report.figures import MECH_LABELS, mechanism_codes, rho_matrix

log = logging.getLogger(__name__)

ALPHA = 0.05
MIN_NETWORKS = 5
RELAXED_MIN_RATIO = 0.98
CLAIM3_COVERAGE = 0.9
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"

CLAIM_TEXT = {
    1: "Low-frequency rhythms are carried by many neurons; high-frequency rhythms by a small "
    "subpopulation of short-time-constant neurons.",
    2: "The rank correlation between tau and matched-mode amplitude is negative and grows "
    "stronger monotonically from the slowest to the fastest band.",
    3: "Switching between two rhythms uses one or more of three mechanisms: turnover of the "
    "active subpopulation, a baseline shift, inter-neuronal phase reorganisation.",
    4: "Which mechanism serves which pair of modes differs between independently trained "
    "networks (degeneracy).",
    5: "How time constants are initialised can bias which mechanism emerges.",
}


@dataclass(frozen=True)
class Claim:
    number: int
    statement: str
    numbers: list[str]
    verdict: str
    rule: str
    details: dict = field(default_factory=dict)


def _fmt_p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else (f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}")


def _wilcoxon_less(x: np.ndarray) -> float:
    """One-sided p that the median of x is below 0 (NaNs dropped); NaN if not computable."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if x.size < 2 or np.all(x == 0):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.wilcoxon(x, alternative="less").pvalue)


def _converged(ens: Ensemble) -> tuple[np.ndarray, int]:
    conv = ens.converged_mask()
    return conv, int(conv.sum())


def _too_few(n_conv: int, n_all: int) -> str:
    return (
        f"inconclusive: {n_conv} of {n_all} networks converged; the rule needs at least "
        f"{MIN_NETWORKS} converged networks"
    )


def _mean_sd(x: np.ndarray) -> str:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return "n/a"
    sd = np.std(x, ddof=1) if x.size > 1 else float("nan")
    return f"{np.mean(x):+.2f} ± {sd:.2f}" if np.isfinite(sd) else f"{np.mean(x):+.2f}"


def claim_1(ens: Ensemble) -> Claim:
    rule = (
        f"Gini of A(m, m) larger in the fastest than in the slowest band (one-sided Wilcoxon "
        f"signed-rank over converged networks, p < {ALPHA}) and rho(tau, A) in the fastest band "
        f"< 0 (one-sided Wilcoxon, p < {ALPHA}); at least {MIN_NETWORKS} converged networks"
    )
    modes = ens.mode_names
    try:
        gini = rho_matrix(ens, "gini_")
        rho = rho_matrix(ens, "rho_tau_amp_")
    except MissingData as exc:
        return Claim(1, CLAIM_TEXT[1], [], INCONCLUSIVE, rule, {"reason": str(exc)})
    conv, n = _converged(ens)
    numbers = [
        "Gini per band (all networks): "
        + ", ".join(f"{m} {_mean_sd(gini[:, k])}" for k, m in enumerate(modes)),
    ]
    if n:
        numbers.append(
            f"converged (n={n}): Gini "
            + ", ".join(f"{m} {_mean_sd(gini[conv, k])}" for k, m in enumerate(modes))
            + f"; rho(tau, A) in {modes[-1]} {_mean_sd(rho[conv, -1])}"
        )
    if n < MIN_NETWORKS:
        numbers.append(_too_few(n, len(conv)))
        return Claim(1, CLAIM_TEXT[1], numbers, INCONCLUSIVE, rule)
    p_gini = _wilcoxon_less(gini[conv, 0] - gini[conv, -1])
    p_rho = _wilcoxon_less(rho[conv, -1])
    numbers.append(
        f"p(Gini {modes[-1]} > {modes[0]}) = {_fmt_p(p_gini)}; "
        f"p(rho {modes[-1]} < 0) = {_fmt_p(p_rho)}"
    )
    ok = bool(p_gini < ALPHA and p_rho < ALPHA)
    return Claim(
        1,
        CLAIM_TEXT[1],
        numbers,
        SUPPORTED if ok else NOT_SUPPORTED,
        rule,
        {"p_gini": p_gini, "p_rho_fast": p_rho, "n_converged": n},
    )


def _trend_p(rho_nm: np.ndarray) -> tuple[float, str]:
    """One-sided p that rho decreases with band order, and the test's name."""
    x = rho_nm[np.isfinite(rho_nm).all(axis=1)]
    if x.shape[0] < 2:
        return float("nan"), "too few complete networks"
    if x.shape[1] == 2:
        return _wilcoxon_less(x[:, 1] - x[:, 0]), "Wilcoxon signed-rank"
    res = stats.page_trend_test(-x, predicted_ranks=list(range(1, x.shape[1] + 1)))
    return float(res.pvalue), f"Page's L = {res.statistic:.1f}"


def claim_2(ens: Ensemble) -> Claim:
    rule = (
        f"rho(tau, A(m, m)) < 0 in every band (one-sided Wilcoxon against 0 over converged "
        f"networks, p < {ALPHA} each) and rho falls with band order (Page's L trend test, "
        f"p < {ALPHA}); at least {MIN_NETWORKS} converged networks"
    )
    modes = ens.mode_names
    try:
        rho = rho_matrix(ens, "rho_tau_amp_")
    except MissingData as exc:
        return Claim(2, CLAIM_TEXT[2], [], INCONCLUSIVE, rule, {"reason": str(exc)})
    conv, n = _converged(ens)
    numbers = [
        "rho per band (all networks): "
        + ", ".join(f"{m} {_mean_sd(rho[:, k])}" for k, m in enumerate(modes))
    ]
    sel = rho[conv]
    if n:
        numbers.append(
            f"converged (n={n}): "
            + ", ".join(f"{m} {_mean_sd(sel[:, k])}" for k, m in enumerate(modes))
        )
        mono = np.all(np.diff(sel, axis=1) < 0, axis=1) & np.isfinite(sel).all(axis=1)
        numbers.append(f"networks with rho strictly falling slow -> fast: {int(mono.sum())}/{n}")
    if n < MIN_NETWORKS:
        numbers.append(_too_few(n, len(conv)))
        return Claim(2, CLAIM_TEXT[2], numbers, INCONCLUSIVE, rule)
    p_neg = [_wilcoxon_less(sel[:, k]) for k in range(len(modes))]
    p_trend, test = _trend_p(sel)
    numbers.append(
        "p(rho < 0): "
        + ", ".join(f"{m} {_fmt_p(p)}" for m, p in zip(modes, p_neg, strict=True))
        + f"; trend p = {_fmt_p(p_trend)} ({test})"
    )
    ok = bool(all(p < ALPHA for p in p_neg) and p_trend < ALPHA)
    return Claim(
        2,
        CLAIM_TEXT[2],
        numbers,
        SUPPORTED if ok else NOT_SUPPORTED,
        rule,
        {"p_negative": p_neg, "p_trend": p_trend, "n_converged": n},
    )


def _profiles(ens: Ensemble) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    names, labels, codes = mechanism_codes(ens)
    conv_by_name = dict(zip(ens.network_names(), ens.converged_mask(), strict=False))
    conv = np.array([bool(conv_by_name.get(n, False)) for n in names], dtype=bool)
    return names, labels, codes, conv


def claim_3(ens: Ensemble) -> Claim:
    rule = (
        f"at least {CLAIM3_COVERAGE:.0%} of classified (converged network, mode pair) cases show "
        f"at least one mechanism, and each of turnover, baseline shift and phase occurs at least "
        f"once; at least {MIN_NETWORKS} converged networks"
    )
    try:
        names, labels, codes, conv = _profiles(ens)
    except MissingData as exc:
        return Claim(3, CLAIM_TEXT[3], [], INCONCLUSIVE, rule, {"reason": str(exc)})
    sel = codes[conv]
    vals = sel[np.isfinite(sel)].astype(int)
    n = int(conv.sum())
    numbers = []
    if vals.size:
        covered = float(np.mean(vals > 0))
        counts = {
            mech: int(np.sum(vals & bit > 0))
            for mech, bit in (("turnover", 1), ("baseline", 2), ("phase", 4))
        }
        numbers.append(
            f"{int(np.sum(vals > 0))}/{vals.size} classified cases ({covered:.0%}) show at least "
            f"one mechanism (converged networks, n={n})"
        )
        numbers.append("cases with: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    else:
        covered, counts = float("nan"), {}
        numbers.append(f"no classified case among {n} converged networks")
    if n < MIN_NETWORKS or vals.size == 0:
        numbers.append(_too_few(n, len(conv)))
        return Claim(3, CLAIM_TEXT[3], numbers, INCONCLUSIVE, rule)
    ok = covered >= CLAIM3_COVERAGE and all(v > 0 for v in counts.values())
    return Claim(
        3,
        CLAIM_TEXT[3],
        numbers,
        SUPPORTED if ok else NOT_SUPPORTED,
        rule,
        {"coverage": covered, "counts": counts, "n_converged": n},
    )


def _find_claim(obj, number: int):
    """A dict inside ``obj`` that states claim ``number``'s verdict (several spellings)."""
    if isinstance(obj, dict):
        for key, val in obj.items():
            k = str(key).lower().replace("_", "").replace(" ", "")
            if k in (f"claim{number}", f"claim{number}verdict") and isinstance(val, dict | str):
                return val
        if "verdict" in obj and str(obj.get("claim", "")).strip() in (
            str(number),
            f"claim {number}",
        ):
            return obj
        for val in obj.values():
            got = _find_claim(val, number)
            if got is not None:
                return got
    if isinstance(obj, list):
        for val in obj:
            got = _find_claim(val, number)
            if got is not None:
                return got
    return None


def _normalise_verdict(text: str) -> str:
    t = str(text).strip().lower()
    for v in (NOT_SUPPORTED, SUPPORTED, INCONCLUSIVE):
        if t.startswith(v) or t.replace("_", " ").startswith(v):
            return v
    return INCONCLUSIVE


def claim_4(ens: Ensemble) -> Claim:
    own_rule = (
        "some mode pair shows two different mechanism profiles (sets of present mechanisms), "
        f"each in at least two converged networks; at least {MIN_NETWORKS} converged networks"
    )
    stated = _find_claim(ens.degeneracy, 4)
    numbers: list[str] = []
    try:
        names, labels, codes, conv = _profiles(ens)
    except MissingData as exc:
        if stated is None:
            return Claim(4, CLAIM_TEXT[4], [], INCONCLUSIVE, own_rule, {"reason": str(exc)})
        labels, codes, conv = [], np.zeros((0, 0)), np.zeros(0, bool)
    n = int(conv.sum())
    use = conv if n else np.ones_like(conv)
    numbers.append(
        f"profiles per pair over {'converged' if n else 'all'} networks (n={int(use.sum())}):"
    )
    disagreeing = []
    for p, lab in enumerate(labels):
        col = codes[use, p]
        col = col[np.isfinite(col)].astype(int)
        cnt = Counter(col.tolist())
        if col.size:
            entropy = profile_entropy_bits([str(c) for c in col.tolist()])
            top = ", ".join(f"{MECH_LABELS[c]} x{k}" for c, k in cnt.most_common())
            numbers.append(f"{lab}: {top} (entropy {entropy:.2f} bit)")
        if sum(1 for k in cnt.values() if k >= 2) >= 2:
            disagreeing.append(lab)
    for key in ("mean_pairwise_agreement", "pairwise_agreement", "agreement"):
        if key in ens.degeneracy:
            try:
                numbers.append(
                    f"mean pairwise agreement between networks: {float(ens.degeneracy[key]):.2f}"
                )
            except (TypeError, ValueError):
                numbers.append(f"pairwise agreement between networks: {ens.degeneracy[key]}")
            break
    if stated is not None:
        if isinstance(stated, dict):
            verdict = _normalise_verdict(stated.get("verdict", INCONCLUSIVE))
            rule = str(stated.get("rule", "")) or "as stated in analysis/degeneracy.json"
            if stated.get("reason"):
                numbers.append(str(stated["reason"]))
        else:
            verdict, rule = _normalise_verdict(stated), "as stated in analysis/degeneracy.json"
        return Claim(
            4, CLAIM_TEXT[4], numbers, verdict, f"{rule} (from analysis/degeneracy.json)", {}
        )
    if n < MIN_NETWORKS:
        numbers.append(_too_few(n, len(conv)))
        return Claim(4, CLAIM_TEXT[4], numbers, INCONCLUSIVE, own_rule)
    numbers.append(
        "pairs with two profiles each in >= 2 networks: " + (", ".join(disagreeing) or "none")
    )
    return Claim(
        4,
        CLAIM_TEXT[4],
        numbers,
        SUPPORTED if disagreeing else NOT_SUPPORTED,
        own_rule,
        {"disagreeing_pairs": disagreeing},
    )


def _flatten(d, prefix: str = "") -> list[str]:
    """Short 'key: value' lines of a nested result (numbers rounded)."""
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            if str(k).lower() in ("verdict", "rule"):
                continue
            out.extend(_flatten(v, f"{prefix}{k}." if prefix or isinstance(v, dict) else f"{k}"))
    elif isinstance(d, float):
        out.append(f"{prefix.rstrip('.')}: {d:.3g}")
    elif isinstance(d, list) and len(d) > 8:
        out.append(f"{prefix.rstrip('.')}: list of {len(d)}")
    else:
        out.append(f"{prefix.rstrip('.')}: {d}")
    return out


def claim_5(ensembles: list[Ensemble]) -> Claim:
    rule = "rhythmswitch.mechanisms.compare_ensembles over the ensembles given to the report"
    if len(ensembles) < 2:
        return Claim(
            5,
            CLAIM_TEXT[5],
            ["inconclusive: one ensemble (give several run directories, one per tau init)"],
            INCONCLUSIVE,
            rule,
        )
    inits = []
    for e in ensembles:
        init = e.config.model.tau_init if e.config is not None else "?"
        inits.append(f"{e.name}: tau_init = {init}")
    try:
        from rhythmswitch.mechanisms import compare_ensembles
    except ImportError as exc:
        return Claim(5, CLAIM_TEXT[5], [*inits, f"unavailable: {exc}"], INCONCLUSIVE, rule)
    try:
        res = compare_ensembles([e.analysis_dir for e in ensembles])
    except Exception as exc:  # a comparison failure must not sink the report
        log.warning("compare_ensembles failed: %s", exc)
        return Claim(5, CLAIM_TEXT[5], [*inits, f"comparison failed: {exc}"], INCONCLUSIVE, rule)
    stated = _find_claim(res, 5) if isinstance(res, dict) else None
    src = stated if isinstance(stated, dict) else res if isinstance(res, dict) else {}
    verdict = (
        _normalise_verdict(src.get("verdict", INCONCLUSIVE))
        if isinstance(src, dict)
        else (_normalise_verdict(stated) if stated else INCONCLUSIVE)
    )
    if isinstance(src, dict) and src.get("rule"):
        rule = f"{src['rule']} (rhythmswitch.mechanisms.compare_ensembles)"
    lines = _claim5_lines(res) if isinstance(res, dict) else []
    if not lines:
        lines = _flatten(res)[:30]
    if isinstance(src, dict) and src.get("reason"):
        lines.append(str(src["reason"]))
    return Claim(5, CLAIM_TEXT[5], [*inits, *lines], verdict, rule, {"raw": res})


def _claim5_lines(res: dict) -> list[str]:
    """Per ensemble the networks using each mechanism, and each mechanism's test p-value."""
    lines = []
    for e in res.get("ensembles", []) or []:
        if not isinstance(e, dict):
            continue
        using = e.get("networks_using", {})
        if isinstance(using, dict):
            used = ", ".join(f"{m} {v}" for m, v in using.items())
            lines.append(f"{e.get('name', '?')}: {e.get('n_networks', '?')} networks; using {used}")
    tests = res.get("tests", {})
    if isinstance(tests, dict):
        ps = []
        for m, t in tests.items():
            try:
                ps.append(f"{m} {_fmt_p(float(t['networks']['p_value']))}")
            except (KeyError, TypeError, ValueError):
                continue
        if ps:
            lines.append("p (networks using the mechanism differ): " + ", ".join(ps))
    return lines


def evaluate_claims(ensembles: list[Ensemble]) -> list[Claim]:
    """Claims 1-4 on the first ensemble, claim 5 across all of them."""
    ens = ensembles[0]
    return [claim_1(ens), claim_2(ens), claim_3(ens), claim_4(ens), claim_5(ensembles)]


def relaxed_ensemble(ens: Ensemble, min_ratio: float = RELAXED_MIN_RATIO) -> Ensemble | None:
    """``ens`` with "converged" meaning ``min_ratio`` >= the given value (None without a
    ``min_ratio`` column); the stated degeneracy verdict is dropped, so claim 4 uses our rule."""
    if not ens.networks.has("min_ratio"):
        return None
    ratios = ens.networks.float("min_ratio")
    ok = np.isfinite(ratios) & (ratios >= min_ratio)
    cols = dict(ens.networks.columns)
    cols["converged"] = np.array(["true" if v else "false" for v in ok], dtype=object)
    return dataclasses.replace(
        ens, networks=Table(ens.networks.path, cols), degeneracy={}, _arrays=ens._arrays
    )


def evaluate_relaxed_claims(
    ens: Ensemble, min_ratio: float = RELAXED_MIN_RATIO
) -> tuple[int, list[Claim]] | None:
    """(networks meeting the relaxed criterion, claims 1-4 on them), or None without ratios."""
    relaxed = relaxed_ensemble(ens, min_ratio)
    if relaxed is None:
        return None
    n = int(relaxed.converged_mask().sum())

    def relabel(c: Claim) -> Claim:  # its "converged" networks are the relaxed criterion's
        def sub(text: str) -> str:
            return text.replace("converged", f"relaxed (ratio >= {min_ratio:g})")

        return dataclasses.replace(c, numbers=[sub(x) for x in c.numbers], rule=sub(c.rule))

    claims = [claim_1(relaxed), claim_2(relaxed), claim_3(relaxed), claim_4(relaxed)]
    return n, [relabel(c) for c in claims]


def analysis_dirs(ensembles: list[Ensemble]) -> list[Path]:
    return [e.analysis_dir for e in ensembles]
