"""Shared fixtures: small configs and hand-built networks."""

from __future__ import annotations

import os
import tempfile

import jax
import numpy as np
import pytest

from rhythmswitch.config import get_preset
from rhythmswitch.network import Network

# Compiling the scans dominates test time; identical programs are compiled once per test run
# (shared with CLI subprocesses through the environment variable).
_CACHE = os.environ.setdefault("RHYTHMSWITCH_CACHE", tempfile.mkdtemp(prefix="rhythmswitch-jax-"))
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture
def tiny_cfg():
    return get_preset("tiny")


def random_network(
    n: int = 12,
    m: int = 4,
    seed: int = 0,
    gain: float = 1.5,
    form: str = "current",
    name: str = "hand",
) -> Network:
    """A hand-written network file's content: random weights, spread time constants."""
    rng = np.random.default_rng(seed)
    return Network(
        W_rec=gain * rng.standard_normal((n, n)) / np.sqrt(n),
        W_in=rng.uniform(-1, 1, (n, m)),
        b=0.1 * rng.standard_normal(n),
        tau_s=np.exp(rng.uniform(np.log(0.005), np.log(0.1), n)),
        dt_s=0.001,
        bands_hz=np.array([[4, 7], [8, 13], [14, 29], [30, 50]], float)[:m],
        mode_names=("theta", "alpha", "beta", "gamma")[:m],
        form=form,
        name=name,
    )


@pytest.fixture
def hand_network():
    return random_network()
