"""Fixed points of the noise-free, input-free map and their linearisation (METHOD section 7).

The map (u = 0, sigma = 0, a = dt/tau per neuron)::

    current form   F(x) = (1 - a) x + a (b + W_rec tanh(x))
                   J    = diag(1 - a) + diag(a) W_rec diag(1 - tanh(x*)^2)
    rate form      F(h) = (1 - a) h + a tanh(W_rec h + b)
                   J    = diag(1 - a) + diag(a) diag(1 - tanh(W_rec h* + b)^2) W_rec

A fixed point x* solves F(x*) = x*; its residual is the paper's q(x) = |F(x) - x|^2.

Search.  The paper minimised q with L-BFGS-B from arctanh of each mode's baseline rate (clipped to
+-0.9999; for the rate form the baseline rate is the state itself) plus small perturbations.
Here every start is driven by a batched damped Newton iteration (``jit`` + ``vmap`` over
starts, float64 inside a local ``jax.enable_x64`` context, the global JAX config untouched) on
the *leak-free* residual

    R(x) = (F(x) - x) / a = -x + b + W_rec tanh(x)         (current)
    R(h) = (F(h) - h) / a = -h + tanh(W_rec h + b)          (rate)

which has exactly the zeros of F(x) - x (a > 0) but does not shrink with a: a frozen neuron
(tau up to 1000 s, a = 1e-6) would otherwise contribute a residual a^2 times smaller and the
search would stop before it is at its fixed point.  Near a zero the iteration is Newton's method
(quadratic convergence, to round-off in a few steps); far from one a line search along the Newton
and the steepest-descent directions keeps |R|^2 decreasing, so like L-BFGS-B on q it can also
end in a *slow point* (a local minimum of q that is not zero).  When none of a mode's starts
converged, L-BFGS-B on |R|^2 with the analytic gradient (the paper's optimiser, whose curvature
memory crawls through near-singular regions better) runs on the host from the mode's baseline
start (at most :data:`_POLISH_ITER` iterations), followed by Newton steps; if it ends lower it
replaces the mode's best stuck start.  A point counts as converged when both q and |R|^2 are at most ``tol_q`` (q
alone can be tiny for a network of frozen neurons that is nowhere near a fixed point).

Host logic in NumPy: merging (greedy in order of increasing q, as fixed-point-finder's
``unique``: a point within ``merge_tol`` (Euclidean distance in state space) of a kept point is
absorbed by it), eigenvalues (``numpy.linalg.eigvals``), the dominant unstable eigenvalue, the
continuous-time equivalents and the free-run check.

Eigenvalues.  mu is unstable when |mu| > 1; its frequency is |arg mu| Fs / (2 pi).  The dominant
eigenvalue is the unstable one above 1 Hz with the largest |mu| (NaN with a reason if none).

Continuous-time equivalents.  The discrete map is the Euler step (step dt) of the ODE
tau dx/dt = -x + b + W_rec tanh(x) (current; analogous for rate), whose Jacobian is exactly
(J - I) / dt, so each mu maps to nu = (mu - 1) / dt (per second), with ``dominant_freq_ct_hz =
|Im nu| / (2 pi)`` and ``dominant_growth_ct = Re nu`` (1/s) of the dominant mu.  We use this
rather than log(mu) / dt because the latter is only a change of units of the discrete map
(its frequency is identical to ``dominant_freq_hz`` and its growth is log|mu| / dt), whereas nu
describes the model the network discretises, independent of dt; the two differ exactly where the
Euler step is coarse (fast neurons, a not << 1).  Note that Re nu may be negative while |mu| > 1
(an instability created by the Euler step itself); both are reported so this can be seen.

Free-run check.  From each mode's baseline start the network is run noise-free and input-free
for ``freerun_steps`` steps; the first quarter is discarded and the peak of the periodogram
(Hann window, linear trend removed) of z = mean_i r_i over the rest is ``freerun_peak_hz``.  It is
NaN, with a reason, when z is flat (SD below :data:`FLAT_SD`), the oscillation is dying out (the
SD of the last half of the window below half that of the first half: the network settles on a
stable state), or the peak is too slow to be an oscillation in this window (see
:func:`freerun_peak`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize
from scipy.signal import detrend, periodogram

from rhythmswitch.network import Network

log = logging.getLogger(__name__)

CLIP = 0.9999  # baseline rates are clipped to +-CLIP before arctanh (current form)
MAX_ITER = 100  # damped-Newton iterations per start (a regular zero needs < 15)
FLAT_SD = 1e-6  # SD of z (rate units) below which a free run counts as flat
MIN_FREQ_HZ = 1.0  # the dominant eigenvalue (and a free-run peak) must lie above this
MIN_CYCLES = 3  # a free-run peak must hold at least this many cycles in the analysed window
_MIN_PROGRESS = 1e-6  # a start stops when an iteration lowers |R|^2 by less than this fraction
_CHECK_EVERY = 16  # ... or when |R|^2 has not halved over this many iterations
_POLISH_ITER = 200  # L-BFGS-B iterations when a mode's starts are all stuck
_N_SCALES = 16  # step lengths 2^-k, k = 0 .. 15, tried per direction and iteration
_COST_DONE = 1e-28  # |R|^2 at which a start stops iterating


@dataclass(frozen=True, eq=False)
class FixedPoint:
    """One (merged) fixed point.

    ``x_star`` (N,) is the state (x for the current form, h for the rate form); ``q`` is
    |F(x*) - x*|^2; ``eigvals`` (N,) complex are those of J; ``modes`` lists the modes whose
    starts converged here and ``n_starts`` how many starts did.
    """

    x_star: np.ndarray
    q: float
    eigvals: np.ndarray
    n_unstable: int
    dominant_freq_hz: float
    dominant_abs: float
    modes: tuple[int, ...]
    n_starts: int


@dataclass(frozen=True, eq=False)
class FixedPointSummary:
    """The best point reached from one mode's starts, linearised, plus the free-run check.

    Best = among the converged points from this mode's starts the one nearest (Euclidean, state
    space) to the mode's unperturbed baseline start (all converged points have q at round-off
    level, so "lowest q" would pick at random among them); when none converged, the lowest-q
    point, with ``reason`` saying so and the fixed-point quantities NaN (``n_unstable = -1``).
    """

    mode: int
    q: float
    x_star: np.ndarray
    n_unstable: int
    dominant_freq_hz: float
    dominant_abs: float
    eigvals: np.ndarray
    dominant_freq_ct_hz: float
    dominant_growth_ct: float
    freerun_peak_hz: float
    reason: str
    residual_ode: float = float("nan")  # |R(x*)|^2, the leak-free residual (see module doc)
    converged: bool = False


@dataclass(frozen=True, eq=False)
class FixedPointResult:
    per_mode: list[FixedPointSummary]
    unique: list[FixedPoint]


# -- device kernels (float64 under a local enable_x64) -------------------------------------


def _residual(x, w_rec, b, form: str):
    """Leak-free residual R(x) = (F(x) - x) / a, shape (N,)."""
    if form == "current":
        return -x + b + w_rec @ jnp.tanh(x)
    return -x + jnp.tanh(w_rec @ x + b)


def _residual_jac(x, w_rec, b, form: str):
    """dR/dx = (J - I) / a, shape (N, N)."""
    n = x.shape[0]
    if form == "current":
        return -jnp.eye(n, dtype=x.dtype) + w_rec * (1.0 - jnp.tanh(x) ** 2)[None, :]
    s = 1.0 - jnp.tanh(w_rec @ x + b) ** 2
    return -jnp.eye(n, dtype=x.dtype) + s[:, None] * w_rec


def _newton_solve(x0_sn, w_rec, b, form: str, max_iter: int):
    """Damped Newton on R(x) = 0 for every start at once; returns (x_sn, cost_s, iterations).

        Each iteration tries the Newton step dx = -(dR/dx)^-1 R and the steepest-descent step
        -(dR/dx)^T R of |R|^2, each scaled by 2^-k for k = 0 .. 15, and keeps the candidate with the
        lowest |R|^2 if it is lower than the current one.  A start stops at round-off, when an
    iteration lowers |R|^2 by less than the fraction :data:`_MIN_PROGRESS`, or when |R|^2 has not
    halved over :data:`_CHECK_EVERY` iterations: it is crawling into a slow point, where the
    Jacobian is singular and Newton steps shrink (a regular zero is approached quadratically).  Near
        a regular zero the full Newton step wins and convergence is quadratic.
    """
    scales = 2.0 ** -jnp.arange(_N_SCALES, dtype=x0_sn.dtype)

    def cost_of(x):
        r = _residual(x, w_rec, b, form)
        return jnp.sum(r * r)

    def one(x, cost, live):
        r = _residual(x, w_rec, b, form)
        jr = _residual_jac(x, w_rec, b, form)
        d_newton = jnp.linalg.solve(jr, -r)
        d_newton = jnp.where(jnp.all(jnp.isfinite(d_newton)), d_newton, 0.0)
        grad = jr.T @ r
        # steepest descent scaled to the Gauss-Newton step length along -grad
        jg = jr @ grad
        d_grad = -grad * (grad @ grad) / jnp.maximum(jg @ jg, 1e-300)
        cands = jnp.concatenate(
            [x + scales[:, None] * d_newton, x + scales[:, None] * d_grad], axis=0
        )
        costs = jax.vmap(cost_of)(cands)
        costs = jnp.where(jnp.isfinite(costs), costs, jnp.inf)
        k = jnp.argmin(costs)
        better = live & (costs[k] < cost)
        progress = costs[k] < (1.0 - _MIN_PROGRESS) * cost
        return (
            jnp.where(better, cands[k], x),
            jnp.where(better, costs[k], cost),
            better & progress & (costs[k] > _COST_DONE),
        )

    step_v = jax.vmap(one)

    def cond(state):
        _, _, live, _, it = state
        return (it < max_iter) & jnp.any(live)

    def body(state):
        x, cost, live, ckpt, it = state
        x, cost, live = step_v(x, cost, live)
        it = it + 1
        at_ckpt = (it % _CHECK_EVERY) == 0
        # creeping (into a slow point): |R|^2 not halved over the last _CHECK_EVERY iterations
        live = live & ~(at_ckpt & (cost > 0.5 * ckpt))
        ckpt = jnp.where(at_ckpt, cost, ckpt)
        return x, cost, live, ckpt, it

    cost0 = jax.vmap(cost_of)(x0_sn)
    live0 = jnp.isfinite(cost0) & (cost0 > _COST_DONE)
    x, cost, _, _, it = jax.lax.while_loop(cond, body, (x0_sn, cost0, live0, cost0, 0))
    return x, cost, it


_newton_solve_jit = jax.jit(_newton_solve, static_argnames=("form",))


def _freerun(x0_sn, w_rec, b, a, n_steps: int, form: str):
    """Noise-free, input-free run of every start; returns z (n_steps, S) after each step."""

    def body(x, _):
        if form == "current":
            x = (1.0 - a) * x + a * (b + jnp.tanh(x) @ w_rec.T)
            r = jnp.tanh(x)
        else:
            x = (1.0 - a) * x + a * jnp.tanh(x @ w_rec.T + b)
            r = x
        return x, jnp.mean(r, axis=-1)

    _, z = jax.lax.scan(body, x0_sn, None, length=n_steps)
    return z


_freerun_jit = jax.jit(_freerun, static_argnames=("n_steps", "form"))


# -- host logic ----------------------------------------------------------------------------


def map_F(net: Network, x_n: np.ndarray) -> np.ndarray:
    """The noise-free, input-free map F (NumPy float64), for one state or a batch (..., N)."""
    a, w, b = net.a, np.asarray(net.W_rec, np.float64), np.asarray(net.b, np.float64)
    x = np.asarray(x_n, np.float64)
    if net.form == "current":
        return (1.0 - a) * x + a * (b + np.tanh(x) @ w.T)
    return (1.0 - a) * x + a * np.tanh(x @ w.T + b)


def jacobian(net: Network, x_n: np.ndarray) -> np.ndarray:
    """J = dF/dx at one state x (N,), NumPy float64, shape (N, N)."""
    a, w, b = net.a, np.asarray(net.W_rec, np.float64), np.asarray(net.b, np.float64)
    x = np.asarray(x_n, np.float64)
    if net.form == "current":
        lin = w * (1.0 - np.tanh(x) ** 2)[None, :]
    else:
        lin = (1.0 - np.tanh(w @ x + b) ** 2)[:, None] * w
    return np.diag(1.0 - a) + a[:, None] * lin


def q_of(net: Network, x_n: np.ndarray) -> np.ndarray:
    """The paper's residual q(x) = |F(x) - x|^2 (over the last axis)."""
    d = map_F(net, x_n) - np.asarray(x_n, np.float64)
    return np.sum(d * d, axis=-1)


def dominant_eigenvalue(eigvals: np.ndarray, fs_hz: float) -> tuple[complex, float] | None:
    """The unstable (|mu| > 1) eigenvalue above :data:`MIN_FREQ_HZ` with the largest |mu|.

    Returns (mu, frequency in Hz) or None when there is none.
    """
    freqs = np.abs(np.angle(eigvals)) * fs_hz / (2.0 * np.pi)
    cand = (np.abs(eigvals) > 1.0) & (freqs > MIN_FREQ_HZ)
    if not np.any(cand):
        return None
    idx = np.flatnonzero(cand)
    best = idx[np.argmax(np.abs(eigvals[idx]))]
    return complex(eigvals[best]), float(freqs[best])


def freerun_peak(z_t: np.ndarray, fs_hz: float) -> tuple[float, str]:
    """Spectral peak of a free-run z (transient already removed); (NaN, reason) if none.

    z is linearly detrended first (a frozen neuron's slow drift is not an oscillation).  NaN
    when the detrended SD of the last half is below :data:`FLAT_SD`, below half that of the
    first half (a decaying oscillation), or when the peak holds fewer than :data:`MIN_CYCLES`
    cycles in the window or lies below :data:`MIN_FREQ_HZ`.
    """
    z = np.asarray(z_t, np.float64)
    if not np.all(np.isfinite(z)):
        return float("nan"), "free run diverged (non-finite z)"
    half = z.shape[0] // 2
    sd_first = float(np.std(detrend(z[:half], type="linear")))
    sd_last = float(np.std(detrend(z[half:], type="linear")))
    if sd_last < FLAT_SD:
        return float("nan"), f"free run does not oscillate (SD of z {sd_last:.2e} < {FLAT_SD:g})"
    if sd_last < 0.5 * sd_first:
        return float("nan"), (
            f"free run does not oscillate (SD of z falls from {sd_first:.2e} to {sd_last:.2e}: "
            "it settles on a stable state)"
        )
    f, p = periodogram(z, fs=fs_hz, window="hann", detrend="linear")
    peak = float(f[1:][np.argmax(p[1:])])
    f_min = max(MIN_FREQ_HZ, MIN_CYCLES * fs_hz / z.shape[0])
    if peak < f_min:
        return float("nan"), (
            f"free run does not oscillate (spectral peak {peak:.2f} Hz is below {f_min:.2f} Hz, "
            f"i.e. under {MIN_CYCLES} cycles in the window or under {MIN_FREQ_HZ:g} Hz)"
        )
    return peak, ""


def _check_inputs(net: Network, baselines_mn, **opts) -> np.ndarray:
    base = np.asarray(baselines_mn, dtype=np.float64)
    want = (net.n_modes, net.n_units)
    if base.shape != want:
        raise ValueError(
            f"baselines_mn must have shape (M, N) = {want} (modes x units of network "
            f"{net.name!r}), got shape {base.shape}"
        )
    if not np.all(np.isfinite(base)):
        raise ValueError("baselines_mn holds non-finite values (NaN or inf); rates must be finite")
    if net.form == "rate" and np.any(np.abs(base) > 1.0):
        log.warning("%s: rate-form baselines outside [-1, 1]; using them as given", net.name)
    checks = {
        "n_perturb": (opts["n_perturb"] >= 0, "an integer >= 0"),
        "perturb_scale": (opts["perturb_scale"] >= 0, "a float >= 0"),
        "tol_q": (opts["tol_q"] > 0, "a float > 0"),
        "merge_tol": (opts["merge_tol"] > 0, "a float > 0"),
        "freerun_steps": (opts["freerun_steps"] >= 64, "an integer >= 64"),
        "max_iter": (opts["max_iter"] >= 1, "an integer >= 1"),
    }
    for name, (ok, allowed) in checks.items():
        value = opts[name]
        if not np.isfinite(value) or not ok:
            raise ValueError(f"{name} = {value!r} is not allowed; it must be {allowed}")
    for name in ("n_perturb", "freerun_steps", "max_iter"):
        if int(opts[name]) != opts[name]:
            raise ValueError(f"{name} = {opts[name]!r} must be an integer")
    return base


def residual_ode(net: Network, x_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leak-free residual R(x) = (F(x) - x) / a and its Jacobian dR/dx (NumPy float64).

    Computed directly (not as (F - x) / a, which would lose ~log10(1/a) digits)."""
    w, b = np.asarray(net.W_rec, np.float64), np.asarray(net.b, np.float64)
    x = np.asarray(x_n, np.float64)
    eye = np.eye(x.shape[0])
    if net.form == "current":
        t = np.tanh(x)
        return -x + b + w @ t, -eye + w * (1.0 - t**2)[None, :]
    t = np.tanh(w @ x + b)
    return -x + t, -eye + (1.0 - t**2)[:, None] * w


def _polish(net: Network, x_n: np.ndarray) -> tuple[np.ndarray, float]:
    """Refine one stuck start: L-BFGS-B on |R|^2 (as the paper, but leak-free), then Newton."""

    w, b = np.asarray(net.W_rec, np.float64), np.asarray(net.b, np.float64)

    def cost_grad(x):  # |R|^2 and 2 (dR/dx)^T R by matrix-vector products only
        if net.form == "current":
            t = np.tanh(x)
            r = -x + b + w @ t
            g = -r + (1.0 - t**2) * (w.T @ r)
        else:
            t = np.tanh(w @ x + b)
            r = -x + t
            g = -r + w.T @ ((1.0 - t**2) * r)
        return float(r @ r), 2.0 * g

    opt = minimize(
        cost_grad,
        x_n,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": _POLISH_ITER, "ftol": 0.0, "gtol": 1e-14},
    )
    x, cost = np.asarray(opt.x, np.float64), float(opt.fun)
    for _ in range(30):  # Newton with step halving; quadratic if L-BFGS-B ended near a zero
        if cost <= _COST_DONE:
            break
        r, jr = residual_ode(net, x)
        try:
            dx = np.linalg.solve(jr, -r)
        except np.linalg.LinAlgError:
            break
        for k in range(_N_SCALES):
            x_try = x + dx * 2.0**-k
            r_try, _ = residual_ode(net, x_try)
            c_try = float(r_try @ r_try)
            if np.isfinite(c_try) and c_try < cost:
                break
        else:
            break
        if c_try > (1.0 - _MIN_PROGRESS) * cost:
            x, cost = x_try, c_try
            break
        x, cost = x_try, c_try
    return x, cost


def _start_states(net: Network, base_mn: np.ndarray) -> np.ndarray:
    if net.form == "current":
        return np.arctanh(np.clip(base_mn, -CLIP, CLIP))
    return base_mn.copy()


def _merge(x_sn: np.ndarray, q_s: np.ndarray, ok_s: np.ndarray, tol: float) -> np.ndarray:
    """Greedy merge in order of increasing q; returns the representative index of each start
    (-1 for starts that did not converge)."""
    rep = np.full(x_sn.shape[0], -1, dtype=int)
    kept: list[int] = []
    for i in np.argsort(q_s, kind="stable"):
        if not ok_s[i]:
            continue
        for k in kept:
            if np.linalg.norm(x_sn[i] - x_sn[k]) < tol:
                rep[i] = k
                break
        else:
            kept.append(int(i))
            rep[i] = i
    return rep


def _linearise(net: Network, x_star: np.ndarray) -> tuple[np.ndarray, int, complex | None, float]:
    eig = np.linalg.eigvals(jacobian(net, x_star))
    n_unst = int(np.sum(np.abs(eig) > 1.0))
    dom = dominant_eigenvalue(eig, net.fs_hz)
    if dom is None:
        return eig, n_unst, None, float("nan")
    return eig, n_unst, dom[0], dom[1]


def find_fixed_points(
    net: Network,
    baselines_mn: np.ndarray,
    *,
    n_perturb: int = 16,
    perturb_scale: float = 0.05,
    key_seed: int = 0,
    tol_q: float = 1e-10,
    merge_tol: float = 1e-3,
    freerun_steps: int = 4000,
    max_iter: int = MAX_ITER,
) -> FixedPointResult:
    """Fixed points of ``net``'s input-free map from each mode's baseline (see module doc).

    ``baselines_mn`` (M, N) are the per-mode mean rates r_i.  Starts: per mode the baseline state
    plus ``n_perturb`` Gaussian perturbations of SD ``perturb_scale`` (in state units; drawn from
    ``numpy.random.default_rng(key_seed)``).  ``max_iter`` caps the Newton iterations per
    start.  Returns per-mode summaries and the merged unique
    converged points (sorted by q).
    """
    base = _check_inputs(
        net,
        baselines_mn,
        n_perturb=n_perturb,
        perturb_scale=perturb_scale,
        tol_q=tol_q,
        merge_tol=merge_tol,
        freerun_steps=freerun_steps,
        max_iter=max_iter,
    )
    n_modes, n = base.shape
    n_perturb = int(n_perturb)
    x_base = _start_states(net, base)  # (M, N)
    rng = np.random.default_rng(key_seed)
    noise = rng.standard_normal((n_modes, n_perturb, n)) * perturb_scale
    starts = np.concatenate([x_base[:, None, :], x_base[:, None, :] + noise], axis=1)
    per = 1 + n_perturb
    starts_sn = starts.reshape(n_modes * per, n)
    mode_of = np.repeat(np.arange(n_modes), per)

    with jax.enable_x64(True):
        w = jnp.asarray(net.W_rec, jnp.float64)
        b = jnp.asarray(net.b, jnp.float64)
        a = jnp.asarray(net.a, jnp.float64)
        x_sn, cost_s, iters = _newton_solve_jit(
            jnp.asarray(starts_sn), w, b, form=net.form, max_iter=int(max_iter)
        )
        z_tm = _freerun_jit(jnp.asarray(x_base), w, b, a, n_steps=int(freerun_steps), form=net.form)
        x_sn, cost_s = np.array(x_sn), np.array(cost_s)
        z_tm = np.asarray(z_tm)
    log.debug("%s: %d starts, %d Newton iterations", net.name, starts_sn.shape[0], int(iters))

    def converged(q, cost):
        return np.isfinite(q) & (q <= tol_q) & np.isfinite(cost) & (cost <= tol_q)

    q_s = q_of(net, x_sn)
    ok_s = converged(q_s, cost_s)
    # a mode none of whose starts converged: L-BFGS-B then Newton from its baseline start; if
    # that ends lower, it replaces the mode's best stuck start
    for m in range(n_modes):
        idx = np.flatnonzero(mode_of == m)
        if ok_s[idx].any():
            continue
        i = int(idx[np.argmin(np.where(np.isfinite(cost_s[idx]), cost_s[idx], np.inf))])
        if not np.all(np.isfinite(x_sn[i])):
            continue
        x_new, c_new = _polish(net, x_base[m])  # from the paper's start
        if np.isfinite(c_new) and c_new < cost_s[i]:
            x_sn[i], cost_s[i] = x_new, c_new
            q_s[i] = q_of(net, x_new)
            ok_s[i] = converged(q_s[i], c_new)
        log.debug("%s mode %d: polished start %d to |R|^2 = %.3g", net.name, m, i, cost_s[i])
    rep = _merge(x_sn, q_s, ok_s, merge_tol)

    lin_cache: dict[int, tuple[np.ndarray, int, complex | None, float]] = {}

    def lin(i: int):
        if i not in lin_cache:
            lin_cache[i] = _linearise(net, x_sn[i])
        return lin_cache[i]

    unique: list[FixedPoint] = []
    for k in sorted(set(rep[rep >= 0].tolist()), key=lambda i: (q_s[i], i)):
        members = np.flatnonzero(rep == k)
        eig, n_unst, mu, freq = lin(k)
        unique.append(
            FixedPoint(
                x_star=x_sn[k].copy(),
                q=float(q_s[k]),
                eigvals=eig,
                n_unstable=n_unst,
                dominant_freq_hz=freq,
                dominant_abs=float("nan") if mu is None else abs(mu),
                modes=tuple(sorted({int(m) for m in mode_of[members]})),
                n_starts=int(members.size),
            )
        )

    skip = int(freerun_steps) // 4
    per_mode: list[FixedPointSummary] = []
    for m in range(n_modes):
        idx = np.flatnonzero(mode_of == m)
        reasons: list[str] = []
        conv = idx[ok_s[idx]]
        if conv.size:
            reps = rep[conv]
            dist = np.linalg.norm(x_sn[reps] - x_base[m], axis=1)
            best = int(reps[np.argmin(dist)])
            eig, n_unst, mu, freq = lin(best)
            if mu is None:
                reasons.append(
                    f"no unstable eigenvalue above {MIN_FREQ_HZ:g} Hz ({n_unst} unstable in total)"
                )
                f_ct = g_ct = dom_abs = float("nan")
            else:
                nu = (mu - 1.0) / net.dt_s
                f_ct, g_ct, dom_abs = abs(nu.imag) / (2 * np.pi), nu.real, abs(mu)
        else:
            best = int(idx[np.nanargmin(np.where(np.isfinite(q_s[idx]), q_s[idx], np.inf))])
            reasons.append(
                f"q above tolerance (best q = {q_s[best]:.3g}, leak-free residual "
                f"{cost_s[best]:.3g}, tol_q = {tol_q:g}): no fixed point reached from this "
                "mode's starts"
            )
            eig = np.full(n, np.nan + 1j * np.nan)
            n_unst, freq, f_ct, g_ct, dom_abs = -1, float("nan"), float("nan"), float("nan"), np.nan
        peak, why = freerun_peak(z_tm[skip:, m], net.fs_hz)
        if why:
            reasons.append(why)
        per_mode.append(
            FixedPointSummary(
                mode=m,
                q=float(q_s[best]),
                x_star=x_sn[best].copy(),
                n_unstable=n_unst,
                dominant_freq_hz=freq,
                dominant_abs=float(dom_abs),
                eigvals=eig,
                dominant_freq_ct_hz=float(f_ct),
                dominant_growth_ct=float(g_ct),
                freerun_peak_hz=peak,
                reason="; ".join(reasons),
                residual_ode=float(cost_s[best]),
                converged=bool(conv.size),
            )
        )
    return FixedPointResult(per_mode=per_mode, unique=unique)
