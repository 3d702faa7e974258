"""The hand-built networks do what their construction claims (checked by simulation).

Each network is simulated once on the METHOD section 6 sequence (theta -> alpha -> beta -> gamma,
a cue pulse at the start of every segment, noise-free from x = 0); the checks use the analysed
part of each segment.  These are the ground truth of tests/test_mechanisms.py, so they are
verified here before being trusted.
"""

from __future__ import annotations

import numpy as np
import pytest

from rhythmswitch.config import MODE_NAMES, PAPER_BANDS_HZ
from rhythmswitch.model import simulate
from rhythmswitch.synthetic import (
    BASELINE_X_BETA,
    BASELINE_X_GAMMA,
    R_ON,
    X_ON,
    baseline_network,
    phase_network,
    turnover_network,
)
from rhythmswitch.task import sequence_protocol, task_config_for_network

FS = 1000.0


def _segments(syn):
    net = syn.network
    proto = sequence_protocol(task_config_for_network(net))
    traj = simulate(net, proto.u_tm)
    r = np.asarray(traj.r_tn, dtype=np.float64)
    return {net.mode_names[s.mode]: r[s.analysis_slice] for s in proto.segments}


def _band_power(sig: np.ndarray, band) -> float:
    """Power of a 1-D signal in [low, high) Hz (DC dropped)."""
    x = sig - sig.mean()
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / FS)
    return float(p[(f >= band[0]) & (f < band[1])].sum())


def _peak_hz(sig: np.ndarray) -> float:
    x = sig - sig.mean()
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / FS)
    return float(f[1 + np.argmax(p[1:])])


BAND = dict(zip(MODE_NAMES, PAPER_BANDS_HZ, strict=True))


@pytest.fixture(scope="module")
def turnover():
    syn = turnover_network()
    return syn, _segments(syn)


@pytest.fixture(scope="module")
def baseline():
    syn = baseline_network()
    return syn, _segments(syn)


@pytest.fixture(scope="module")
def phase():
    syn = phase_network()
    return syn, _segments(syn)


@pytest.mark.parametrize("builder", [turnover_network, baseline_network, phase_network])
def test_network_file_format(builder, tmp_path):
    """N = 100, four paper modes, dt = 1 ms, and the file round-trips."""
    from rhythmswitch.network import load_network, save_network

    syn = builder()
    net = syn.network
    assert net.n_units == 100 and net.n_modes == 4 and net.dt_s == 0.001
    assert net.mode_names == MODE_NAMES
    np.testing.assert_allclose(net.bands_hz, PAPER_BANDS_HZ)
    back = load_network(save_network(net, tmp_path / "n.npz"))
    np.testing.assert_array_equal(back.W_rec, net.W_rec)
    for pair in syn.truth:
        assert pair[0] in MODE_NAMES and pair[1] in MODE_NAMES
        assert MODE_NAMES.index(pair[0]) < MODE_NAMES.index(pair[1])


def test_memory_fixed_point():
    """x = 2 tanh(x) at the memory's 'on' state."""
    assert abs(X_ON - 2 * np.tanh(X_ON)) < 1e-12
    assert abs(R_ON - np.tanh(X_ON)) < 1e-15


def test_turnover_disjoint_populations(turnover):
    """In mode m only oscillator m oscillates, at a frequency inside band m, and z follows it."""
    syn, seg = turnover
    pops = [syn.groups[m] for m in MODE_NAMES]
    all_idx = np.concatenate(pops)
    assert len(set(all_idx.tolist())) == all_idx.size  # disjoint by construction
    for m, r in seg.items():
        sd = r.std(axis=0)
        own = syn.groups[m]
        others = np.setdiff1d(np.arange(r.shape[1]), own)
        assert sd[own].min() > 0.3, m
        assert sd[others].max() < 1e-3, m  # silenced (saturated) or memory
        z = r.mean(axis=1)
        lo, hi = BAND[m]
        assert lo <= _peak_hz(z) < hi, m
        assert _band_power(z, BAND[m]) > 0.9 * _band_power(z, (0.5, 500))


def test_baseline_moves_operating_point(baseline):
    """beta and gamma segments: the same neurons oscillate, at beta and gamma, around
    baselines that differ by much more than their oscillation."""
    syn, seg = baseline
    mem = syn.groups["memory"]
    osc = np.setdiff1d(np.arange(100), mem)
    rb, rg = seg["beta"], seg["gamma"]
    assert BAND["beta"][0] <= _peak_hz(rb.mean(1)) < BAND["beta"][1]
    assert BAND["gamma"][0] <= _peak_hz(rg.mean(1)) < BAND["gamma"][1]
    assert rb[:, osc].std(0).min() > 0.02 and rg[:, osc].std(0).min() > 0.02
    shift = rg[:, osc].mean(0) - rb[:, osc].mean(0)
    pooled = np.sqrt((rb[:, osc].std(0) ** 2 + rg[:, osc].std(0) ** 2) / 2)
    assert np.sqrt(np.mean(shift**2)) > 1.5 * np.sqrt(np.mean(pooled**2))
    # followers keep their amplitude rank across modes (no accidental turnover)
    fol = syn.groups["followers"]
    rank_b = np.argsort(np.argsort(rb[:, fol].std(0)))
    rank_g = np.argsort(np.argsort(rg[:, fol].std(0)))
    assert np.corrcoef(rank_b, rank_g)[0, 1] > 0.99
    # theta and alpha cues set the beta state: identical dynamics
    np.testing.assert_allclose(seg["alpha"].mean(0), rb.mean(0), atol=2e-3)


def test_baseline_two_unstable_foci(baseline):
    """The constructed operating points are fixed points of the noise-free map, unstable foci,
    and the gamma focus rotates faster than the beta focus (linearisation, METHOD 7)."""
    syn, _ = baseline
    net = syn.network
    a, w, b = net.a, net.W_rec, net.b
    mem = syn.groups["memory"][0]
    core = syn.groups["core"]
    fol = syn.groups["followers"]
    u = syn.groups["core_u"]
    freqs = {}
    for state, x_core, sign in (("beta", BASELINE_X_BETA, 1), ("gamma", BASELINE_X_GAMMA, -1)):
        x = np.zeros(net.n_units)
        x[mem] = sign * X_ON
        x[core] = x_core
        x[fol] = b[fol] + w[fol, mem] * np.tanh(x[mem]) + w[np.ix_(fol, u)] @ np.tanh(x[u])
        fx = (1 - a) * x + a * (b + w @ np.tanh(x))
        np.testing.assert_allclose(fx, x, atol=1e-9)
        jac = np.diag(1 - a) + (a[:, None] * w) * (1 - np.tanh(x) ** 2)[None, :]
        mu = np.linalg.eigvals(jac)
        unstable = mu[np.abs(mu) > 1]
        assert unstable.size == 2 and abs(unstable[0].imag) > 0  # one complex pair: a focus
        freqs[state] = abs(np.angle(unstable[0])) * FS / (2 * np.pi)
    assert freqs["gamma"] > 1.2 * freqs["beta"]


def test_phase_copies_and_cancellation(phase):
    """alpha mode: alpha copies in phase, beta copies anti-phase (and the reverse in beta
    mode); every follower keeps both rhythms while z carries only the cued one."""
    syn, seg = phase
    g = syn.groups
    for mode, same, anti in (("alpha", "O", "G"), ("beta", "G", "O")):
        r = seg[mode]
        # up to the residue of the previous state after the pulse, (1 - a)^100 < 1 %
        np.testing.assert_allclose(r[:, g[f"{same}1_u"]], r[:, g[f"{same}2_u"]], atol=0.02)
        np.testing.assert_allclose(r[:, g[f"{anti}1_u"]], -r[:, g[f"{anti}2_u"]], atol=0.02)
        z = r.mean(1)
        other = "beta" if mode == "alpha" else "alpha"
        assert _band_power(z, BAND[mode]) > 0.95 * _band_power(z, (0.5, 500))
        assert _band_power(z, BAND[other]) < 1e-2 * _band_power(z, BAND[mode])
        fol = g["followers"]
        for band in ("alpha", "beta"):
            per_neuron = np.array([_band_power(r[:, i], BAND[band]) for i in fol[::9]])
            assert per_neuron.min() > 0  # each follower carries both rhythms in both modes
    # single-neuron alpha amplitude is the same in both modes (kappa ~ 1 by construction)
    fol = g["followers"]
    amp_a = seg["alpha"][:, fol].std(0)
    amp_b = seg["beta"][:, fol].std(0)
    np.testing.assert_allclose(amp_a, amp_b, rtol=0.05)
