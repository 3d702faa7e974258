"""Fixed points of the input-free map: hand-built networks whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq, minimize

from rhythmswitch.analysis.fixed_points import (
    FixedPointResult,
    _merge,
    find_fixed_points,
    jacobian,
    map_F,
    q_of,
)
from rhythmswitch.network import Network

DT = 1e-3


def make_net(w, b, a, form="current", n_modes=1):
    n = np.asarray(w).shape[0]
    bands = [[4, 7], [8, 13], [14, 29], [30, 50]][:n_modes]
    return Network.from_a(
        W_rec=np.asarray(w, float),
        W_in=np.zeros((n, n_modes)),
        b=np.asarray(b, float),
        a=np.asarray(a, float),
        dt_s=DT,
        bands_hz=bands,
        mode_names=[f"m{k}" for k in range(n_modes)],
        form=form,
    )


def sorted_eig(e):
    e = np.asarray(e)
    return e[np.lexsort((np.round(e.imag, 9), np.round(e.real, 9)))]


def rotation_net(a, f_hz, rho):
    """Two units, W = g R(theta) chosen so the origin's eigenvalues are mu = rho exp(+-i 2pi f dt)."""
    mu = rho * np.exp(2j * np.pi * f_hz * DT)
    c = (mu - (1 - a)) / a  # J = (1 - a) I + a g R(theta) at the origin (tanh'(0) = 1)
    g, th = abs(c), np.angle(c)
    w = g * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    return make_net(w, np.zeros(2), np.full(2, a)), mu, g, th


def test_zero_bias_origin_eigenvalues_match_numpy():
    rng = np.random.default_rng(1)
    n = 6
    w = rng.standard_normal((n, n))
    w *= 0.8 / np.linalg.norm(w, 2)  # |W| < 1: the origin is the only fixed point
    a = np.array([0.2, 0.05, 0.02, 0.01, 0.003, 1e-6])  # includes a frozen neuron (1000 s)
    net = make_net(w, np.zeros(n), a, n_modes=2)
    base = np.tanh(0.5 * rng.standard_normal((2, n)))
    res = find_fixed_points(net, base, n_perturb=3, freerun_steps=1200)
    assert isinstance(res, FixedPointResult)
    assert len(res.unique) == 1
    assert res.unique[0].modes == (0, 1) and res.unique[0].n_starts == 8
    j_ref = np.diag(1 - a) + np.diag(a) @ w
    for s in res.per_mode:
        assert s.converged and s.q < 1e-20
        np.testing.assert_allclose(s.x_star, 0.0, atol=1e-10)
        np.testing.assert_allclose(
            sorted_eig(s.eigvals), sorted_eig(np.linalg.eigvals(j_ref)), atol=1e-12
        )
        assert s.n_unstable == 0
        assert np.isnan(s.dominant_freq_hz) and np.isnan(s.dominant_freq_ct_hz)
        assert np.isnan(s.freerun_peak_hz)
        assert "no unstable eigenvalue" in s.reason and "does not oscillate" in s.reason


def test_two_unit_oscillator_frequency_and_free_run():
    a, f_lin, rho = 0.02, 8.0, 1.003
    net, mu, g, th = rotation_net(a, f_lin, rho)
    steps = 4000
    res = find_fixed_points(net, np.array([[0.02, 0.0]]), n_perturb=2, freerun_steps=steps)
    s = res.per_mode[0]
    assert s.converged and np.linalg.norm(s.x_star) < 1e-10
    assert s.n_unstable == 2
    assert s.dominant_freq_hz == pytest.approx(abs(np.angle(mu)) / (2 * np.pi * DT), abs=1e-9)
    assert s.dominant_freq_hz == pytest.approx(f_lin, abs=1e-9)
    assert s.dominant_abs == pytest.approx(rho, abs=1e-12)
    # continuous time: the ODE Jacobian (J - I)/dt has nu = a (g e^{i th} - 1) / dt
    nu = a * (g * np.exp(1j * th) - 1) / DT
    assert s.dominant_freq_ct_hz == pytest.approx(abs(nu.imag) / (2 * np.pi), rel=1e-9)
    assert s.dominant_growth_ct == pytest.approx(nu.real, rel=1e-9)
    # Free run.  The limit cycle is slower than the linear focus: tanh saturation lowers the
    # effective gain until |mu| = 1, i.e. to the Hopf gain g_h at the same angle, whose
    # frequency f_h is computed exactly below.  rho is just above 1, so f_lin - f_h is small
    # (~0.4 Hz); the peak must lie in [f_h, f_lin] up to two periodogram bins.
    qa, qb, qc = a * a, 2 * a * (1 - a) * np.cos(th), (1 - a) ** 2 - 1
    g_h = (-qb + np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)
    f_h = np.angle(1 - a + a * g_h * np.exp(1j * th)) / (2 * np.pi * DT)
    assert f_lin - 1.0 < f_h < f_lin
    bin_hz = 1.0 / (DT * (steps - steps // 4))
    assert f_h - 2 * bin_hz <= s.freerun_peak_hz <= f_lin + 2 * bin_hz
    assert s.reason == ""


def test_known_nonzero_fixed_point_current_form_with_frozen_neuron():
    rng = np.random.default_rng(2)
    n = 5
    w = 1.2 * rng.standard_normal((n, n)) / np.sqrt(n)
    x_star = 0.8 * rng.standard_normal(n)
    b = x_star - w @ np.tanh(x_star)  # so that F(x*) = x*
    a = np.array([0.1, 0.02, 0.005, 0.2, 1e-6])
    net = make_net(w, b, a, n_modes=2)
    assert q_of(net, x_star) < 1e-28
    base = np.tanh(x_star + 0.03 * rng.standard_normal((2, n)))
    res = find_fixed_points(net, base, n_perturb=2, freerun_steps=800)
    j_ref = np.diag(1 - a) + a[:, None] * w * (1 - np.tanh(x_star) ** 2)[None, :]
    for s in res.per_mode:
        assert s.converged and s.q < 1e-12 and s.residual_ode < 1e-12
        np.testing.assert_allclose(s.x_star, x_star, atol=1e-8)
        np.testing.assert_allclose(
            sorted_eig(s.eigvals), sorted_eig(np.linalg.eigvals(j_ref)), atol=1e-10
        )
        assert s.n_unstable == int(np.sum(np.abs(np.linalg.eigvals(j_ref)) > 1))


def test_known_fixed_point_rate_form():
    rng = np.random.default_rng(3)
    n = 5
    w = 1.3 * rng.standard_normal((n, n)) / np.sqrt(n)
    h_star = 0.7 * np.tanh(rng.standard_normal(n))
    b = np.arctanh(h_star) - w @ h_star  # tanh(W h* + b) = h*
    a = np.array([0.05, 0.02, 0.1, 0.01, 0.3])
    net = make_net(w, b, a, form="rate")
    np.testing.assert_allclose(map_F(net, h_star), h_star, atol=1e-14)
    res = find_fixed_points(net, (h_star + 0.02)[None, :], n_perturb=2, freerun_steps=800)
    s = res.per_mode[0]
    assert s.converged and s.q < 1e-12
    np.testing.assert_allclose(s.x_star, h_star, atol=1e-8)
    j_ref = np.diag(1 - a) + np.diag(a) @ np.diag(1 - h_star**2) @ w
    np.testing.assert_allclose(jacobian(net, h_star), j_ref, atol=1e-14)
    np.testing.assert_allclose(
        sorted_eig(s.eigvals), sorted_eig(np.linalg.eigvals(j_ref)), atol=1e-10
    )


def test_bistable_unit_three_points_merged_by_mode():
    # one unit, R(x) = -x + 2 tanh(x): fixed points 0 and +-x_hat with x_hat = 2 tanh(x_hat)
    x_hat = brentq(lambda x: -x + 2 * np.tanh(x), 0.5, 5.0)
    a = 0.05
    net = make_net([[2.0]], [0.0], [a], n_modes=4)
    base = np.tanh(np.array([[2.0], [-2.2], [0.0], [1.6]]))
    res = find_fixed_points(net, base, n_perturb=4, perturb_scale=0.05, freerun_steps=800)
    assert len(res.unique) == 3
    neg, origin, pos = sorted(res.unique, key=lambda p: p.x_star[0])
    assert [neg.x_star[0], origin.x_star[0], pos.x_star[0]] == pytest.approx(
        [-x_hat, 0.0, x_hat], abs=1e-9
    )
    assert pos.modes == (0, 3) and pos.n_starts == 10
    assert neg.modes == (1,) and neg.n_starts == 5
    assert origin.modes == (2,) and origin.n_unstable == 1  # mu = 1 + a, real: no frequency
    assert origin.eigvals[0] == pytest.approx(1 + a, abs=1e-12)
    assert np.isnan(origin.dominant_freq_hz)
    stable_mu = 1 - a + a * 2 * (1 - np.tanh(x_hat) ** 2)
    assert pos.eigvals[0].real == pytest.approx(stable_mu, abs=1e-10) and pos.n_unstable == 0
    assert [s.x_star[0] for s in res.per_mode] == pytest.approx([x_hat, -x_hat, 0, x_hat])


def test_merge_rule_on_hand_made_points():
    tol = 1e-3
    x = np.array([[0.0, 0.0], [0.4e-3, 0.0], [0.0, 2e-3], [5.0, 5.0], [5.0, 5.0]])
    q = np.array([1e-20, 1e-25, 1e-22, 1e-18, 1e-19])
    ok = np.array([True, True, True, True, False])
    rep = _merge(x, q, ok, tol)
    # greedy in order of increasing q: point 1 (lowest q) represents point 0; 2 and 3 stand alone
    assert rep.tolist() == [1, 1, 2, 3, -1]


def test_agrees_with_scipy_lbfgsb():
    rng = np.random.default_rng(4)
    n = 8
    w = 1.4 * rng.standard_normal((n, n)) / np.sqrt(n)
    b = 0.3 * rng.standard_normal(n)
    a = np.exp(rng.uniform(np.log(0.01), np.log(0.2), n))
    net = make_net(w, b, a)
    base = np.tanh(0.5 * rng.standard_normal((1, n)))
    x0 = np.arctanh(base[0])

    def q_and_grad(x):
        d = map_F(net, x) - x
        return d @ d, 2 * (jacobian(net, x) - np.eye(n)).T @ d

    ref = minimize(
        q_and_grad,
        x0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 20000, "ftol": 0.0, "gtol": 1e-15, "maxcor": 30},
    )
    assert (
        ref.fun < 1e-14
    )  # scipy found a fixed point from this start (by construction of the seed)
    res = find_fixed_points(net, base, n_perturb=0, freerun_steps=800)
    s = res.per_mode[0]
    assert s.converged and s.q <= ref.fun
    np.testing.assert_allclose(s.x_star, ref.x, atol=1e-5)


def test_slow_point_is_reported_not_hidden():
    # one unit, R(x) = -x + b + 2 tanh(x) with b = 0.6: R has a local minimum at
    # x_c = -arctanh(1/sqrt 2) where R = b - (2 sqrt(1/2) - x_c...) > 0, a slow point, not a zero
    b, a = 0.6, 0.05
    x_c = -np.arctanh(1 / np.sqrt(2))
    r_c = -x_c + b + 2 * np.tanh(x_c)
    assert r_c > 0
    net = make_net([[2.0]], [b], [a])
    res = find_fixed_points(net, np.tanh([[x_c]]), n_perturb=0, freerun_steps=800)
    s = res.per_mode[0]
    assert not s.converged and s.n_unstable == -1
    assert "q above tolerance" in s.reason
    assert s.q == pytest.approx(a * a * r_c * r_c, rel=1e-6)
    assert np.all(np.isnan(s.eigvals)) and np.isnan(s.dominant_freq_hz)
    assert res.unique == []


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"baselines_mn": np.zeros((3, 4))}, "(3, 4)"),
        ({"baselines_mn": np.zeros(2)}, "(2,)"),
        ({"baselines_mn": np.full((1, 2), np.nan)}, "non-finite"),
        ({"n_perturb": -1}, "n_perturb"),
        ({"tol_q": 0.0}, "tol_q"),
        ({"merge_tol": -1.0}, "merge_tol"),
        ({"freerun_steps": 10}, "freerun_steps"),
    ],
)
def test_bad_input_names_the_problem(kwargs, needle):
    net = make_net(np.eye(2), np.zeros(2), np.full(2, 0.1))
    args = {"baselines_mn": np.zeros((1, 2)), **kwargs}
    with pytest.raises(ValueError, match=None) as err:
        find_fixed_points(net, args.pop("baselines_mn"), **args)
    assert needle in str(err.value)
