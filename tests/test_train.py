"""Ensemble training invariants: ensemble = loop of singles, same seed = same bits, resume."""

import jax
import numpy as np
import pytest

from rhythmswitch.config import apply_overrides, get_preset
from rhythmswitch.train import train_ensemble

SHORT = ["train.max_iters=6", "train.iters_per_call=3", "model.n_units=8"]


def _cfg(*extra):
    return apply_overrides(get_preset("tiny"), [*SHORT, *extra])


def _leaves(p):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(p)]


def test_ensemble_equals_loop_of_single_networks():
    cfg = _cfg()
    ens = train_ensemble(cfg, seeds=[5, 6])
    for k, seed in enumerate([5, 6]):
        single = train_ensemble(cfg, seeds=[seed])
        np.testing.assert_allclose(ens.history[k], single.history[0], rtol=1e-5, atol=1e-7)
        for a, b in zip(_leaves(ens.best_params[k]), _leaves(single.best_params[0]), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_same_seed_gives_identical_bits():
    cfg = _cfg()
    a = train_ensemble(cfg, seeds=[11])
    b = train_ensemble(cfg, seeds=[11])
    assert a.history == b.history
    for x, y in zip(_leaves(a.best_params[0]), _leaves(b.best_params[0]), strict=True):
        np.testing.assert_array_equal(x, y)
    c = train_ensemble(cfg, seeds=[12])
    assert a.history != c.history


def test_loss_decreases_and_best_is_kept():
    cfg = _cfg("train.max_iters=40", "train.iters_per_call=10", "train.learning_rate=0.01")
    res = train_ensemble(cfg, seeds=[0])
    hist = np.array(res.history[0])
    assert len(hist) == 40
    assert res.best_loss[0] == pytest.approx(hist.min(), rel=1e-6)
    assert hist[-10:].mean() < hist[:5].mean()


def test_goal_stops_a_member_early():
    cfg = _cfg("train.goal_loss=0.99", "train.max_iters=9")
    res = train_ensemble(cfg, seeds=[1])
    assert res.iterations[0] < 9 and res.best_loss[0] < 0.99


def test_frozen_tau_is_not_trained():
    cfg = _cfg("model.train_tau=false")
    res = train_ensemble(cfg, seeds=[2])
    from rhythmswitch.model import init_params

    k_init, _ = jax.random.split(jax.random.PRNGKey(2))
    p0 = init_params(cfg.model, cfg.task, key=k_init)
    np.testing.assert_array_equal(np.asarray(res.best_params[0].tau_raw), np.asarray(p0.tau_raw))


def test_curriculum_and_checkpoint_resume(tmp_path):
    cfg = _cfg("train.curriculum=[[100, 3]]", "train.checkpoint_every_s=0")
    full = train_ensemble(cfg, seeds=[3, 4])
    ckpt = tmp_path / "ckpt.npz"
    calls = {"n": 0}

    class Stop(Exception):
        pass

    # a run killed after its second call: the checkpoint written after the first call (the end
    # of the first curriculum stage) is what the next run resumes from
    def stop_after_second(_p):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Stop

    with pytest.raises(Stop):
        train_ensemble(cfg, seeds=[3, 4], checkpoint=ckpt, progress=stop_after_second)
    assert ckpt.exists()
    resumed = train_ensemble(cfg, seeds=[3, 4], checkpoint=ckpt)
    for k in range(2):
        np.testing.assert_allclose(resumed.history[k], full.history[k], rtol=1e-6)
        for a, b in zip(_leaves(resumed.best_params[k]), _leaves(full.best_params[k]), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_checkpoint_from_before_noise_stages_resumes_in_its_stage(tmp_path):
    """Checkpoints written before stages could set their noise stored the stage's window: a
    member resumed in the middle of its stage keeps its best weights of that stage."""
    cfg = _cfg("train.curriculum=[[100, 6]]", "train.max_iters=9", "train.checkpoint_every_s=0")
    full = train_ensemble(cfg, seeds=[3])
    ckpt = tmp_path / "ckpt.npz"

    class Stop(Exception):
        pass

    calls = {"n": 0}

    def stop_after_second(_p):  # the checkpoint of the first call (iteration 3) survives
        calls["n"] += 1
        if calls["n"] == 2:
            raise Stop

    with pytest.raises(Stop):
        train_ensemble(cfg, seeds=[3], checkpoint=ckpt, progress=stop_after_second)
    with np.load(ckpt) as data:
        arrays = {k: data[k] for k in data.files}
    assert arrays["stage"].tolist() == [1]
    arrays["window"] = np.array([100])
    del arrays["stage"]
    np.savez(ckpt, **arrays)
    from rhythmswitch.train import _Book, init_member_state, make_optimizer, restore_checkpoint

    zeros = np.zeros(1, np.int64)
    book = _Book(
        iteration=zeros.copy(),
        history=[[]],
        time_to_goal_s=np.zeros(1),
        rollbacks=zeros.copy(),
        eval_passed=np.zeros(1, bool),
        last_eval=zeros.copy(),
        stage=zeros.copy(),
    )
    st = init_member_state(cfg, [3], make_optimizer(cfg))
    _, book = restore_checkpoint(ckpt, st, book, cfg, [3])
    # resumed at iteration 3 in the 100-step stage, known as that stage (not as entering it,
    # which would drop its best weights of the stage)
    assert book.iteration.tolist() == [3] and book.stage.tolist() == [1]
    resumed = train_ensemble(cfg, seeds=[3], checkpoint=ckpt)
    np.testing.assert_allclose(resumed.history[0], full.history[0], rtol=1e-6)


def test_tau_lr_scale_scales_only_the_time_constant_updates():
    from rhythmswitch.model import init_params
    from rhythmswitch.train import make_optimizer

    base = _cfg()
    p = init_params(base.model, base.task, key=jax.random.PRNGKey(0))
    grads = jax.tree_util.tree_map(lambda x: 0.01 * jax.numpy.ones_like(x), p)
    ups = []
    for scale in (1.0, 3.0):
        opt = make_optimizer(apply_overrides(base, [f"train.tau_lr_scale={scale}"]))
        ups.append(opt.update(grads, opt.init(p), p)[0])
    np.testing.assert_allclose(np.asarray(ups[1].tau_raw), 3.0 * np.asarray(ups[0].tau_raw))
    for name in ("w_rec", "w_in", "b"):
        np.testing.assert_array_equal(getattr(ups[1], name), getattr(ups[0], name))


def test_sigma_scale_sets_the_training_noise_only():
    off = train_ensemble(_cfg("model.sigma=0.1", "train.sigma_scale=0.0"), seeds=[4])
    none = train_ensemble(_cfg("model.sigma=0.0"), seeds=[4])
    noisy = train_ensemble(_cfg("model.sigma=0.1"), seeds=[4])
    np.testing.assert_array_equal(off.history[0], none.history[0])
    assert off.history[0] != noisy.history[0]


def test_a_curriculum_stage_can_set_its_own_training_noise():
    from rhythmswitch.train import stages

    cfg = _cfg("model.sigma=0.1", "train.curriculum=[[100, 3, 2.0], [150, 2]]")
    assert [tuple(s)[:3] for s in stages(cfg)] == [(0, 100, 2.0), (3, 150, 1.0), (5, 200, 1.0)]
    # the first stage, noisy at 2 x sigma, is bit for bit a run at train.sigma_scale = 2 ...
    staged = train_ensemble(_cfg("model.sigma=0.1", "train.curriculum=[[200, 3, 2.0]]"), seeds=[4])
    plain = train_ensemble(_cfg("model.sigma=0.1", "train.sigma_scale=2.0"), seeds=[4])
    np.testing.assert_array_equal(staged.history[0][:3], plain.history[0][:3])
    # ... and the stages after it return to train.sigma_scale
    base = train_ensemble(_cfg("model.sigma=0.1"), seeds=[4])
    assert staged.history[0][:3] != base.history[0][:3]
    assert staged.history[0][3:] != plain.history[0][3:]


def test_the_amplitude_floor_changes_the_gradient_not_the_reported_loss():
    base = train_ensemble(_cfg(), seeds=[4])
    # a floor no window reaches: every step differs, but the first reported loss (of the
    # shared initial weights) is the power-ratio loss, as without the floor
    pushed = train_ensemble(_cfg("train.amp_floor=10.0", "train.amp_weight=1.0"), seeds=[4])
    assert pushed.history[0][0] == base.history[0][0]
    assert pushed.history[0][1:] != base.history[0][1:]
    # a floor every window clears adds nothing: the same bits as without it
    cleared = train_ensemble(_cfg("train.amp_floor=1e-12", "train.amp_weight=1.0"), seeds=[4])
    assert cleared.history[0] == base.history[0]
    for x, y in zip(_leaves(cleared.best_params[0]), _leaves(base.best_params[0]), strict=True):
        np.testing.assert_array_equal(x, y)


def test_weights_are_selected_on_a_noise_stream_the_evaluation_does_not_use():
    import inspect

    from rhythmswitch.evaluate import evaluate_network
    from rhythmswitch.train import SELECTION_NOISE_SEED

    default = inspect.signature(evaluate_network).parameters["noise_seed"].default
    assert default != SELECTION_NOISE_SEED


def test_the_amplitude_floor_can_be_limited_to_the_first_stages():
    from rhythmswitch.train import stages

    amp = ["train.amp_floor=10.0", "train.amp_weight=1.0", "train.curriculum=[[200, 3]]"]
    limited_cfg = _cfg(*amp, "train.amp_stages=1")
    assert [s.amp for s in stages(limited_cfg)] == [True, False]
    assert [s.amp for s in stages(_cfg(*amp))] == [True, True]
    assert [s.amp for s in stages(_cfg("train.curriculum=[[200, 3]]"))] == [False, False]
    limited = train_ensemble(limited_cfg, seeds=[4]).history[0]
    throughout = train_ensemble(_cfg(*amp), seeds=[4]).history[0]
    assert limited[:3] == throughout[:3]  # the first stage: the floor in both
    assert limited[3:] != throughout[3:]  # then only one of them


def test_selection_can_require_a_pass_on_several_noise_streams():
    import dataclasses

    from rhythmswitch.evaluate import evaluate_network
    from rhythmswitch.model import init_params
    from rhythmswitch.train import SELECTION_NOISE_SEED, member_network, selection_evaluation

    cfg = _cfg("model.sigma=0.5", "train.select_streams=3")
    params = init_params(cfg.model, cfg.task, key=jax.random.PRNGKey(3))
    net = member_network(cfg, params, 3)
    sel = selection_evaluation(net, cfg)
    evs = [
        evaluate_network(net, cfg.task, sigma=0.5, noise_seed=SELECTION_NOISE_SEED + i)
        for i in range(3)
    ]
    clean = [r for r in evs[0].rows if r.noise == 0]
    noisy = [r for ev in evs for r in ev.rows if r.noise > 0]
    key = dataclasses.astuple
    assert sorted(map(key, sel.rows)) == sorted(map(key, clean + noisy))  # noise-free runs once
    assert sel.min_ratio == min(ev.min_ratio for ev in evs)
    reported = evaluate_network(net, cfg.task, sigma=0.5, noise_seed=0)
    assert not {key(r) for r in reported.rows if r.noise > 0} & set(map(key, sel.rows))  # stream 0
    one = selection_evaluation(net, _cfg("model.sigma=0.5"))
    assert one == evs[0]


def _guard_run(losses, factor=10.0, floor=0.01):
    """Feed a loss sequence through spike_guard; every update adds 1 to the (scalar) weights,
    so a weight's value names the iteration it was reached at."""
    import jax.numpy as jnp

    from rhythmswitch.train import MemberState, spike_guard

    inf = jnp.asarray(jnp.inf, jnp.float32)
    w = jnp.asarray(0.0)
    st = MemberState(
        params=w, opt_state=w, best_params=w, best_loss=inf, lr_scale=jnp.asarray(1.0),
        key=jnp.zeros(2, jnp.uint32), eval_params=w, eval_ratio=-inf, loss_ema=inf,
        anchor_params=w, anchor_opt=w, anchor_loss=inf, spikes=jnp.asarray(0, jnp.int32),
    )  # fmt: skip
    trace = []
    for loss in losses:
        new = st._replace(params=st.params + 1.0, opt_state=st.opt_state + 1.0)
        st = spike_guard(st, new, jnp.asarray(loss), jnp.asarray(True), factor, floor)
        trace.append(st)
    return trace


def test_spike_guard_returns_to_the_anchor_with_a_halved_step():
    good = [1e-4 * 0.99**i for i in range(30)]  # slowly falling: the last good one is lowest
    bad = [0.5] * 30
    trace = _guard_run(good + bad)
    spikes = [int(s.spikes) for s in trace]
    first = spikes.index(1)
    # reference: the running average of log loss (weight 0.1 per loss) first exceeds
    # max(log(anchor) + log(10), log(0.01))
    ema = low = np.log(good[0])
    expected = None
    for i, loss in enumerate(good + bad):
        ema = 0.9 * ema + 0.1 * np.log(loss) if i else ema
        low = ema if i < 30 else low
        if i >= 30 and ema > max(low + np.log(10.0), np.log(0.01)):
            expected = i
            break
    assert first == expected
    hit = trace[first]
    # the anchor holds the weights the lowest average was measured on (iteration 29's, the
    # last good one) and their Adam state
    assert float(hit.params) == float(hit.opt_state) == 29.0
    assert float(hit.lr_scale) == 0.5
    assert np.isclose(float(hit.loss_ema), low, rtol=1e-5)
    assert max(spikes) >= 2  # the losses stay bad: it returns again, step halved again
    assert float(trace[-1].lr_scale) == 0.5 ** max(spikes)


def test_spike_guard_ignores_ordinary_noise_and_high_losses():
    rng = np.random.default_rng(0)
    early = list(rng.uniform(0.05, 0.9, 200))  # a loss that has not fallen yet: floor protects
    assert max(int(s.spikes) for s in _guard_run(early)) == 0
    noisy = list(10 ** rng.uniform(-4, -3, 200))  # a factor-10 spread around a low plateau
    trace = _guard_run(noisy)
    assert max(int(s.spikes) for s in trace) == 0
    assert float(trace[-1].params) == 200.0


def test_spike_factor_is_validated():
    from rhythmswitch.config import ConfigError

    base = get_preset("tiny")
    for bad in ("0.5", "1", "-2", "nan"):
        with pytest.raises(ConfigError, match="train.spike_factor"):
            apply_overrides(base, [f"train.spike_factor={bad}"])
    with pytest.raises(ConfigError, match="train.spike_floor"):
        apply_overrides(base, ["train.spike_floor=0"])
    assert apply_overrides(base, ["train.spike_factor=10"]).train.spike_factor == 10.0


def test_spike_guard_keeps_members_independent():
    # a floor this low makes the guard fire during a short run; each member's guard is its own
    cfg = _cfg("train.spike_factor=1.01", "train.spike_floor=1e-9", "train.max_iters=9")
    ens = train_ensemble(cfg, seeds=[5, 6])
    assert ens.rollbacks.sum() > 0
    for k, seed in enumerate([5, 6]):
        single = train_ensemble(cfg, seeds=[seed])
        np.testing.assert_allclose(ens.history[k], single.history[0], rtol=1e-5, atol=1e-7)
        assert ens.rollbacks[k] == single.rollbacks[0]


def test_training_can_start_from_given_weights():
    from rhythmswitch.model import init_params, params_from_network, params_to_network
    from rhythmswitch.train import init_member_state, make_optimizer

    cfg = _cfg()
    # the seed's own initial weights given explicitly: the same run, bit for bit
    own = init_member_state(cfg, [5], make_optimizer(cfg)).params
    own = jax.tree_util.tree_map(lambda x: x[0], own)
    assert train_ensemble(cfg, seeds=[5], initial=[own]).history == (
        train_ensemble(cfg, seeds=[5]).history
    )
    # continuing from a network file: its weights round-trip through the exchange format
    trained = train_ensemble(cfg, seeds=[5]).best_params[0]
    net = params_to_network(trained, cfg.model, cfg.task)
    back = params_from_network(net, cfg.model, cfg.task)
    for a, b in zip(_leaves(trained), _leaves(back), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    other = init_params(cfg.model, cfg.task, key=jax.random.PRNGKey(0))
    assert train_ensemble(cfg, seeds=[5], initial=[back]).history != (
        train_ensemble(cfg, seeds=[5], initial=[other]).history
    )
    wrong = apply_overrides(cfg, ["model.n_units=9"])
    with pytest.raises(ValueError, match="model.n_units=9"):
        params_from_network(net, wrong.model, wrong.task)
    with pytest.raises(ValueError, match="2 initial weight sets for 1 seeds"):
        train_ensemble(cfg, seeds=[5], initial=[back, back])


def test_fingerprint_counts_later_settings_only_when_used():
    from rhythmswitch.train import config_fingerprint

    base = _cfg()
    assert "w_rec_mean" not in config_fingerprint(base)  # as written before it existed
    assert "init_from" not in config_fingerprint(base)
    for extra in ("model.w_rec_mean=0.5", "init_from=runs/old"):
        assert config_fingerprint(_cfg(extra)) != config_fingerprint(base)
