"""The training kernel: population output z of a batch of task trials, with a hand-written VJP.

This is the hot loop of training (METHOD section 5 costs ~40 GFLOP per iteration).  The plain
``lax.scan`` + autodiff port stores several (T, B, N) residuals and does two small matrix
products per step in the backward pass; here, for the ``current`` form:

* the forward scan does one (B, N) x (N, N) product per step and stores only the states x
  (and the (T, B) output); the drive (cue, bias, noise) of a chunk of steps is computed in one
  vectorised operation before the chunk's scan;
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
    ts_c = np.arange(t_pad, dtype=np.uint32).reshape(n_chunks, chunk)
    idx_c = idx_p.reshape(n_chunks, chunk)
    on_c = on_p.reshape(n_chunks, chunk)

    def chunk_noise(noise, t_c):
        """Standard normals of one chunk, (C, B, N), generated in one vectorised op."""
        if noise.ndim == 0:
            return jax.vmap(lambda t: hash_normal(noise, t, lanes))(t_c)
        return noise[t_c]

    def chunk_drive(w_in, b, modes_bj, noise, t_c, j_c, on_cc):
        """W_in u + b + sigma xi for every step of a chunk, (C, B, N), and u (C, B, M)."""
        u_c = jax.nn.one_hot(modes_bj[:, j_c].T, w_in.shape[1], dtype=jnp.float32)
        u_c = u_c * on_cc[:, None, None]
        xi_c = chunk_noise(noise, t_c)
        return u_c @ w_in.T + b + sigma32 * xi_c, u_c, xi_c

    def forward_states(w_rec, w_in, b, a, x0_bn, modes_bj, noise):
        """States x_t *before* each step (T_pad, B, N), the output z after each step
        (T_pad, B), and the final state x_T."""
        w_rec_t = w_rec.T
        one_minus_a = 1.0 - a

        def inner(x, drive):
            x_new = one_minus_a * x + a * (drive + jnp.tanh(x) @ w_rec_t)
            return x_new, (x, jnp.mean(jnp.tanh(x_new), axis=-1))

        def outer(x, inp):
            t_c, j_c, on_cc = inp
            drive_c, _, _ = chunk_drive(w_in, b, modes_bj, noise, t_c, j_c, on_cc)
            return jax.lax.scan(inner, x, drive_c)

        x_last, (xs, zs) = jax.lax.scan(
            outer, x0_bn, (jnp.asarray(ts_c), jnp.asarray(idx_c), jnp.asarray(on_c))
        )
        return xs, zs.reshape(t_pad, batch)[:n_steps].T, x_last

    @jax.custom_vjp
    def z_fn(w_rec, w_in, b, a, x0_bn, modes_bj, noise):
        return forward_states(w_rec, w_in, b, a, x0_bn, modes_bj, noise)[1]

    def fwd(w_rec, w_in, b, a, x0_bn, modes_bj, noise):
        xs, z, x_last = forward_states(w_rec, w_in, b, a, x0_bn, modes_bj, noise)
        return z, (w_rec, w_in, b, a, modes_bj, noise, xs, x_last)

    def bwd(res, cz_bt):
        w_rec, w_in, b, a, modes_bj, noise, x_prev_c, x_last = res
        n_modes = w_in.shape[1]
        cz = jnp.zeros((t_pad, batch), jnp.float32).at[:n_steps].set(cz_bt.T) * inv_n
        # output cotangent acting on x_t (the output after step t-1); zero for t = 0
        cz_prev_c = jnp.concatenate([jnp.zeros((1, batch), jnp.float32), cz[:-1]], axis=0).reshape(
            n_chunks, chunk, batch
        )
        one_minus_a = 1.0 - a
        r_last = jnp.tanh(x_last)
        g_last = cz[-1][:, None] * (1.0 - r_last * r_last)  # g_T

        def inner(g_next, inp):  # carries g_{t+1}, emits it, returns g_t
            dr_t, czp_t = inp
            g_t = one_minus_a * g_next + (((a * g_next) @ w_rec) + czp_t[:, None]) * dr_t
            return g_t, g_next

        def outer(carry, inp):
            g_next, m_rr, m_ru, acc = carry
            x_c, czp_c, t_c, j_c, on_cc = inp
            r_c = jnp.tanh(x_c)
            g_next, g_c = jax.lax.scan(inner, g_next, (1.0 - r_c * r_c, czp_c), reverse=True)
            _, u_c, xi_c = chunk_drive(w_in, b, modes_bj, noise, t_c, j_c, on_cc)
            m_rr = m_rr + jnp.einsum("cbi,cbj->ij", g_c, r_c)
            m_ru = m_ru + jnp.einsum("cbi,cbk->ik", g_c, u_c)
            acc = acc + jnp.sum(g_c * (sigma32 * xi_c - x_c), axis=(0, 1))
            return (g_next, m_rr, m_ru, acc), jnp.sum(g_c, axis=(0, 1))

        init = (
            g_last,
            jnp.zeros((n_units, n_units), jnp.float32),
            jnp.zeros((n_units, n_modes), jnp.float32),
            jnp.zeros((n_units,), jnp.float32),
        )
        inputs = (x_prev_c, cz_prev_c, jnp.asarray(ts_c), jnp.asarray(idx_c), jnp.asarray(on_c))
        (_, m_rr, m_ru, acc), gsum_c = jax.lax.scan(outer, init, inputs, reverse=True)
        g_sum = jnp.sum(gsum_c, axis=0)  # (N,)
        d_w_rec = a[:, None] * m_rr
        d_w_in = a[:, None] * m_ru
        d_b = a * g_sum
        d_a = jnp.sum(w_rec * m_rr, axis=1) + jnp.sum(w_in * m_ru, axis=1) + b * g_sum + acc
        return (d_w_rec, d_w_in, d_b, d_a, None, None, None)

    z_fn.defvjp(fwd, bwd)
    return z_fn, n_steps


def flops_per_iteration(n_units: int, batch: int, n_steps: int) -> float:
    """Model FLOPs of one training iteration of one network.

    3 x (2 B N^2) per step: one recurrent product forward, one backward, one for the weight
    gradient (METHOD section 5's 13.6 GFLOP forward, ~40 GFLOP total, at the paper's settings).
    """
    return 3.0 * 2.0 * batch * n_units * n_units * n_steps
