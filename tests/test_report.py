"""The report: panel functions, claim rules on tables with a known answer, the page end to end,
and the page rendered in headless Chromium (every image decoded, claims table present)."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from rhythmswitch.config import get_preset
from rhythmswitch.network import Network, save_network
from rhythmswitch.report import build_report
from rhythmswitch.report import claims as C
from rhythmswitch.report import figures as F
from rhythmswitch.report import html as html_mod
from rhythmswitch.report.data import load_ensemble, pick_representative

MODES = ("theta", "alpha", "beta", "gamma")
BANDS = ((4.0, 7.0), (8.0, 13.0), (14.0, 29.0), (30.0, 50.0))

# -- panel functions --------------------------------------------------------------------------


def test_panels_return_axes_on_synthetic_input():
    rng = np.random.default_rng(0)
    fs, n = 1000.0, 2000
    t = np.arange(n) / fs
    sig = np.stack([np.sin(2 * np.pi * f * t) for f in (5.0, 10.0, 20.0, 40.0)])
    f, p = F.welch(sig, fs)
    ax = F.plot_spectra(f, p, list(MODES), BANDS)
    assert isinstance(ax, Axes) and isinstance(ax.figure, Figure)
    # each drawn spectrum peaks at its sinusoid's frequency (scipy's Welch, same input)
    for line, f0 in zip(ax.get_lines(), (5.0, 10.0, 20.0, 40.0), strict=True):
        x, y = line.get_data()
        assert abs(x[np.argmax(y)] - f0) <= fs / 2000 + 1e-9
    u = np.zeros((n, 4))
    u[:100, 0] = 1
    assert isinstance(F.plot_inputs(t, u, MODES), Axes)
    assert isinstance(F.plot_trace(t, sig[0]), Axes)
    tau = rng.uniform(0.005, 0.3, 30)
    amp = rng.random(30)
    assert isinstance(F.plot_histogram(amp), Axes)
    ax = F.plot_tau_scatter(tau, amp, rho=-0.5)
    assert ax.get_xscale() == "log"
    assert isinstance(F.plot_baselines(tau, rng.normal(size=(4, 30)), MODES), Axes)
    ev = np.exp(1j * rng.uniform(-1, 1, 30)) * rng.uniform(0.5, 1.2, 30)
    assert isinstance(F.plot_eigenvalues([ev] * 4, fs, MODES, BANDS), Axes)


def test_sync_matrix_is_sorted_by_tau_and_normalised():
    rng = np.random.default_rng(1)
    s = rng.random((6, 6))
    s = s + s.T
    tau = np.array([0.05, 0.01, 0.2, 0.03, 0.1, 0.005])
    ax = F.plot_sync_matrix(s, tau)
    shown = np.asarray(ax.images[0].get_array(), dtype=float)
    order = np.argsort(tau)
    ref = s[np.ix_(order, order)].copy()
    np.fill_diagonal(ref, np.nan)
    ref /= np.nanmax(ref)
    np.testing.assert_allclose(shown, ref)


def test_mode_matrix_writes_every_value():
    mat = np.array([[1.0, 0.25], [0.25, 1.0]])
    ax = F.plot_mode_matrix(mat, ("a", "b"))
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["0.25", "0.25", "1.00", "1.00"]


def test_mechanism_matrix_codes_and_legend():
    codes = np.array([[0, 1, 2], [3, 7, np.nan]])
    ax = F.plot_mechanism_matrix(codes, ["n1", "n2"], ["p1", "p2", "p3"])
    shown = ax.images[0].get_array()
    np.testing.assert_array_equal(np.ma.filled(shown, -1), [[0, 1, 2], [3, 7, -1]])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:8] == list(F.MECH_LABELS) and "not classified" in labels[-1]
    assert F.mechanism_code(True, False, True) == 5


def test_rho_trend_mean_line_is_the_mean_of_converged_networks():
    rho = np.array([[-0.1, -0.3, -0.5, -0.7], [0.0, -0.2, -0.4, -0.8], [0.5, 0.5, 0.5, 0.5]])
    ax = F.plot_rho_trend(rho, MODES, converged=np.array([True, True, False]))
    mean_line = [c for c in ax.containers][0].lines[0]
    np.testing.assert_allclose(mean_line.get_ydata(), rho[:2].mean(axis=0))


# -- claims on tables with a known answer -----------------------------------------------------


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _fake_run(
    tmp: Path, rho_nm: np.ndarray, gini_nm: np.ndarray, converged, mech=None, min_ratio=None
) -> Path:
    """A run directory holding only the analysis tables the claims read."""
    names = [f"net{k:03d}" for k in range(rho_nm.shape[0])]
    header = ["network", "converged"]
    header += [f"rho_tau_amp_{m}" for m in MODES] + [f"gini_{m}" for m in MODES]
    rows = [
        [n, str(bool(c)).lower(), *rho_nm[k], *gini_nm[k]]
        for k, (n, c) in enumerate(zip(names, converged, strict=True))
    ]
    if min_ratio is not None:
        header.append("min_ratio")
        rows = [[*r, v] for r, v in zip(rows, min_ratio, strict=True)]
    _write_csv(tmp / "analysis" / "networks.csv", header, rows)
    if mech is not None:
        prow = []
        for k, n in enumerate(names):
            for i in range(4):
                for j in range(4):
                    if i != j:
                        t, b, p = mech(k, min(i, j), max(i, j))
                        prow.append(
                            [n, MODES[i], MODES[j], 0.1, 0.2, *(str(v).lower() for v in (t, b, p))]
                        )
        _write_csv(
            tmp / "analysis" / "pairs.csv",
            [
                "network",
                "mode_from",
                "mode_to",
                "jaccard",
                "amp_spearman",
                "turnover",
                "baseline",
                "phase",
            ],
            prow,
        )
    (tmp / "networks").mkdir(exist_ok=True)
    return tmp


def test_claims_supported_when_the_tables_say_so(tmp_path):
    rng = np.random.default_rng(2)
    k = 8
    rho = np.array([-0.1, -0.3, -0.5, -0.7]) + rng.normal(0, 0.03, (k, 4))
    gini = np.array([0.2, 0.3, 0.45, 0.6]) + rng.normal(0, 0.02, (k, 4))
    run = _fake_run(
        tmp_path, rho, gini, [True] * k, mech=lambda n, i, j: (n % 2 == 0, n % 2 == 1, j == 3)
    )
    ens = load_ensemble(run)
    c1, c2, c3, c4, c5 = C.evaluate_claims([ens])
    assert (c1.verdict, c2.verdict, c3.verdict, c4.verdict) == (C.SUPPORTED,) * 4
    assert c5.verdict == C.INCONCLUSIVE and "one ensemble" in c5.numbers[0]
    # the trend p-value is scipy's Page test on the same numbers
    ref = stats.page_trend_test(-rho, predicted_ranks=[1, 2, 3, 4]).pvalue
    assert c2.details["p_trend"] == pytest.approx(ref)
    assert c3.details["counts"] == {"turnover": 4 * 6, "baseline": 4 * 6, "phase": k * 3}


def test_claims_not_supported_when_the_trend_is_reversed(tmp_path):
    rng = np.random.default_rng(3)
    k = 8
    rho = np.array([-0.7, -0.5, -0.3, -0.1]) + rng.normal(0, 0.03, (k, 4))
    gini = np.array([0.6, 0.45, 0.3, 0.2]) + rng.normal(0, 0.02, (k, 4))
    run = _fake_run(tmp_path, rho, gini, [True] * k, mech=lambda n, i, j: (True, False, False))
    c1, c2, c3, c4, _ = C.evaluate_claims([load_ensemble(run)])
    assert c1.verdict == C.NOT_SUPPORTED and c2.verdict == C.NOT_SUPPORTED
    assert c3.verdict == C.NOT_SUPPORTED  # only turnover ever occurs
    assert c4.verdict == C.NOT_SUPPORTED  # every network has the same profile


def test_claims_inconclusive_with_too_few_converged_networks(tmp_path):
    rho = np.tile([-0.1, -0.3, -0.5, -0.7], (6, 1))
    run = _fake_run(tmp_path, rho, rho + 1, [True, True, False, False, False, False])
    claims = C.evaluate_claims([load_ensemble(run)])
    assert [c.verdict for c in claims] == [C.INCONCLUSIVE] * 5
    assert "2 of 6 networks converged" in claims[0].numbers[-1]
    assert "mechanism columns" in claims[2].details["reason"]


def test_relaxed_criterion_tests_the_claims_on_networks_near_convergence(tmp_path):
    rng = np.random.default_rng(4)
    k = 8
    rho = np.array([-0.1, -0.3, -0.5, -0.7]) + rng.normal(0, 0.03, (k, 4))
    gini = np.array([0.2, 0.3, 0.45, 0.6]) + rng.normal(0, 0.02, (k, 4))
    ratios = [0.995, 0.992, 0.985, 0.981, 0.98, 0.983, 0.979, float("nan")]
    converged = [r >= 0.99 for r in ratios]
    run = _fake_run(tmp_path, rho, gini, converged, min_ratio=ratios)
    ens = load_ensemble(run)
    assert [c.verdict for c in C.evaluate_claims([ens])[:2]] == [C.INCONCLUSIVE] * 2
    n, relaxed = C.evaluate_relaxed_claims(ens)
    assert n == 6  # >= 0.98: the boundary counts, 0.979 and a missing ratio do not
    assert [c.verdict for c in relaxed[:2]] == [C.SUPPORTED] * 2
    assert any("relaxed (ratio >= 0.98) (n=6)" in line for line in relaxed[0].numbers)
    assert not any("converged" in line for c in relaxed for line in c.numbers)
    # the relaxed view is a copy: the ensemble's own converged column is untouched
    assert int(ens.converged_mask().sum()) == 2
    no_ratio = _fake_run(tmp_path / "b", rho, gini, converged)
    assert C.evaluate_relaxed_claims(load_ensemble(no_ratio)) is None


# -- the page end to end ----------------------------------------------------------------------


def _random_network(seed: int, n: int = 16) -> Network:
    rng = np.random.default_rng(seed)
    return Network(
        W_rec=rng.normal(0, 1.8 / np.sqrt(n), (n, n)),
        W_in=rng.uniform(-1, 1, (n, 4)),
        b=np.zeros(n),
        tau_s=np.exp(rng.uniform(np.log(0.005), np.log(0.1), n)),
        dt_s=0.001,
        bands_hz=np.array(BANDS),
        mode_names=MODES,
        name=f"hand{seed}",
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    get_preset("tiny").save(run / "config.toml")
    for seed in (1, 2):
        net = _random_network(seed)
        save_network(net, run / "networks" / f"{net.name}.npz")
    index = build_report([run], quiet=True)
    return run, index


def test_report_page_figures_and_files(report):
    run, index = report
    assert index == run / "report" / "index.html"
    html = index.read_text()
    assert 'id="claims-table"' in html and html.count('class="claim"') == 5
    assert html.count('class="relaxed"') == 5 and "Relaxed criterion" in html
    assert "http://" not in html and "https://" not in html  # self-contained
    for key in (
        "fig1_task",
        "fig2_amplitude",
        "fig3_sync",
        "fig4_turnover",
        "fig5_fixed_points",
        "fig6_switch",
        "rho_trend",
    ):
        assert (run / "report" / "figures" / f"{key}.png").stat().st_size > 1000
        assert (run / "report" / "figures" / f"{key}.pdf").read_bytes()[:4] == b"%PDF"
        assert f'id="{key}"' in html
    n_img = html.count("<img ")
    assert n_img == len(list((run / "report" / "figures").glob("*.png")))
    assert "[task]" in html  # config.toml
    for pkg in ("jax", "numpy", "scipy", "rhythmswitch"):
        assert re.search(rf"<th>{pkg}</th><td>\d", html)
    # the documented rule: first converged network, else the highest minimum in-band ratio
    ens = load_ensemble(run)
    with open(run / "analysis" / "networks.csv") as fh:
        rows = list(csv.DictReader(fh))
    conv = sorted(r["network"] for r in rows if r["converged"] == "true")
    best = max(rows, key=lambda r: float(r["min_ratio"]))["network"]
    assert pick_representative(ens) == (conv[0] if conv else best)


def test_missing_data_and_errors_become_notes_not_crashes(report, tmp_path, monkeypatch):
    run, _ = report
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "analysis" / "arrays")
    shutil.rmtree(copy / "report")
    specs = html_mod._figure_specs

    def two_specs(ens, rep):
        keep = [s for s in specs(ens, rep) if s[0] == "fig3_sync"]

        def broken():
            raise FloatingPointError("NaN everywhere")

        return [*keep, ("broken", "A broken figure", "", broken)]

    monkeypatch.setattr(html_mod, "_figure_specs", two_specs)
    page = build_report([copy], quiet=True).read_text()
    assert "not made" in page and "arrays" in page  # Fig 3 needs the sync matrices
    assert "FloatingPointError: NaN everywhere" in page
    assert 'id="claims-table"' in page and "<img " not in page


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.mark.browser
def test_page_renders_in_headless_chromium(report, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    _, index = report
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        index.resolve().as_uri(),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    dom = out.stdout
    assert "<body" in dom, out.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom).group(0)
    loaded = re.search(r'data-images-loaded="(\d+)"', body)
    total = re.search(r'data-images-total="(\d+)"', body)
    assert loaded and total, body
    assert int(total.group(1)) == dom.count("<img ") > 0
    assert int(loaded.group(1)) == int(total.group(1))
    assert 'id="claims-table"' in dom and dom.count('class="claim"') == 5


def test_claim_5_compares_ensembles(report, tmp_path, monkeypatch):
    mechanisms = pytest.importorskip("rhythmswitch.mechanisms")
    run, _ = report
    other = tmp_path / "other"
    shutil.copytree(run, other)
    shutil.rmtree(other / "report")
    monkeypatch.setattr(html_mod, "_figure_specs", lambda ens, rep: [])  # the claims only
    page = build_report([other, run], quiet=True).read_text()
    assert "Compared ensemble" in page and "one ensemble" not in page
    ref = mechanisms.compare_ensembles([other / "analysis", run / "analysis"])["claim5"]
    c5 = C.claim_5([load_ensemble(other), load_ensemble(run)])
    assert c5.verdict == ref["verdict"] and ref["rule"] in c5.rule
