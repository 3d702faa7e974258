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


def test_weights_are_selected_on_a_noise_stream_the_evaluation_does_not_use():
    import inspect

    from rhythmswitch.evaluate import evaluate_network
    from rhythmswitch.train import SELECTION_NOISE_SEED

    default = inspect.signature(evaluate_network).parameters["noise_seed"].default
    assert default != SELECTION_NOISE_SEED
