"""Whose noise makes a network's out-of-band power?  (noise attribution by time constant)

A trained network's in-band ratio in a noise-free run is often >= 0.995 while its noisy runs
(sigma = 0.1, METHOD section 6) score 0.987-0.990: the noise puts power outside the band.  The
noise enters each unit scaled by its a_i = dt / tau_i, so fast units receive far more of it.
This script runs the paper's evaluation sequence (theta -> alpha -> beta -> gamma) once
noise-free and then with the noise of only one group of units switched on at a time (units
grouped by tau), on the same noise stream, and prints 1 - ratio per mode for each case:

    python benchmarks/noise_sources.py RUN/networks/net043.npz ... [--edges-ms 5 20]

One JSON line per network and noise group:
    {"network": ..., "noise_in": "tau < 5 ms", "units": 25, "one_minus_ratio": {...}}
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from rhythmswitch.evaluate import task_config_for_network
from rhythmswitch.loss import ratio_numpy
from rhythmswitch.model import simulate
from rhythmswitch.network import load_network
from rhythmswitch.task import sequence_protocol

SIGMA = 0.1


def groups(tau_ms: np.ndarray, edges_ms: list[float]) -> list[tuple[str, np.ndarray]]:
    """(label, 0/1 gain) for no noise, all noise, and each tau group between the edges."""
    out = [("none", np.zeros_like(tau_ms)), ("all", np.ones_like(tau_ms))]
    bounds = [0.0, *edges_ms, np.inf]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        label = f"tau < {hi:g} ms" if lo == 0 else (
            f"tau >= {lo:g} ms" if hi == np.inf else f"{lo:g} <= tau < {hi:g} ms"
        )  # fmt: skip
        out.append((label, ((tau_ms >= lo) & (tau_ms < hi)).astype(np.float64)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("networks", nargs="+", help="network files (.npz)")
    ap.add_argument("--edges-ms", type=float, nargs="+", default=[5.0, 20.0])
    ap.add_argument("--noise-seed", type=int, default=0)
    args = ap.parse_args()
    for path in args.networks:
        net = load_network(path)
        task = task_config_for_network(net, None)
        proto = sequence_protocol(task)
        for label, gain in groups(1000.0 * net.tau_s, sorted(args.edges_ms)):
            traj = simulate(
                net,
                proto.u_tm,
                sigma=SIGMA if gain.any() else 0.0,
                noise_seed=args.noise_seed,
                noise_gain_n=gain,
            )
            lost = {}
            for seg in proto.segments:
                z = traj.z_t[seg.analysis_slice]
                ratio = ratio_numpy(z, task.fs_hz, tuple(net.bands_hz[seg.mode]))
                lost[task.mode_names[seg.mode]] = round(1.0 - float(ratio), 5)
            row = {
                "network": path,
                "noise_in": label,
                "units": int(gain.sum()),
                "one_minus_ratio": lost,
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
