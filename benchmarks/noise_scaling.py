"""How a network's noisy out-of-band share grows with the noise level sigma.

The noisy runs of METHOD section 6 (sigma = 0.1) score lower than the noise-free ones: the
noise puts power outside the band.  This script runs the paper's evaluation sequence
(theta -> alpha -> beta -> gamma) noise-free and at several sigma (mean over a few noise
streams) and prints, per mode, the *excess* 1 - ratio over the noise-free run, and that excess
divided by what sigma^2 scaling from the reference sigma predicts (1.0 everywhere: the network
responds linearly to its noise):

    python benchmarks/noise_scaling.py RUN/networks/net044.npz ... [--sigmas 0.05 0.1 0.2]

One JSON line per network and sigma:
    {"network": ..., "sigma": ..., "excess": {...}, "vs_sigma2": {...}}
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


def one_minus_ratios(net, proto, sigma: float, streams: int) -> np.ndarray:
    """1 - ratio per mode segment, averaged over ``streams`` noise streams (one if noise-free)."""
    rows = []
    for seed in range(streams if sigma > 0 else 1):
        z = np.asarray(simulate(net, proto.u_tm, sigma=sigma, noise_seed=seed).z_t)
        rows.append(
            [
                1.0 - ratio_numpy(z[s.analysis_slice], net.fs_hz, tuple(net.bands_hz[s.mode]))
                for s in proto.segments
            ]
        )
    return np.mean(rows, axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("networks", nargs="+", help="network files (.npz)")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    ap.add_argument("--reference", type=float, default=0.1, help="sigma the scaling is taken from")
    ap.add_argument("--streams", type=int, default=3, help="noise streams per sigma")
    args = ap.parse_args()
    for path in args.networks:
        net = load_network(path)
        cfg = task_config_for_network(net, None)
        proto = sequence_protocol(cfg)
        names = [cfg.mode_names[s.mode] for s in proto.segments]
        clean = one_minus_ratios(net, proto, 0.0, 1)
        ref = one_minus_ratios(net, proto, args.reference, args.streams) - clean
        for sigma in args.sigmas:
            excess = one_minus_ratios(net, proto, sigma, args.streams) - clean
            scaled = excess / (ref * (sigma / args.reference) ** 2)
            row = {
                "network": path,
                "sigma": sigma,
                "noise_free": dict(zip(names, np.round(clean, 5).tolist(), strict=True)),
                "excess": dict(zip(names, np.round(excess, 5).tolist(), strict=True)),
                "vs_sigma2": dict(zip(names, np.round(scaled, 3).tolist(), strict=True)),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
