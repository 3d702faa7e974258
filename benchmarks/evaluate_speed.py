"""Evaluation speed: z computed in the loop vs. the reference scan with materialised arrays.

``evaluate_network`` simulates 26 runs per network (the sequence and the 12 transitions, each
noise-free and noisy).  ``simulate_batch`` runs them with the noise drawn and z reduced inside
the simulation loop; the reference (:func:`rhythmswitch.model.run` on a
:func:`rhythmswitch.model.noise_array`) stores every state and every noise draw first.  This
script times both on the same inputs, alternating, and checks that they give the same z:

    python benchmarks/evaluate_speed.py [NETWORK.npz] [--repeats 3]

One JSON line per repeat: {"reference_s": ..., "in_loop_s": ..., "speedup": ..., "max_abs_dz": ...}
(without a network file, a random network of the fast preset's size is used).
"""

from __future__ import annotations

import argparse
import json
import time

import jax.numpy as jnp
import numpy as np

from rhythmswitch.config import get_preset
from rhythmswitch.model import init_params, noise_array, params_to_network, run, simulate_batch
from rhythmswitch.network import Network, load_network
from rhythmswitch.task import sequence_protocol, task_config_for_network, transition_protocols


def reference(net: Network, u_btm: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    u = jnp.asarray(np.swapaxes(u_btm.astype(np.float32), 0, 1))
    n_b = u.shape[1]
    noise = noise_array(seed, u.shape[0], (n_b, net.n_units)) if sigma > 0 else None
    arrays = (jnp.asarray(v, jnp.float32) for v in (net.W_rec, net.W_in, net.b, net.a))
    xs = run(*arrays, u, jnp.zeros((n_b, net.n_units), jnp.float32), noise, sigma, net.form)
    r = jnp.tanh(xs) if net.form == "current" else xs
    return np.asarray(r.mean(axis=-1)).T


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("network", nargs="?", help="a network file (default: a random one)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = get_preset("fast")
    if args.network:
        net = load_network(args.network)
    else:
        import jax

        params = init_params(cfg.model, cfg.task, key=jax.random.PRNGKey(0))
        net = params_to_network(params, cfg.model, cfg.task, name="random")
    task = task_config_for_network(net, cfg.task)
    inputs = [
        np.stack([sequence_protocol(task).u_tm]),
        np.stack([p.u_tm for p in transition_protocols(task)]),
    ]
    runs = [(u, s) for u in inputs for s in (0.0, cfg.model.sigma)]

    def timed(fn):
        t0 = time.perf_counter()
        out = [fn(u, s) for u, s in runs]
        return time.perf_counter() - t0, out

    def ref(u, s):
        return reference(net, u, s, 1)

    def new(u, s):
        return simulate_batch(net, u, sigma=s, noise_seed=1)

    timed(ref), timed(new)  # compile both
    for _ in range(args.repeats):
        t_ref, z_ref = timed(ref)
        t_new, z_new = timed(new)
        dz = max(float(np.abs(a - b).max()) for a, b in zip(z_ref, z_new, strict=True))
        row = {
            "reference_s": round(t_ref, 3),
            "in_loop_s": round(t_new, 3),
            "speedup": round(t_ref / t_new, 2),
            "max_abs_dz": dz,
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
