"""Mechanism classification, its null models, degeneracy and the ensemble comparison.

Reference tests: the null models against exact laws / simulation / symmetry; the rule on
hand-made numbers whose answer is known; the full analysis pipeline on the hand-built networks
of :mod:`rhythmswitch.synthetic` (whose behaviour tests/test_synthetic.py verifies) must name
the mechanism each was built with, and no other.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from rhythmswitch import mechanisms as mech
from rhythmswitch.mechanisms import (
    BASELINE_EFFECT_MIN,
    BASELINE_Z_MIN,
    MECHANISMS,
    MIN_SHARED,
    PHASE_LOG_ETA_MIN,
    TURNOVER_JACCARD_MAX,
    Call,
    Direction,
    PairResult,
    amplitude_only_baseline_effect,
    annotate_pairs,
    baseline_call,
    compare_ensembles,
    degeneracy_summary,
    eta_random_level,
    jaccard_null_cdf,
    jaccard_null_mean,
    jaccard_null_pmf,
    kappa_on_carriers,
    phase_call,
    simulate_amplitude_only_phase,
    simulate_baseline_noise_scores,
    simulate_no_turnover_jaccard,
    turnover_call,
)

# -- null models ---------------------------------------------------------------------------


def test_jaccard_null_exact_against_simulation():
    """Exact hypergeometric law of J for random sets vs Monte Carlo; METHOD's ~0.11."""
    j, p = jaccard_null_pmf(100, 20)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    mean = jaccard_null_mean(100, 20)
    assert mean == pytest.approx(20 / 180, abs=0.005)  # METHOD 8: "about 0.11"
    rng = np.random.default_rng(1)
    a = mech._top_k(rng.random((20000, 100)), 20)
    b = mech._top_k(rng.random((20000, 100)), 20)
    sim = mech._jaccard_sets(a, b)
    assert sim.mean() == pytest.approx(mean, abs=4 * sim.std() / math.sqrt(sim.size))
    assert np.mean(sim < 0.2) == pytest.approx(jaccard_null_cdf(100, 20, 0.19), abs=0.01)
    with pytest.raises(ValueError, match="k = 0"):
        jaccard_null_pmf(10, 0)


def test_jaccard_null_unequal_sizes():
    rng = np.random.default_rng(6)
    mean = jaccard_null_mean(60, 8, 20)
    a = mech._top_k(rng.random((20000, 60)), 8)
    b = mech._top_k(rng.random((20000, 60)), 20)
    sim = mech._jaccard_sets(a, b)
    assert sim.mean() == pytest.approx(mean, abs=4 * sim.std() / math.sqrt(sim.size))
    assert jaccard_null_mean(60, 8, 20) == pytest.approx(jaccard_null_mean(60, 20, 8))


def test_active_set_ties_and_floor():
    # identical neurons: all tied with the k-th, all active (not split by index)
    assert mech.active_set(np.full(10, 3.0), 2).all()
    # a small subpopulation: silent neurons are not padded in
    d = np.array([5.0, 4.0, 0.0, 1e-4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(np.flatnonzero(mech.active_set(d, 4)), [0, 1])
    # ordinary case: the top k
    d = np.arange(10.0)
    np.testing.assert_array_equal(np.flatnonzero(mech.active_set(d, 3)), [7, 8, 9])
    assert not mech.active_set(np.zeros(5), 2).any()
    assert not mech.active_set(np.full(5, np.nan), 2).any()


def test_turnover_threshold_against_both_nulls():
    """Random sets fall below 1/3 almost always; noisy copies of one set almost never."""
    assert jaccard_null_cdf(100, 20, TURNOVER_JACCARD_MAX - mech.JACCARD_TOL) > 0.99
    rng = np.random.default_rng(2)
    same = simulate_no_turnover_jaccard(100, 20, 0.5, 1000, rng=rng)
    assert np.mean(same < TURNOVER_JACCARD_MAX) == 0.0
    exact = simulate_no_turnover_jaccard(100, 20, 0.0, 10, rng=rng)
    np.testing.assert_array_equal(exact, 1.0)  # rank-preserving change: J = 1 exactly


def test_baseline_thresholds_against_nulls():
    rng = np.random.default_rng(3)
    z = simulate_baseline_noise_scores(MIN_SHARED, 2000, rng=rng)
    assert np.quantile(z, 0.99) < BASELINE_Z_MIN
    # amplitude-only changes: odd symmetry gives no shift at x* = 0 ...
    assert amplitude_only_baseline_effect(0.0, 0.3, 1.2) == pytest.approx(0.0, abs=1e-12)
    # ... the mean of tanh(x* + A sin) agrees with quadrature ...
    x0, amp = 0.7, 0.9
    ref, _ = integrate.quad(lambda t: np.tanh(x0 + amp * np.sin(t)), 0, 2 * np.pi)
    ph = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    assert np.tanh(x0 + amp * np.sin(ph)).mean() == pytest.approx(ref / (2 * np.pi), rel=1e-9)
    # ... and over the stated range the apparent effect stays below the threshold
    xs, a1, ratio = np.meshgrid(
        np.linspace(-1.5, 1.5, 31), np.linspace(0.05, 1.5, 30), np.geomspace(1 / 3, 3, 9)
    )
    eff = amplitude_only_baseline_effect(xs, a1, a1 * ratio)
    assert eff.max() < BASELINE_EFFECT_MIN


def test_phase_threshold_against_amplitude_only_null():
    rng = np.random.default_rng(4)
    e_from, c = simulate_amplitude_only_phase(100, 2.0, 1.0, 300, rng=rng)
    assert np.all(e_from >= mech.eta_random_floor(100))
    assert np.quantile(c, 0.999) < PHASE_LOG_ETA_MIN
    _, c0 = simulate_amplitude_only_phase(100, 1.0, 0.0, 5, rng=rng)
    np.testing.assert_allclose(c0, 0.0, atol=1e-12)  # no change, no coherence loss
    ph = rng.uniform(-np.pi, np.pi, (4000, 100))
    level = np.abs(np.exp(1j * ph).mean(1)).mean()
    assert level == pytest.approx(eta_random_level(100), rel=0.03)
    share = np.mean(np.abs(np.exp(1j * ph).mean(1)) >= mech.eta_random_floor(100))
    assert share == pytest.approx(0.01, abs=0.006)


# -- the rule on known numbers -------------------------------------------------------------


def test_turnover_call():
    e = jaccard_null_mean(100, 20)
    c = turnover_call(0.0, 100, 20)
    assert c.present is True and c.score == pytest.approx(1 / (1 - e))
    c = turnover_call(1.0, 100, 20)
    assert c.present is False and c.score == 0.0
    assert turnover_call(1 / 3, 100, 20).present is False  # exactly half shared: not turnover
    assert turnover_call(0.333333333, 100, 20).present is False  # as read back from CSV
    assert turnover_call(0.25, 100, 20).present is True
    c = turnover_call(float("nan"), 100, 20)
    assert c.present is None and math.isnan(c.score)


def test_baseline_call():
    n = 50
    rng = np.random.default_rng(5)
    bp = rng.uniform(-0.2, 0.2, n)
    sd = np.full(n, 0.01)
    osc = np.full(n, 0.2)
    c = baseline_call(bp, bp + 0.5, sd, sd, osc, osc)
    assert c.present is True
    assert c.score == pytest.approx(0.5 / 0.01)
    # significant (z = 10) but small compared with the oscillation (0.1 / 0.2 < 1): absent
    c = baseline_call(bp, bp + 0.1, sd, sd, osc, osc)
    assert c.present is False and c.score == pytest.approx(10.0)
    # ... unless the two modes sit near fixed points of different frequency (the paper's
    # signature), which rules out the amplitude-only null: then a smaller effect suffices
    assert baseline_call(bp, bp + 0.1, sd, sd, osc, osc, fp_freq_hz=(20.0, 40.0)).present
    assert not baseline_call(bp, bp + 0.1, sd, sd, osc, osc, fp_freq_hz=(20.0, 21.0)).present
    assert not baseline_call(bp, bp + 0.03, sd, sd, osc, osc, fp_freq_hz=(20.0, 40.0)).present
    assert mech.fixed_points_differ(20.0, float("nan")) is None
    # large but within the within-mode wander: absent
    c = baseline_call(bp, bp + 0.5, np.full(n, 0.3), np.full(n, 0.3), osc, osc)
    assert c.present is False
    # silenced in one mode (turnover): no shared oscillating neurons, no baseline mechanism
    silent = np.zeros(n)
    c = baseline_call(bp, bp + 0.9, sd, sd, osc, silent)
    assert c.present is False and c.score == 0.0 and "only 0" in c.evidence
    # only neurons oscillating in both modes count
    osc_q = osc.copy()
    osc_q[: n // 2] = 0.0
    shift = np.where(np.arange(n) < n // 2, 0.9, 0.0)
    c = baseline_call(bp, bp + shift, sd, sd, osc, osc_q)
    assert c.present is False and c.extras["n_shared"] == n - n // 2


def test_kappa_on_carriers():
    A = np.zeros((5, 2, 2))
    A[:, 0, 0] = [1.0, 0.8, 0.5, 0.01, 0.0]  # band 0 in mode 0; the last two are not carriers
    A[:, 0, 1] = [0.9, 0.1, 0.5, 5.0, 3.0]  # band 0 in mode 1
    med, frac, n_car = kappa_on_carriers(A, 0, 1)
    assert n_car == 3
    assert med == pytest.approx(np.median([0.9, 0.125, 1.0]))
    assert frac == pytest.approx(2 / 3)


def test_phase_call():
    persist = Direction(1.0, 1.0, eta=0.05, eta_from=0.9, n_units=100)
    c = phase_call([("a->b", persist), ("b->a", persist)])
    assert c.present is True and c.score == pytest.approx(math.log(0.9 / 0.05))
    # amplitude suppression: z loses the band because neurons do (kappa small)
    suppressed = Direction(0.05, 0.0, eta=0.05, eta_from=0.9, n_units=100)
    c = phase_call([("a->b", suppressed), ("b->a", suppressed)])
    assert c.present is False and c.score == 0.0
    # amplitude-only: neurons keep the band and z keeps its coherence
    kept = Direction(0.9, 1.0, eta=0.85, eta_from=0.9, n_units=100)
    assert phase_call([("a->b", kept), ("b->a", kept)]).present is False
    # a from-band that was never coherent cannot be cancelled
    incoherent = Direction(1.0, 1.0, eta=0.01, eta_from=0.1, n_units=100)
    assert phase_call([("a->b", incoherent), ("b->a", kept)]).present is False
    # one direction missing: still present if the other shows it, undetermined otherwise
    missing = Direction(float("nan"), 1.0, eta=0.1, eta_from=0.9, n_units=100)
    assert phase_call([("a->b", persist), ("b->a", missing)]).present is True
    c = phase_call([("a->b", kept), ("b->a", None)])
    assert c.present is None and "inputs missing" in c.evidence


# -- degeneracy ----------------------------------------------------------------------------


def _result(net: str, pair: tuple[str, str], present: set[str], converged=True) -> PairResult:
    calls = {m: Call(m in present, 1.0 if m in present else 0.0, m) for m in MECHANISMS}
    return PairResult(net, pair[0], pair[1], converged, calls)


def test_degeneracy_supported_entropy_agreement():
    ab, ac = ("a", "b"), ("a", "c")
    res = []
    for k in range(6):
        res.append(_result(f"n{k}", ab, {"turnover"} if k < 3 else {"phase"}))
        res.append(_result(f"n{k}", ac, {"baseline"}))
    res.append(_result("bad", ab, {"baseline"}, converged=False))  # excluded: not converged
    res.append(_result("bad", ac, {"baseline"}, converged=False))
    d = degeneracy_summary(res)
    assert d["used_converged_only"] and d["n_networks_used"] == 6 and d["n_networks"] == 7
    assert d["pairs"]["a-b"]["counts"] == {"turnover": 3, "baseline": 0, "phase": 3}
    assert d["pairs"]["a-b"]["entropy_bits"] == pytest.approx(1.0)
    assert d["pairs"]["a-c"]["entropy_bits"] == pytest.approx(0.0)
    # 15 network pairs; a-c always agrees, a-b agrees for 3 + 3 of them
    assert d["mean_pairwise_agreement"] == pytest.approx((15 * 1.0 + 6 * 1.0) / 2 / 15)
    assert d["claim4"]["verdict"] == "supported"
    assert "a-b" in d["claim4"]["reason"]


def test_degeneracy_not_supported_and_inconclusive():
    same = [_result(f"n{k}", ("a", "b"), {"turnover"}) for k in range(5)]
    d = degeneracy_summary(same)
    assert d["claim4"]["verdict"] == "not supported"
    assert d["mean_pairwise_agreement"] == 1.0 and d["mean_pairwise_jaccard"] == 1.0
    few = [_result(f"n{k}", ("a", "b"), {"turnover"} if k else {"phase"}) for k in range(3)]
    assert degeneracy_summary(few)["claim4"]["verdict"] == "inconclusive"
    one_off = [*same, _result("odd", ("a", "b"), {"phase"})]  # a single dissenter
    assert degeneracy_summary(one_off)["claim4"]["verdict"] == "inconclusive"


# -- annotate_pairs on tables --------------------------------------------------------------


def _write_csv(path, columns, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        w.writerows(rows)


def _minimal_dir(root, jaccards: dict[str, float], converged: str = "true"):
    an = root / "analysis"
    an.mkdir(parents=True)
    rows = []
    for net, j in jaccards.items():
        rows += [[net, "theta", "gamma", j], [net, "gamma", "theta", j]]
    _write_csv(an / "pairs.csv", ["network", "mode_from", "mode_to", "jaccard"], rows)
    _write_csv(
        an / "networks.csv",
        ["network", "converged", "n_units"],
        [[n, converged, 100] for n in jaccards],
    )
    return an


def test_annotate_pairs_missing_inputs_never_raise(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    annotate_pairs(empty)
    deg = json.loads((empty / "degeneracy.json").read_text())
    assert "pairs.csv missing" in deg["problems"]
    assert deg["claim4"]["verdict"] == "inconclusive"
    assert (empty / "mechanisms.csv").read_text().startswith("network,converged")

    an = _minimal_dir(tmp_path / "run", {"n0": 0.0, "n1": 0.8}, converged="false")
    annotate_pairs(an)
    first = (an / "pairs.csv").read_text()
    rows = list(csv.DictReader(first.splitlines()))
    assert [r["turnover"] for r in rows] == ["true", "true", "false", "false"]
    assert float(rows[0]["turnover_score"]) == pytest.approx(1 / (1 - jaccard_null_mean(100, 20)))
    for r in rows:
        assert r["baseline"] == "" and r["baseline_score"] == "NaN"
        assert r["phase"] == "" and r["phase_score"] == "NaN"
        assert "neurons.csv missing" in r["evidence"]
        assert "NOT converged" in r["evidence"]
    annotate_pairs(an)  # idempotent: re-annotation replaces its own columns
    assert (an / "pairs.csv").read_text() == first
    mrows = list(csv.DictReader((an / "mechanisms.csv").read_text().splitlines()))
    assert len(mrows) == 2 and mrows[0]["pair"] == "theta-gamma" and mrows[0]["profile"] == ""


def test_annotate_pairs_malformed_values(tmp_path):
    """Garbage cells and partial neuron columns give NaN / undetermined, never an exception."""
    an = _minimal_dir(tmp_path / "run", {"n0": "abc"})
    _write_csv(
        an / "neurons.csv",
        ["network", "neuron", "baseline_theta", "osc_amp_theta"],
        [["n0", i, "x", 0.1] for i in range(5)],
    )
    annotate_pairs(an)
    rows = list(csv.DictReader((an / "pairs.csv").read_text().splitlines()))
    assert rows[0]["turnover"] == "" and "jaccard is NaN" in rows[0]["evidence"]
    assert rows[0]["baseline"] == "" and "lacks" in rows[0]["evidence"]
    assert "baseline_sd_theta" in rows[0]["evidence"]


def test_compare_ensembles_fisher(tmp_path):
    a = _minimal_dir(tmp_path / "A", {f"n{k}": 0.0 for k in range(6)})
    b = _minimal_dir(tmp_path / "B", {f"m{k}": 0.9 for k in range(6)})
    res = compare_ensembles([a, b])
    t = res["tests"]["turnover"]["networks"]
    assert t["table"] == [[6, 0], [0, 6]]
    assert t["p_value"] == pytest.approx(stats.fisher_exact([[6, 0], [0, 6]]).pvalue)
    assert res["claim5"]["verdict"] == "supported"
    assert res["ensembles"][0]["name"] == "A"
    same = compare_ensembles([a, a])
    assert same["claim5"]["verdict"] == "not supported"
    assert compare_ensembles([a])["claim5"]["verdict"] == "inconclusive"


# -- the full pipeline on hand-built networks ------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """analyze_run on the three synthetic networks (short segments, no fixed points)."""
    from rhythmswitch.analysis.pipeline import analyze_run
    from rhythmswitch.config import get_preset
    from rhythmswitch.network import save_network
    from rhythmswitch.synthetic import all_synthetic

    run = tmp_path_factory.mktemp("synthetic_run")
    cfg = get_preset("paper")
    cfg = dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, eval_steps_per_mode=3000))
    cfg.save(run / "config.toml")
    syn = all_synthetic()
    lines = ["network,converged,min_ratio"]
    for s in syn.values():
        save_network(s.network, run / "networks" / f"{s.network.name}.npz")
        lines.append(f"{s.network.name},true,NaN")  # skip evaluation: not what is tested here
    (run / "evaluation_summary.csv").write_text("\n".join(lines) + "\n")
    analyze_run(run, quiet=True, fixed_points=False)
    return run, syn


@pytest.mark.parametrize("which", ["turnover", "baseline", "phase"])
def test_pipeline_names_the_known_mechanism(synthetic_run, which):
    run, syn = synthetic_run
    s = syn[which]
    rows = list(csv.DictReader((run / "analysis" / "pairs.csv").read_text().splitlines()))
    for col in ("jaccard", "eta", "kappa_median", *mech.MECHANISM_COLUMNS):
        assert col in rows[0]
    mine = [r for r in rows if r["network"] == s.network.name]
    assert len(mine) == 12
    assert s.demo_pair in s.truth and s.truth[s.demo_pair]
    for (a, b), expected in s.truth.items():
        for r in mine:
            if {r["mode_from"], r["mode_to"]} != {a, b}:
                continue
            got = {m for m in MECHANISMS if r[m] == "true"}
            assert got == set(expected), (which, a, b, r["evidence"])
            assert all(r[m] in ("true", "false") for m in MECHANISMS)
    deg = json.loads((run / "analysis" / "degeneracy.json").read_text())
    assert deg["claim4"]["verdict"] == "inconclusive"  # three networks are too few
    manifest = json.loads((run / "manifest.json").read_text())["files"]
    assert "analysis/mechanisms.csv" in manifest and "analysis/degeneracy.json" in manifest
