"""Figures of the report (the paper's Figs 1-6, the mechanism matrix and the rho trend).

Two layers, as in specparam's plotting subpackage:

* panel functions ``plot_*(..., ax=None) -> Axes`` draw one panel from plain arrays.  With
  ``ax=None`` they make their own :class:`matplotlib.figure.Figure` (no pyplot state, any
  backend; files are rendered with Agg).
* figure functions ``figure_*(ens) -> Figure`` compose panels for one run directory
  (:class:`rhythmswitch.report.data.Ensemble`).  They raise
  :class:`rhythmswitch.report.data.MissingData` when an input is absent; the report turns that
  into a note in the page instead of a figure.

The representative network (Figs 1-3, 5, 6) is chosen by
:func:`rhythmswitch.report.data.pick_representative`: the first converged network in name
order, else the one with the highest minimum in-band ratio, else the first analysed one.
"""

from __future__ import annotations

import io
import logging
from itertools import combinations
from typing import cast

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, ScalarFormatter
from scipy import signal

from rhythmswitch.report.data import Ensemble, MissingData, first_key

log = logging.getLogger(__name__)

MODE_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d")
MECH_BITS = (("turnover", "T", 1), ("baseline", "B", 2), ("phase", "P", 4))
MECH_LABELS = ("none", "T", "B", "T+B", "P", "T+P", "B+P", "T+B+P")
MECH_COLOURS = (
    "#f0f0f0",  # none
    "#1f78b4",  # T
    "#33a02c",  # B
    "#a6cee3",  # T+B
    "#e31a1c",  # P
    "#6a3d9a",  # T+P
    "#ff7f00",  # B+P
    "#222222",  # T+B+P
)
ACTIVE_FRACTION = 0.2  # METHOD section 7: active set = top 20 % by sync degree


def mode_colour(m: int) -> str:
    return MODE_COLOURS[m % len(MODE_COLOURS)]


def _ax(ax: Axes | None, figsize=(4.0, 3.0)) -> Axes:
    if ax is not None:
        return ax
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig.add_subplot()


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def render(fig: Figure, fmt: str, dpi: int = 150) -> bytes:
    """The figure as PNG or PDF bytes (Agg canvas)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format=fmt, dpi=dpi)
    return buf.getvalue()


def welch(x: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density along the last axis (Hann, segments of <= 2 s)."""
    n = np.asarray(x).shape[-1]
    nper = int(min(n, 2 * fs_hz))
    return signal.welch(x, fs=fs_hz, nperseg=nper, detrend="constant", axis=-1)


def _panel_label(ax: Axes, text: str) -> None:
    """Panel letter: prefixed to the panel's title, or as a bold left title when it has none."""
    title = ax.get_title()
    if title:
        ax.set_title(f"({text}) {title}", fontsize=ax.title.get_fontsize())
    else:
        ax.set_title(text, loc="left", fontweight="bold", fontsize="medium")


def _tau_axis(ax: Axes, tau_ms: np.ndarray) -> None:
    """Log tau axis (ms) with plain 1-2-5 tick labels when tau spans more than a factor 3."""
    tau_ms = np.asarray(tau_ms, dtype=float)
    tau_ms = tau_ms[np.isfinite(tau_ms)]
    if tau_ms.size and np.all(tau_ms > 0) and tau_ms.max() / tau_ms.min() > 3:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("time constant tau (ms)")


def scaled(values: np.ndarray, label: str) -> tuple[np.ndarray, str]:
    """Values rescaled by a power of ten when tiny, the factor written into the label."""
    v = np.asarray(values, dtype=float)
    top = np.nanmax(np.abs(v)) if np.isfinite(v).any() else 0.0
    if top == 0 or 1e-1 <= top < 1e4:
        return v, label
    e = int(np.floor(np.log10(top)))
    return v / 10.0**e, f"{label} (x 1e{e})"


# -- panels ---------------------------------------------------------------------------------


def plot_inputs(t_s: np.ndarray, u_tm: np.ndarray, mode_names, ax: Axes | None = None) -> Axes:
    """The one-hot cue: one coloured line per input channel."""
    ax = _ax(ax, (6, 1.2))
    for m, name in enumerate(mode_names):
        ax.plot(t_s, u_tm[:, m], color=mode_colour(m), lw=1.0, label=f"cue {name}")
    ax.set_ylabel("input u")
    ax.set_xlim(t_s[0], t_s[-1])
    ax.legend(loc="upper right", ncol=len(mode_names), fontsize="x-small", frameon=False)
    return ax


def plot_trace(
    t_s: np.ndarray,
    y_t: np.ndarray,
    segments=(),
    mode_names=(),
    ax: Axes | None = None,
    ylabel: str = "z (mean rate)",
    colour: str = "k",
    label: str | None = None,
) -> Axes:
    """A time series over coloured spans, one per protocol segment (analysed part shaded)."""
    ax = _ax(ax, (6, 1.8))
    for seg in segments:
        lo = t_s[min(seg.start + seg.drop, len(t_s) - 1)]
        hi = t_s[min(seg.stop, len(t_s)) - 1]
        ax.axvspan(lo, hi, color=mode_colour(seg.mode), alpha=0.12, lw=0)
        if len(mode_names):
            ax.text(
                (lo + hi) / 2,
                1.0,
                mode_names[seg.mode],
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize="small",
                color=mode_colour(seg.mode),
            )
    ax.plot(t_s, y_t, color=colour, lw=0.6, label=label)
    ax.set_xlim(t_s[0], t_s[-1])
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    return ax


def plot_spectra(
    freqs_hz: np.ndarray,
    power_mf: np.ndarray,
    labels,
    bands_hz=None,
    ax: Axes | None = None,
    colours=None,
    fmax_hz: float | None = None,
    ylabel: str = "PSD of z (1/Hz)",
    styles=None,
) -> Axes:
    """One spectrum per row of ``power_mf`` (log power) with the target bands shaded."""
    ax = _ax(ax)
    freqs_hz = np.asarray(freqs_hz)
    power_mf = np.atleast_2d(power_mf)
    if bands_hz is not None:
        for m, (lo, hi) in enumerate(np.asarray(bands_hz)):
            ax.axvspan(lo, hi, color=mode_colour(m), alpha=0.12, lw=0)
    keep = freqs_hz > 0
    for m, p in enumerate(power_mf):
        colour = colours[m] if colours is not None else mode_colour(m)
        ls = styles[m] if styles is not None else "-"
        ax.semilogy(
            freqs_hz[keep], np.maximum(p[keep], 1e-30), color=colour, ls=ls, lw=1.0, label=labels[m]
        )
    if fmax_hz is None and bands_hz is not None:
        fmax_hz = 1.5 * float(np.max(bands_hz))
    if fmax_hz is not None:
        ax.set_xlim(0, min(fmax_hz, freqs_hz.max()))
        vis = power_mf[:, keep][:, freqs_hz[keep] <= fmax_hz]
        vis = vis[np.isfinite(vis) & (vis > 0)]
        if vis.size:
            ax.set_ylim(vis.max() * 1e-6, vis.max() * 3)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="x-small", frameon=False)
    return ax


def plot_histogram(
    values: np.ndarray,
    ax: Axes | None = None,
    colour: str = "0.3",
    xlabel: str = "amplitude",
    title: str | None = None,
    bins: int | None = None,
) -> Axes:
    """Histogram of finite values (count of neurons)."""
    ax = _ax(ax)
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if bins is None:
        bins = int(np.clip(np.sqrt(v.size) * 1.5, 5, 30))
    v, xlabel = scaled(v, xlabel)
    ax.hist(v, bins=bins, color=colour, alpha=0.85, edgecolor="white", lw=0.5)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("neurons")
    if title:
        ax.set_title(title, fontsize="small")
    return ax


def plot_tau_scatter(
    tau_s: np.ndarray,
    values: np.ndarray,
    rho: float | None = None,
    ax: Axes | None = None,
    colour: str = "0.3",
    ylabel: str = "amplitude",
    title: str | None = None,
) -> Axes:
    """Per-neuron value against tau (ms, log axis), with Spearman rho in the corner."""
    ax = _ax(ax)
    tau_ms = np.asarray(tau_s, dtype=float) * 1e3
    values, ylabel = scaled(values, ylabel)
    ax.scatter(tau_ms, values, s=8, color=colour, alpha=0.8, lw=0)
    _tau_axis(ax, tau_ms)
    ax.set_ylabel(ylabel)
    if rho is not None and np.isfinite(rho):
        ax.text(0.97, 0.95, f"rho = {rho:+.2f}", transform=ax.transAxes, ha="right", va="top")
    if title:
        ax.set_title(title, fontsize="small")
    return ax


def plot_sync_matrix(
    s_nn: np.ndarray, tau_s: np.ndarray, ax: Axes | None = None, title: str | None = None
) -> Axes:
    """Absolute sync strength S_ij with neurons sorted by tau (fastest first)."""
    ax = _ax(ax, (3.2, 3.0))
    order = np.argsort(tau_s, kind="stable")
    s = np.array(s_nn, dtype=float)[np.ix_(order, order)]
    np.fill_diagonal(s, np.nan)
    top = np.nanmax(s) if np.isfinite(s).any() else np.nan
    shown = s / top if np.isfinite(top) and top > 0 else s
    im = ax.imshow(shown, cmap="viridis", origin="upper", interpolation="nearest", vmin=0, vmax=1)
    ax.set_xlabel("neuron j (tau rank)")
    ax.set_ylabel("neuron i (tau rank)")
    ax.figure.colorbar(im, ax=ax, shrink=0.7, label="S_ij / max")
    if title:
        ax.set_title(f"{title}\nmax S = {top:.2g}", fontsize="small")
    return ax


def plot_mode_matrix(
    mat: np.ndarray,
    mode_names,
    ax: Axes | None = None,
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "magma",
    cbar_label: str = "",
    row_label: str = "mode",
    col_label: str = "mode",
    col_names=None,
    blank_diagonal: bool = False,
) -> Axes:
    """An M x M matrix over modes with each cell's value written in it."""
    ax = _ax(ax, (3.2, 2.8))
    mat = np.asarray(mat, dtype=float)
    im = ax.imshow(mat, cmap=cmap, vmin=vmin, vmax=vmax)
    cm, norm = im.get_cmap(), cast(Normalize, im.norm)
    cols = list(mode_names) if col_names is None else list(col_names)
    ax.set_xticks(range(mat.shape[1]), cols, rotation=45, ha="right")
    ax.set_yticks(range(mat.shape[0]), list(mode_names))
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat[i, j]
            txt = "n/a" if not np.isfinite(v) else f"{v:.2f}"
            if blank_diagonal and i == j:
                txt = ""
            ax.text(
                j,
                i,
                txt,
                ha="center",
                va="center",
                fontsize="x-small",
                color=_text_colour(cm, norm, v),
            )
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label=cbar_label)
    if title:
        ax.set_title(title, fontsize="small")
    return ax


def _text_colour(cmap, norm: Normalize, v: float) -> str:
    """Black on light cells, white on dark ones."""
    if not np.isfinite(v):
        return "black"
    r, g, b, _ = cmap(norm(v))
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"


def plot_baselines(
    tau_s: np.ndarray, baselines_mn: np.ndarray, mode_names, ax: Axes | None = None
) -> Axes:
    """Per-neuron baseline (mean rate in each mode) against tau, one colour per mode."""
    ax = _ax(ax)
    tau_ms = np.asarray(tau_s, dtype=float) * 1e3
    order = np.argsort(tau_ms, kind="stable")
    for m, name in enumerate(mode_names):
        ax.plot(
            tau_ms[order],
            np.asarray(baselines_mn[m])[order],
            "o",
            ms=3,
            color=mode_colour(m),
            alpha=0.8,
            label=name,
        )
    _tau_axis(ax, tau_ms)
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_ylabel("baseline (mean r_i)")
    ax.legend(fontsize="x-small", frameon=False)
    return ax


def plot_eigenvalues(
    eigvals_by_mode: list[np.ndarray],
    fs_hz: float,
    mode_names,
    bands_hz=None,
    ax: Axes | None = None,
) -> Axes:
    """Jacobian eigenvalues at each mode's fixed point: |mu| against |arg mu| Fs / 2 pi."""
    ax = _ax(ax)
    if bands_hz is not None:
        for m, (lo, hi) in enumerate(np.asarray(bands_hz)):
            ax.axvspan(lo, hi, color=mode_colour(m), alpha=0.10, lw=0)
    for m, ev in enumerate(eigvals_by_mode):
        ev = np.asarray(ev)
        if ev.size == 0:
            continue
        f = np.abs(np.angle(ev)) * fs_hz / (2 * np.pi)
        ax.plot(
            f,
            np.abs(ev),
            "osD^v<>"[m % 7],
            ms=3 + 1.2 * m,
            mfc="none",
            color=mode_colour(m),
            label=mode_names[m],
        )
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.text(
        0.99,
        1.0,
        " |mu| = 1",
        transform=ax.get_yaxis_transform(),
        ha="right",
        va="bottom",
        fontsize="x-small",
    )
    if bands_hz is not None:
        ax.set_xlim(0, 1.5 * float(np.max(bands_hz)))
    ax.set_xlabel("eigenvalue frequency |arg mu| Fs / 2 pi (Hz)")
    ax.set_ylabel("|mu|")
    ax.legend(fontsize="x-small", frameon=False, title="fixed point of", title_fontsize="x-small")
    return ax


def mechanism_code(turnover: bool, baseline: bool, phase: bool) -> int:
    """0..7: bit 1 turnover, bit 2 baseline shift, bit 4 phase reorganisation."""
    return int(turnover) * 1 + int(baseline) * 2 + int(phase) * 4


def plot_mechanism_matrix(
    codes_np: np.ndarray,
    network_labels,
    pair_labels,
    ax: Axes | None = None,
) -> Axes:
    """Networks x mode pairs, one colour per combination of mechanisms (NaN: not classified)."""
    codes = np.asarray(codes_np, dtype=float)
    ax = _ax(ax, (1.2 + 0.55 * codes.shape[1], 1.2 + 0.25 * codes.shape[0]))
    cmap = ListedColormap(MECH_COLOURS).with_extremes(bad="white")
    ax.imshow(
        np.ma.masked_invalid(codes),
        cmap=cmap,
        vmin=-0.5,
        vmax=7.5,
        aspect="auto",
        interpolation="nearest",
    )
    for i, j in zip(*np.nonzero(~np.isfinite(codes)), strict=True):
        ax.text(j, i, "?", ha="center", va="center", fontsize="x-small", color="0.4")
    ax.set_xticks(range(codes.shape[1]), list(pair_labels), rotation=45, ha="right")
    ax.set_yticks(range(codes.shape[0]), list(network_labels))
    ax.set_xlabel("mode pair")
    ax.set_ylabel("network")
    ax.set_xticks(np.arange(codes.shape[1] + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(codes.shape[0] + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=1.0)
    ax.tick_params(which="minor", length=0)
    handles = [
        Patch(facecolor=c, edgecolor="0.5", label=lab)
        for c, lab in zip(MECH_COLOURS, MECH_LABELS, strict=True)
    ]
    if np.any(~np.isfinite(codes)):
        handles.append(Patch(facecolor="white", edgecolor="0.5", label="? not classified"))
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize="x-small",
        frameon=False,
        title="T turnover\nB baseline shift\nP phase",
        title_fontsize="x-small",
    )
    return ax


def plot_rho_trend(
    rho_nm: np.ndarray,
    mode_names,
    converged: np.ndarray | None = None,
    ax: Axes | None = None,
    ylabel: str = "Spearman rho(tau, A(m, m))",
) -> Axes:
    """One line per network across bands, plus the mean +- SD of converged networks."""
    ax = _ax(ax)
    rho = np.asarray(rho_nm, dtype=float)
    conv = np.ones(rho.shape[0], bool) if converged is None else np.asarray(converged, bool)
    x = np.arange(rho.shape[1])
    for k in range(rho.shape[0]):
        ax.plot(
            x,
            rho[k],
            color="0.55" if conv[k] else "0.8",
            ls="-" if conv[k] else ":",
            lw=0.8,
            marker=".",
            ms=3,
        )
    sel = rho[conv] if conv.any() else rho
    if sel.shape[0]:
        mean = np.nanmean(sel, axis=0)
        sd = np.nanstd(sel, axis=0, ddof=1) if sel.shape[0] > 1 else np.zeros_like(mean)
        what = "converged" if conv.any() else "all"
        ax.errorbar(
            x,
            mean,
            yerr=sd,
            color="k",
            lw=2,
            capsize=4,
            marker="o",
            label=f"mean ± SD ({what}, n={sel.shape[0]})",
        )
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xticks(x, list(mode_names))
    ax.set_xlabel("band (slow to fast)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-1.05, 1.05)
    ax.plot([], [], color="0.55", lw=0.8, label="one network")
    if not conv.all():
        ax.plot([], [], color="0.8", ls=":", lw=0.8, label="not converged")
    ax.legend(fontsize="x-small", frameon=False)
    return ax


# -- data helpers ---------------------------------------------------------------------------


def simulate_sequence(ens: Ensemble, network: str):
    """(network, protocol, trajectory) of the METHOD section 6 sequence, noise-free from 0."""
    from rhythmswitch.model import simulate
    from rhythmswitch.task import sequence_protocol, task_config_for_network

    net = ens.load_network(network)
    task = task_config_for_network(net, ens.task)
    proto = sequence_protocol(task)
    return net, task, proto, simulate(net, proto.u_tm)


def neuron_column(ens: Ensemble, network: str, prefix: str) -> np.ndarray:
    """neurons.csv ``<prefix><mode>`` for one network, shape (M, N), ordered by neuron."""
    tab = ens.neurons.for_network(network)
    if len(tab) == 0:
        raise MissingData(f"neurons.csv has no rows for {network}")
    order = np.argsort(tab.float("neuron")) if tab.has("neuron") else np.arange(len(tab))
    return np.stack([tab.float(f"{prefix}{m}")[order] for m in ens.mode_names])


def neuron_tau(ens: Ensemble, network: str) -> np.ndarray:
    tab = ens.neurons.for_network(network)
    if len(tab) == 0:
        raise MissingData(f"neurons.csv has no rows for {network}")
    order = np.argsort(tab.float("neuron")) if tab.has("neuron") else np.arange(len(tab))
    return tab.float("tau_s")[order]


def _mode_index(ens: Ensemble, value: str) -> int | None:
    if value in ens.mode_names:
        return ens.mode_names.index(value)
    try:
        i = int(float(value))
    except ValueError:
        return None
    return i if 0 <= i < len(ens.mode_names) else None


def pair_matrices(ens: Ensemble, column: str) -> tuple[list[str], np.ndarray]:
    """Per network an M x M matrix of a pairs.csv column (diagonal 1, symmetrised by mean)."""
    tab = ens.pairs
    if len(tab) == 0:
        raise MissingData("analysis/pairs.csv is missing or empty")
    vals = tab.float(column)
    nets = tab.str("network")
    src, dst = tab.str("mode_from"), tab.str("mode_to")
    names = sorted(set(nets.tolist()))
    m = len(ens.mode_names)
    out = np.full((len(names), m, m), np.nan)
    sums = np.zeros((len(names), m, m))
    counts = np.zeros((len(names), m, m))
    for n, a, b, v in zip(nets, src, dst, vals, strict=True):
        i, j = _mode_index(ens, a), _mode_index(ens, b)
        if i is None or j is None or not np.isfinite(v):
            continue
        idx = names.index(n)
        for p, q in ((i, j), (j, i)):
            sums[idx, p, q] += v
            counts[idx, p, q] += 1
    have = counts > 0
    out[have] = sums[have] / counts[have]
    for idx in range(len(names)):
        np.fill_diagonal(out[idx], 1.0)
    return names, out


def mechanism_codes(ens: Ensemble) -> tuple[list[str], list[str], np.ndarray]:
    """(networks, unordered pair labels, codes (networks, pairs)) from pairs.csv booleans."""
    tab = ens.pairs
    if not tab.has("turnover", "baseline", "phase"):
        raise MissingData(
            "analysis/pairs.csv has no mechanism columns (turnover, baseline, phase); "
            "run the mechanism classifier (rhythmswitch.mechanisms.annotate_pairs)"
        )
    m = len(ens.mode_names)
    pairs = list(combinations(range(m), 2))
    labels = [f"{ens.mode_names[i]}-{ens.mode_names[j]}" for i, j in pairs]
    names = ens.network_names() or sorted(set(tab.str("network").tolist()))
    codes = np.full((len(names), len(pairs)), np.nan)
    t, b, p = tab.str("turnover"), tab.str("baseline"), tab.str("phase")
    for row, n in enumerate(tab.str("network")):
        i, j = (
            _mode_index(ens, tab.str("mode_from")[row]),
            _mode_index(ens, tab.str("mode_to")[row]),
        )
        if n not in names or i is None or j is None or i == j:
            continue
        flags = [s.strip().lower() for s in (t[row], b[row], p[row])]
        if any(f not in ("true", "false", "1", "0") for f in flags):
            continue  # unclassified (NaN / empty)
        code = mechanism_code(*(f in ("true", "1") for f in flags))
        codes[names.index(n), pairs.index((min(i, j), max(i, j)))] = code
    return names, labels, codes


# -- figures --------------------------------------------------------------------------------


def figure_task(ens: Ensemble, network: str) -> Figure:
    """Fig 1: cue, z over the evaluation sequence, a zoom per mode, spectra, peak frequencies."""
    net, task, proto, traj = simulate_sequence(ens, network)
    t_s = (np.arange(proto.n_steps) + 1) * task.dt_s
    m = task.n_modes
    fig = new_figure(7.5, 8.0)
    gs = fig.add_gridspec(4, max(m, 2), height_ratios=(0.6, 1.1, 1.0, 1.6))
    ax_u = fig.add_subplot(gs[0, :])
    ax_z = fig.add_subplot(gs[1, :], sharex=ax_u)
    plot_inputs(t_s, proto.u_tm, task.mode_names, ax=ax_u)
    ax_u.tick_params(labelbottom=False)
    plot_trace(t_s, traj.z_t, proto.segments, task.mode_names, ax=ax_z)
    _panel_label(ax_u, "a")
    _panel_label(ax_z, "b")
    # (c) half a second of z in the middle of each mode's analysed part
    zoom = int(round(0.5 / task.dt_s))
    first = None
    for k, seg in enumerate(proto.segments):
        ax = fig.add_subplot(gs[2, k], sharey=first)
        first = first or ax
        lo = max(seg.start + seg.drop, (seg.start + seg.drop + seg.stop) // 2 - zoom // 2)
        sl = slice(lo, min(seg.stop, lo + zoom))
        ax.plot(t_s[sl] - t_s[lo], traj.z_t[sl], color=mode_colour(seg.mode), lw=0.8)
        ax.set_title(f"{task.mode_names[seg.mode]} mode", fontsize="small")
        ax.set_xlabel("time (s)")
        if k:
            ax.tick_params(labelleft=False)
        else:
            ax.set_ylabel("z")
    assert first is not None
    _panel_label(first, "c")
    freqs, psd = None, []
    for seg in proto.segments:
        freqs, p = welch(traj.z_t[seg.analysis_slice], task.fs_hz)
        psd.append(p)
    half = max(m, 2) // 2
    ax_s = fig.add_subplot(gs[3, :half])
    plot_spectra(
        cast(np.ndarray, freqs),
        np.array(psd),
        [f"{m} mode" for m in task.mode_names],
        task.bands_hz,
        ax=ax_s,
    )
    ax_s.set_title("spectra of z per mode (Welch)", fontsize="medium")
    _panel_label(ax_s, "d")
    ax_p = fig.add_subplot(gs[3, half:])
    _plot_peak_frequencies(ens, ax_p)
    _panel_label(ax_p, "e")
    fig.suptitle(f"Task and output: {network}", fontsize="medium")
    return fig


def _plot_peak_frequencies(ens: Ensemble, ax: Axes) -> Axes:
    """Peak frequency of z per mode for every network (networks.csv peak_hz_<mode>)."""
    tab = ens.networks
    bands = np.asarray(ens.task.bands_hz) if ens.task is not None else None
    conv = ens.converged_mask() if len(tab) else np.zeros(0, bool)
    rng = np.random.default_rng(0)  # horizontal jitter only
    for m, name in enumerate(ens.mode_names):
        if bands is not None:
            ax.fill_between([m - 0.4, m + 0.4], *bands[m], color=mode_colour(m), alpha=0.15, lw=0)
        if not tab.has(f"peak_hz_{name}"):
            continue
        f = tab.float(f"peak_hz_{name}")
        x = m + rng.uniform(-0.2, 0.2, f.size)
        ax.scatter(x[conv], f[conv], s=12, color=mode_colour(m), zorder=3)
        ax.scatter(x[~conv], f[~conv], s=12, facecolor="none", edgecolor=mode_colour(m), zorder=3)
    ax.set_xticks(range(len(ens.mode_names)), list(ens.mode_names))
    ax.set_xlabel("mode")
    ax.set_ylabel("peak frequency of z (Hz)")
    ax.set_title("all networks (open: not converged;\nshaded: target band)", fontsize="medium")
    return ax


def figure_amplitudes(ens: Ensemble, network: str) -> Figure:
    """Fig 2: matched-mode amplitude histograms and tau-amplitude scatter with rho."""
    amp = neuron_column(ens, network, "amp_")
    tau = neuron_tau(ens, network)
    if not np.isfinite(amp).any():
        raise MissingData(f"amp_<mode> of {network} are all NaN")
    m = len(ens.mode_names)
    rho = [np.nan] * m
    row = ens.networks.for_network(network)
    for k, name in enumerate(ens.mode_names):
        if row.has(f"rho_tau_amp_{name}") and len(row):
            rho[k] = float(row.float(f"rho_tau_amp_{name}")[0])
    gini = [np.nan] * m
    for k, name in enumerate(ens.mode_names):
        if row.has(f"gini_{name}") and len(row):
            gini[k] = float(row.float(f"gini_{name}")[0])
    fig = new_figure(2.3 * m, 4.8)
    axes = fig.subplots(2, m, squeeze=False)
    for k, name in enumerate(ens.mode_names):
        g = f", Gini {gini[k]:.2f}" if np.isfinite(gini[k]) else ""
        plot_histogram(
            amp[k],
            ax=axes[0, k],
            colour=mode_colour(k),
            xlabel=f"A(m, m), {name}",
            title=f"{name} mode{g}",
        )
        plot_tau_scatter(
            tau, amp[k], rho[k], ax=axes[1, k], colour=mode_colour(k), ylabel=f"A(m, m), {name}"
        )
        if k:
            axes[0, k].set_ylabel("")
            axes[1, k].set_ylabel("")
    _panel_label(axes[0, 0], "a")
    _panel_label(axes[1, 0], "b")
    fig.suptitle(f"Matched-mode amplitude A_i(m, m) per neuron: {network}", fontsize="medium")
    return fig


def sync_matrices(ens: Ensemble, network: str) -> np.ndarray:
    """S per mode (M, N, N) from the analysis arrays (several key spellings accepted)."""
    arr = ens.arrays(network)
    for key in ("S_mnn", "sync_mnn", "S", "sync"):
        if key in arr and np.ndim(arr[key]) == 3:
            return np.asarray(arr[key], dtype=float)
    per = [first_key(arr, f"S_{m}", f"sync_{m}") for m in ens.mode_names]
    return np.stack(per).astype(float)


def figure_sync(ens: Ensemble, network: str) -> Figure:
    """Fig 3: sync matrices sorted by tau and sync-degree histograms with the active cut."""
    tau = neuron_tau(ens, network)
    deg = neuron_column(ens, network, "sync_degree_")
    s = sync_matrices(ens, network)
    m = len(ens.mode_names)
    fig = new_figure(2.6 * m, 5.0)
    axes = fig.subplots(2, m, squeeze=False)
    for k, name in enumerate(ens.mode_names):
        plot_sync_matrix(s[k], tau, ax=axes[0, k], title=f"{name} mode ({name} band)")
        d, xlabel = scaled(deg[k][np.isfinite(deg[k])], "sync degree d_i")
        plot_histogram(d, ax=axes[1, k], colour=mode_colour(k), xlabel=xlabel)
        if d.size:
            cut = np.quantile(d, 1 - ACTIVE_FRACTION)
            axes[1, k].axvline(cut, color="k", ls="--", lw=0.8)
            axes[1, k].text(
                cut,
                0.97,
                " top 20 %",
                transform=axes[1, k].get_xaxis_transform(),
                va="top",
                fontsize="x-small",
            )
        if k:
            axes[0, k].set_ylabel("")
            axes[1, k].set_ylabel("")
    _panel_label(axes[0, 0], "a")
    _panel_label(axes[1, 0], "b")
    fig.suptitle(f"Synchrony: {network}", fontsize="medium")
    return fig


def figure_turnover(ens: Ensemble) -> Figure:
    """Fig 4: inter-mode Jaccard and amplitude-correlation matrices, mean and SD over networks."""
    names_j, jac = pair_matrices(ens, "jaccard")
    names_c, cor = pair_matrices(ens, "amp_spearman")
    n = len(names_j)
    if n == 0:
        raise MissingData("pairs.csv holds no network")
    fig = new_figure(7.5, 6.0)
    axes = fig.subplots(2, 2)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            jm, js = np.nanmean(jac, 0), np.nanstd(jac, 0, ddof=1) if n > 1 else None
            cm, cs = np.nanmean(cor, 0), np.nanstd(cor, 0, ddof=1) if n > 1 else None
    modes = ens.mode_names
    for sd in (js, cs):
        if sd is not None:
            np.fill_diagonal(sd, np.nan)
    plot_mode_matrix(jm, modes, axes[0, 0], f"Jaccard, mean (n={n})", 0, 1, "viridis", "Jaccard")
    plot_mode_matrix(
        cm, modes, axes[1, 0], f"amplitude Spearman, mean (n={n})", -1, 1, "RdBu_r", "rho"
    )
    for ax, sd, title in (
        (axes[0, 1], js, "Jaccard, SD"),
        (axes[1, 1], cs, "amplitude Spearman, SD"),
    ):
        if sd is None:
            ax.axis("off")
            ax.text(
                0.5,
                0.5,
                "SD needs at least 2 networks",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        else:
            plot_mode_matrix(sd, modes, ax, title, 0, None, "Greys", "SD", blank_diagonal=True)
    head = "Active-set overlap (top) and amplitude-vector rank correlation (bottom) between modes"
    n_units = _n_units(ens)
    if n_units:
        k = max(1, int(round(ACTIVE_FRACTION * n_units)))
        head += f"\nrandom active sets of {k} of {n_units} neurons: Jaccard ~ {k / (2 * n_units - k):.2f}"
    fig.suptitle(head, fontsize="medium")
    for ax, lab in zip(axes.flat, "abcd", strict=True):
        _panel_label(ax, lab)
    return fig


def _n_units(ens: Ensemble) -> int | None:
    if ens.config is not None:
        return int(ens.config.model.n_units)
    if ens.neurons.has("network") and len(ens.neurons):
        first = ens.neurons.str("network")[0]
        return int(np.sum(ens.neurons.str("network") == first))
    return None


def fixed_point_eigvals(ens: Ensemble, network: str, baselines_mn: np.ndarray) -> list[np.ndarray]:
    """Eigenvalues at each mode's fixed point: from the arrays, else recomputed."""
    try:
        arr = ens.arrays(network)
    except MissingData:
        arr = {}
    for key in ("fp_eigvals_mn", "eigvals_mn", "eigvals"):
        if key in arr and np.ndim(arr[key]) == 2:
            return [np.asarray(v) for v in arr[key]]
    if all(f"eigvals_{m}" in arr for m in ens.mode_names):
        return [np.asarray(arr[f"eigvals_{m}"]) for m in ens.mode_names]
    try:
        from rhythmswitch.analysis.fixed_points import find_fixed_points
    except ImportError as exc:
        raise MissingData("no eigenvalues in the arrays and no fixed-point module") from exc
    net = ens.load_network(network)
    res = find_fixed_points(net, np.nan_to_num(baselines_mn))
    return [np.asarray(s.eigvals) for s in res.per_mode]


def figure_fixed_points(ens: Ensemble, network: str) -> Figure:
    """Fig 5: baselines per mode, free-run spectra from each baseline, eigenvalues vs frequency."""
    from rhythmswitch.model import simulate

    tau = neuron_tau(ens, network)
    base = neuron_column(ens, network, "baseline_")
    if not np.isfinite(base).all():
        raise MissingData(f"baseline_<mode> of {network} holds NaN")
    net = ens.load_network(network)
    fs = net.fs_hz
    bands = np.asarray(net.bands_hz)
    fig = new_figure(7.5, 5.6)
    gs = fig.add_gridspec(2, 2)
    ax_b = fig.add_subplot(gs[0, 0])
    plot_baselines(tau, base, ens.mode_names, ax=ax_b)
    ax_b.set_title("operating point per mode", fontsize="medium")
    # free runs: noise-free, input-free, from each mode's baseline
    n_steps = int(4 * fs)
    drop = int(fs)
    psd = []
    freqs = None
    for m in range(len(ens.mode_names)):
        r0 = np.clip(base[m], -0.9999, 0.9999)
        x0 = np.arctanh(r0) if net.form == "current" else r0
        traj = simulate(net, np.zeros((n_steps, net.n_modes), np.float32), x0_n=x0)
        freqs, p = welch(traj.z_t[drop:], fs)
        psd.append(p)
    ax_f = fig.add_subplot(gs[0, 1])
    plot_spectra(
        cast(np.ndarray, freqs),
        np.array(psd),
        [f"from {m} baseline" for m in ens.mode_names],
        bands,
        ax=ax_f,
    )
    ax_f.set_title("free run (no input, no noise)", fontsize="medium")
    fmax = 1.5 * float(bands.max())
    fp = ens.fixed_points.for_network(network) if ens.fixed_points.has("network") else None
    if fp is not None and fp.has("dominant_freq_hz", "mode") and len(fp):
        for mode_v, f in zip(fp.str("mode"), fp.float("dominant_freq_hz"), strict=True):
            k = _mode_index(ens, mode_v)
            if k is not None and np.isfinite(f):
                ax_f.axvline(f, color=mode_colour(k), ls="--", lw=0.8)
                fmax = max(fmax, 1.1 * f)
        ax_f.plot([], [], "k--", lw=0.8, label="dominant unstable eigenfrequency")
        ax_f.legend(fontsize="x-small", frameon=False)
    ax_e = fig.add_subplot(gs[1, :])
    try:
        ev = fixed_point_eigvals(ens, network, base)
        plot_eigenvalues(ev, fs, ens.mode_names, bands, ax=ax_e)
        for e in ev:
            e = np.asarray(e)
            unstable = np.abs(np.angle(e[np.abs(e) > 1])) * fs / (2 * np.pi)
            if unstable.size:
                fmax = max(fmax, 1.1 * float(unstable.max()))
        ax_e.set_title("linearisation at each mode's fixed point", fontsize="medium")
    except MissingData as exc:
        ax_e.axis("off")
        ax_e.text(
            0.5,
            0.5,
            f"eigenvalues unavailable: {exc}",
            ha="center",
            va="center",
            transform=ax_e.transAxes,
        )
    fmax = min(fmax, fs / 2)
    ax_f.set_xlim(0, fmax)
    if ax_e.axison:
        ax_e.set_xlim(0, fmax)
    for ax, lab in ((ax_b, "a"), (ax_f, "b"), (ax_e, "c")):
        _panel_label(ax, lab)
    fig.suptitle(f"Baselines and fixed points: {network}", fontsize="medium")
    return fig


def switch_pair(n_modes: int) -> tuple[int, int]:
    """The switch shown in Fig 6: alpha -> beta (modes 1 -> 2) as in the paper, else 0 -> 1."""
    return (1, 2) if n_modes >= 3 else (0, 1)


def figure_switch(ens: Ensemble, network: str, pair: tuple[int, int] | None = None) -> Figure:
    """Fig 6: z and two single neurons across a switch, with spectra before and after."""
    from rhythmswitch.model import simulate
    from rhythmswitch.task import mode_sequence_protocol, task_config_for_network

    net = ens.load_network(network)
    task = task_config_for_network(net, ens.task)
    i, j = pair if pair is not None else switch_pair(task.n_modes)
    proto = mode_sequence_protocol(task, [i, j])
    traj = simulate(net, proto.u_tm)
    seg_a, seg_b = proto.segments
    # neurons: the largest matched amplitude in each mode (from the analysis, else the SD of r)
    try:
        amp = neuron_column(ens, network, "amp_")
        ni, nj = int(np.nanargmax(amp[i])), int(np.nanargmax(amp[j]))
    except (MissingData, ValueError):
        ni = int(np.argmax(traj.r_tn[seg_a.analysis_slice].std(0)))
        nj = int(np.argmax(traj.r_tn[seg_b.analysis_slice].std(0)))
    tau_ms = net.tau_s * 1e3
    t_s = (np.arange(proto.n_steps) + 1 - seg_b.start) * task.dt_s
    win = int(round(1.0 / task.dt_s))
    lo, hi = max(seg_a.start, seg_b.start - win), min(seg_b.stop, seg_b.start + win)
    sl = slice(lo, hi)
    fig = new_figure(7.5, 6.2)
    gs = fig.add_gridspec(3, 2, height_ratios=(1, 1.3, 1.4))
    ax_z = fig.add_subplot(gs[0, :])
    ax_r = fig.add_subplot(gs[1, :], sharex=ax_z)
    ax_z.plot(t_s[sl], traj.z_t[sl], color="k", lw=0.8)
    ax_z.set_ylabel("z")
    ax_z.tick_params(labelbottom=False)
    for ax in (ax_z, ax_r):
        ax.axvspan(t_s[lo], 0, color=mode_colour(i), alpha=0.10, lw=0)
        ax.axvspan(0, t_s[hi - 1], color=mode_colour(j), alpha=0.10, lw=0)
        ax.axvline(0, color="k", lw=0.6, ls=":")
    ax_z.set_title(
        f"switch {task.mode_names[i]} -> {task.mode_names[j]} (cue at t = 0)", fontsize="medium"
    )
    labels = []
    for n, colour in ((ni, mode_colour(i)), (nj, mode_colour(j))):
        lab = f"neuron {n} (tau {tau_ms[n]:.0f} ms)"
        ax_r.plot(t_s[sl], traj.r_tn[sl, n], color=colour, lw=0.8, label=lab)
        labels.append(lab)
    ax_r.set_ylabel("rate r_i")
    ax_r.set_xlabel("time from the switch cue (s)")
    ax_r.legend(
        fontsize="x-small", frameon=False, ncol=2, loc="lower right", bbox_to_anchor=(1.0, 1.0)
    )
    fs = task.fs_hz
    f, pz_a = welch(traj.z_t[seg_a.analysis_slice], fs)
    _, pz_b = welch(traj.z_t[seg_b.analysis_slice], fs)
    ax_sz = fig.add_subplot(gs[2, 0])
    bands = np.asarray(task.bands_hz)
    plot_spectra(
        f,
        np.array([pz_a, pz_b]),
        [f"z, {task.mode_names[i]} mode", f"z, {task.mode_names[j]} mode"],
        bands,
        ax=ax_sz,
        colours=[mode_colour(i), mode_colour(j)],
    )
    ax_sn = fig.add_subplot(gs[2, 1])
    spectra, labs, cols, styles = [], [], [], []
    for n, lab in zip((ni, nj), labels, strict=True):
        for seg, m in ((seg_a, i), (seg_b, j)):
            spectra.append(welch(traj.r_tn[seg.analysis_slice, n], fs)[1])
            labs.append(f"{lab.split(' (')[0]}, {task.mode_names[m]} mode")
            cols.append(mode_colour(m))
            styles.append("-" if n == ni else "--")
    plot_spectra(
        f,
        np.array(spectra),
        labs,
        bands,
        ax=ax_sn,
        colours=cols,
        styles=styles,
        ylabel="PSD of r_i (1/Hz)",
    )
    for ax, lab in ((ax_z, "a"), (ax_r, "b"), (ax_sz, "c"), (ax_sn, "d")):
        _panel_label(ax, lab)
    fig.suptitle(f"Across a switch: {network}", fontsize="medium")
    return fig


def figure_mechanisms(ens: Ensemble) -> Figure:
    """The mechanism matrix: networks x unordered mode pairs, coloured by combination."""
    names, labels, codes = mechanism_codes(ens)
    conv = dict(zip(ens.network_names(), ens.converged_mask(), strict=False))
    ylab = [n if conv.get(n, False) else f"{n} *" for n in names]
    fig = new_figure(2.5 + 0.6 * len(labels), 1.6 + 0.28 * len(names))
    ax = fig.add_subplot()
    plot_mechanism_matrix(codes, ylab, labels, ax=ax)
    ax.set_title("switching mechanism per mode pair (* not converged)", fontsize="medium")
    return fig


def rho_matrix(ens: Ensemble, prefix: str = "rho_tau_amp_") -> np.ndarray:
    """networks.csv ``<prefix><mode>`` as (networks, modes)."""
    tab = ens.networks
    if len(tab) == 0:
        raise MissingData("analysis/networks.csv is missing or empty")
    return np.stack([tab.float(f"{prefix}{m}") for m in ens.mode_names], axis=1)


def figure_rho_trend(ens: Ensemble) -> Figure:
    """rho(tau, A(m, m)) per band for every network, and the mean +- SD."""
    rho = rho_matrix(ens)
    ok = np.isfinite(rho).any(axis=1)
    if not ok.any():
        raise MissingData("rho_tau_amp_<mode> is NaN for every network")
    fig = new_figure(4.5, 3.4)
    ax = fig.add_subplot()
    plot_rho_trend(rho[ok], ens.mode_names, ens.converged_mask()[ok], ax=ax)
    ax.set_title("time constant vs matched amplitude", fontsize="medium")
    return fig


def figure_eta(ens: Ensemble) -> Figure:
    """Phase coherence eta(mode, band), mean over networks (eta.csv)."""
    tab = ens.eta
    if not tab.has("network", "mode", "band", "eta") or len(tab) == 0:
        raise MissingData("analysis/eta.csv is missing or lacks network, mode, band, eta")
    m = len(ens.mode_names)
    names = sorted(set(tab.str("network").tolist()))
    acc = np.full((len(names), m, m), np.nan)
    for n, mo, ba, v in zip(
        tab.str("network"), tab.str("mode"), tab.str("band"), tab.float("eta"), strict=True
    ):
        i, k = _mode_index(ens, mo), _mode_index(ens, ba)
        if i is not None and k is not None:
            acc[names.index(n), i, k] = v
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(acc, 0)
    fig = new_figure(4.2, 3.4)
    ax = fig.add_subplot()
    plot_mode_matrix(
        mean,
        ens.mode_names,
        ax,
        f"coherence ratio eta, mean (n={len(names)})",
        0,
        1,
        "viridis",
        "eta",
        row_label="mode",
        col_label="band",
    )
    return fig
