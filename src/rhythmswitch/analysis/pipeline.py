"""Every per-network analysis of METHOD section 7, and the tables of a run directory.

:func:`analyze_network` needs nothing but a :class:`~rhythmswitch.network.Network`: it simulates
the evaluation sequence of METHOD section 6 (every mode in order, a pulse at the start of each,
``eval_steps_per_mode`` steps per mode, ``eval_drop_steps`` dropped) noise-free from x = 0 and
computes every quantity on it.  A quantity that cannot be computed is NaN and its reason is kept
(``NetworkAnalysis.reasons``); estimates that are unreliable (too few cycles of a band, a mode in
which the network does not oscillate) are kept with a warning (``NetworkAnalysis.warnings``).

:func:`analyze_run` analyses every ``DIR/networks/*.npz`` and writes ``DIR/analysis/``:

    networks.csv        one row per network file (refused files included, with a reason)
    neurons.csv         one row per network x neuron
    pairs.csv           one row per network x ordered pair of modes
    fixed_points.csv    one row per network x mode: the fixed point reached from that baseline
    eta.csv             coherence ratio per network, mode and band
    summary.json        the ensemble summary (:mod:`rhythmswitch.analysis.summary`)
    arrays/<net>.npz    per-network arrays for figures

See ``docs/analyses.md`` for every column.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from rhythmswitch.analysis.amplitude import (
    AmplitudeResult,
    amplitude_analysis,
    mean_envelope,
    spearman,
)
from rhythmswitch.analysis.baseline import BaselineResult, baseline_analysis
from rhythmswitch.analysis.phase import PhaseResult, coherence_ratio, phase_analysis
from rhythmswitch.analysis.signals import (
    cut_analytic,
    cut_segment,
    cycle_warning,
    segment_analytic,
)
from rhythmswitch.analysis.spectra import spectrum_of_segment
from rhythmswitch.analysis.sync import SyncResult, sync_analysis, sync_matrix
from rhythmswitch.config import ConfigError, RunConfig, TaskConfig
from rhythmswitch.network import Network, NetworkFileError, load_network
from rhythmswitch.store import atomic_write_bytes, atomic_write_text, csv_text, npz_bytes, record
from rhythmswitch.task import sequence_protocol, task_config_for_network

log = logging.getLogger(__name__)

ANALYSIS_DIR = "analysis"
#: a mode counts as oscillating when some neuron's rate has SD >= this over the analysed part
OSC_SD_MIN = 1e-3
#: warn when rho(tau, A(m, m)) moves by more than this between the two filtering orders
RHO_ROBUST_TOL = 0.05
FP_UNAVAILABLE = "fixed point module unavailable"


@dataclass(frozen=True)
class FixedPointRow:
    """The fixed point reached from one mode's baseline (see analysis/fixed_points.py)."""

    mode: int
    q: float
    n_unstable: float  # float so that a missing value can be NaN
    dominant_freq_hz: float
    dominant_abs: float
    dominant_freq_ct_hz: float
    growth_rate_ct: float
    freerun_peak_hz: float
    reason: str
    x_star: np.ndarray | None = None
    eigvals: np.ndarray | None = None


@dataclass
class NetworkAnalysis:
    """Everything computed for one network (picklable: arrays, numbers and strings)."""

    name: str
    mode_names: tuple[str, ...]
    bands_hz: np.ndarray
    tau_s: np.ndarray
    fs_hz: float
    n_analysed: int  # samples in the analysed part of each mode
    oscillates_m: np.ndarray  # (M,) bool
    max_rate_sd_m: np.ndarray  # (M,)
    peak_hz_m: np.ndarray
    z_sd_m: np.ndarray
    band_power_mk: np.ndarray  # (M modes, K bands)
    band_ratio_mk: np.ndarray
    freqs_hz: np.ndarray
    psd_mf: np.ndarray
    amplitude: AmplitudeResult
    rho_tau_amp_cut_m: np.ndarray  # (M,) rho with the transient cut before filtering
    sync: SyncResult
    baseline: BaselineResult
    phase: PhaseResult
    fixed_points: list[FixedPointRow]
    n_unique_fixed_points: float
    warnings: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    converged: bool | None = None
    min_ratio: float = float("nan")
    paper_converged: bool | None = None
    wall_s: float = float("nan")

    @property
    def n_units(self) -> int:
        return int(self.tau_s.size)

    @property
    def n_modes(self) -> int:
        return len(self.mode_names)


@dataclass(frozen=True)
class AnalysisFailure:
    """A network that could not be analysed at all (bad file, non-finite simulation...)."""

    name: str
    reason: str


# -- one network ---------------------------------------------------------------------------


def _fixed_point_rows(
    net: Network, baseline_mn: np.ndarray, reasons: dict[str, str]
) -> tuple[list[FixedPointRow], float]:
    m = net.n_modes
    nan = float("nan")

    def missing(why: str) -> list[FixedPointRow]:
        reasons["fixed_points"] = why
        return [FixedPointRow(j, nan, nan, nan, nan, nan, nan, nan, why) for j in range(m)]

    try:
        from rhythmswitch.analysis.fixed_points import find_fixed_points
    except ImportError:
        return missing(FP_UNAVAILABLE), nan
    try:
        result = find_fixed_points(net, baseline_mn)
    except Exception as exc:  # one failed quantity must not sink the network's analysis
        log.warning("%s: fixed-point search failed: %s", net.name, exc)
        return missing(f"fixed-point search failed ({type(exc).__name__}: {exc})"), nan
    per_mode: Any = getattr(result, "per_mode", result)
    unique = getattr(result, "unique", None)
    rows = []
    for s in per_mode:
        growth = getattr(s, "growth_rate_ct", getattr(s, "dominant_growth_ct", nan))
        rows.append(
            FixedPointRow(
                mode=int(s.mode),
                q=float(s.q),
                n_unstable=float(s.n_unstable),
                dominant_freq_hz=float(s.dominant_freq_hz),
                dominant_abs=float(s.dominant_abs),
                dominant_freq_ct_hz=float(getattr(s, "dominant_freq_ct_hz", nan)),
                growth_rate_ct=float(growth),
                freerun_peak_hz=float(s.freerun_peak_hz),
                reason=str(s.reason or ""),
                x_star=np.asarray(s.x_star, dtype=np.float64),
                eigvals=np.asarray(s.eigvals),
            )
        )
    return rows, (float(len(unique)) if unique is not None else nan)


def analyze_network(
    net: Network,
    task: TaskConfig | None = None,
    fixed_points: bool = True,
    *,
    evaluate_sigma: float | None = None,
) -> NetworkAnalysis:
    """Run every analysis of METHOD section 7 on ``net``'s noise-free evaluation sequence.

    ``task`` supplies the protocol timing (bands, names and dt always come from the network).
    With ``evaluate_sigma`` set, the network is also evaluated (METHOD section 6, noise-free and
    with that noise) and ``converged`` / ``min_ratio`` are filled in.
    Raises ValueError when the simulation itself is not finite.
    """
    from rhythmswitch.model import simulate

    t0 = time.perf_counter()
    cfg = task_config_for_network(net, task)
    proto = sequence_protocol(cfg)
    traj = simulate(net, proto.u_tm)
    r_tn = np.asarray(traj.r_tn, dtype=np.float64)
    if not (np.all(np.isfinite(traj.x_tn)) and np.all(np.isfinite(r_tn))):
        raise ValueError(
            f"{net.name}: the simulated states are not finite (the Euler map diverges; "
            f"largest dt/tau = {float(np.max(net.a)):.3g})"
        )
    fs = net.fs_hz
    names = tuple(net.mode_names)
    bands = np.asarray(net.bands_hz, dtype=np.float64)
    m = net.n_modes
    n = net.n_units
    segs = sorted(proto.segments, key=lambda s: s.mode)
    warnings: list[str] = []
    reasons: dict[str, str] = {}

    n_analysed = min(s.stop - s.start - s.drop for s in segs)
    for k in range(m):
        w = cycle_warning(names[k], bands[k], n_analysed, fs)
        if w:
            warnings.append(w)

    seg_r = [cut_segment(r_tn, s) for s in segs]
    max_sd = np.array([float(r.std(axis=0).max()) for r in seg_r])
    osc = max_sd >= OSC_SD_MIN
    for j in np.flatnonzero(~osc):
        warnings.append(
            f"mode {names[j]}: the network does not oscillate (largest SD of a rate = "
            f"{max_sd[j]:.2e} < {OSC_SD_MIN:g}); its amplitude statistics are NaN"
        )

    # amplitudes, coherence and sync: one band-pass + Hilbert per (band, mode)
    A = np.zeros((n, m, m))
    eta = np.full((m, m), np.nan)
    S = np.zeros((m, n, n))
    A_cut = np.zeros((n, m))
    for seg in segs:
        A_cut[:, seg.mode] = mean_envelope(cut_analytic(r_tn, seg, bands[seg.mode], fs))
        j = seg.mode  # type: ignore[assignment]
        for k in range(m):
            z = segment_analytic(r_tn, seg, bands[k], fs)
            A[:, k, j] = mean_envelope(z)
            eta[j, k] = coherence_ratio(z)
            if k == j:
                S[j] = sync_matrix(z)
    eta[~osc, :] = np.nan
    for j in np.flatnonzero(~osc):
        reasons[f"eta_{names[j]}"] = f"mode {names[j]}: no oscillation"

    amp = amplitude_analysis(A, net.tau_s, names, valid_m=osc)
    syn = sync_analysis(S, net.tau_s, amp.matched_nm, names, valid_m=osc)
    base = baseline_analysis(seg_r)
    pha = phase_analysis(eta, A)
    reasons.update(amp.reasons)
    rho_cut = np.full(m, np.nan)
    for j in np.flatnonzero(osc):
        rho_cut[j] = spearman(net.tau_s, A_cut[:, j])[0]
        diff = abs(rho_cut[j] - amp.rho_tau_amp_m[j])
        if diff > RHO_ROBUST_TOL:
            warnings.append(
                f"mode {names[j]}: rho(tau, A) = {amp.rho_tau_amp_m[j]:.3f} changes to "
                f"{rho_cut[j]:.3f} when the transient is cut before filtering (|diff| = "
                f"{diff:.3f} > {RHO_ROBUST_TOL:g}): edge effects dominate weak amplitudes"
            )
    reasons.update(syn.reasons)

    specs = [spectrum_of_segment(cut_segment(traj.z_t, s), fs, bands) for s in segs]
    peak = np.array([s.peak_hz for s in specs])
    for j, s in enumerate(specs):  # type: ignore[assignment]
        if not np.isfinite(s.peak_hz):
            reasons[f"peak_hz_{names[j]}"] = f"mode {names[j]}: z is constant"
    lengths = {s.freqs_hz.size for s in specs}
    if len(lengths) == 1:
        freqs, psd = specs[0].freqs_hz, np.stack([s.psd for s in specs])
    else:  # segments of unequal length: keep the first mode's grid, interpolate the rest
        freqs = specs[0].freqs_hz
        psd = np.stack([np.interp(freqs, s.freqs_hz, s.psd) for s in specs])

    if fixed_points:
        fp_rows, n_unique = _fixed_point_rows(net, base.baseline_mn, reasons)
    else:
        fp_rows, n_unique = [], float("nan")

    out = NetworkAnalysis(
        name=net.name,
        mode_names=names,
        bands_hz=bands,
        tau_s=np.asarray(net.tau_s, dtype=np.float64),
        fs_hz=fs,
        n_analysed=int(n_analysed),
        oscillates_m=osc,
        max_rate_sd_m=max_sd,
        peak_hz_m=peak,
        z_sd_m=np.array([s.z_sd for s in specs]),
        band_power_mk=np.stack([s.band_power for s in specs]),
        band_ratio_mk=np.stack([s.band_ratio for s in specs]),
        freqs_hz=freqs,
        psd_mf=psd,
        amplitude=amp,
        rho_tau_amp_cut_m=rho_cut,
        sync=syn,
        baseline=base,
        phase=pha,
        fixed_points=fp_rows,
        n_unique_fixed_points=n_unique,
        warnings=warnings,
        reasons=reasons,
    )
    best = net.extras.get("best_loss")
    if best is not None:
        out.paper_converged = bool(float(np.asarray(best)) < 2e-5)
    if evaluate_sigma is not None:
        from rhythmswitch.evaluate import evaluate_network

        ev = evaluate_network(net, task, sigma=float(evaluate_sigma))
        out.converged, out.min_ratio = ev.converged, ev.min_ratio
    out.wall_s = time.perf_counter() - t0
    return out


def analyze_network_from_path(
    path: str | Path,
    task: TaskConfig | None = None,
    fixed_points: bool = True,
    evaluate_sigma: float | None = None,
    evaluated: frozenset[str] = frozenset(),
) -> NetworkAnalysis | AnalysisFailure:
    """Load and analyse one network file; never raises (a failure is returned with its reason).

    The network is evaluated (with ``evaluate_sigma``) unless its name is in ``evaluated``.
    Module-level and picklable so that a distributed backend can map it over paths.
    """
    path = Path(path)
    try:
        net = load_network(path)
    except NetworkFileError as exc:
        return AnalysisFailure(path.stem, str(exc))
    try:
        sigma = None if net.name in evaluated else evaluate_sigma
        return analyze_network(net, task, fixed_points, evaluate_sigma=sigma)
    except Exception as exc:  # report, never crash the ensemble
        reason = f"analysis failed ({type(exc).__name__}: {exc})"
        log.error("%s: %s", path, reason)
        log.debug("traceback of the failed analysis of %s", path, exc_info=True)
        return AnalysisFailure(net.name, reason)


@dataclass(frozen=True)
class AnalysisJob:
    """One network file to analyse, with the run's settings (picklable, for remote workers)."""

    path: Path
    task: TaskConfig | None = None
    fixed_points: bool = True
    evaluate_sigma: float | None = None
    evaluated: frozenset[str] = frozenset()


def run_analysis_job(job: AnalysisJob) -> NetworkAnalysis | AnalysisFailure:
    """Module-level entry point for distributed backends (Ray needs a plain function)."""
    return analyze_network_from_path(
        job.path, job.task, job.fixed_points, job.evaluate_sigma, job.evaluated
    )


# -- tables --------------------------------------------------------------------------------


def network_columns(mode_names) -> list[str]:
    cols = ["network", "converged", "paper_converged", "min_ratio", "n_units"]
    per_mode = (
        "rho_tau_amp",
        "rho_tau_amp_cut",
        "gini",
        "peak_hz",
        "skew",
        "kurtosis",
        "rho_tau_sync",
        "in_band_ratio",
        "z_sd",
        "oscillates",
    )
    for q in per_mode:
        cols += [f"{q}_{m}" for m in mode_names]
    return [*cols, "n_unique_fixed_points", "wall_s", "warnings", "reason"]


def neuron_columns(mode_names) -> list[str]:
    cols = ["network", "neuron", "tau_s"]
    for q in (
        "amp",
        "sync_degree",
        "active",
        "baseline",
        "baseline_sd",
        "osc_amp",
        "selectivity",
    ):
        cols += [f"{q}_{m}" for m in mode_names]
    return cols


PAIR_COLUMNS = [
    "network",
    "mode_from",
    "mode_to",
    "jaccard",
    "amp_spearman",
    "baseline_shift",
    "eta",
    "kappa_median",
    "kappa_frac_above_05",
    "kappa_n_above_05",
    "phase_rule",
    "eta_from",
    "baseline_spread_from",
    "baseline_spread_to",
    "reason",
]
FIXED_POINT_COLUMNS = [
    "network",
    "mode",
    "q",
    "n_unstable",
    "dominant_freq_hz",
    "freerun_peak_hz",
    "dominant_abs",
    "dominant_freq_ct_hz",
    "growth_rate_ct",
    "reason",
]
ETA_COLUMNS = ["network", "mode", "band", "eta"]


def _reason_text(reasons: dict[str, str]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in reasons.items())


def network_row(a: NetworkAnalysis) -> dict:
    row: dict = {
        "network": a.name,
        "converged": a.converged,
        "paper_converged": a.paper_converged,
        "min_ratio": a.min_ratio,
        "n_units": a.n_units,
        "n_unique_fixed_points": a.n_unique_fixed_points,
        "wall_s": round(a.wall_s, 3),
        "warnings": " | ".join(a.warnings),
        "reason": _reason_text(a.reasons),
    }
    for j, m in enumerate(a.mode_names):
        row[f"rho_tau_amp_{m}"] = a.amplitude.rho_tau_amp_m[j]
        row[f"rho_tau_amp_cut_{m}"] = a.rho_tau_amp_cut_m[j]
        row[f"gini_{m}"] = a.amplitude.gini_m[j]
        row[f"peak_hz_{m}"] = a.peak_hz_m[j]
        row[f"skew_{m}"] = a.amplitude.skew_m[j]
        row[f"kurtosis_{m}"] = a.amplitude.kurtosis_m[j]
        row[f"rho_tau_sync_{m}"] = a.sync.rho_tau_degree_m[j]
        row[f"in_band_ratio_{m}"] = a.band_ratio_mk[j, j]
        row[f"z_sd_{m}"] = a.z_sd_m[j]
        row[f"oscillates_{m}"] = bool(a.oscillates_m[j])
    return row


def neuron_rows(a: NetworkAnalysis) -> list[dict]:
    rows = []
    for i in range(a.n_units):
        row: dict = {"network": a.name, "neuron": i, "tau_s": a.tau_s[i]}
        for j, m in enumerate(a.mode_names):
            row[f"amp_{m}"] = a.amplitude.matched_nm[i, j]
            row[f"sync_degree_{m}"] = a.sync.degree_mn[j, i]
            row[f"active_{m}"] = bool(a.sync.active_mn[j, i])
            row[f"baseline_{m}"] = a.baseline.baseline_mn[j, i]
            row[f"baseline_sd_{m}"] = a.baseline.spread_mn[j, i]
            row[f"osc_amp_{m}"] = a.baseline.osc_amp_mn[j, i]
            row[f"selectivity_{m}"] = a.amplitude.selectivity_nm[i, j]
        rows.append(row)
    return rows


def pair_rows(a: NetworkAnalysis) -> list[dict]:
    rows = []
    names = a.mode_names
    spread = a.baseline.spread_rms_m
    for p in range(a.n_modes):
        for q in range(a.n_modes):
            if p == q:
                continue
            ks = a.phase.kappa[(p, q)]
            why = []
            for j in (p, q):
                if not a.oscillates_m[j]:
                    why.append(f"mode {names[j]}: no oscillation")
            if not ks.rule:
                why.append("kappa undefined (no from-band amplitude in mode_from)")
            rows.append(
                {
                    "network": a.name,
                    "mode_from": names[p],
                    "mode_to": names[q],
                    "jaccard": a.sync.jaccard_mm[p, q],
                    "amp_spearman": a.sync.amp_spearman_mm[p, q],
                    "baseline_shift": a.baseline.shift_mm[p, q],
                    "eta": a.phase.eta_mk[q, p],  # band = from, during mode = to
                    "kappa_median": ks.median,
                    "kappa_frac_above_05": ks.frac_above,
                    "kappa_n_above_05": ks.n_above,
                    "phase_rule": ks.rule,
                    "eta_from": a.phase.eta_mk[p, p],
                    "baseline_spread_from": spread[p],
                    "baseline_spread_to": spread[q],
                    "reason": "; ".join(why),
                }
            )
    return rows


def fixed_point_rows(a: NetworkAnalysis) -> list[dict]:
    return [
        {
            "network": a.name,
            "mode": a.mode_names[r.mode] if 0 <= r.mode < a.n_modes else r.mode,
            "q": r.q,
            "n_unstable": int(r.n_unstable) if np.isfinite(r.n_unstable) else float("nan"),
            "dominant_freq_hz": r.dominant_freq_hz,
            "freerun_peak_hz": r.freerun_peak_hz,
            "dominant_abs": r.dominant_abs,
            "dominant_freq_ct_hz": r.dominant_freq_ct_hz,
            "growth_rate_ct": r.growth_rate_ct,
            "reason": r.reason,
        }
        for r in a.fixed_points
    ]


def eta_rows(a: NetworkAnalysis) -> list[dict]:
    return [
        {"network": a.name, "mode": mm, "band": kk, "eta": a.phase.eta_mk[j, k]}
        for j, mm in enumerate(a.mode_names)
        for k, kk in enumerate(a.mode_names)
    ]


def network_arrays(a: NetworkAnalysis) -> dict[str, np.ndarray]:
    """Arrays for the figure-maker (``DIR/analysis/arrays/<network>.npz``)."""
    arrays = {
        "mode_names": np.asarray(a.mode_names, dtype=str),
        "bands_hz": a.bands_hz,
        "tau_s": a.tau_s,
        "A_nkm": a.amplitude.A_nkm,
        "selectivity_nm": a.amplitude.selectivity_nm,
        "S_mnn": a.sync.S_mnn,
        "sync_degree_mn": a.sync.degree_mn,
        "active_mn": a.sync.active_mn,
        "jaccard_mm": a.sync.jaccard_mm,
        "amp_spearman_mm": a.sync.amp_spearman_mm,
        "eta_mk": a.phase.eta_mk,
        "freqs_hz": a.freqs_hz,
        "psd_mf": a.psd_mf,
        "peak_hz_m": a.peak_hz_m,
        "band_power_mk": a.band_power_mk,
        "baseline_mn": a.baseline.baseline_mn,
        "osc_amp_mn": a.baseline.osc_amp_mn,
        "baseline_spread_mn": a.baseline.spread_mn,
        "baseline_shift_mm": a.baseline.shift_mm,
    }
    fps = a.fixed_points
    if fps and all(r.x_star is not None for r in fps):
        arrays["fp_x_star_mn"] = np.stack([cast(np.ndarray, r.x_star) for r in fps])
        arrays["fp_eigvals_mn"] = np.stack([cast(np.ndarray, r.eigvals) for r in fps])
    return arrays


# -- a run ---------------------------------------------------------------------------------


def read_evaluation_summary(run_dir: str | Path) -> dict[str, tuple[bool, float]]:
    """network -> (converged, min_ratio) from ``DIR/evaluation_summary.csv`` ({} if absent)."""
    path = Path(run_dir) / "evaluation_summary.csv"
    if not path.exists():
        return {}
    out = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                out[row["network"]] = (
                    row["converged"].strip().lower() == "true",
                    float(row.get("min_ratio", "nan") or "nan"),
                )
            except (KeyError, ValueError, AttributeError):
                log.warning("%s: unreadable row %s", path, row)
    return out


def _run_config(run_dir: Path) -> RunConfig | None:
    path = run_dir / "config.toml"
    if not path.exists():
        return None
    try:
        return RunConfig.load(path)
    except (ConfigError, OSError, TypeError) as exc:
        log.warning("%s: unreadable (%s); using the default timing", path, exc)
        return None


def analyze_run(
    run_dir: str | Path,
    *,
    quiet: bool = False,
    backend: str = "local",
    address: str | None = None,
    fixed_points: bool = True,
    on_network: Callable[[str], None] | None = None,
) -> Path:
    """Analyse every network of ``DIR/networks`` and write ``DIR/analysis``; return that path.

    A file that cannot be loaded or analysed gets a row in networks.csv with its reason; it
    never stops the others.  ``converged`` comes from ``DIR/evaluation_summary.csv`` when it
    lists the network, otherwise the network is evaluated here (METHOD section 6).
    """
    from rhythmswitch.analysis.summary import ensemble_summary
    from rhythmswitch.runs import load_run_networks

    if backend not in ("local", "ray"):
        raise ConfigError(f"backend = {backend!r} is invalid: must be 'local' or 'ray'")
    run_dir = Path(run_dir)
    out = run_dir / ANALYSIS_DIR
    t0 = time.perf_counter()
    cfg = _run_config(run_dir)
    task = cfg.task if cfg is not None else None
    sigma = cfg.model.sigma if cfg is not None else 0.1
    nets, bad = load_run_networks(run_dir)
    evals = read_evaluation_summary(run_dir)
    paths = [run_dir / "networks" / f"{n.name}.npz" for n in nets]
    jobs = [
        AnalysisJob(
            path=p,
            task=task,
            fixed_points=fixed_points,
            evaluate_sigma=sigma,
            evaluated=frozenset(evals),
        )
        for p in paths
    ]
    bar = None
    if not quiet and jobs:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="analyze", unit="net", file=sys.stderr)

    def done(k: int, _result=None) -> None:
        if bar is not None:
            bar.update(1)
        if on_network is not None:
            on_network(paths[k].stem)

    results: list[NetworkAnalysis | AnalysisFailure] = []
    try:
        if backend == "ray" and jobs:
            from rhythmswitch.backends import ray_map

            results = list(ray_map(run_analysis_job, jobs, address=address, on_result=done))
        else:
            for k, job in enumerate(jobs):
                results.append(run_analysis_job(job))
                done(k)
    finally:
        if bar is not None:
            bar.close()

    analyses = [r for r in results if isinstance(r, NetworkAnalysis)]
    failures = [r for r in results if isinstance(r, AnalysisFailure)]
    failures += [AnalysisFailure(Path(p).stem, reason) for p, reason in bad]
    for a in analyses:
        if a.name in evals:
            a.converged, a.min_ratio = evals[a.name]
    mode_names = analyses[0].mode_names if analyses else (task or TaskConfig()).mode_names

    net_rows = [network_row(a) for a in analyses]
    net_rows += [{"network": f.name, "reason": f.reason} for f in failures]
    net_rows.sort(key=lambda r: r["network"])
    files = {
        "networks.csv": csv_text(network_columns(mode_names), net_rows),
        "neurons.csv": csv_text(
            neuron_columns(mode_names), [r for a in analyses for r in neuron_rows(a)]
        ),
        "pairs.csv": csv_text(PAIR_COLUMNS, [r for a in analyses for r in pair_rows(a)]),
        "fixed_points.csv": csv_text(
            FIXED_POINT_COLUMNS, [r for a in analyses for r in fixed_point_rows(a)]
        ),
        "eta.csv": csv_text(ETA_COLUMNS, [r for a in analyses for r in eta_rows(a)]),
    }
    summary = ensemble_summary(analyses, failures, mode_names)
    summary["wall_s"] = round(time.perf_counter() - t0, 3)
    files["summary.json"] = json.dumps(summary, indent=1, allow_nan=False) + "\n"
    written = []
    for fname, text in files.items():
        atomic_write_text(out / fname, text)
        written.append(out / fname)
    for a in analyses:
        path = out / "arrays" / f"{a.name}.npz"
        atomic_write_bytes(path, npz_bytes(network_arrays(a)))
        written.append(path)
    record(run_dir, *written)
    try:
        from rhythmswitch.mechanisms import annotate_pairs
    except ImportError:
        log.info("rhythmswitch.mechanisms not available; pairs.csv has no mechanism columns")
    else:
        annotate_pairs(out)
    log.info(
        "analysed %d network(s) (%d refused or failed) in %.1f s; wrote %s",
        len(analyses),
        len(failures),
        time.perf_counter() - t0,
        out,
    )
    return out
