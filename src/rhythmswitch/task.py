"""The rhythm-switching task (METHOD section 3) and the evaluation protocols (section 6).

Training trial: ``wait_steps`` silent steps, then ``switch_num`` intervals.  Interval j starts
with a ``pulse_steps`` one-hot pulse (amplitude ``pulse_amp``) on the channel of its mode, then
silence; the loss sees the last ``window_steps`` of each interval (``transient_steps`` dropped).
Modes are drawn uniformly, repeats allowed.

Input arrays are ``u_tm`` (time x modes) or ``u_btm``.  A :class:`Protocol` is a named input
with labelled segments, used by evaluation and every analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from rhythmswitch.config import TaskConfig

# -- training trials -----------------------------------------------------------------------


def sample_modes(
    cfg: TaskConfig, key: jax.Array, batch: int, *, balanced: bool = False
) -> jax.Array:
    """Mode index of every interval of every trial, shape (batch, switch_num), int32.

    Each entry is uniform over the modes.  ``balanced``: the entries of one interval across the
    batch are a shuffled, randomly offset cycle through the modes, so that every mode appears
    floor(batch / M) or ceil(batch / M) times per interval (a stratified draw: the same
    uniform marginals, less variation between batches); the intervals are drawn independently.
    """
    if not balanced:
        return jax.random.randint(key, (batch, cfg.switch_num), 0, cfg.n_modes, dtype=jnp.int32)
    m = cfg.n_modes

    def one_interval(k: jax.Array) -> jax.Array:
        k_off, k_perm = jax.random.split(k)
        offset = jax.random.randint(k_off, (), 0, m, dtype=jnp.int32)
        cycle = (jnp.arange(batch, dtype=jnp.int32) + offset) % m
        return jax.random.permutation(k_perm, cycle)

    return jax.vmap(one_interval)(jax.random.split(key, cfg.switch_num)).T


def pulse_schedule(
    cfg: TaskConfig, window_steps: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per step t of a trial: (interval index or -1, pulse on?).  Shapes (T,), (T,)."""
    w = cfg.window_steps if window_steps is None else window_steps
    interval = cfg.transient_steps + w
    t_total = cfg.wait_steps + cfg.switch_num * interval
    t = np.arange(t_total)
    rel = t - cfg.wait_steps
    idx = np.where(rel >= 0, rel // interval, -1).astype(np.int32)
    on = (rel >= 0) & (rel % interval < cfg.pulse_steps)
    return idx, on


def window_starts(cfg: TaskConfig, window_steps: int | None = None) -> np.ndarray:
    """Start step of each loss window (interval start + transient), shape (switch_num,)."""
    w = cfg.window_steps if window_steps is None else window_steps
    interval = cfg.transient_steps + w
    return cfg.wait_steps + np.arange(cfg.switch_num) * interval + cfg.transient_steps


def trial_inputs(
    cfg: TaskConfig, modes_bj: jax.Array, window_steps: int | None = None
) -> jax.Array:
    """Input u of a batch of trials, shape (batch, T, M), from their interval modes."""
    idx, on = pulse_schedule(cfg, window_steps)
    modes = jnp.take_along_axis(modes_bj, jnp.clip(jnp.asarray(idx), 0)[None, :], axis=1)  # (B, T)
    onehot = jax.nn.one_hot(modes, cfg.n_modes, dtype=jnp.float32)
    return onehot * (cfg.pulse_amp * jnp.asarray(on, jnp.float32))[None, :, None]


# -- evaluation protocols ------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A labelled stretch [start, stop) of a protocol; ``drop`` leading steps are transient."""

    mode: int
    start: int
    stop: int
    drop: int

    @property
    def analysis_slice(self) -> slice:
        return slice(self.start + self.drop, self.stop)


@dataclass(frozen=True)
class Protocol:
    """A named input ``u_tm`` (T, M) and its segments.  The network starts from x = 0."""

    name: str
    u_tm: np.ndarray
    segments: tuple[Segment, ...]

    @property
    def n_steps(self) -> int:
        return int(self.u_tm.shape[0])


def mode_sequence_protocol(
    cfg: TaskConfig, modes: list[int] | tuple[int, ...], name: str | None = None
) -> Protocol:
    """``wait_steps`` silence, then one ``eval_steps_per_mode`` segment per mode in ``modes``,
    each opened by a pulse; the first ``eval_drop_steps`` of each segment are dropped."""
    seg_len = cfg.eval_steps_per_mode
    t_total = cfg.wait_steps + len(modes) * seg_len
    u = np.zeros((t_total, cfg.n_modes), dtype=np.float32)
    segments = []
    for j, m in enumerate(modes):
        start = cfg.wait_steps + j * seg_len
        u[start : start + cfg.pulse_steps, m] = cfg.pulse_amp
        segments.append(
            Segment(mode=int(m), start=start, stop=start + seg_len, drop=cfg.eval_drop_steps)
        )
    if name is None:
        name = "->".join(cfg.mode_names[m] for m in modes)
    return Protocol(name=name, u_tm=u, segments=tuple(segments))


def sequence_protocol(cfg: TaskConfig) -> Protocol:
    """The paper's fixed evaluation trial: every mode once, in order (theta -> ... -> gamma)."""
    return mode_sequence_protocol(cfg, list(range(cfg.n_modes)), name="sequence")


def transition_protocols(cfg: TaskConfig) -> list[Protocol]:
    """One two-segment protocol per ordered pair of distinct modes (12 for four modes)."""
    return [
        mode_sequence_protocol(cfg, [i, j])
        for i in range(cfg.n_modes)
        for j in range(cfg.n_modes)
        if i != j
    ]


def task_config_for_network(net, base: TaskConfig | None = None) -> TaskConfig:
    """A TaskConfig whose bands, names and dt come from a network file; the rest from ``base``."""
    from dataclasses import replace

    base = base or TaskConfig()
    return replace(
        base,
        dt_s=float(net.dt_s),
        bands_hz=tuple((float(lo), float(hi)) for lo, hi in np.asarray(net.bands_hz)),
        mode_names=tuple(net.mode_names),
    )
