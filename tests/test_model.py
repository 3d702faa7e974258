import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from conftest import random_network
from rhythmswitch.config import ModelConfig, TaskConfig
from rhythmswitch.model import (
    a_from_raw,
    hash_normal,
    init_params,
    noise_array,
    params_to_network,
    project,
    raw_from_a,
    run,
    simulate,
)


def test_linear_network_matches_closed_form():
    """With tanh replaced by the identity the update is x[t+1] = A x[t] + a*(W_in u + b)."""
    net = random_network(n=6, m=2, gain=0.8)
    a = net.a
    A = np.diag(1 - a) + np.diag(a) @ net.W_rec
    T = 50
    u = np.zeros((T, 2))
    u[5:15, 1] = 1.0
    x0 = np.linspace(-0.5, 0.5, 6)
    xs = run(
        *(jnp.asarray(v, jnp.float32) for v in (net.W_rec, net.W_in, net.b, a)),
        jnp.asarray(u, jnp.float32),
        jnp.asarray(x0, jnp.float32),
        None,
        0.0,
        "current",
        phi=lambda v: v,
    )
    # closed form: x_T = A^T x0 + sum_k A^(T-1-k) a (W_in u_k + b)
    expected = []
    for t in range(1, T + 1):
        xt = np.linalg.matrix_power(A, t) @ x0
        for k in range(t):
            xt = xt + np.linalg.matrix_power(A, t - 1 - k) @ (a * (net.W_in @ u[k] + net.b))
        expected.append(xt)
    np.testing.assert_allclose(np.asarray(xs), np.array(expected), rtol=1e-4, atol=1e-5)


def test_simulate_matches_a_numpy_loop_for_both_forms():
    for form in ("current", "rate"):
        net = random_network(n=8, m=4, form=form, seed=3)
        u = np.zeros((300, 4))
        u[10:60, 2] = 1.0
        traj = simulate(net, u)
        x = np.zeros(8)
        zs = []
        for t in range(300):
            if form == "current":
                x = (1 - net.a) * x + net.a * (net.W_in @ u[t] + net.b + net.W_rec @ np.tanh(x))
                zs.append(np.tanh(x).mean())
            else:
                x = (1 - net.a) * x + net.a * np.tanh(net.W_rec @ x + net.W_in @ u[t] + net.b)
                zs.append(x.mean())
        np.testing.assert_allclose(traj.z_t, zs, atol=2e-5)


def test_noisy_simulation_is_reproducible_and_uses_the_noise():
    net = random_network(n=8, m=4)
    u = np.zeros((200, 4))
    a = simulate(net, u, sigma=0.1, noise_seed=3).z_t
    b = simulate(net, u, sigma=0.1, noise_seed=3).z_t
    c = simulate(net, u, sigma=0.1, noise_seed=4).z_t
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_noise_gain_scales_each_units_noise():
    net = random_network(n=8, m=4, seed=5)
    u = np.zeros((200, 4))
    u[10:40, 1] = 1.0
    gain = np.array([1.0, 0.0, 2.0, 0.5, 0.0, 1.0, 1.0, 3.0])
    got = simulate(net, u, sigma=0.1, noise_seed=3, noise_gain_n=gain).z_t
    xi = np.asarray(noise_array(3, 200, (8,)), np.float64)
    x, zs = np.zeros(8), []
    for t in range(200):
        drive = net.W_in @ u[t] + net.b + net.W_rec @ np.tanh(x) + 0.1 * gain * xi[t]
        x = (1 - net.a) * x + net.a * drive
        zs.append(np.tanh(x).mean())
    np.testing.assert_allclose(got, zs, atol=2e-5)
    ones = simulate(net, u, sigma=0.1, noise_seed=3, noise_gain_n=np.ones(8)).z_t
    np.testing.assert_array_equal(ones, simulate(net, u, sigma=0.1, noise_seed=3).z_t)
    with pytest.raises(ValueError, match="noise_gain_n"):
        simulate(net, u, sigma=0.1, noise_gain_n=np.ones(7))


def test_hash_noise_is_standard_normal_and_uncorrelated():
    xi = np.asarray(noise_array(12345, 400, (50, 100))).ravel()
    assert np.all(np.isfinite(xi))
    assert abs(xi.mean()) < 0.003 and abs(xi.std() - 1) < 0.003
    assert stats.kstest(xi[:200_000], "norm").pvalue > 1e-3
    assert abs(stats.kurtosis(xi)) < 0.02 and abs(stats.skew(xi)) < 0.01
    grid = xi.reshape(400, 50 * 100)
    lag_t = np.corrcoef(grid[:-1].ravel(), grid[1:].ravel())[0, 1]
    lag_lane = np.corrcoef(grid[:, :-1].ravel(), grid[:, 1:].ravel())[0, 1]
    assert abs(lag_t) < 0.005 and abs(lag_lane) < 0.005
    other = np.asarray(noise_array(12346, 400, (50, 100))).ravel()
    assert abs(np.corrcoef(xi, other)[0, 1]) < 0.005


def test_hash_noise_extremes_are_finite():
    lanes = jnp.arange(1 << 20, dtype=jnp.uint32)
    vals = np.asarray(hash_normal(jnp.uint32(7), jnp.uint32(3), lanes))
    assert np.all(np.isfinite(vals)) and np.abs(vals).max() < 6.0


@pytest.mark.parametrize("param", ["alpha", "bounded"])
def test_tau_bijection_round_trip(param):
    model, task = ModelConfig(tau_param=param, tau_min_s=0.002), TaskConfig()
    a = jnp.asarray([1e-4, 0.02, 0.2, 0.45], jnp.float32)
    np.testing.assert_allclose(a_from_raw(raw_from_a(a, model, task), model, task), a, rtol=1e-4)
    if param == "bounded":
        wild = a_from_raw(jnp.asarray([-50.0, 0.0, 50.0]), model, task)
        assert np.all(np.asarray(wild) <= 0.5) and np.all(np.asarray(wild) >= 0)


def test_projection_keeps_a_nonnegative():
    model, task = ModelConfig(), TaskConfig()
    p = init_params(model, task, key=jax.random.PRNGKey(0))
    p = p._replace(tau_raw=p.tau_raw.at[0].set(-0.3))
    assert float(project(p, model).tau_raw[0]) == 0.0
    net = params_to_network(project(p, model), model, task)
    assert np.isfinite(net.tau_s[0]) and net.tau_s[0] > 100  # frozen neuron, floored a


def test_initialisations():
    task = TaskConfig()
    p = init_params(ModelConfig(), task, key=jax.random.PRNGKey(1))
    np.testing.assert_allclose(np.asarray(p.tau_raw), 0.02, rtol=1e-6)  # a = dt / 50 ms
    assert float(jnp.std(p.w_rec)) == pytest.approx(0.1, rel=0.05)  # N(0, 1/N)
    lim = np.sqrt(6 / 104)
    assert float(jnp.abs(p.w_in).max()) <= lim and float(jnp.abs(p.b).max()) == 0
    p = init_params(
        ModelConfig(tau_init="loguniform", tau_lo_s=0.005, tau_hi_s=0.3),
        task,
        key=jax.random.PRNGKey(1),
    )
    tau = task.dt_s / np.asarray(p.tau_raw)
    assert tau.min() >= 0.005 * 0.999 and tau.max() <= 0.3 * 1.001 and np.ptp(np.log(tau)) > 3


def test_w_rec_mean_shifts_only_the_mean():
    task = TaskConfig()
    key = jax.random.PRNGKey(2)
    base = np.asarray(init_params(ModelConfig(), task, key=key).w_rec)
    shifted = np.asarray(init_params(ModelConfig(w_rec_mean=0.8), task, key=key).w_rec)
    np.testing.assert_allclose(shifted - base, 0.8 / 100, atol=1e-7)
    # an outlier eigenvalue near the mean along the uniform direction, the bulk unchanged
    eig = np.linalg.eigvals(
        np.asarray(init_params(ModelConfig(w_rec_mean=3.0), task, key=key).w_rec)
    )
    assert np.abs(eig - 3.0).min() < 0.3


def test_simulate_batch_equals_the_reference_scan_with_explicit_noise():
    """z computed in the loop with in-loop noise = the states of ``run`` with ``noise_array``."""
    from rhythmswitch.model import simulate_batch

    for form in ("current", "rate"):
        net = random_network(n=10, m=4, seed=7, form=form)
        u = np.zeros((3, 400, 4), np.float32)
        for k in range(3):
            u[k, 20 + 30 * k : 80 + 30 * k, k] = 1.0
        for sigma in (0.0, 0.1):
            got = simulate_batch(net, u, sigma=sigma, noise_seed=5)
            noise = noise_array(5, 400, (3, 10)) if sigma else None
            xs = run(
                *(jnp.asarray(v, jnp.float32) for v in (net.W_rec, net.W_in, net.b, net.a)),
                jnp.asarray(np.swapaxes(u, 0, 1)),
                jnp.zeros((3, 10), jnp.float32),
                noise,
                sigma,
                form,
            )
            r = np.tanh(np.asarray(xs)) if form == "current" else np.asarray(xs)
            np.testing.assert_allclose(got, r.mean(axis=-1).T, rtol=1e-5, atol=1e-6)
        assert np.abs(got - simulate_batch(net, u, sigma=0.1, noise_seed=6)).max() > 1e-4
