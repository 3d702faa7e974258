"""Screen training recipes cheaply: how far does each get in the first stage?

A full convergence run (``rhythmswitch bench converge``) of the ``fast`` preset costs ~10
minutes for four networks on two cores, and four networks rank recipes poorly.  This screen
trains more networks for fewer, cheaper iterations: by default 8 networks (seeds 43-50) for 600
iterations on 1000-step loss windows at a constant learning rate, the ``fast`` preset's first
curriculum stage, with each recipe's ``--set`` overrides on top.  It prints one JSON line per
recipe:

    {"recipe": ..., "wall_s": ..., "median_loss_last": ..., "n_below": ..., "per_network": [...]}

``median_loss_last`` is the median over networks of each network's median training loss over
the last 100 iterations; ``n_below`` counts networks whose last-100 median is below 0.05 (all
four modes mostly right on the training windows).  Early learning is a proxy: a recipe that
learns the first stage faster is not proven to converge faster on the section 6 criterion, so
confirm a winner with ``rhythmswitch bench converge``.

    python benchmarks/screen_recipes.py                       # the recipes below
    python benchmarks/screen_recipes.py --recipe my=model.tau_lo_s=0.002,train.batch_size=16
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np

from rhythmswitch.config import apply_overrides, get_preset
from rhythmswitch.train import train_ensemble

SCREEN = [
    "train.curriculum=[]",
    "task.window_steps=1000",
    "train.lr_schedule=constant",
    "train.stop_on_eval=false",
]

# session 2's fast preset (tau 5-100 ms, plain uniform draws) and the two changes session 3
# adopted, alone and together (the last is today's preset); results in the README
SESSION2 = ["model.tau_lo_s=0.005", "train.balanced_modes=false"]
RECIPES = {
    "session2": SESSION2,
    "tau_2ms": [*SESSION2, "model.tau_lo_s=0.002"],
    "balanced": [*SESSION2, "train.balanced_modes=true"],
    "tau_2ms+balanced (fast)": [],
}


def screen(name: str, overrides: list[str], networks: int, iters: int, seed: int) -> dict:
    cfg = apply_overrides(get_preset("fast"), [*SCREEN, f"train.max_iters={iters}", *overrides])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = train_ensemble(
            cfg, seeds=list(range(seed, seed + networks)), checkpoint=f"{tmp}/ckpt.npz"
        )
    wall = time.perf_counter() - start
    last = [float(np.nanmedian(np.asarray(h[-100:], float))) for h in result.history]
    return {
        "recipe": name,
        "overrides": overrides,
        "networks": networks,
        "iters": iters,
        "wall_s": round(wall, 1),
        "median_loss_last": round(float(np.median(last)), 4),
        "n_below": int(np.sum(np.asarray(last) < 0.05)),
        "per_network": [round(v, 4) for v in last],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", type=int, default=8)
    ap.add_argument("--iters", type=int, default=600)
    ap.add_argument("--seed", type=int, default=43)
    ap.add_argument(
        "--recipe",
        action="append",
        default=[],
        help="NAME=key=value,key=value (repeatable); default: the built-in recipes",
    )
    args = ap.parse_args(argv)
    recipes = dict(RECIPES)
    if args.recipe:
        recipes = {}
        for spec in args.recipe:
            name, _, rest = spec.partition("=")
            recipes[name] = [s for s in rest.split(",") if s]
    for name, overrides in recipes.items():
        rec = screen(name, overrides, args.networks, args.iters, args.seed)
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    sys.exit(main())
