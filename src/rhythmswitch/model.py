"""The leaky-integrator network of METHOD section 2.

Glossary (shapes in names: ``_n`` units, ``_m`` modes/inputs, ``_t`` time, ``_b`` batch):

    x       membrane state (``current`` form) or rate (``rate`` form), shape (N,)
    r       rate, r = tanh(x) (current form) or r = x (rate form)
    z       population output, z = mean_i r_i (fixed readout, nothing trained)
    a       per-neuron leak a_i = dt / tau_i
    W_rec   recurrent weights, W_rec[i, j] from unit j to unit i
    W_in    input weights (N, M); u is the one-hot cue (M,)
    b       bias (N,)
    sigma   noise strength; xi ~ N(0, 1) per unit and step

Current form (the paper's, default)::

    x[t+1] = (1 - a) * x[t] + a * (W_in u[t] + b + W_rec tanh(x[t]) + sigma * xi[t])
    r[t+1] = tanh(x[t+1]),   z[t+1] = mean_i r_i[t+1]

Rate form (the seed's sketch)::

    h[t+1] = (1 - a) * h[t] + a * tanh(W_rec h[t] + W_in u[t] + b + sigma * xi[t])
    r = h,   z = mean_i h_i

Trajectories returned here are aligned so that index t holds the state *after* input u[t]
(x[t+1] in the equations above).

Time-constant parametrisations (``tau_param``): ``alpha`` stores a itself (projected to a >= 0
after each update, as the paper did); ``bounded`` stores theta with a = a_max * sigmoid(theta),
a_max = dt / tau_min <= 1, so the Euler step is always stable.  :func:`a_from_raw` and
:func:`raw_from_a` are the bijection; tests check the round trip.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rhythmswitch.config import ModelConfig, TaskConfig
from rhythmswitch.network import Network


class Params(NamedTuple):
    """Trainable parameters of one network (a pytree; an ensemble stacks a leading K axis)."""

    w_rec: jax.Array  # (N, N)
    w_in: jax.Array  # (N, M)
    b: jax.Array  # (N,)
    tau_raw: jax.Array  # (N,) unconstrained per ``tau_param``


# -- time-constant bijection ---------------------------------------------------------------


def a_max(model: ModelConfig, task: TaskConfig) -> float:
    return min(1.0, task.dt_s / model.tau_min_s)


def a_from_raw(tau_raw: jax.Array, model: ModelConfig, task: TaskConfig) -> jax.Array:
    """Map the stored parameter to a = dt / tau."""
    if model.tau_param == "alpha":
        return tau_raw
    return a_max(model, task) * jax.nn.sigmoid(tau_raw)


def raw_from_a(a: jax.Array, model: ModelConfig, task: TaskConfig) -> jax.Array:
    """Inverse of :func:`a_from_raw` (for ``bounded``, a must lie in (0, a_max))."""
    if model.tau_param == "alpha":
        return jnp.asarray(a)
    p = jnp.asarray(a) / a_max(model, task)
    return jnp.log(p) - jnp.log1p(-p)


def project(params: Params, model: ModelConfig) -> Params:
    """The paper's projection after each update: a >= 0 (``alpha`` only)."""
    if model.tau_param == "alpha":
        return params._replace(tau_raw=jnp.maximum(params.tau_raw, 0.0))
    return params


# -- initialisation ------------------------------------------------------------------------


def init_params(model: ModelConfig, task: TaskConfig, *, key: jax.Array) -> Params:
    """METHOD section 2: W_rec ~ N(mean/N, gain^2/N) (paper: mean 0, gain 1),
    W_in ~ U(+-sqrt(6/(N+M))), b = 0, tau init."""
    n, m = model.n_units, task.n_modes
    k_rec, k_in, k_tau = jax.random.split(key, 3)
    w_rec = model.w_rec_gain * jax.random.normal(k_rec, (n, n), jnp.float32) / np.sqrt(n)
    if model.w_rec_mean:
        w_rec = w_rec + model.w_rec_mean / n
    lim = np.sqrt(6.0 / (n + m))
    w_in = jax.random.uniform(k_in, (n, m), jnp.float32, -lim, lim)
    b = jnp.zeros((n,), jnp.float32)
    if model.tau_init == "constant":
        tau = jnp.full((n,), model.tau_init_s, jnp.float32)
    else:
        lo, hi = np.log(model.tau_lo_s), np.log(model.tau_hi_s)
        tau = jnp.exp(jax.random.uniform(k_tau, (n,), jnp.float32, lo, hi))
    a = jnp.clip(task.dt_s / tau, 0.0, 1.0)
    if model.tau_param == "bounded":
        amax = a_max(model, task)
        a = jnp.clip(a, 1e-6 * amax, (1 - 1e-6) * amax)
    return Params(
        w_rec=w_rec, w_in=w_in, b=b, tau_raw=raw_from_a(a, model, task).astype(jnp.float32)
    )


def params_to_network(
    params: Params, model: ModelConfig, task: TaskConfig, name: str = "network"
) -> Network:
    """Convert trained parameters (one member, no K axis) to the exchange format."""
    a = np.asarray(a_from_raw(jnp.asarray(params.tau_raw), model, task), dtype=np.float64)
    return Network.from_a(
        W_rec=np.asarray(params.w_rec),
        W_in=np.asarray(params.w_in),
        b=np.asarray(params.b),
        a=a,
        dt_s=task.dt_s,
        bands_hz=task.bands_hz,
        mode_names=task.mode_names,
        form=model.form,
        name=name,
    )


def params_from_network(net: Network, model: ModelConfig, task: TaskConfig) -> Params:
    """The trainable parameters of a network file (the inverse of :func:`params_to_network`).

    Raises ValueError when the file does not fit the config (size, inputs, form, dt, or a time
    constant the ``bounded`` parametrisation cannot hold).
    """
    if net.n_units != model.n_units or net.n_modes != task.n_modes:
        raise ValueError(
            f"network {net.name!r} has N={net.n_units}, M={net.n_modes}; the config has "
            f"model.n_units={model.n_units}, {task.n_modes} modes"
        )
    if net.form != model.form:
        raise ValueError(f"network {net.name!r} has form {net.form!r}; model.form={model.form!r}")
    if not np.isclose(net.dt_s, task.dt_s):
        raise ValueError(f"network {net.name!r} has dt_s={net.dt_s}; task.dt_s={task.dt_s}")
    a = np.asarray(net.a, np.float64)
    if model.tau_param == "bounded" and not np.all((a > 0) & (a < a_max(model, task))):
        raise ValueError(
            f"network {net.name!r}: model.tau_param='bounded' needs every tau above "
            f"model.tau_min_s={model.tau_min_s}; the smallest is {float(np.min(net.tau_s))}"
        )
    return Params(
        w_rec=jnp.asarray(net.W_rec, jnp.float32),
        w_in=jnp.asarray(net.W_in, jnp.float32),
        b=jnp.asarray(net.b, jnp.float32),
        tau_raw=jnp.asarray(raw_from_a(jnp.asarray(a), model, task), jnp.float32),
    )


# -- noise ---------------------------------------------------------------------------------

_GOLDEN = np.uint32(0x9E3779B9)


def _mix32(x: jax.Array) -> jax.Array:
    """A bijective 32-bit integer hash (xor-shift-multiply finaliser)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def hash_normal(seed: int | jax.Array, t: jax.Array, lanes: jax.Array) -> jax.Array:
    """Standard normal draws for step ``t`` of the stream ``seed``; one per entry of ``lanes``.

    Counter-based: the value depends only on (seed, t, lane), so the backward pass regenerates
    the forward noise instead of storing it.  Uniforms carry 23 bits (exactly representable, strictly inside (0, 1)); the normal is
    sqrt(2) * erfinv(2u - 1), so marginals are N(0, 1) to float32 resolution (tests check the
    moments, the Kolmogorov-Smirnov distance and the lag correlations).
    """
    seed = jnp.asarray(seed, jnp.uint32)
    step_key = _mix32(seed ^ _mix32(jnp.asarray(t, jnp.uint32) * _GOLDEN + jnp.uint32(0x632BE5AB)))
    bits = _mix32(_mix32(lanes + step_key) ^ (seed * jnp.uint32(0x2C1B3C6D)))
    u = ((bits >> 9).astype(jnp.float32) + 0.5) * np.float32(2.0**-23)  # in (0, 1), never 1
    return np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(2.0 * u - 1.0)


def noise_lanes(shape: tuple[int, ...]) -> jax.Array:
    """The :func:`hash_normal` lane of every entry of a noise draw of ``shape`` (row-major):
    trial b, unit n of a (B, N) draw is lane b * N + n."""
    return jnp.arange(int(np.prod(shape)), dtype=jnp.uint32).reshape(shape)


def noise_array(seed: int | jax.Array, n_steps: int, shape: tuple[int, ...]) -> jax.Array:
    """The hash noise of steps 0..n_steps-1 as an explicit array (n_steps, *shape)."""
    lanes = noise_lanes(shape)
    return jax.vmap(lambda t: hash_normal(seed, t, lanes))(jnp.arange(n_steps, dtype=jnp.uint32))


# -- the update ----------------------------------------------------------------------------


def step(
    x: jax.Array,
    drive: jax.Array,
    w_rec: jax.Array,
    a: jax.Array,
    form: str,
    phi: Callable[[jax.Array], jax.Array] = jnp.tanh,
) -> jax.Array:
    """One Euler step.  ``drive`` = W_in u + b + sigma xi (already summed), shape like x.

    ``phi`` is the nonlinearity (tanh; tests replace it by the identity to compare with the
    closed-form solution of the linear system).
    """
    if form == "current":
        return (1.0 - a) * x + a * (drive + phi(x) @ w_rec.T)
    return (1.0 - a) * x + a * phi(x @ w_rec.T + drive)


def rate_of(x: jax.Array, form: str) -> jax.Array:
    return jnp.tanh(x) if form == "current" else x


def run(
    w_rec: jax.Array,
    w_in: jax.Array,
    b: jax.Array,
    a: jax.Array,
    u_tm: jax.Array,
    x0_n: jax.Array,
    noise_tn: jax.Array | None,
    sigma: float,
    form: str,
    phi: Callable[[jax.Array], jax.Array] = jnp.tanh,
    cut_t: np.ndarray | None = None,
) -> jax.Array:
    """Reference simulation by ``lax.scan`` (differentiable by plain autodiff).

    Returns the states x after each step, shape (T, *x0.shape).  ``x0_n`` may carry leading
    batch axes; ``u_tm`` is then (T, *batch, M) and ``noise_tn`` (T, *batch, N) or None.
    ``cut_t`` (T,) bool: where true, the state entering step t is a constant to the gradient
    (truncated backpropagation; the values are unchanged).
    """
    cut = None if cut_t is None else jnp.asarray(np.asarray(cut_t, bool))

    def body(x, inp):
        u, xi, cut_here = inp
        if cut_here is not None:
            x = jnp.where(cut_here, jax.lax.stop_gradient(x), x)
        drive = u @ w_in.T + b
        if xi is not None:
            drive = drive + sigma * xi
        x = step(x, drive, w_rec, a, form, phi)
        return x, x

    _, xs = jax.lax.scan(body, x0_n, (u_tm, noise_tn, cut))
    return xs


class Trajectory(NamedTuple):
    """Result of :func:`simulate`: states, rates and output after each step."""

    x_tn: np.ndarray
    r_tn: np.ndarray
    z_t: np.ndarray


def _net_arrays(net: Network, dtype) -> tuple[jax.Array, ...]:
    return (
        jnp.asarray(net.W_rec, dtype),
        jnp.asarray(net.W_in, dtype),
        jnp.asarray(net.b, dtype),
        jnp.asarray(net.a, dtype),
    )


_run_jit = jax.jit(run, static_argnames=("form",))


def simulate(
    net: Network,
    u_tm: np.ndarray,
    *,
    x0_n: np.ndarray | None = None,
    sigma: float = 0.0,
    noise_seed: int | None = None,
    noise_gain_n: np.ndarray | None = None,
) -> Trajectory:
    """Simulate a network file on an input (T, M) from ``x0`` (default 0).

    With ``sigma > 0`` the noise is the :func:`hash_normal` stream ``noise_seed`` (default 0),
    so a noisy run is reproducible bit for bit.  ``noise_gain_n`` (N,) multiplies each unit's
    noise (default 1 everywhere): 0/1 masks tell whose noise makes what in the output.
    """
    u = jnp.asarray(u_tm, jnp.float32)
    if u.ndim != 2 or u.shape[1] != net.n_modes:
        raise ValueError(f"u_tm must have shape (T, M={net.n_modes}), got {tuple(u.shape)}")
    x0 = jnp.zeros((net.n_units,), jnp.float32) if x0_n is None else jnp.asarray(x0_n, jnp.float32)
    noise = None
    if sigma > 0:
        noise = noise_array(0 if noise_seed is None else noise_seed, u.shape[0], (net.n_units,))
        if noise_gain_n is not None:
            gain = np.asarray(noise_gain_n, np.float32)
            if gain.shape != (net.n_units,):
                raise ValueError(f"noise_gain_n must have shape ({net.n_units},), got {gain.shape}")
            if not np.all(np.isfinite(gain)):
                raise ValueError("noise_gain_n must hold finite numbers")
            noise = noise * jnp.asarray(gain)
    w_rec, w_in, b, a = _net_arrays(net, jnp.float32)
    xs = _run_jit(w_rec, w_in, b, a, u, x0, noise, float(sigma), form=net.form)
    x = np.asarray(xs)
    r = np.tanh(x) if net.form == "current" else x
    return Trajectory(x_tn=x, r_tn=r, z_t=r.mean(axis=1))


@functools.partial(jax.jit, static_argnames=("form", "noisy"))
def _run_z(w_rec, w_in, b, a, u_tbm, seed, sigma, *, form: str, noisy: bool):
    """Population output z (T, B) from x = 0, the noise drawn inside the loop.

    The same arithmetic as :func:`run` with :func:`noise_array`'s noise (lane b * N + n at step
    t), but neither the noise nor the states are materialised: an evaluation of long trials
    stays in cache."""
    n_b, n = u_tbm.shape[1], w_rec.shape[0]
    lanes = noise_lanes((n_b, n))

    def body(x, inp):
        t, u = inp
        drive = u @ w_in.T + b
        if noisy:
            drive = drive + sigma * hash_normal(seed, t, lanes)
        x = step(x, drive, w_rec, a, form)
        return x, rate_of(x, form).mean(axis=-1)

    steps = jnp.arange(u_tbm.shape[0], dtype=jnp.uint32)
    _, z = jax.lax.scan(body, jnp.zeros((n_b, n), jnp.float32), (steps, u_tbm))
    return z


def simulate_batch(
    net: Network, u_btm: np.ndarray, *, sigma: float = 0.0, noise_seed: int = 0
) -> np.ndarray:
    """Population output z for a batch of equal-length inputs from x = 0; shape (B, T).

    Noisy runs use the :func:`hash_normal` stream ``noise_seed``, trial b on lanes b * N + n
    (the noise :func:`noise_array` gives for shape (B, N))."""
    u = jnp.asarray(np.swapaxes(np.asarray(u_btm, np.float32), 0, 1))  # (T, B, M)
    w_rec, w_in, b, a = _net_arrays(net, jnp.float32)
    seed = jnp.asarray(noise_seed, jnp.uint32)
    z = _run_z(w_rec, w_in, b, a, u, seed, jnp.float32(sigma), form=net.form, noisy=bool(sigma > 0))
    return np.asarray(z).T
