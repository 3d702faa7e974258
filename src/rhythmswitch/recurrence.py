"""The training kernel: population output z of a batch of task trials, with a hand-written VJP.

This is the hot loop of training (METHOD section 5 costs ~40 GFLOP per iteration).  The plain
``lax.scan`` + autodiff port stores several (T, B, N) residuals and does two small matrix
products per step in the backward pass; here, for the ``current`` form:

* the forward scan does one (B, N) x (N, N) product per step and stores only the states x;
* the cue input is gathered from the mode of each trial inside the step (no (T, B, M) array);
* the noise is counter-based (:func:`rhythmswitch.model.hash_normal`) and is regenerated in
  the backward pass instead of being stored;
* the backward scan does one (B, N) x (N, N) product per step; the weight gradients are
  accumulated once per chunk of ``chunk`` steps as large (N, C*B) x (C*B, N) products, and the
  gradient of a uses the identity  sum_t g * (W r_t)  =  rowsum(W * (G^T R)), which reuses the
  weight-gradient product instead of another per-step product.

Backward recurrence (g_t = dL/dx_t, c_t = dL/dz at the output after step t)::

    g_T = c_{T-1}/N * (1 - r_T^2)
    g_t = (1 - a) g_{t+1} + ((a g_{t+1}) W) * (1 - r_t^2) + c_{t-1}/N * (1 - r_t^2)
    dW_ij = a_i sum_{t,b} g_{t+1,i} r_{t,j}        db = a * sum g_{t+1}
    dW_in = a * sum_t g_{t+1}^T u_t               da = sum_t g_{t+1} (drive_t + W r_t - x_t)

The ``rate`` form and ``grad_impl = "autodiff"`` use the reference :func:`rhythmswitch.model.run`
under plain autodiff (tests check the two against each other).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rhythmswitch.config import TaskConfig
from rhythmswitch.model import hash_normal, rate_of, run
from rhythmswitch.task import pulse_schedule

ZFn = Callable[..., jax.Array]


def make_z_fn(
    task: TaskConfig,
    *,
    window_steps: int,
    n_units: int,
    batch: int,
    sigma: float,
    form: str = "current",
    grad_impl: str = "custom",
    chunk: int = 100,
) -> tuple[ZFn, int]:
    """Build ``z_fn(w_rec, w_in, b, a, x0_bn, modes_bj, noise) -> z (B, T)`` for one network.

    ``noise`` is either a uint32 seed (hash noise, regenerated in the backward pass) or an
    explicit (T, B, N) array of standard normals.  Returns (z_fn, T).
    """
    idx_t, on_t = pulse_schedule(task, window_steps)
    n_steps = int(idx_t.shape[0])
    amp = np.float32(task.pulse_amp)
    sigma32 = np.float32(sigma)
    lanes = jnp.arange(batch * n_units, dtype=jnp.uint32).reshape(batch, n_units)

    def noise_at(noise, t):
        if noise.ndim == 0:
            return hash_normal(noise, t, lanes)
        return noise[t]

    if grad_impl == "autodiff" or form != "current":

        def z_ref(w_rec, w_in, b, a, x0_bn, modes_bj, noise):
            idx = jnp.clip(jnp.asarray(idx_t), 0)
            modes_bt = modes_bj[:, idx]  # (B, T)
            u = jax.nn.one_hot(modes_bt, w_in.shape[1], dtype=jnp.float32)
            u = u * (amp * jnp.asarray(on_t, jnp.float32))[None, :, None]
            if noise.ndim == 0:
                ts = jnp.arange(n_steps, dtype=jnp.uint32)
                noise_tbn = jax.vmap(lambda t: hash_normal(noise, t, lanes))(ts)
            else:
                noise_tbn = noise
            xs = run(w_rec, w_in, b, a, jnp.swapaxes(u, 0, 1), x0_bn, noise_tbn, sigma32, form)
            return jnp.mean(rate_of(xs, form), axis=-1).T

        return z_ref, n_steps

    n_chunks = math.ceil(n_steps / chunk)
    t_pad = n_chunks * chunk
    idx_p = np.zeros(t_pad, np.int32)
    idx_p[:n_steps] = np.clip(idx_t, 0, None)
    on_p = np.zeros(t_pad, np.float32)
    on_p[:n_steps] = on_t.astype(np.float32) * amp
    inv_n = np.float32(1.0 / n_units)

    def forward_states(w_rec, w_in, b, a, x0_bn, modes_bj, noise):
        w_in_t = w_in.T  # (M, N)
        w_rec_t = w_rec.T
        one_minus_a = 1.0 - a

        def body(x, inp):
            t, j, on = inp
            cue = w_in_t[modes_bj[:, j]] * on  # (B, N)
            drive = cue + b + sigma32 * noise_at(noise, t)
            x = one_minus_a * x + a * (drive + jnp.tanh(x) @ w_rec_t)
            return x, x

        ts = jnp.arange(t_pad, dtype=jnp.uint32)
        _, xs = jax.lax.scan(body, x0_bn, (ts, jnp.asarray(idx_p), jnp.asarray(on_p)))
        return xs  # (T_pad, B, N), states after each step

    @jax.custom_vjp
    def z_fn(w_rec, w_in, b, a, x0_bn, modes_bj, noise):
        xs = forward_states(w_rec, w_in, b, a, x0_bn, modes_bj, noise)
        return jnp.mean(jnp.tanh(xs[:n_steps]), axis=-1).T

    def fwd(w_rec, w_in, b, a, x0_bn, modes_bj, noise):
        xs = forward_states(w_rec, w_in, b, a, x0_bn, modes_bj, noise)
        z = jnp.mean(jnp.tanh(xs[:n_steps]), axis=-1).T
        return z, (w_rec, w_in, b, a, x0_bn, modes_bj, noise, xs)

    def bwd(res, cz_bt):
        w_rec, w_in, b, a, x0_bn, modes_bj, noise, xs = res
        n_modes = w_in.shape[1]
        cz = jnp.zeros((t_pad, batch), jnp.float32).at[:n_steps].set(cz_bt.T) * inv_n  # (T_pad, B)
        # previous states x_t for t = 0 .. T_pad-1
        x_prev = jnp.concatenate([x0_bn[None], xs[:-1]], axis=0)
        x_prev_c = x_prev.reshape(n_chunks, chunk, batch, n_units)
        # output cotangent acting on x_t (the output after step t-1), zero for t = 0
        cz_prev = jnp.concatenate([jnp.zeros((1, batch), jnp.float32), cz[:-1]], axis=0)
        cz_prev_c = cz_prev.reshape(n_chunks, chunk, batch)
        ts_c = jnp.arange(t_pad, dtype=jnp.uint32).reshape(n_chunks, chunk)
        idx_c = jnp.asarray(idx_p).reshape(n_chunks, chunk)
        on_c = jnp.asarray(on_p).reshape(n_chunks, chunk)
        one_minus_a = 1.0 - a

        r_last = jnp.tanh(xs[-1])
        g_last = cz[-1][:, None] * (1.0 - r_last * r_last)  # g_T

        def inner(carry, inp):
            g_next, acc = carry  # g_{t+1}
            x_t, czp, t = inp
            r_t = jnp.tanh(x_t)
            dr = 1.0 - r_t * r_t
            acc = acc + g_next * (sigma32 * noise_at(noise, t) - x_t)
            g_t = one_minus_a * g_next + ((a * g_next) @ w_rec) * dr + czp[:, None] * dr
            return (g_t, acc), (g_next, r_t)

        def outer(carry, inp):
            g_next, acc, m_rr, m_ru = carry
            x_c, czp_c, t_c, j_c, on_cc = inp
            (g_next, acc), (g_c, r_c) = jax.lax.scan(
                inner, (g_next, acc), (x_c, czp_c, t_c), reverse=True
            )
            m_rr = m_rr + jnp.einsum("cbi,cbj->ij", g_c, r_c)
            u_c = (
                jax.nn.one_hot(modes_bj[:, j_c].T, n_modes, dtype=jnp.float32)
                * on_cc[:, None, None]
            )
            m_ru = m_ru + jnp.einsum("cbi,cbk->ik", g_c, u_c)
            return (g_next, acc, m_rr, m_ru), jnp.sum(g_c, axis=(0, 1))

        init = (
            g_last,
            jnp.zeros((batch, n_units), jnp.float32),
            jnp.zeros((n_units, n_units), jnp.float32),
            jnp.zeros((n_units, n_modes), jnp.float32),
        )
        (_, acc, m_rr, m_ru), gsum_c = jax.lax.scan(
            outer, init, (x_prev_c, cz_prev_c, ts_c, idx_c, on_c), reverse=True
        )
        g_sum = jnp.sum(gsum_c, axis=0)  # (N,)
        d_w_rec = a[:, None] * m_rr
        d_w_in = a[:, None] * m_ru
        d_b = a * g_sum
        d_a = (
            jnp.sum(w_rec * m_rr, axis=1)
            + jnp.sum(w_in * m_ru, axis=1)
            + b * g_sum
            + jnp.sum(acc, axis=0)
        )
        return (d_w_rec, d_w_in, d_b, d_a, None, None, None)

    z_fn.defvjp(fwd, bwd)
    return z_fn, n_steps


def flops_per_iteration(n_units: int, batch: int, n_steps: int) -> float:
    """Model FLOPs of one training iteration of one network.

    3 x (2 B N^2) per step: one recurrent product forward, one backward, one for the weight
    gradient (METHOD section 5's 13.6 GFLOP forward, ~40 GFLOP total, at the paper's settings).
    """
    return 3.0 * 2.0 * batch * n_units * n_units * n_steps
