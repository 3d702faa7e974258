"""Continue training saved networks on the ``fast`` preset's final stage and re-evaluate them.

The ``fast`` preset's networks that learn all four rhythms stop on a plateau: smallest in-band
ratio 0.987-0.990 over the 26 evaluation runs, every failing ratio in a noisy run.  This script
asks what more training of *those same weights* buys: it starts each network file from its
weights (seed = its position), trains ITERS iterations on the final 3750-step windows with the
overrides given (default: constant lr 1e-4, no warm-up, no curriculum), selects weights during
training as the preset does (noisy runs on stream 1), and prints one JSON line per network:

    {"network": ..., "sets": [...], "iters": ..., "loss_median_last100": ...,
     "before": [min ratio on noise streams 0, 1, 2], "after": [...]}

    python benchmarks/finetune_plateau.py RUN/networks/net043.npz ... --iters 400 \
        --set train.sigma_scale=1.5
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from rhythmswitch.config import apply_overrides, get_preset
from rhythmswitch.evaluate import evaluate_network
from rhythmswitch.model import params_from_network
from rhythmswitch.network import load_network
from rhythmswitch.train import member_network, train_ensemble

STREAMS = (0, 1, 2)
DEFAULTS = [
    "train.curriculum=[]",
    "train.lr_schedule=constant",
    "train.learning_rate=1e-4",
    "train.warmup_iters=0",
    "train.eval_below_loss=1.0",  # evaluate every eval_every iterations whatever the loss
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("networks", nargs="+", help="network files (.npz)")
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    args = ap.parse_args()
    cfg = apply_overrides(
        get_preset("fast"), [*DEFAULTS, f"train.max_iters={args.iters}", *args.sets]
    )
    nets = [load_network(f) for f in args.networks]
    initial = [params_from_network(n, cfg.model, cfg.task) for n in nets]
    res = train_ensemble(cfg, seeds=list(range(len(nets))), initial=initial)

    def ratios(net):
        evs = [evaluate_network(net, cfg.task, sigma=0.1, noise_seed=s) for s in STREAMS]
        return [round(ev.min_ratio, 4) for ev in evs]

    for k, (path, net) in enumerate(zip(args.networks, nets, strict=True)):
        after = member_network(cfg, res.best_params[k], k)
        row = {
            "network": path,
            "sets": args.sets,
            "iters": args.iters,
            "loss_median_last100": float(np.median(res.history[k][-100:])),
            "before": ratios(net),
            "after": ratios(after),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
