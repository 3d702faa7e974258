"""``build_report``: one self-contained HTML page per ensemble (or comparison of ensembles).

``DIR/report/index.html`` embeds every figure as a base64 PNG (no network access needed; the
page carries no external reference) and ``DIR/report/figures/<name>.png|.pdf`` holds the same
figures as files.  The page has the claims table, the figures, the tables (networks, pair
summary, mechanism matrix, degeneracy counts), the run's ``config.toml`` and the versions of
the software that produced it.  A figure that cannot be made (missing data, a single network,
NaNs, any error) becomes a note in the page, never a crash.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import logging
import platform
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from itertools import combinations
from pathlib import Path

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape

from rhythmswitch.report.claims import (
    RELAXED_MIN_RATIO,
    Claim,
    evaluate_claims,
    evaluate_relaxed_claims,
)
from rhythmswitch.report.data import Ensemble, MissingData, load_ensemble, pick_representative
from rhythmswitch.report.figures import (
    MECH_LABELS,
    figure_amplitudes,
    figure_eta,
    figure_fixed_points,
    figure_mechanisms,
    figure_rho_trend,
    figure_switch,
    figure_sync,
    figure_task,
    figure_turnover,
    mechanism_codes,
    render,
)
from rhythmswitch.store import atomic_write_bytes, atomic_write_text, record

log = logging.getLogger(__name__)

REPORT_DIR = "report"
VERSION_PACKAGES = ("rhythmswitch", "jax", "jaxlib", "numpy", "scipy", "matplotlib", "jinja2")


@dataclass(frozen=True)
class FigureOut:
    """One figure of the page: an embedded PNG, or a note saying why it is absent."""

    key: str
    title: str
    caption: str
    png_b64: str | None = None
    files: tuple[str, ...] = ()
    note: str | None = None


def _figure_specs(ens: Ensemble, rep: str | None) -> list[tuple[str, str, str, Callable]]:
    """(file stem, title, caption, builder) of every figure, in page order."""

    def need_rep(fn):
        def build():
            if rep is None:
                raise MissingData("no analysed network to show")
            return fn(ens, rep)

        return build

    return [
        (
            "fig1_task",
            "Fig. 1 Task and output",
            "(a) one-hot cue, (b) population output z on the evaluation sequence (METHOD §6; "
            "shaded: analysed part of each mode), (c) 0.5 s of z in each mode, (d) Welch spectra "
            "of z per mode with the target bands shaded, (e) peak frequency of z per mode for "
            "every network.",
            need_rep(figure_task),
        ),
        (
            "fig2_amplitude",
            "Fig. 2 Matched-mode amplitudes",
            "(a) histograms of A_i(m, m) over neurons (Gini in the title); (b) A_i(m, m) against "
            "tau_i with Spearman rho.",
            need_rep(figure_amplitudes),
        ),
        (
            "fig3_sync",
            "Fig. 3 Synchrony",
            "(a) absolute sync strength S_ij in band m during mode m, neurons sorted by tau; "
            "(b) sync degree histograms, dashed: the top-20 % cut defining the active set.",
            need_rep(figure_sync),
        ),
        (
            "fig4_turnover",
            "Fig. 4 Turnover across modes",
            "Jaccard overlap of active sets and Spearman correlation of amplitude vectors between "
            "modes: mean (left) and SD (right) across all networks.",
            lambda: figure_turnover(ens),
        ),
        (
            "fig5_fixed_points",
            "Fig. 5 Baselines and fixed points",
            "(a) baseline (mean rate) per neuron and mode; (b) free-run spectra of z from each "
            "mode's baseline (no input, no noise), dashed: dominant unstable eigenfrequency from "
            "fixed_points.csv; (c) Jacobian eigenvalues at each mode's fixed point.",
            need_rep(figure_fixed_points),
        ),
        (
            "fig6_switch",
            "Fig. 6 Across a switch",
            "(a) z and (b) two single neurons (largest matched amplitude in the old and the new "
            "mode) around the cue; (c, d) their spectra in the two modes' analysed segments.",
            need_rep(figure_switch),
        ),
        (
            "mechanisms",
            "Mechanism matrix",
            "Present mechanisms per network and unordered mode pair (rhythmswitch.mechanisms).",
            lambda: figure_mechanisms(ens),
        ),
        (
            "rho_trend",
            "rho versus band",
            "Spearman rho(tau, A(m, m)) per band: one line per network, mean +- SD of the "
            "converged networks in black.",
            lambda: figure_rho_trend(ens),
        ),
        (
            "eta",
            "Phase coherence",
            "Coherence ratio eta(mode, band) = <|mean_i A_i e^{i phi_i}|>_t / <mean_i A_i>_t, "
            "mean over networks: 1 when the band's component adds up in z, ~0 when it cancels.",
            lambda: figure_eta(ens),
        ),
    ]


def make_figures(ens: Ensemble, out_dir: Path) -> tuple[list[FigureOut], list[Path]]:
    """Build, write (PNG + PDF) and embed every figure of one ensemble."""
    try:
        rep = pick_representative(ens)
    except MissingData as exc:
        log.warning("%s", exc)
        rep = None
    figs: list[FigureOut]
    written: list[Path]
    figs, written = [], []
    fig_dir = out_dir / "figures"
    for key, title, caption, build in _figure_specs(ens, rep):
        try:
            fig = build()
            png = render(fig, "png")
            pdf = render(fig, "pdf")
        except MissingData as exc:
            log.info("figure %s skipped: %s", key, exc)
            figs.append(FigureOut(key, title, caption, note=f"not made: {exc}"))
            continue
        except Exception as exc:  # a figure must never sink the report
            log.warning("figure %s failed: %s: %s", key, type(exc).__name__, exc)
            figs.append(
                FigureOut(key, title, caption, note=f"not made: {type(exc).__name__}: {exc}")
            )
            continue
        paths = (fig_dir / f"{key}.png", fig_dir / f"{key}.pdf")
        atomic_write_bytes(paths[0], png)
        atomic_write_bytes(paths[1], pdf)
        written.extend(paths)
        figs.append(
            FigureOut(
                key,
                title,
                caption,
                png_b64=base64.b64encode(png).decode("ascii"),
                files=tuple(f"figures/{p.name}" for p in paths),
            )
        )
        log.info("figure %s written", key)
    return figs, written


# -- tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HtmlTable:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str | None = None


def _fmt(s: str) -> str:
    try:
        v = float(s)
    except ValueError:
        return s
    if not np.isfinite(v):
        return "NaN"
    if v == int(v) and abs(v) < 1e6 and "." not in s and "e" not in s.lower():
        return str(int(v))
    return f"{v:.3g}"


def networks_table(ens: Ensemble) -> HtmlTable:
    tab = ens.networks
    if len(tab) == 0:
        return HtmlTable("Networks", [], [], note="analysis/networks.csv is missing or empty")
    wanted = ["network", "converged", "paper_converged", "min_ratio"]
    for prefix in ("peak_hz_", "rho_tau_amp_", "gini_"):
        wanted += [f"{prefix}{m}" for m in ens.mode_names]
    wanted += ["warnings", "reason"]
    cols = [c for c in wanted if tab.has(c)]
    rows = [[_fmt(tab.str(c)[i]) for c in cols] for i in range(len(tab))]
    return HtmlTable("Networks (analysis/networks.csv, selected columns)", cols, rows)


def _mean_sd(x: np.ndarray) -> str:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return "n/a"
    if x.size == 1:
        return f"{x[0]:.2f}"
    return f"{x.mean():.2f} ± {x.std(ddof=1):.2f}"


def pairs_table(ens: Ensemble) -> HtmlTable:
    """Per unordered mode pair: mean ± SD over networks and ordered directions, mechanism counts."""
    tab = ens.pairs
    if len(tab) == 0:
        return HtmlTable("Mode pairs", [], [], note="analysis/pairs.csv is missing or empty")
    quantities = [
        q
        for q in ("jaccard", "amp_spearman", "baseline_shift", "eta", "kappa_median")
        if tab.has(q)
    ]
    mechs = [m for m in ("turnover", "baseline", "phase") if tab.has(m)]
    header = ["pair", "rows", *quantities, *(f"n {m}" for m in mechs)]
    src, dst = tab.str("mode_from"), tab.str("mode_to")
    rows = []
    for i, j in combinations(range(len(ens.mode_names)), 2):
        a, b = ens.mode_names[i], ens.mode_names[j]
        sel = ((src == a) & (dst == b)) | ((src == b) & (dst == a))
        sub = tab.where(sel)
        row = [f"{a}-{b}", str(len(sub))]
        row += [_mean_sd(sub.float(q)) for q in quantities]
        for m in mechs:
            one_dir = sub.where(sub.str("mode_from") == a)
            row.append(str(int(one_dir.bool(m).sum())))
        rows.append(row)
    return HtmlTable(
        "Mode pairs (mean ± SD over networks, both directions; counts over networks)",
        header,
        rows,
    )


def mechanism_table(ens: Ensemble) -> HtmlTable:
    try:
        names, labels, codes = mechanism_codes(ens)
    except MissingData as exc:
        return HtmlTable("Mechanism matrix", [], [], note=str(exc))
    rows = []
    for k, n in enumerate(names):
        rows.append([n] + [MECH_LABELS[int(c)] if np.isfinite(c) else "?" for c in codes[k]])
    return HtmlTable(
        "Mechanism matrix (T turnover, B baseline shift, P phase; ? not classified)",
        ["network", *labels],
        rows,
    )


def degeneracy_table(ens: Ensemble) -> HtmlTable:
    try:
        names, labels, codes = mechanism_codes(ens)
    except MissingData as exc:
        return HtmlTable("Degeneracy counts", [], [], note=str(exc))
    conv_by = dict(zip(ens.network_names(), ens.converged_mask(), strict=False))
    conv = np.array([bool(conv_by.get(n, False)) for n in names])
    rows = []
    for p, lab in enumerate(labels):
        for subset, mask in (("converged", conv), ("all", np.ones_like(conv))):
            col = codes[mask, p]
            col = col[np.isfinite(col)].astype(int)
            cnt = Counter(col.tolist())
            ent = 0.0
            if col.size:
                f = np.array(list(cnt.values()), float) / col.size
                ent = float(-(f * np.log2(f)).sum())
            rows.append(
                [lab, subset, str(col.size)]
                + [str(cnt.get(c, 0)) for c in range(len(MECH_LABELS))]
                + [f"{ent:.2f}"]
            )
    return HtmlTable(
        "Degeneracy: networks per mechanism profile and pair",
        ["pair", "networks", "n", *MECH_LABELS, "entropy (bit)"],
        rows,
    )


def fixed_points_table(ens: Ensemble, rep: str | None) -> HtmlTable:
    tab = ens.fixed_points
    if len(tab) == 0 or not tab.has("network"):
        return HtmlTable("Fixed points", [], [], note="analysis/fixed_points.csv is missing")
    sub = tab.for_network(rep) if rep else tab
    cols = [
        c
        for c in (
            "network",
            "mode",
            "q",
            "n_unstable",
            "dominant_freq_hz",
            "freerun_peak_hz",
            "dominant_freq_ct_hz",
            "reason",
        )
        if sub.has(c)
    ]
    rows = [[_fmt(sub.str(c)[i]) for c in cols] for i in range(len(sub))]
    return HtmlTable(f"Fixed points of the representative network {rep}", cols, rows)


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in VERSION_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


# -- page -----------------------------------------------------------------------------------


def _ensure_analysis(run_dir: Path, quiet: bool) -> str | None:
    """Run the analysis when DIR/analysis is missing; return a note when it cannot."""
    if (run_dir / "analysis" / "networks.csv").exists():
        return None
    try:
        from rhythmswitch.analysis.pipeline import analyze_run
    except ImportError as exc:
        return f"the analysis is missing and cannot run here ({exc})"
    log.info("%s has no analysis; running it", run_dir)
    analyze_run(run_dir, quiet=quiet)
    return None


def _claim_rows(claims: list[Claim], relaxed: list[Claim] | None = None) -> list[dict]:
    by_number = {c.number: c for c in relaxed or []}
    rows = []
    for c in claims:
        r = by_number.get(c.number)
        rows.append(
            {
                "number": c.number,
                "statement": c.statement,
                "numbers": c.numbers,
                "verdict": c.verdict,
                "css": c.verdict.replace(" ", "-"),
                "rule": c.rule,
                "relaxed": r.verdict if r is not None else "",
                "relaxed_css": r.verdict.replace(" ", "-") if r is not None else "",
                "relaxed_numbers": r.numbers if r is not None else [],
            }
        )
    return rows


def build_report(run_dirs: list[Path], *, quiet: bool = False) -> Path:
    """Write ``<first DIR>/report/index.html`` (and its figures); return the page's path.

    Claims 1-4, the figures and tables describe the first run directory; claim 5 compares all
    of them.  Each directory without ``analysis/`` is analysed first.
    """
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("run_dirs is empty: give at least one run directory")
    notes = []
    for d in run_dirs:
        note = _ensure_analysis(d, quiet)
        if note:
            notes.append(f"{d}: {note}")
    ensembles = [load_ensemble(d) for d in run_dirs]
    main = ensembles[0]
    out_dir = main.run_dir / REPORT_DIR
    claims = evaluate_claims(ensembles)
    relaxed = evaluate_relaxed_claims(main)
    figs, written = make_figures(main, out_dir)
    try:
        rep = pick_representative(main)
    except MissingData:
        rep = None
    others = []
    for ens in ensembles[1:]:
        others.append(
            {
                "name": str(ens.run_dir),
                "claims": _claim_rows(evaluate_claims([ens])[:4]),
                "tables": [mechanism_table(ens), degeneracy_table(ens)],
                "config": ens.config_text,
            }
        )
    env = Environment(
        loader=PackageLoader("rhythmswitch.report", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    html = env.get_template("index.html").render(
        title=f"rhythmswitch report: {main.name}",
        run_dir=str(main.run_dir.resolve()),
        generated=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        n_networks=len(main.network_names()),
        n_converged=int(main.converged_mask().sum()),
        representative=rep,
        mode_names=main.mode_names,
        claims=_claim_rows(claims, relaxed[1] if relaxed else None),
        relaxed_min_ratio=RELAXED_MIN_RATIO,
        n_relaxed=relaxed[0] if relaxed else None,
        figures=figs,
        tables=[
            networks_table(main),
            pairs_table(main),
            mechanism_table(main),
            degeneracy_table(main),
            fixed_points_table(main, rep),
        ],
        degeneracy_json=json.dumps(main.degeneracy, indent=1, default=str)
        if main.degeneracy
        else "",
        summary_json=json.dumps(main.summary, indent=1, default=str) if main.summary else "",
        config_text=main.config_text or "(no config.toml in the run directory)",
        versions=versions(),
        others=others,
        notes=notes,
    )
    index = out_dir / "index.html"
    atomic_write_text(index, html)
    record(main.run_dir, index, *written)
    log.info("report written to %s", index)
    return index
