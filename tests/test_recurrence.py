"""The hand-written VJP training kernel against the reference scan under plain autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhythmswitch.config import get_preset
from rhythmswitch.model import a_from_raw, init_params
from rhythmswitch.recurrence import flops_per_iteration, make_z_fn


@pytest.mark.parametrize(("chunk", "da_from_states"), [(7, False), (100, False), (7, True)])
def test_custom_vjp_equals_autodiff(chunk, da_from_states):
    cfg = get_preset("tiny")
    p = init_params(cfg.model, cfg.task, key=jax.random.PRNGKey(0))
    batch, n = 3, cfg.model.n_units
    kw = dict(window_steps=cfg.task.window_steps, n_units=n, batch=batch, sigma=0.1, chunk=chunk)
    z_custom, n_steps = make_z_fn(cfg.task, da_from_states=da_from_states, **kw)
    kw.pop("da_from_states", None)
    z_auto, _ = make_z_fn(cfg.task, grad_impl="autodiff", **kw)
    modes = jnp.array([[0, 1], [2, 3], [3, 0]], jnp.int32)
    x0 = 0.01 * jax.random.normal(jax.random.PRNGKey(1), (batch, n))
    seed = jnp.uint32(99)
    a = a_from_raw(p.tau_raw, cfg.model, cfg.task)
    b = p.b + 0.1
    weights = jax.random.normal(jax.random.PRNGKey(2), (batch, n_steps))

    def loss(fn):
        return lambda w, wi, bb, aa: jnp.sum(
            weights * jnp.sin(3 * fn(w, wi, bb, aa, x0, modes, seed))
        )

    np.testing.assert_allclose(
        z_custom(p.w_rec, p.w_in, b, a, x0, modes, seed),
        z_auto(p.w_rec, p.w_in, b, a, x0, modes, seed),
        atol=1e-6,
    )
    g_c = jax.grad(loss(z_custom), argnums=(0, 1, 2, 3))(p.w_rec, p.w_in, b, a)
    g_a = jax.grad(loss(z_auto), argnums=(0, 1, 2, 3))(p.w_rec, p.w_in, b, a)
    for gc, ga in zip(g_c, g_a, strict=True):
        np.testing.assert_allclose(
            np.asarray(gc), np.asarray(ga), rtol=2e-4, atol=2e-5 * float(jnp.abs(ga).max())
        )


def test_explicit_noise_array_path_matches_autodiff():
    cfg = get_preset("tiny")
    p = init_params(cfg.model, cfg.task, key=jax.random.PRNGKey(3))
    batch, n = 2, cfg.model.n_units
    kw = dict(window_steps=cfg.task.window_steps, n_units=n, batch=batch, sigma=0.2, chunk=50)
    z_custom, n_steps = make_z_fn(cfg.task, **kw)
    z_auto, _ = make_z_fn(cfg.task, grad_impl="autodiff", **kw)
    noise = jax.random.normal(jax.random.PRNGKey(4), (n_steps, batch, n))
    modes = jnp.array([[1, 2], [0, 0]], jnp.int32)
    x0 = jnp.zeros((batch, n))
    a = a_from_raw(p.tau_raw, cfg.model, cfg.task)
    f = lambda fn: lambda w: jnp.sum(fn(w, p.w_in, p.b, a, x0, modes, noise) ** 2)  # noqa: E731
    np.testing.assert_allclose(
        jax.grad(f(z_custom))(p.w_rec), jax.grad(f(z_auto))(p.w_rec), rtol=1e-3, atol=1e-5
    )


def test_flop_formula_matches_method_section_5():
    assert flops_per_iteration(100, 50, 13_600) == pytest.approx(3 * 13.6e9, rel=1e-9)


def test_a_gradient_from_states_needs_a_bounded_away_from_zero():
    from rhythmswitch.config import apply_overrides
    from rhythmswitch.train import a_stays_large

    cfg = apply_overrides(get_preset("paper"), ["train.learning_rate=1e-4"])
    raw = jnp.full((2, 5), 0.02)  # alpha: tau_raw is a
    assert a_stays_large(cfg, raw, 10)  # 0.02 - 3.2e-3 >= 1e-3
    assert not a_stays_large(cfg, raw.at[1, 3].set(0.0), 10)  # a = 0 (the paper's projection)
    assert not a_stays_large(cfg, raw, 100)  # 100 updates could reach 0
    auto = apply_overrides(cfg, ["train.grad_impl=autodiff"])
    assert not a_stays_large(auto, raw, 1)


@pytest.mark.parametrize("da_from_states", [False, True])
def test_truncated_backprop_equals_autodiff_with_stop_gradient(da_from_states):
    """``cut_at``: the kernel's backward pass against autodiff of the reference scan with
    ``stop_gradient`` on the states entering the cut steps; the values are those of no cut."""
    cfg = get_preset("tiny")
    p = init_params(cfg.model, cfg.task, key=jax.random.PRNGKey(5))
    batch, n = 2, cfg.model.n_units
    kw = dict(window_steps=cfg.task.window_steps, n_units=n, batch=batch, sigma=0.1, chunk=30)
    interval = cfg.task.transient_steps + cfg.task.window_steps
    cut = (cfg.task.wait_steps + interval, 55)
    z_cut, n_steps = make_z_fn(cfg.task, cut_at=cut, da_from_states=da_from_states, **kw)
    z_ref, _ = make_z_fn(cfg.task, cut_at=cut, grad_impl="autodiff", **kw)
    z_full, _ = make_z_fn(cfg.task, grad_impl="autodiff", **kw)
    modes = jnp.array([[0, 3], [2, 1]], jnp.int32)
    x0 = 0.01 * jax.random.normal(jax.random.PRNGKey(6), (batch, n))
    seed = jnp.uint32(7)
    a = a_from_raw(p.tau_raw, cfg.model, cfg.task)
    weights = jax.random.normal(jax.random.PRNGKey(8), (batch, n_steps))

    def loss(fn):
        return lambda w, wi, bb, aa: jnp.sum(weights * fn(w, wi, bb, aa, x0, modes, seed) ** 2)

    args = (p.w_rec, p.w_in, p.b + 0.1, a)
    np.testing.assert_allclose(
        z_cut(*args, x0, modes, seed), z_full(*args, x0, modes, seed), atol=1e-6
    )
    g_cut = jax.grad(loss(z_cut), argnums=(0, 1, 2, 3))(*args)
    g_ref = jax.grad(loss(z_ref), argnums=(0, 1, 2, 3))(*args)
    g_full = jax.grad(loss(z_full), argnums=(0, 1, 2, 3))(*args)
    for gc, gr, gf in zip(g_cut, g_ref, g_full, strict=True):
        scale = float(jnp.abs(gr).max())
        np.testing.assert_allclose(np.asarray(gc), np.asarray(gr), rtol=2e-4, atol=2e-5 * scale)
        assert float(jnp.abs(gr - gf).max()) > 1e-3 * scale  # the cut changes the gradient
