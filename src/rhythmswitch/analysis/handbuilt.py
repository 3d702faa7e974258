"""Hand-built networks whose behaviour is known by construction (tests and benchmarks).

:func:`oscillator_bank` is a set of uncoupled two-unit oscillators.  Pair p has time constant
tau_p (both units) and W_rec block g [[cos th, -sin th], [sin th, cos th]].  Linearised at the
origin (current form) the pair's eigenvalues are mu = 1 - a + a g exp(+-i th), a = dt / tau_p,
so with g cos th > 1 the origin is an unstable focus and the pair settles on a limit cycle near
frequency |arg mu| Fs / (2 pi) ~ g sin th / (2 pi tau_p).  ``freqs_hz`` sets that linear
frequency per pair; the limit cycle runs somewhat slower because tanh saturates.

:func:`random_network` is the classic random RNN with W_rec ~ N(0, gain^2 / N): for gain well
above 1 it fluctuates irregularly, so every analysis has something to chew on.
"""

from __future__ import annotations

import numpy as np

from rhythmswitch.config import MODE_NAMES, PAPER_BANDS_HZ
from rhythmswitch.network import Network


def pair_block(freq_hz: float, tau_s: float, dt_s: float, growth: float = 1.2) -> np.ndarray:
    """2x2 W_rec block with g cos th = ``growth`` whose linear frequency is ``freq_hz``."""
    a = dt_s / tau_s
    # solve arg(1 - a + a g e^{i th}) = 2 pi f dt for g sin th, with g cos th = growth
    phi = 2 * np.pi * freq_hz * dt_s
    re = 1 - a + a * growth
    g_sin = re * np.tan(phi) / a
    return np.array([[growth, -g_sin], [g_sin, growth]])


def oscillator_bank(
    freqs_hz,
    taus_s,
    *,
    dt_s: float = 0.001,
    growth: float = 1.2,
    bands_hz=PAPER_BANDS_HZ,
    mode_names=MODE_NAMES,
    input_gain: float = 0.0,
    seed: int = 0,
    name: str = "bank",
) -> Network:
    """Uncoupled two-unit oscillators (2 units per entry of ``freqs_hz``)."""
    freqs = np.asarray(freqs_hz, dtype=np.float64)
    taus = np.asarray(taus_s, dtype=np.float64)
    if freqs.shape != taus.shape or freqs.ndim != 1:
        raise ValueError(
            f"freqs_hz and taus_s must be 1-D of equal length, got {freqs.shape}, {taus.shape}"
        )
    n = 2 * freqs.size
    w = np.zeros((n, n))
    for p, (f, t) in enumerate(zip(freqs, taus, strict=True)):
        w[2 * p : 2 * p + 2, 2 * p : 2 * p + 2] = pair_block(f, t, dt_s, growth)
    rng = np.random.default_rng(seed)
    m = len(mode_names)
    return Network(
        W_rec=w,
        W_in=input_gain * rng.standard_normal((n, m)),
        b=np.zeros(n),
        tau_s=np.repeat(taus, 2),
        dt_s=dt_s,
        bands_hz=np.asarray(bands_hz, dtype=np.float64),
        mode_names=tuple(mode_names),
        name=name,
    )


def random_network(
    n_units: int = 100,
    *,
    gain: float = 1.8,
    tau_lo_s: float = 0.005,
    tau_hi_s: float = 0.1,
    input_gain: float = 1.0,
    seed: int = 0,
    dt_s: float = 0.001,
    bands_hz=PAPER_BANDS_HZ,
    mode_names=MODE_NAMES,
    name: str = "random",
) -> Network:
    """W_rec ~ N(0, gain^2/N), log-uniform tau on [tau_lo, tau_hi], random input weights."""
    rng = np.random.default_rng(seed)
    m = len(mode_names)
    tau = np.exp(rng.uniform(np.log(tau_lo_s), np.log(tau_hi_s), n_units))
    return Network(
        W_rec=gain * rng.standard_normal((n_units, n_units)) / np.sqrt(n_units),
        W_in=input_gain * rng.standard_normal((n_units, m)),
        b=0.1 * rng.standard_normal(n_units),
        tau_s=tau,
        dt_s=dt_s,
        bands_hz=np.asarray(bands_hz, dtype=np.float64),
        mode_names=tuple(mode_names),
        name=name,
    )
