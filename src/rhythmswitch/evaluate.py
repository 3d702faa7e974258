"""Evaluation (METHOD section 6): in-band power ratio of z per mode on fixed protocols.

Protocols: the fixed sequence (every mode in order, ``eval_steps_per_mode`` steps each, pulse
at the start of each, first ``eval_drop_steps`` dropped) and every ordered transition between two
modes; each noise-free and with the training noise.  A network is *converged* when every mode's
ratio is >= ``threshold`` (0.99) in every one of those runs.  The paper's own criterion (best
training loss < 2e-5) is reported beside it by the trainer.

Every run starts from x = 0; noisy runs use the hash-noise stream ``noise_seed``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rhythmswitch.config import TaskConfig
from rhythmswitch.loss import ratio_numpy
from rhythmswitch.model import simulate_batch
from rhythmswitch.network import Network
from rhythmswitch.task import (
    Protocol,
    sequence_protocol,
    task_config_for_network,
    transition_protocols,
)

CONVERGED_THRESHOLD = 0.99
EVAL_COLUMNS = ("network", "protocol", "noise", "mode", "ratio")
SUMMARY_COLUMNS = ("network", "converged", "min_ratio")


@dataclass(frozen=True)
class EvalRow:
    network: str
    protocol: str
    noise: float
    mode: str
    ratio: float


@dataclass(frozen=True)
class Evaluation:
    """All ratios of one network and its converged flag."""

    network: str
    rows: tuple[EvalRow, ...]
    threshold: float = CONVERGED_THRESHOLD

    @property
    def min_ratio(self) -> float:
        vals = [r.ratio for r in self.rows]
        return float(np.nanmin(vals)) if vals and not np.all(np.isnan(vals)) else float("nan")

    @property
    def converged(self) -> bool:
        vals = np.array([r.ratio for r in self.rows])
        return bool(vals.size and np.all(np.isfinite(vals)) and np.all(vals >= self.threshold))

    def ratio(self, protocol: str, mode: str, noise: float = 0.0) -> float:
        for r in self.rows:
            if r.protocol == protocol and r.mode == mode and r.noise == noise:
                return r.ratio
        raise KeyError((protocol, mode, noise))


def _protocol_ratios(
    net: Network, protocols: list[Protocol], cfg: TaskConfig, sigma: float, noise_seed: int
) -> list[tuple[str, str, float]]:
    out = []
    u = np.stack([p.u_tm for p in protocols])
    z_bt = simulate_batch(net, u, sigma=sigma, noise_seed=noise_seed)
    for p, z in zip(protocols, z_bt, strict=True):
        for seg in p.segments:
            ratio = ratio_numpy(z[seg.analysis_slice], net.fs_hz, tuple(net.bands_hz[seg.mode]))
            out.append((p.name, cfg.mode_names[seg.mode], ratio))
    return out


def evaluate_network(
    net: Network,
    task: TaskConfig | None = None,
    *,
    sigma: float = 0.1,
    noise_seed: int = 0,
    transitions: bool = True,
    threshold: float = CONVERGED_THRESHOLD,
    noise_free: bool = True,
) -> Evaluation:
    """Ratios for the sequence and (optionally) all ordered transitions, with and without noise
    (``noise_free=False``: the noisy runs only).

    ``task`` supplies the protocol timing; bands, names and dt always come from the network.
    """
    cfg = task_config_for_network(net, task)
    rows: list[EvalRow] = []
    noises = ([0.0] if noise_free else []) + ([float(sigma)] if sigma > 0 else [])
    for noise in noises:
        for protos in ([sequence_protocol(cfg)], transition_protocols(cfg) if transitions else []):
            if not protos:
                continue
            for proto, mode, ratio in _protocol_ratios(net, protos, cfg, noise, noise_seed):
                rows.append(EvalRow(net.name, proto, noise, mode, ratio))
    return Evaluation(network=net.name, rows=tuple(rows), threshold=threshold)


def write_evaluations(evals: list[Evaluation], run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``evaluation.csv`` (long form) and ``evaluation_summary.csv`` atomically."""
    import io

    from rhythmswitch.store import atomic_write_text, record

    run_dir = Path(run_dir)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(EVAL_COLUMNS)
    for ev in evals:
        for r in ev.rows:
            w.writerow([r.network, r.protocol, f"{r.noise:g}", r.mode, f"{r.ratio:.6f}"])
    long_path = run_dir / "evaluation.csv"
    atomic_write_text(long_path, buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for ev in evals:
        w.writerow([ev.network, str(ev.converged).lower(), f"{ev.min_ratio:.6f}"])
    summary_path = run_dir / "evaluation_summary.csv"
    atomic_write_text(summary_path, buf.getvalue())
    record(run_dir, long_path, summary_path)
    return long_path, summary_path
