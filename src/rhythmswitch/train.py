"""Ensemble training (METHOD section 5): K networks as one compiled program.

Every member k has its own seed ``seed + k``; its initial parameters, its trial batches, its
initial states and its noise derive from that seed and the iteration number only, so a member's
result does not depend on which other members it was trained with (tests check this).

The K members are stacked on a leading axis and advanced together by one jitted function that
runs ``iters_per_call`` iterations (``lax.scan``): the members' recurrences run as one stacked
kernel (:func:`rhythmswitch.recurrence.make_z_stack_fn`), the Adam-with-global-norm-clipping
updates are ``vmap``-ed per member, and the members are split over the local devices (one
host device per CPU core, see :mod:`rhythmswitch.devices`).  Each member stops at its own goal (best loss below
``goal_loss``) and keeps its best-loss weights (with a curriculum, the best of the current
stage: a loss on short windows is not comparable with one on long windows); finished members are dropped from the compiled
batch.  A member whose loss, gradient or new parameters are not finite is rolled back to its last
good state, its step is halved, and the event is logged; it never touches the other members.
With ``train.spike_factor`` a member whose running loss jumps far above its best running loss
of the stage returns to the weights (and Adam state) it had there, also with a halved step
(:func:`spike_guard`).

Checkpoints (``DIR/checkpoint.npz``, written atomically) let an interrupted run resume.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rhythmswitch.config import RunConfig
from rhythmswitch.devices import member_devices
from rhythmswitch.loss import amplitude_penalty, band_masks, window_loss
from rhythmswitch.model import Params, a_from_raw, init_params, params_to_network, project
from rhythmswitch.recurrence import DA_FROM_STATES_MIN_A, make_z_stack_fn
from rhythmswitch.task import sample_modes, window_starts

log = logging.getLogger(__name__)


def member_name(seed: int) -> str:
    """File stem of the network trained from ``seed``."""
    return f"net{seed:03d}"


class MemberState(NamedTuple):
    """Training state of the members (every leaf has a leading K axis)."""

    params: Params
    opt_state: Any
    best_params: Params
    best_loss: jax.Array  # (K,)
    lr_scale: jax.Array  # (K,) halved on every rollback
    key: jax.Array  # (K, 2) uint32, the member's training key
    eval_params: Params  # the weights with the best evaluation so far (``stop_on_eval``)
    eval_ratio: jax.Array  # (K,) their smallest in-band ratio; -inf before any evaluation
    loss_ema: jax.Array  # (K,) running average of the log training loss; inf when unset
    anchor_params: Params  # the weights where loss_ema was lowest in this stage (spike guard)
    anchor_opt: Any  # their Adam state
    anchor_loss: jax.Array  # (K,) loss_ema there; inf when unset
    spikes: jax.Array  # (K,) int32, spike rollbacks so far


@dataclass
class Progress:
    """What the progress callback receives after every compiled call."""

    iteration: int
    max_iters: int
    elapsed_s: float
    best: float
    median: float
    worst: float
    n_done: int
    n_members: int


@dataclass
class TrainResult:
    """Outcome per member (all lists have length K, in member order)."""

    seeds: list[int]
    names: list[str]
    best_loss: np.ndarray
    iterations: np.ndarray
    time_to_goal_s: np.ndarray
    history: list[list[float]]
    rollbacks: np.ndarray
    best_params: list[Params]
    wall_s: float


# -- optimiser -----------------------------------------------------------------------------


def make_optimizer(cfg: RunConfig) -> optax.GradientTransformation:
    tr = cfg.train
    if tr.lr_schedule == "constant":
        lr: Any = tr.learning_rate
    else:
        decay = max(tr.max_iters - tr.warmup_iters, 1)
        lr = optax.warmup_cosine_decay_schedule(
            init_value=tr.learning_rate * (0.1 if tr.warmup_iters else 1.0),
            peak_value=tr.learning_rate,
            warmup_steps=tr.warmup_iters,
            decay_steps=tr.warmup_iters + decay,
            end_value=tr.learning_rate * tr.lr_final_frac,
        )
    parts = [optax.clip_by_global_norm(tr.clip_norm), optax.adam(lr)]
    if tr.tau_lr_scale != 1.0:
        parts.append(_scale_tau(tr.tau_lr_scale))
    return optax.chain(*parts)


def _scale_tau(factor: float) -> optax.GradientTransformation:
    """Multiply the update of the time-constant parameters by ``factor`` (train.tau_lr_scale)."""

    def update(updates, state, params=None):
        del params
        return updates._replace(tau_raw=updates.tau_raw * factor), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


# -- one member ----------------------------------------------------------------------------


def make_loss_fn(
    cfg: RunConfig, window_steps: int, da_from_states: bool = False
) -> Callable[[Params, jax.Array], tuple]:
    """``loss_fn(params_K, keys_K) -> (objectives (K,), (losses (K,), ratios (K, B, J)))`` for a
    stack of members, each with its own iteration key (K, 2).  ``losses`` is the power-ratio
    loss; ``objectives`` adds the amplitude-floor term (``train.amp_floor``; equal to ``losses``
    when it is off), the value the gradient is taken of.

    The members' recurrences run as one stacked kernel
    (:func:`rhythmswitch.recurrence.make_z_stack_fn`); nothing mixes members, so the gradient of
    ``objectives.sum()`` with respect to member k's parameters is the gradient of its own one.
    ``da_from_states``: the cheaper gradient of a (same loss) while a is bounded away from 0."""
    task, model, tr = cfg.task, cfg.model, cfg.train
    z_stack, _ = make_z_stack_fn(
        task,
        window_steps=window_steps,
        n_units=model.n_units,
        batch=tr.batch_size,
        sigma=model.sigma * tr.sigma_scale,
        form=model.form,
        grad_impl=tr.grad_impl,
        chunk=tr.time_chunk,
        da_from_states=da_from_states,
        cut_at=cut_times(cfg, window_steps),
    )
    starts = window_starts(task, window_steps)
    masks = jnp.asarray(band_masks(window_steps, task.fs_hz, task.bands_hz))
    n_steps = task.wait_steps + task.switch_num * (task.transient_steps + window_steps)
    # extra loss windows: the last L_q samples of every window (see TrainConfig.loss_tails)
    tails = []
    for length in tail_lengths(window_steps, tr.loss_tails):
        tail_masks = jnp.asarray(band_masks(length, task.fs_hz, task.bands_hz))
        tails.append((starts + (window_steps - length), length, tail_masks))

    def draw(key: jax.Array):
        """One member's trials: modes, initial states and noise, from its iteration key."""
        k_modes, k_x0, k_noise = jax.random.split(key, 3)
        modes = sample_modes(task, k_modes, tr.batch_size, balanced=tr.balanced_modes)
        x0 = model.x0_std * jax.random.normal(k_x0, (tr.batch_size, model.n_units), jnp.float32)
        if tr.noise_rng == "hash":
            noise = jax.random.bits(k_noise, (), jnp.uint32)
        else:
            noise = jax.random.normal(k_noise, (n_steps, tr.batch_size, model.n_units), jnp.float32)
        return modes, x0, noise

    def one_loss(z, modes):
        loss, ratios = window_loss(z, modes, starts, window_steps, masks, task.fs_hz)
        for t_starts, length, t_masks in tails:
            loss = loss + window_loss(z, modes, t_starts, length, t_masks, task.fs_hz)[0]
        loss = loss / (1 + len(tails))
        objective = loss
        if tr.amp_weight > 0:
            penalty = amplitude_penalty(z, starts, window_steps, tr.amp_floor)
            objective = objective + tr.amp_weight * penalty
        return objective, (loss, ratios)

    def loss_fn(params: Params, keys: jax.Array):
        modes, x0, noise = jax.vmap(draw)(keys)
        a = a_from_raw(params.tau_raw, model, task)
        z = z_stack(params.w_rec, params.w_in, params.b, a, x0, modes, noise)
        return jax.vmap(one_loss)(z, modes)

    return loss_fn


def cut_times(cfg: RunConfig, window_steps: int) -> tuple[int, ...]:
    """Steps whose state the gradient does not flow back through (``train.bptt``): none for
    ``full``; the start of every interval after the first for ``interval``."""
    if cfg.train.bptt == "full":
        return ()
    interval_starts = window_starts(cfg.task, window_steps) - cfg.task.transient_steps
    return tuple(int(t) for t in interval_starts[1:])


def tail_lengths(window_steps: int, fractions: tuple[float, ...]) -> list[int]:
    """Lengths of the extra loss windows: round(q * window) for each fraction q, made odd so
    that an even window and its tails share no factor 2, which keeps their frequency grids
    (multiples of Fs / L) from coinciding at every other bin."""
    out = []
    for q in fractions:
        length = max(4, int(round(q * window_steps)))
        length -= 1 - length % 2  # odd
        out.append(min(length, window_steps))
    return out


def _finite(tree) -> jax.Array:
    """Every entry of every leaf finite (one member; ``vmap`` it for a stack)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


# weight of the newest loss in the spike guard's running average (about 10 iterations)
SPIKE_EMA_WEIGHT = 0.1


def spike_guard(
    old: MemberState,
    new: MemberState,
    loss: jax.Array,
    ok: jax.Array,
    factor: float,
    floor: float,
) -> MemberState:
    """The spike rollback of one member (``train.spike_factor``; ``vmap`` it for a stack).

    ``loss`` is the training loss of ``old.params`` and ``new`` the state after their update.
    The running average of log(loss) moves by :data:`SPIKE_EMA_WEIGHT`.  Where it is the lowest
    of the stage, ``old``'s weights and Adam state become the anchor.  Where it exceeds
    log(factor) + the anchor's and log(floor), the member returns to the anchor with its step
    halved, and its average restarts at the anchor's.
    """
    log_loss = jnp.log(jnp.maximum(loss, jnp.finfo(jnp.float32).tiny))
    ema = jnp.where(
        jnp.isfinite(old.loss_ema),
        (1.0 - SPIKE_EMA_WEIGHT) * old.loss_ema + SPIKE_EMA_WEIGHT * log_loss,
        log_loss,
    )
    ema = jnp.where(ok, ema, old.loss_ema)
    lower = ok & (ema < old.anchor_loss)
    anchor_loss = jnp.where(lower, ema, old.anchor_loss)
    spike = ok & (ema > jnp.maximum(anchor_loss + jnp.log(factor), jnp.log(floor)))

    def pick(a, b, cond):
        return jax.tree_util.tree_map(lambda x, y: jnp.where(cond, x, y), a, b)

    anchor_params = pick(old.params, old.anchor_params, lower)
    anchor_opt = pick(old.opt_state, old.anchor_opt, lower)
    return new._replace(
        params=pick(anchor_params, new.params, spike),
        opt_state=pick(anchor_opt, new.opt_state, spike),
        lr_scale=jnp.where(spike, new.lr_scale * 0.5, new.lr_scale),
        loss_ema=jnp.where(spike, anchor_loss, ema),
        anchor_params=anchor_params,
        anchor_opt=anchor_opt,
        anchor_loss=anchor_loss,
        spikes=new.spikes + spike.astype(jnp.int32),
    )


def make_ensemble_step(
    cfg: RunConfig,
    window_steps: int,
    opt: optax.GradientTransformation,
    da_from_states: bool = False,
):
    """One iteration of a stack of members: ``(state_K, it_K) -> (state_K, (loss_K, ok_K))``.

    The loss and gradient run stacked (:func:`make_loss_fn`); the update of each member is
    its own (``vmap``): clipping, Adam, projection, the best-weights bookkeeping and the
    rollback of a member whose loss, gradient or new parameters are not finite.
    """
    loss_fn = make_loss_fn(cfg, window_steps, da_from_states)

    def total(params, keys):
        objectives, (losses, _) = loss_fn(params, keys)
        return jnp.sum(objectives), losses

    grad_fn = jax.value_and_grad(total, has_aux=True)
    model = cfg.model

    spike_factor, spike_floor = cfg.train.spike_factor, cfg.train.spike_floor

    def update(st: MemberState, grads: Params, loss: jax.Array, grads_ok: jax.Array):
        if not model.train_tau:
            grads = grads._replace(tau_raw=jnp.zeros_like(grads.tau_raw))
        updates, opt_state = opt.update(grads, st.opt_state, st.params)
        updates = jax.tree_util.tree_map(lambda u: u * st.lr_scale, updates)
        new_params = project(optax.apply_updates(st.params, updates), model)
        ok = jnp.isfinite(loss) & grads_ok & _finite(new_params)
        improved = ok & (loss < st.best_loss)

        def pick(new, old, cond=ok):
            return jax.tree_util.tree_map(lambda n, o: jnp.where(cond, n, o), new, old)

        new = st._replace(
            params=pick(new_params, st.params),
            opt_state=pick(opt_state, st.opt_state),
            best_params=pick(st.params, st.best_params, improved),
            best_loss=jnp.where(improved, loss, st.best_loss),
            lr_scale=jnp.where(ok, st.lr_scale, st.lr_scale * 0.5),
        )
        if spike_factor:
            new = spike_guard(st, new, loss, ok, spike_factor, spike_floor)
        return new, (jnp.where(ok, loss, jnp.nan), ok)

    def ensemble_step(st: MemberState, it: jax.Array):
        keys = jax.vmap(jax.random.fold_in)(st.key, it)
        (_, losses), grads = grad_fn(st.params, keys)
        return jax.vmap(update)(st, grads, losses, jax.vmap(_finite)(grads))

    return ensemble_step


@functools.lru_cache(maxsize=32)
def make_ensemble_chunk(
    cfg: RunConfig,
    window_steps: int,
    n_iters: int,
    opt=None,
    n_devices: int = 1,
    da_from_states: bool = False,
):
    """Jitted ``(state_K, it0_K) -> (state_K, losses (n_iters, K), oks (n_iters, K))``.

    ``it0_K`` is each member's own iteration count: members at different iterations (a
    refilled group, a resumed run) share one compiled call.  With ``n_devices > 1`` the members
    are split over the first ``n_devices`` local devices (``shard_map``; K must be a multiple of
    ``n_devices``, see :func:`place_members`); every member's arithmetic is the same either way.
    ``da_from_states``: the cheaper gradient of a (:func:`a_stays_large` says when it may be
    used).

    Cached per (config, window, n_iters, opt, n_devices, da_from_states) so repeated runs in one
    process compile once.
    """
    opt = make_optimizer(cfg) if opt is None else opt
    ensemble_step = make_ensemble_step(cfg, window_steps, opt, da_from_states)
    goal = cfg.train.goal_loss

    def chunk(st: MemberState, it0: jax.Array):
        def body(st, i):
            new_st, (loss, ok) = ensemble_step(st, it0 + i)
            active = st.best_loss >= goal  # a member that reached its goal is frozen
            st = jax.tree_util.tree_map(
                lambda n, o: jnp.where(active.reshape((-1,) + (1,) * (n.ndim - 1)), n, o),
                new_st,
                st,
            )
            return st, (jnp.where(active, loss, jnp.nan), ok | ~active)

        return jax.lax.scan(body, st, jnp.arange(n_iters, dtype=jnp.int32))

    if n_devices <= 1:
        return jax.jit(chunk, donate_argnums=0)
    mesh = Mesh(np.array(jax.local_devices()[:n_devices]), ("members",))
    split = jax.shard_map(
        chunk,
        mesh=mesh,
        in_specs=(P("members"), P("members")),
        out_specs=(P("members"), P(None, "members")),
        check_vma=False,  # members never talk to each other: nothing to check
    )
    return jax.jit(split, donate_argnums=0)


def place_members(st: MemberState, it0) -> tuple[MemberState, jax.Array, int, int]:
    """Split the members over :func:`rhythmswitch.devices.member_devices`.

    Returns (state, it0, n_devices, k): with more than one device the leading axis is padded
    to a multiple of the device count by repeating the last member (its copy's results are
    to be dropped) and sharded over the devices; k is the number of real members.
    """
    it0 = jnp.asarray(it0, jnp.int32)
    k = int(it0.shape[0])
    devs = member_devices(k)
    nd = len(devs)
    if nd == 1:
        return st, it0, 1, k
    pad = (-k) % nd
    if pad:
        idx = np.concatenate([np.arange(k), np.full(pad, k - 1)])
        st, it0 = _take(st, idx), it0[idx]
    sharding = NamedSharding(Mesh(np.array(devs), ("members",)), P("members"))
    return jax.device_put(st, sharding), jax.device_put(it0, sharding), nd, k


def a_stays_large(cfg: RunConfig, tau_raw: jax.Array, n_iters: int) -> bool:
    """Whether every member's a stays >= ``DA_FROM_STATES_MIN_A`` for ``n_iters`` more updates.

    An Adam update moves a parameter by at most ~3.2 x the learning rate (its bound
    lr (1 - beta1) / sqrt(1 - beta2)), and the schedule never exceeds ``learning_rate``, so
    ``n_iters`` updates move ``tau_raw`` by at most ``3.2 lr n_iters``; the smallest a after that
    move is checked (``alpha``: a = tau_raw; ``bounded``: a increases with tau_raw).
    """
    tr, model = cfg.train, cfg.model
    if tr.grad_impl != "custom" or model.form != "current":
        return False
    margin = 3.2 * tr.learning_rate * n_iters
    lowest = jnp.min(tau_raw) - margin
    a_low = a_from_raw(lowest, model, cfg.task)
    return bool(a_low >= DA_FROM_STATES_MIN_A)


def run_members(
    cfg: RunConfig, st: MemberState, window_steps: int, n_iters: int, it0: np.ndarray
) -> tuple[MemberState, np.ndarray, np.ndarray]:
    """Advance the members of ``st`` by ``n_iters`` iterations, split over all local devices
    (:func:`place_members`).  Returns (state, losses (n_iters, K), oks (n_iters, K))."""
    cheap_da = a_stays_large(cfg, st.params.tau_raw, n_iters)
    st, it0_j, nd, k = place_members(st, it0)
    step_fn = make_ensemble_chunk(cfg, window_steps, n_iters, None, nd, cheap_da)
    st, (losses, oks) = step_fn(st, it0_j)
    if nd > 1:
        st = _take(jax.device_put(st, jax.local_devices()[0]), np.arange(k))
    return st, np.asarray(losses)[:, :k], np.asarray(oks)[:, :k]


def init_member_state(
    cfg: RunConfig, seeds: list[int], opt, initial: list[Params] | None = None
) -> MemberState:
    """Initial state of the members with these seeds (stacked); ``initial`` replaces the
    seeds' initial weights (the seeds still give the batches and the noise)."""

    def one(k, seed):
        k_init, k_train = jax.random.split(jax.random.PRNGKey(seed))
        fresh = initial is None
        params = init_params(cfg.model, cfg.task, key=k_init) if fresh else initial[k]
        opt_state = opt.init(params)
        return MemberState(
            params=params,
            opt_state=opt_state,
            best_params=params,
            best_loss=jnp.asarray(jnp.inf, jnp.float32),
            lr_scale=jnp.asarray(1.0, jnp.float32),
            key=k_train,
            eval_params=params,
            eval_ratio=jnp.asarray(-jnp.inf, jnp.float32),
            loss_ema=jnp.asarray(jnp.inf, jnp.float32),
            anchor_params=params,
            anchor_opt=opt_state,
            anchor_loss=jnp.asarray(jnp.inf, jnp.float32),
            spikes=jnp.asarray(0, jnp.int32),
        )

    if initial is not None and len(initial) != len(seeds):
        raise ValueError(f"{len(initial)} initial weight sets for {len(seeds)} seeds")
    states = [one(k, s) for k, s in enumerate(seeds)]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)


class Stage(NamedTuple):
    """One curriculum stage: its first iteration, loss window, training-noise scale and whether
    the amplitude floor (``train.amp_floor``) is part of its objective."""

    start: int
    window_steps: int
    sigma_scale: float
    amp: bool = True


def stages(cfg: RunConfig) -> list[Stage]:
    """Every curriculum stage in order, ending with the task window (``train.curriculum``)."""
    tr = cfg.train
    out, it = [], 0
    for w, n, *rest in tr.curriculum:
        out.append(Stage(it, w, float(rest[0]) if rest else tr.sigma_scale))
        it += n
    out.append(Stage(it, cfg.task.window_steps, tr.sigma_scale))
    floor_on = tr.amp_weight > 0
    return [
        s._replace(amp=floor_on and (tr.amp_stages == 0 or k < tr.amp_stages))
        for k, s in enumerate(out)
    ]


def stage_at(cfg: RunConfig, iteration: int) -> tuple[int, Stage, int]:
    """(index, stage, iterations until the stage ends) at ``iteration``."""
    all_stages = stages(cfg)
    for k, stage in enumerate(all_stages):
        end = all_stages[k + 1].start if k + 1 < len(all_stages) else cfg.train.max_iters
        if stage.start <= iteration < end:
            return k, stage, end - iteration
    return len(all_stages) - 1, all_stages[-1], cfg.train.max_iters - iteration


def stage_config(cfg: RunConfig, stage: Stage) -> RunConfig:
    """``cfg`` with the stage's training-noise scale and amplitude floor (the compiled step
    reads them from there)."""
    tr = cfg.train
    changes: dict[str, Any] = {}
    if stage.sigma_scale != tr.sigma_scale:
        changes["sigma_scale"] = stage.sigma_scale
    if not stage.amp and tr.amp_weight > 0:
        changes.update(amp_floor=0.0, amp_weight=0.0)
    if not changes:
        return cfg
    return dataclasses.replace(cfg, train=dataclasses.replace(tr, **changes))


# -- checkpoints ---------------------------------------------------------------------------


def _flatten_state(st: MemberState) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_leaves(st)
    return {f"leaf{i:03d}": np.asarray(x) for i, x in enumerate(leaves)}


@dataclass
class _Book:
    """Host-side bookkeeping of all K members."""

    iteration: np.ndarray
    history: list[list[float]]
    time_to_goal_s: np.ndarray
    rollbacks: np.ndarray
    eval_passed: np.ndarray
    last_eval: np.ndarray
    stage: np.ndarray  # 1 + the curriculum stage each member last trained in (0: none yet)
    elapsed_s: float = 0.0
    eval_s: float = 0.0  # wall time of the in-training evaluations (``stop_on_eval``)


def save_checkpoint(
    path: Path, st: MemberState, book: _Book, cfg: RunConfig, seeds: list[int]
) -> None:
    """Write every member's state and bookkeeping, keyed by seed, atomically."""
    from rhythmswitch.store import atomic_write_bytes, npz_bytes

    max_len = max((len(h) for h in book.history), default=0)
    hist = np.full((len(book.history), max_len), np.nan, np.float32)
    for k, h in enumerate(book.history):
        hist[k, : len(h)] = h
    arrays = _flatten_state(st)
    arrays.update(
        seeds=np.asarray(seeds, np.int64),
        iteration=book.iteration,
        history=hist,
        history_len=np.array([len(h) for h in book.history], np.int64),
        time_to_goal_s=book.time_to_goal_s,
        rollbacks=book.rollbacks,
        eval_passed=book.eval_passed,
        last_eval=book.last_eval,
        stage=book.stage,
        elapsed_s=np.asarray(book.elapsed_s),
        config=np.asarray(config_fingerprint(cfg)),
    )
    atomic_write_bytes(path, npz_bytes(arrays))


def restore_checkpoint(
    path: Path, st: MemberState, book: _Book, cfg: RunConfig, seeds: list[int]
) -> tuple[MemberState, _Book]:
    """Copy the saved state of every member of ``seeds`` found in the checkpoint into st/book.

    A torn, foreign or incompatible checkpoint is ignored with a warning (training restarts),
    never an error: the network files already written are the durable results.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        if str(arrays["config"]) != config_fingerprint(cfg):
            log.warning("ignoring checkpoint %s written for another configuration", path)
            return st, book
        saved = [int(s) for s in arrays["seeds"]]
        treedef = jax.tree_util.tree_structure(st)
        leaves = jax.tree_util.tree_leaves(st)
        saved_leaves = [arrays[f"leaf{i:03d}"] for i in range(treedef.num_leaves)]  # type: ignore[attr-defined]
        for cur, old in zip(leaves, saved_leaves, strict=True):
            if cur.shape[1:] != old.shape[1:] or old.shape[0] != len(saved):
                raise ValueError(f"leaf shape {old.shape} does not fit {cur.shape}")
    except Exception as exc:
        log.warning("ignoring unusable checkpoint %s (%s)", path, exc)
        return st, book
    rows = {s: i for i, s in enumerate(saved)}
    pairs = [(k, rows[s]) for k, s in enumerate(seeds) if s in rows]
    if not pairs:
        return st, book
    dst = np.array([p[0] for p in pairs])
    src = np.array([p[1] for p in pairs])
    new_leaves = [
        jnp.asarray(cur).at[dst].set(jnp.asarray(old[src]))
        for cur, old in zip(leaves, saved_leaves, strict=True)
    ]
    st = jax.tree_util.tree_unflatten(treedef, new_leaves)
    for k, i in pairs:
        book.iteration[k] = int(arrays["iteration"][i])
        book.history[k] = [float(v) for v in arrays["history"][i, : int(arrays["history_len"][i])]]
        book.time_to_goal_s[k] = float(arrays["time_to_goal_s"][i])
        book.rollbacks[k] = int(arrays["rollbacks"][i])
        book.eval_passed[k] = bool(arrays["eval_passed"][i])
        book.last_eval[k] = int(arrays["last_eval"][i])
        if "stage" in arrays:
            book.stage[k] = int(arrays["stage"][i])
        elif "window" in arrays:  # written before stages could set their own noise
            index, stage, _ = stage_at(cfg, int(book.iteration[k]))
            book.stage[k] = index + 1 if stage.window_steps == int(arrays["window"][i]) else 0
    book.elapsed_s = float(arrays["elapsed_s"])
    log.info("resumed %d member(s) from %s", len(pairs), path)
    return st, book


# -- the driver ----------------------------------------------------------------------------


_T = TypeVar("_T")


def _take(st: _T, idx: np.ndarray) -> _T:
    return jax.tree_util.tree_map(lambda x: x[idx], st)


def _put(full: _T, part: _T, idx: np.ndarray) -> _T:
    return jax.tree_util.tree_map(lambda f, p: f.at[idx].set(p), full, part)


def train_ensemble(
    cfg: RunConfig,
    *,
    seeds: list[int] | None = None,
    checkpoint: str | Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    on_member_done: Callable[[int, Params, dict], None] | None = None,
    initial: list[Params] | None = None,
) -> TrainResult:
    """Train the members with ``seeds`` (default ``cfg.seed + k`` for k < n_networks).

    ``initial``: start member k from these weights instead of its seed's initialisation (to
    continue training a network file: :func:`rhythmswitch.model.params_from_network`).

    ``on_member_done(k, best_params, info)`` is called once per member as soon as it finishes
    (goal reached or ``max_iters``), so finished networks can be written before the rest end.
    """
    tr = cfg.train
    seeds = list(seeds) if seeds is not None else [cfg.seed + k for k in range(cfg.n_networks)]
    k_total = len(seeds)
    opt = make_optimizer(cfg)
    st = init_member_state(cfg, seeds, opt, initial)
    book = _Book(
        iteration=np.zeros(k_total, np.int64),
        history=[[] for _ in seeds],
        time_to_goal_s=np.full(k_total, np.nan),
        rollbacks=np.zeros(k_total, np.int64),
        eval_passed=np.zeros(k_total, bool),
        last_eval=np.zeros(k_total, np.int64),
        stage=np.zeros(k_total, np.int64),
    )
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        st, book = restore_checkpoint(ckpt, st, book, cfg, seeds)
    reported = np.zeros(k_total, bool)
    out_of_time = [False]
    t_proc = time.perf_counter()
    t_start = t_proc - book.elapsed_s
    last_ckpt = time.perf_counter()

    def finished() -> np.ndarray:
        best = np.asarray(st.best_loss)
        done = (best < tr.goal_loss) | (book.iteration >= tr.max_iters) | book.eval_passed
        if tr.time_budget_s and time.perf_counter() - t_start >= tr.time_budget_s:
            if not out_of_time[0]:
                out_of_time[0] = True
                log.warning(
                    "time budget of %.0f s spent: stopping %d unfinished member(s)",
                    tr.time_budget_s,
                    int((~done).sum()),
                )
            done = np.ones_like(done)
        return done

    def report_done() -> None:
        done = finished()
        for k in np.flatnonzero(done & ~reported):
            reported[k] = True
            if on_member_done is not None:
                info = {
                    "seed": seeds[k],
                    "best_loss": float(st.best_loss[k]),
                    "iterations": int(book.iteration[k]),
                    "time_to_goal_s": float(book.time_to_goal_s[k]),
                    "rollbacks": int(book.rollbacks[k]),
                    "history": list(book.history[k]),
                }
                info["eval_min_ratio"] = _eval_ratio(st, int(k))
                on_member_done(int(k), result_params(st, int(k)), info)

    report_done()
    while not finished().all():
        active = np.flatnonzero(~finished())
        # members in the same curriculum stage share one compiled call (at most group_size)
        at = [stage_at(cfg, int(book.iteration[k])) for k in active]
        index, stage = at[0][0], at[0][1]
        same = np.array([i == index for i, _, _ in at])
        lefts = np.array([left for _, _, left in at])[same]
        active = active[same]
        lefts = np.minimum(lefts, tr.max_iters - book.iteration[active])
        if tr.group_size:
            active, lefts = active[: tr.group_size], lefts[: tr.group_size]
        n_iters = int(min(tr.iters_per_call, lefts.min()))
        # a new curriculum stage scores other windows or noise: its best weights start afresh
        entering = active[book.stage[active] != index + 1]
        if entering.size:
            st = st._replace(
                best_loss=st.best_loss.at[entering].set(jnp.inf),
                loss_ema=st.loss_ema.at[entering].set(jnp.inf),
                anchor_loss=st.anchor_loss.at[entering].set(jnp.inf),
            )
            book.stage[entering] = index + 1
        spikes_before = np.asarray(st.spikes)
        part, losses, oks = run_members(
            stage_config(cfg, stage),
            _take(st, active),
            stage.window_steps,
            n_iters,
            book.iteration[active],
        )
        st = _put(st, part, active)
        now = time.perf_counter()
        best_now = np.asarray(st.best_loss)
        spikes_now = np.asarray(st.spikes)
        for j, k in enumerate(active):
            vals = losses[:, j]
            ran = ~np.isnan(vals) | ~oks[:, j]
            book.history[k].extend(float(v) for v in vals[ran])
            book.iteration[k] += int(ran.sum())
            events = (
                (int((~oks[:, j]).sum()), "non-finite loss/gradient; rolled back"),
                (int(spikes_now[k] - spikes_before[k]), "loss jumped far above its best of the "
                 "stage; returned to those weights"),
            )  # fmt: skip
            for count, what in events:
                if count:
                    book.rollbacks[k] += count
                    log.warning(
                        "member seed=%d at iteration ~%d: %s, step scaled to %.3g",
                        seeds[k],
                        book.iteration[k],
                        what,
                        float(st.lr_scale[k]),
                    )
            if best_now[k] < tr.goal_loss and np.isnan(book.time_to_goal_s[k]):
                book.time_to_goal_s[k] = now - t_start
        book.elapsed_s = now - t_start
        if progress is not None:
            finite = best_now[np.isfinite(best_now)]
            progress(
                Progress(
                    iteration=int(book.iteration.min()),
                    max_iters=tr.max_iters,
                    elapsed_s=book.elapsed_s,
                    best=float(finite.min()) if finite.size else float("nan"),
                    median=float(np.median(finite)) if finite.size else float("nan"),
                    worst=float(finite.max()) if finite.size else float("nan"),
                    n_done=int((best_now < tr.goal_loss).sum()),
                    n_members=k_total,
                )
            )
        if tr.stop_on_eval:
            t_eval = time.perf_counter()
            st = _check_criterion(cfg, st, book, active, seeds, t_start)
            book.eval_s += time.perf_counter() - t_eval
        report_done()
        if ckpt is not None and now - last_ckpt >= tr.checkpoint_every_s:
            save_checkpoint(ckpt, st, book, cfg, seeds)
            last_ckpt = now
    if ckpt is not None:
        save_checkpoint(ckpt, st, book, cfg, seeds)
    if tr.stop_on_eval:
        log.info(
            "in-training evaluations took %.1f s of %.1f s (this process)",
            book.eval_s,
            time.perf_counter() - t_proc,
        )
    return TrainResult(
        seeds=seeds,
        names=[member_name(s) for s in seeds],
        best_loss=np.asarray(st.best_loss, np.float64),
        iterations=book.iteration.copy(),
        time_to_goal_s=book.time_to_goal_s.copy(),
        history=book.history,
        rollbacks=book.rollbacks.copy(),
        best_params=[result_params(st, k) for k in range(k_total)],
        wall_s=book.elapsed_s,
    )


def _eval_ratio(st: MemberState, k: int) -> float:
    v = float(st.eval_ratio[k])
    return v if np.isfinite(v) else float("nan")


def result_params(st: MemberState, k: int) -> Params:
    """The weights a member ends with: those with the best evaluation when any were evaluated
    (``stop_on_eval``), else the best-training-loss weights (the paper's choice)."""
    src = st.eval_params if np.isfinite(float(st.eval_ratio[k])) else st.best_params
    return _take(src, np.array(k))


# The noisy runs that select weights during training use this noise stream; the reported
# evaluation (``rhythmswitch evaluate``, ``bench converge``) uses stream 0, so choosing among
# many sets of weights by their score cannot tune them to the realisation they are judged on.
SELECTION_NOISE_SEED = 1


def selection_evaluation(net, cfg: RunConfig):
    """The evaluation that selects weights during training: the noise-free runs and the noisy
    runs on ``train.select_streams`` noise streams from :data:`SELECTION_NOISE_SEED` on (never
    the reported evaluation's stream 0); its smallest ratio is the smallest over all of them."""
    from rhythmswitch.evaluate import evaluate_network

    sigma = cfg.model.sigma
    first = evaluate_network(net, cfg.task, sigma=sigma, noise_seed=SELECTION_NOISE_SEED)
    more = tuple(  # the noise-free runs do not depend on the stream: run them once
        row
        for i in range(1, cfg.train.select_streams)
        for row in evaluate_network(
            net, cfg.task, sigma=sigma, noise_seed=SELECTION_NOISE_SEED + i, noise_free=False
        ).rows
    )
    return dataclasses.replace(first, rows=first.rows + more) if more else first


def _check_criterion(
    cfg: RunConfig,
    st: MemberState,
    book: _Book,
    members: np.ndarray,
    seeds: list[int],
    t_start: float,
) -> MemberState:
    """Evaluate members on the METHOD section 6 criterion; keep the best-evaluated weights and
    stop a member that meets it.

    Every ``eval_every`` iterations, a running member whose median training loss over those
    iterations is at most ``eval_below_loss`` has its current weights evaluated on the full
    protocols (sequence and all transitions, noise-free and noisy).  Weights whose smallest
    in-band ratio beats the member's best so far become its result; a member that passes is
    finished.  The noise-free sequence runs first: weights whose sequence already falls below
    the best so far are not evaluated further.  The training loss of one batch of 8 trials is a noisy estimate of how good a set
    of weights is (measured: best-batch losses of 1e-4 next to a running median of 3e-2), so
    the weights are chosen by the criterion the study is judged by.  The noisy runs use the
    noise streams of :func:`selection_evaluation`, not the reported evaluation's: a member
    stopped here as converged is confirmed (or not) by the evaluation on a fresh realisation.
    """
    from rhythmswitch.evaluate import evaluate_network

    tr = cfg.train
    for k in members:
        if book.eval_passed[k] or book.iteration[k] - book.last_eval[k] < tr.eval_every:
            continue
        book.last_eval[k] = book.iteration[k]
        recent = np.asarray(book.history[k][-tr.eval_every :], np.float64)
        recent = recent[np.isfinite(recent)]
        if recent.size == 0 or float(np.median(recent)) > tr.eval_below_loss:
            continue
        params = _take(st.params, np.array(k))
        net = member_network(cfg, params, seeds[k])
        # the noise-free sequence alone first (one run instead of 26): its smallest ratio
        # bounds the full evaluation's, so weights that cannot beat the best so far stop here
        quick = evaluate_network(net, cfg.task, sigma=0.0, transitions=False)
        if quick.min_ratio <= float(st.eval_ratio[k]):
            log.debug(
                "member seed=%d at iteration %d: sequence min ratio %.4f, not better",
                seeds[k],
                book.iteration[k],
                quick.min_ratio,
            )
            continue
        ev = selection_evaluation(net, cfg)
        better = ev.min_ratio > float(st.eval_ratio[k])
        log.info(
            "member seed=%d at iteration %d: evaluation min ratio %.4f%s%s",
            seeds[k],
            book.iteration[k],
            ev.min_ratio,
            " (best so far)" if better else "",
            " (criterion met)" if ev.converged else "",
        )
        if better:
            st = st._replace(
                eval_params=_put(st.eval_params, params, np.array(k)),
                eval_ratio=st.eval_ratio.at[k].set(ev.min_ratio),
            )
        if ev.converged:
            book.eval_passed[k] = True
            book.time_to_goal_s[k] = time.perf_counter() - t_start
    return st


def member_network(cfg: RunConfig, params: Params, seed: int):
    """The exchange-format network of a member's best parameters."""
    return params_to_network(params, cfg.model, cfg.task, name=member_name(seed))


def config_fingerprint(cfg: RunConfig) -> str:
    """The config without the fields that may differ between resumptions (ensemble size, base
    seed, checkpoint cadence): a member's trajectory depends on none of them."""
    d = dataclasses.asdict(cfg)
    for k in ("n_networks", "seed"):
        d.pop(k, None)
    d["train"].pop("checkpoint_every_s", None)
    d["train"].pop("iters_per_call", None)
    d["train"].pop("time_budget_s", None)
    d["train"].pop("group_size", None)
    # settings added later leave the fingerprint of configs that do not use them unchanged,
    # so checkpoints written before they existed still resume
    for section, key, default in (
        ("", "init_from", ""),
        ("model", "w_rec_mean", 0.0),
        ("train", "amp_floor", 0.0),
        ("train", "amp_weight", 0.0),
        ("train", "select_streams", 1),
        ("train", "amp_stages", 0),
    ):
        where = d[section] if section else d
        if where.get(key) == default:
            where.pop(key)
    return repr(d)
