"""Evaluation against an independent NumPy simulation of METHOD sections 2-4."""

import numpy as np
import pytest

from conftest import random_network
from rhythmswitch.config import TaskConfig
from rhythmswitch.evaluate import evaluate_network, write_evaluations
from rhythmswitch.network import save_network


def _numpy_ratios(net, modes, seg=8000, drop=500, wait=100, pulse=100):
    """Simulate from x = 0 with a plain loop and score each segment by hand."""
    n_steps = wait + len(modes) * seg
    u = np.zeros((n_steps, net.n_modes))
    for j, m in enumerate(modes):
        u[wait + j * seg : wait + j * seg + pulse, m] = 1.0
    x = np.zeros(net.n_units)
    z = np.empty(n_steps)
    for t in range(n_steps):
        x = (1 - net.a) * x + net.a * (net.W_in @ u[t] + net.b + net.W_rec @ np.tanh(x))
        z[t] = np.tanh(x).mean()
    out = []
    for j, m in enumerate(modes):
        w = z[wait + j * seg + drop : wait + (j + 1) * seg]
        p = np.abs(np.fft.rfft(w)[1 : len(w) // 2 + 1]) ** 2
        f = np.arange(1, len(w) // 2 + 1) * 1000.0 / len(w)
        lo, hi = net.bands_hz[m]
        out.append(p[(f >= lo) & (f < hi)].sum() / p.sum())
    return out


def test_sequence_and_transition_ratios_match_independent_simulation():
    net = random_network(n=10, seed=7, gain=2.5)
    ev = evaluate_network(net, sigma=0.1)
    expected = _numpy_ratios(net, [0, 1, 2, 3])
    for m, name in enumerate(net.mode_names):
        assert ev.ratio("sequence", name, 0.0) == pytest.approx(expected[m], abs=0.01)
    expected = _numpy_ratios(net, [3, 1])
    assert ev.ratio("gamma->alpha", "gamma", 0.0) == pytest.approx(expected[0], abs=0.01)
    assert ev.ratio("gamma->alpha", "alpha", 0.0) == pytest.approx(expected[1], abs=0.01)
    # 1 sequence x 4 modes + 12 transitions x 2 modes, noise-free and noisy
    assert len(ev.rows) == 2 * (4 + 24)
    assert {r.noise for r in ev.rows} == {0.0, 0.1}


def test_converged_flag_uses_every_run(tmp_path):
    net = random_network(n=10, seed=7, gain=2.5)
    ev = evaluate_network(net, TaskConfig(eval_steps_per_mode=1000, eval_drop_steps=200), sigma=0.0)
    assert ev.converged == (min(r.ratio for r in ev.rows) >= 0.99)
    long_path, summary_path = write_evaluations([ev], tmp_path)
    header = long_path.read_text().splitlines()[0]
    assert header == "network,protocol,noise,mode,ratio"
    assert summary_path.read_text().splitlines()[0] == "network,converged,min_ratio"
    save_network(net, tmp_path / "x.npz")
