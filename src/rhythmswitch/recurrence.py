"""The training kernel: population output z of a batch of task trials, with a hand-written VJP.

This is the hot loop of training (METHOD section 5 costs ~40 GFLOP per iteration).  The plain
``lax.scan`` + autodiff port stores several (T, B, N) residuals and does two small matrix
products per step in the backward pass; here, for the ``current`` form:

* K networks advance together as one stacked (K, B, N) x (K, N, N) product per step (no
  ``vmap`` around the scan: an explicit member axis runs ~1.5x faster on the CPU);
* the forward scan does one product per step, carries tanh(x) so it is computed once, and
  stores only the states x after each step (and the (T, B) output); the drive (cue, bias,
  noise) of a chunk of steps is computed in one vectorised operation before the chunk's scan;
* the cue input is gathered from the mode of each trial inside the step (no (T, B, M) array);
* the noise is counter-based (:func:`rhythmswitch.model.hash_normal`), so nothing of it is
  stored; the backward pass regenerates it only for the exact gradient of a (below);
* the backward scan does one (B, N) x (N, N) product per step; the weight gradients are
  accumulated once per chunk of ``chunk`` steps as large (N, C*B) x (C*B, N) products, and the
  gradient of a either uses the identity sum_t g * (W r_t) = rowsum(W * (G^T R)), which reuses
  the weight-gradient product (exact; regenerates the noise), or, with ``da_from_states``, the
  update itself, drive_t + W r_t - x_t = (x_{t+1} - x_t) / a, which needs neither another
  product nor the noise.  The second loses precision as a -> 0 (float32 states keep ~7
  digits of x; at a = 1e-3 the difference keeps ~4), so the trainer uses it only while every
  member's a stays above :data:`DA_FROM_STATES_MIN_A` for the whole call; tests compare both
  with autodiff.

Backward recurrence (g_t = dL/dx_t, c_t = dL/dz at the output after step t)::

    g_T = c_{T-1}/N * (1 - r_T^2)
    g_t = (1 - a) g_{t+1} + ((a g_{t+1}) W) * (1 - r_t^2) + c_{t-1}/N * (1 - r_t^2)
    dW_ij = a_i sum_{t,b} g_{t+1,i} r_{t,j}        db = a * sum g_{t+1}
    dW_in = a * sum_t g_{t+1}^T u_t               da = sum_t g_{t+1} (drive_t + W r_t - x_t)
                                                     = (1/a) sum_t g_{t+1} (x_{t+1} - x_t)

The ``rate`` form and ``grad_impl = "autodiff"`` use the reference :func:`rhythmswitch.model.run`
under plain autodiff (tests check the two against each other).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rhythmswitch.config import TaskConfig
from rhythmswitch.model import hash_normal, noise_lanes, rate_of, run
from rhythmswitch.task import pulse_schedule

ZFn = Callable[..., jax.Array]

DA_FROM_STATES_MIN_A = 1e-3  # smallest a for which the a-gradient may come from the states


def make_z_fn(task: TaskConfig, **kw: Any) -> tuple[ZFn, int]:
    """Build ``z_fn(w_rec, w_in, b, a, x0_bn, modes_bj, noise) -> z (B, T)`` for one network.

    ``noise`` is either a uint32 seed (hash noise, generated chunk by chunk) or an
    explicit (T, B, N) array of standard normals.  Returns (z_fn, T).  The keywords and the
    kernel are those of :func:`make_z_stack_fn`, with a stack of one network.
    """
    z_stack, n_steps = make_z_stack_fn(task, **kw)

    def z_fn(w_rec, w_in, b, a, x0_bn, modes_bj, noise):
        one = (w_rec, w_in, b, a, x0_bn, modes_bj, noise)
        return z_stack(*(jnp.asarray(v)[None] for v in one))[0]

    return z_fn, n_steps


def make_z_stack_fn(
    task: TaskConfig,
    *,
    window_steps: int,
    n_units: int,
    batch: int,
    sigma: float,
    form: str = "current",
    grad_impl: str = "custom",
    chunk: int = 100,
    da_from_states: bool = False,
    cut_at: tuple[int, ...] = (),
) -> tuple[ZFn, int]:
    """Build ``z_stack(w_rec, w_in, b, a, x0, modes, noise) -> z (K, B, T)`` for a stack of K
    independent networks (every argument has a leading K axis: w_rec (K, N, N), w_in (K, N, M),
    b and a (K, N), x0 (K, B, N), modes (K, B, J), noise (K,) uint32 seeds or (K, T, B, N)).

    The members share every per-step operation as one batched product, (K, B, N) x (K, N, N):
    measured on 2 cores, an explicitly stacked step runs ~1.5x faster than ``vmap`` of the
    one-network kernel.  No operation mixes members, so member k's result (and gradient)
    is that of a stack of one.

    ``da_from_states``: the gradient of a from the stored states, (x_{t+1} - x_t) / a, which
    needs no noise in the backward pass; only for a bounded away from 0 (the trainer checks,
    :data:`DA_FROM_STATES_MIN_A`).  Otherwise the exact form regenerates the noise.
    ``cut_at``: steps t whose entering state x_t is a constant to the gradient (truncated
    backpropagation, ``train.bptt``); the values z are unchanged.
    """
    idx_t, on_t = pulse_schedule(task, window_steps)
    n_steps = int(idx_t.shape[0])
    amp = np.float32(task.pulse_amp)
    sigma32 = np.float32(sigma)
    lanes = noise_lanes((batch, n_units))

    cut_t = np.zeros(n_steps, bool)
    cut_t[[t for t in cut_at if 0 < t < n_steps]] = True

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
            xs = run(
                w_rec,
                w_in,
                b,
                a,
                jnp.swapaxes(u, 0, 1),
                x0_bn,
                noise_tbn,
                sigma32,
                form,
                cut_t=cut_t if cut_t.any() else None,
            )
            return jnp.mean(rate_of(xs, form), axis=-1).T

        return jax.vmap(z_ref), n_steps

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
    keep_p = np.ones(t_pad, np.float32)
    keep_p[:n_steps][cut_t] = 0.0
    keep_c = keep_p.reshape(n_chunks, chunk)
    cut = bool(cut_t.any())

    def chunk_noise(noise, t_c):
        """Standard normals of one chunk, (C, K, B, N), generated in one vectorised op."""
        if noise.ndim == 1:  # one hash seed per member
            per_step = jax.vmap(lambda s, t: hash_normal(s, t, lanes), in_axes=(0, None))
            return jax.vmap(per_step, in_axes=(None, 0))(noise, t_c)
        return jnp.swapaxes(noise[:, t_c], 0, 1)

    def chunk_input(n_modes, modes, j_c, on_cc):
        """The cue input u of every step of a chunk, (C, K, B, M)."""
        u_c = jax.nn.one_hot(jnp.moveaxis(modes[:, :, j_c], 2, 0), n_modes, dtype=jnp.float32)
        return u_c * on_cc[:, None, None, None]

    def chunk_drive(w_in, b, modes, noise, t_c, j_c, on_cc):
        """W_in u + b + sigma xi for every step of a chunk, (C, K, B, N)."""
        u_c = chunk_input(w_in.shape[2], modes, j_c, on_cc)
        drive = jnp.einsum("ckbm,knm->ckbn", u_c, w_in) + b[None, :, None, :]
        return drive + sigma32 * chunk_noise(noise, t_c)

    def forward_states(w_rec, w_in, b, a, x0, modes, noise):
        """States x_t *before* each step (NC, K, C, B, N), the output z (K, B, T) and the final
        state x_T (K, B, N).

        The states of a chunk are written member-major, (K, C, B, N), so that the backward
        pass's weight-gradient products read them as contiguous (K, C*B, N) blocks (the scan's
        own stacking, (C, K, B, N), would need a transpose; measured 3x slower)."""
        w_rec_t = jnp.swapaxes(w_rec, 1, 2)  # [k, j, i] = W[k, i, j]
        a3 = a[:, None, :]
        one_minus_a = 1.0 - a3

        def outer(carry, inp):
            t_c, j_c, on_cc = inp
            drive_c = chunk_drive(w_in, b, modes, noise, t_c, j_c, on_cc)

            def inner(carry, i):
                x, r, buf = carry
                rec = jnp.einsum("kbj,kji->kbi", r, w_rec_t)
                x_new = one_minus_a * x + a3 * (drive_c[i] + rec)
                r_new = jnp.tanh(x_new)
                buf = jax.lax.dynamic_update_index_in_dim(buf, x, i, axis=1)
                return (x_new, r_new, buf), jnp.mean(r_new, axis=-1)

            x, r = carry
            buf = jnp.zeros((x.shape[0], chunk) + x.shape[1:], jnp.float32)
            (x, r, buf), z_c = jax.lax.scan(inner, (x, r, buf), jnp.arange(chunk))
            return (x, r), (buf, z_c)

        inputs = (jnp.asarray(ts_c), jnp.asarray(idx_c), jnp.asarray(on_c))
        (x_last, _), (xs, zs) = jax.lax.scan(outer, (x0, jnp.tanh(x0)), inputs)
        z = zs.reshape((t_pad,) + zs.shape[2:])[:n_steps]  # (T, K, B)
        return xs, jnp.transpose(z, (1, 2, 0)), x_last

    @jax.custom_vjp
    def z_stack(w_rec, w_in, b, a, x0, modes, noise):
        return forward_states(w_rec, w_in, b, a, x0, modes, noise)[1]

    def fwd(w_rec, w_in, b, a, x0, modes, noise):
        xs, z, x_last = forward_states(w_rec, w_in, b, a, x0, modes, noise)
        return z, (w_rec, w_in, b, a, modes, noise, xs, x_last)

    def bwd(res, cz_kbt):
        w_rec, w_in, b, a, modes, noise, xs, x_last = res
        n_modes = w_in.shape[2]
        k, bsz = cz_kbt.shape[0], cz_kbt.shape[1]
        cz = jnp.zeros((t_pad, k, bsz), jnp.float32)
        cz = cz.at[:n_steps].set(jnp.transpose(cz_kbt, (2, 0, 1))) * inv_n
        # output cotangent acting on x_t (the output after step t-1); zero for t = 0
        cz_prev_c = jnp.concatenate([jnp.zeros((1, k, bsz), jnp.float32), cz[:-1]], axis=0)
        cz_prev_c = cz_prev_c.reshape(n_chunks, chunk, k, bsz)
        a3 = a[:, None, :]
        one_minus_a = 1.0 - a3
        w_a = a[:, :, None] * w_rec  # (a g) W = g (diag(a) W)
        r_last = jnp.tanh(x_last)
        g_last = cz[-1][..., None] * (1.0 - r_last * r_last)  # g_T
        # x after the last step of every chunk: the first state of the next chunk, then x_T
        x_end_c = jnp.concatenate([xs[1:, :, 0], x_last[None]], axis=0)

        def flat(v):  # (K, C, B, X) -> (K, C*B, X), free in member-major layout
            return v.reshape(v.shape[0], -1, v.shape[-1])

        def outer(carry, inp):
            g_next, m_rr, m_ru, acc = carry
            x_c, x_end, czp_c, t_c, j_c, on_cc, keep_cc = inp  # x_c: x_t of the chunk, (K, C, B, N)
            r_c = jnp.tanh(x_c)
            dr_c = 1.0 - r_c * r_c

            def inner(carry, i):  # carries g_{t+1} and x_{t+1}, stores g_{t+1} at slot i
                g_next, x_next, g_buf, dx_acc = carry
                back = jnp.einsum("kbi,kij->kbj", g_next, w_a)
                dr_t = jax.lax.dynamic_index_in_dim(dr_c, i, axis=1, keepdims=False)
                if cut:  # only the future's share stops at a cut; z_{t-1}'s own term stays
                    g_t = (one_minus_a * g_next + back * dr_t) * keep_cc[i]
                    g_t = g_t + czp_c[i][..., None] * dr_t
                else:
                    g_t = one_minus_a * g_next + (back + czp_c[i][..., None]) * dr_t
                g_buf = jax.lax.dynamic_update_index_in_dim(g_buf, g_next, i, axis=1)
                if da_from_states:  # g_{t+1} (x_{t+1} - x_t) = a g_{t+1} (drive_t + W r_t - x_t)
                    x_t = jax.lax.dynamic_index_in_dim(x_c, i, axis=1, keepdims=False)
                    dx_acc = dx_acc + g_next * (x_next - x_t)
                    x_next = x_t
                return (g_t, x_next, g_buf, dx_acc), None

            init_c = (g_next, x_end, jnp.zeros_like(x_c), jnp.zeros_like(g_next))
            (g_next, _, g_c, dx_acc), _ = jax.lax.scan(
                inner, init_c, jnp.arange(chunk), reverse=True
            )
            u_c = jnp.moveaxis(chunk_input(n_modes, modes, j_c, on_cc), 0, 1)  # (K, C, B, M)
            m_rr = m_rr + jnp.einsum("kxi,kxj->kij", flat(g_c), flat(r_c))
            m_ru = m_ru + jnp.einsum("kxi,kxm->kim", flat(g_c), flat(u_c))
            if da_from_states:  # no noise needed
                acc = acc + jnp.sum(dx_acc, axis=1)
            else:  # the noise part of drive_t - x_t; the rest comes from m_rr, m_ru below
                xi_c = jnp.moveaxis(chunk_noise(noise, t_c), 0, 1)
                acc = acc + jnp.sum(g_c * (sigma32 * xi_c - x_c), axis=(1, 2))
            return (g_next, m_rr, m_ru, acc), jnp.sum(g_c, axis=(1, 2))

        n = w_rec.shape[1]
        init = (
            g_last,
            jnp.zeros((k, n, n), jnp.float32),
            jnp.zeros((k, n, n_modes), jnp.float32),
            jnp.zeros((k, n), jnp.float32),
        )
        inputs = (
            xs,
            x_end_c,
            cz_prev_c,
            jnp.asarray(ts_c),
            jnp.asarray(idx_c),
            jnp.asarray(on_c),
            jnp.asarray(keep_c),
        )
        (_, m_rr, m_ru, acc), gsum_c = jax.lax.scan(outer, init, inputs, reverse=True)
        g_sum = jnp.sum(gsum_c, axis=0)  # (K, N)
        d_w_rec = a[:, :, None] * m_rr
        d_w_in = a[:, :, None] * m_ru
        d_b = a * g_sum
        if da_from_states:
            d_a = acc / jnp.where(a > 0, a, 1.0)
        else:  # sum_t g W r_t = rowsum(W * m_rr): no extra per-step product
            d_a = jnp.sum(w_rec * m_rr, axis=2) + jnp.sum(w_in * m_ru, axis=2) + b * g_sum + acc
        return (d_w_rec, d_w_in, d_b, d_a, None, None, None)

    z_stack.defvjp(fwd, bwd)
    return z_stack, n_steps


def flops_per_iteration(n_units: int, batch: int, n_steps: int) -> float:
    """Model FLOPs of one training iteration of one network.

    3 x (2 B N^2) per step: one recurrent product forward, one backward, one for the weight
    gradient (METHOD section 5's 13.6 GFLOP forward, ~40 GFLOP total, at the paper's settings).
    """
    return 3.0 * 2.0 * batch * n_units * n_units * n_steps
