"""An authors-style TensorFlow 2 / Keras training step, for speed comparison only.

Written for this project from METHOD.md (sections 2-5), in the way a TensorFlow 2 user would
write the paper's training: a ``keras.Model`` holding W_rec, W_in, b and the per-neuron
a = dt/tau as trainable weights, the recurrence as a ``tf.while_loop`` over the whole trial
inside a ``tf.function``, fresh Gaussian noise drawn at every step, full backpropagation through
time by ``tf.GradientTape`` (which stores the loop's intermediates), Keras Adam with a global
gradient-norm clip, and a >= 0 projection of a after each update.  Inputs (one-hot pulses) are
built on the host for every batch, as a script feeding arrays to a model would.

    x[t+1] = (1 - a) x[t] + a (W_in u[t] + b + W_rec tanh(x[t]) + sigma xi[t]),   z = mean_i tanh(x_i)
    loss   = mean over trials and intervals of (in-band power ratio of z's window - 1)^2

Run ``python benchmarks/tf_reference.py --preset paper --iters 2`` (needs the optional extra
``pip install -e '.[bench]'``); it prints one JSON line with the seconds per iteration.
``rhythmswitch bench train`` runs it in its own process.  Nothing here imports JAX.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf


def pulse_schedule(task: dict[str, Any], window_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Per step: the index of the current interval (-1 before the first) and pulse on/off."""
    interval = task["transient_steps"] + window_steps
    n_steps = task["wait_steps"] + task["switch_num"] * interval
    rel = np.arange(n_steps) - task["wait_steps"]
    idx = np.where(rel >= 0, rel // interval, -1)
    on = (rel >= 0) & (rel % interval < task["pulse_steps"])
    return idx.astype(np.int64), on


def band_masks_np(n_samples: int, fs_hz: float, bands_hz) -> np.ndarray:
    """(M, L//2) float32: bins k = 1..L//2 (DC dropped) with low <= k fs / L < high."""
    f = np.arange(1, n_samples // 2 + 1) * fs_hz / n_samples
    return np.stack([(f >= lo) & (f < hi) for lo, hi in bands_hz]).astype(np.float32)


def make_inputs(
    task: dict[str, Any], window_steps: int, modes_bj: np.ndarray, n_modes: int
) -> np.ndarray:
    """One-hot pulse input of a batch, time-major (T, B, M) float32."""
    idx, on = pulse_schedule(task, window_steps)
    modes_bt = modes_bj[:, np.clip(idx, 0, None)]  # (B, T)
    u = np.eye(n_modes, dtype=np.float32)[modes_bt] * (task["pulse_amp"] * on)[None, :, None]
    return np.ascontiguousarray(np.transpose(u, (1, 0, 2)))


class LeakyRNN(tf.keras.Model):
    """The paper's network: N leaky integrators, fixed mean readout, trainable a = dt / tau."""

    def __init__(self, n_units: int, n_modes: int, a_init: np.ndarray, gain: float, seed: int):
        super().__init__()
        self.n_units = n_units
        self.w_rec = self.add_weight(
            shape=(n_units, n_units),
            initializer=tf.keras.initializers.RandomNormal(
                stddev=gain / math.sqrt(n_units), seed=seed
            ),
            name="w_rec",
        )
        self.w_in = self.add_weight(
            shape=(n_units, n_modes),
            initializer=tf.keras.initializers.GlorotUniform(seed=seed + 1),
            name="w_in",
        )
        self.b = self.add_weight(shape=(n_units,), initializer="zeros", name="b")
        self.a = self.add_weight(
            shape=(n_units,),
            initializer=tf.keras.initializers.Constant(np.asarray(a_init, np.float32)),
            name="a",
        )

    def call(self, u_tbm: tf.Tensor, x0_bn: tf.Tensor, sigma: float) -> tf.Tensor:
        """Population output z, shape (T, B): z[t] = mean_i tanh(x_i) after input t."""
        n_steps = tf.shape(u_tbm)[0]
        w_rec_t = tf.transpose(self.w_rec)
        w_in_t = tf.transpose(self.w_in)
        a = self.a
        zs = tf.TensorArray(tf.float32, size=n_steps)

        def body(t, x, zs):
            noise = sigma * tf.random.normal(tf.shape(x))
            drive = tf.matmul(u_tbm[t], w_in_t) + self.b + tf.matmul(tf.tanh(x), w_rec_t)
            x = (1.0 - a) * x + a * (drive + noise)
            return t + 1, x, zs.write(t, tf.reduce_mean(tf.tanh(x), axis=1))

        _, _, zs = tf.while_loop(lambda t, x, zs: t < n_steps, body, (tf.constant(0), x0_bn, zs))
        return zs.stack()


def power_ratio_loss(
    z_tb: tf.Tensor,
    modes_bj: tf.Tensor,
    starts: list[int],
    window: int,
    masks_ml: tf.Tensor,
    fs_hz: float,
) -> tf.Tensor:
    """METHOD section 4: mean over trials and intervals of (in-band power ratio - 1)^2."""
    segs = tf.stack([tf.transpose(z_tb[s : s + window]) for s in starts], axis=1)  # (B, J, L)
    spec = tf.signal.rfft(segs)[..., 1 : window // 2 + 1]
    power = tf.math.real(spec * tf.math.conj(spec)) / (fs_hz * window)
    mask = tf.gather(masks_ml, modes_bj)  # (B, J, L//2)
    ratio = tf.reduce_sum(power * mask, axis=-1) / tf.reduce_sum(power, axis=-1)
    return tf.reduce_mean(tf.square(ratio - 1.0))


class Trainer:
    """The authors-style training loop at the settings of a RunConfig dictionary."""

    def __init__(self, config: dict[str, Any], *, seed: int | None = None):
        task, model, train = config["task"], config["model"], config["train"]
        if model.get("form", "current") != "current":
            raise ValueError(
                f"model.form = {model['form']!r} is invalid here: the TensorFlow reference "
                "implements the paper's 'current' form only"
            )
        self.task, self.model_cfg, self.train_cfg = task, model, train
        self.n_units = int(model["n_units"])
        self.n_modes = len(task["bands_hz"])
        self.batch = int(train["batch_size"])
        self.window = int(task["window_steps"])
        self.fs_hz = 1.0 / float(task["dt_s"])
        self.sigma = float(model["sigma"])
        seed = int(config.get("seed", 43)) if seed is None else seed
        self.rng = np.random.default_rng(seed)
        tf.random.set_seed(seed)
        if model["tau_init"] == "constant":
            tau = np.full(self.n_units, model["tau_init_s"])
        else:
            tau = np.exp(
                self.rng.uniform(np.log(model["tau_lo_s"]), np.log(model["tau_hi_s"]), self.n_units)
            )
        a_init = np.clip(task["dt_s"] / tau, 0.0, 1.0)
        self.net = LeakyRNN(self.n_units, self.n_modes, a_init, model["w_rec_gain"], seed)
        self.net.build(None)
        interval = task["transient_steps"] + self.window
        self.starts = [
            task["wait_steps"] + j * interval + task["transient_steps"]
            for j in range(task["switch_num"])
        ]
        self.masks = tf.constant(band_masks_np(self.window, self.fs_hz, task["bands_hz"]))
        self.optimizer = tf.keras.optimizers.Adam(
            learning_rate=float(train["learning_rate"]), global_clipnorm=float(train["clip_norm"])
        )
        self._step = tf.function(self._train_step, reduce_retracing=True)

    def loss_and_grads(self, u_tbm, x0_bn, modes_bj, sigma: float):
        """Loss and gradients w.r.t. (w_rec, w_in, b, a) for given inputs (eager or traced)."""
        variables = [self.net.w_rec, self.net.w_in, self.net.b, self.net.a]
        with tf.GradientTape() as tape:
            z = self.net(u_tbm, x0_bn, sigma=sigma)
            loss = power_ratio_loss(z, modes_bj, self.starts, self.window, self.masks, self.fs_hz)
        return loss, tape.gradient(loss, variables)

    def _train_step(self, u_tbm, x0_bn, modes_bj):
        loss, grads = self.loss_and_grads(u_tbm, x0_bn, modes_bj, self.sigma)
        variables = [self.net.w_rec, self.net.w_in, self.net.b, self.net.a]
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        self.net.a.assign(tf.maximum(self.net.a, 0.0))  # the paper keeps a >= 0
        return loss

    def sample_batch(self):
        modes = self.rng.integers(0, self.n_modes, (self.batch, self.task["switch_num"]))
        u = make_inputs(self.task, self.window, modes, self.n_modes)
        x0 = self.model_cfg["x0_std"] * self.rng.standard_normal((self.batch, self.n_units))
        return (
            tf.constant(u),
            tf.constant(x0.astype(np.float32)),
            tf.constant(modes.astype(np.int32)),
        )

    def step(self) -> float:
        """One training iteration on a fresh batch (host input building included)."""
        return float(self._step(*self.sample_batch()))


def peak_rss_gib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss * (1.0 if sys.platform == "darwin" else 1024.0) / 2**30


def time_steps(config: dict[str, Any], iters: int) -> dict[str, Any]:
    """Trace + first iteration once, then time ``iters`` iterations one by one."""
    trainer = Trainer(config)
    t0 = time.perf_counter()
    first = trainer.step()
    compile_s = time.perf_counter() - t0
    print(f"tensorflow: traced + first iteration in {compile_s:.1f} s", file=sys.stderr)
    times, losses = [], [first]
    for i in range(iters):
        t0 = time.perf_counter()
        losses.append(trainer.step())
        times.append(time.perf_counter() - t0)
        print(f"tensorflow: iteration {i + 1}/{iters} {times[-1]:.3f} s", file=sys.stderr)
    return {
        "times_s": times,
        "compile_s": compile_s,
        "loss_finite": bool(all(math.isfinite(v) for v in losses)),
        "peak_rss_gib": peak_rss_gib(),
        "tensorflow_version": tf.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", help='JSON {"config": RunConfig dict, "iters": n}')
    p.add_argument("--preset", default="paper", help="a rhythmswitch preset (without --spec)")
    p.add_argument("--iters", type=int, default=2)
    args = p.parse_args(argv)
    if args.spec:
        spec = json.loads(args.spec)
        config, iters = spec["config"], int(spec["iters"])
    else:
        from rhythmswitch.config import get_preset  # no JAX: config is plain dataclasses

        config, iters = get_preset(args.preset).to_dict(), args.iters
    if iters < 1:
        p.error(f"--iters = {iters} is invalid: must be >= 1")
    sys.stdout.write(json.dumps(time_steps(config, iters)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
