"""Benchmarks: bench train / bench converge on tiny configs, and the TensorFlow reference step."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rhythmswitch import bench
from rhythmswitch.config import ConfigError, apply_overrides, get_preset

REPO = Path(__file__).resolve().parents[1]
# shorter trials than the tiny preset: compile and run time of these tests stays small
SMALL = [
    "task.wait_steps=10",
    "task.pulse_steps=10",
    "task.transient_steps=20",
    "task.window_steps=100",
    "model.n_units=8",
    "train.batch_size=2",
]


def _lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_bench_train_tiny_prints_consistent_json_lines():
    buf = io.StringIO()
    records = bench.bench_train(
        "tiny",
        networks=2,
        iters=2,
        overrides=SMALL,
        tensorflow=False,
        matmul_n=256,
        matmul_repeats=3,
        isolate=False,
        stream=buf,
    )
    lines = _lines(buf)
    assert lines == json.loads(json.dumps(records))
    assert len(lines) == 1
    rec = lines[0]
    for key in ("s_per_iter", "gflops", "peak_gflops", "efficiency", "peak_mem_gib"):
        assert isinstance(rec[key], float) and np.isfinite(rec[key]) and rec[key] > 0, key
    assert rec["preset"] == "tiny" and rec["networks"] == 2 and rec["impl"] == "jax"
    assert rec["loss_finite"] is True
    # the stated formula: 3 x 2 B N^2 T model FLOPs per iteration and network
    cfg = apply_overrides(get_preset("tiny"), SMALL)
    t = cfg.task
    n_steps = t.wait_steps + t.switch_num * (t.transient_steps + t.window_steps)
    assert rec["trial_steps"] == n_steps
    flops = 3 * 2 * cfg.train.batch_size * cfg.model.n_units**2 * n_steps
    assert rec["gflop_per_iter_per_network"] == pytest.approx(flops / 1e9, rel=1e-12)
    assert rec["gflops"] == pytest.approx(2 * flops / rec["s_per_iter"] / 1e9, rel=1e-9)
    assert rec["efficiency"] == pytest.approx(rec["gflops"] / rec["peak_gflops"], rel=1e-12)
    assert rec["s_per_iter_min"] <= rec["s_per_iter"]
    assert rec["xla_mem_gib"] is None or 0 < rec["xla_mem_gib"] < rec["peak_rss_gib"]


def test_bench_train_rejects_bad_input_before_work():
    with pytest.raises(ConfigError, match="--iters"):
        bench.bench_train("tiny", iters=0, tensorflow=False, isolate=False)
    with pytest.raises(ConfigError, match="--networks"):
        bench.bench_train("tiny", networks=0, tensorflow=False, isolate=False)
    with pytest.raises(ConfigError, match="preset"):
        bench.bench_train("nope", tensorflow=False, isolate=False)
    with pytest.raises(ConfigError, match="train.batch_size"):
        bench.bench_train("tiny", overrides=["train.batch_size=0"], isolate=False)


def test_peak_worker_runs_in_its_own_process():
    res = bench._run_worker("peak", {"matmul_n": 128, "repeats": 2}, isolate=True)
    assert "error" not in res, res
    assert res["peak_gflops"] > 0 and res["backend"] in ("cpu", "gpu", "cuda", "rocm", "tpu")


def test_failed_worker_is_reported_not_raised():
    res = bench._run_json_process([sys.executable, "-c", "raise SystemExit(3)"], what="probe")
    assert "status 3" in res["error"]
    res = bench._run_json_process([sys.executable, "-c", "print('hello')"], what="probe")
    assert "no JSON" in res["error"]


def test_missing_tensorflow_reference_is_an_error_record(monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "TF_SCRIPT", tmp_path / "absent.py")
    res = bench._run_tensorflow(get_preset("tiny"), iters=1)
    assert "not found" in res["error"] and "absent.py" in res["error"]


def test_bench_converge_tiny_one_network(tmp_path):
    cfg = apply_overrides(get_preset("tiny"), [*SMALL, "n_networks=1", "train.max_iters=10"])
    buf = io.StringIO()
    rec = bench.bench_converge(cfg, out=tmp_path / "run", stream=buf)
    (line,) = _lines(buf)
    assert line == json.loads(json.dumps(rec))
    assert line["preset"] == "tiny" and line["networks"] == 1 and line["seed"] == cfg.seed
    # the record says how the run differs from its preset (not the ensemble size)
    assert "train.max_iters=10" in line["changes"]
    assert not any(c.startswith("n_networks") for c in line["changes"])
    assert line["wall_s"] >= line["train_s"] > 0
    assert len(line["time_to_criterion_s"]) == len(line["iterations"]) == 1
    assert 1 <= line["iterations"][0] <= 10
    assert line["converged"] in (0, 1) and line["networks_evaluated"] == 1
    assert line["paper_converged"] == int(line["best_loss"][0] < 2e-5)
    # the converged count agrees with the evaluation the run wrote
    summary = (tmp_path / "run" / "evaluation_summary.csv").read_text().splitlines()
    assert sum(row.split(",")[1] == "true" for row in summary[1:]) == line["converged"]


# -- the authors-style TensorFlow step against the JAX reference ----------------------------


def test_tf_reference_loss_and_gradients_match_jax():
    tf = pytest.importorskip("tensorflow")
    import jax
    import jax.numpy as jnp

    from rhythmswitch.loss import band_masks, window_loss
    from rhythmswitch.model import run
    from rhythmswitch.task import window_starts

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import tf_reference
    finally:
        sys.path.remove(str(REPO / "benchmarks"))

    cfg = apply_overrides(get_preset("tiny"), [*SMALL, "model.tau_init=loguniform"])
    trainer = tf_reference.Trainer(cfg.to_dict(), seed=5)
    u, x0, modes = trainer.sample_batch()
    loss_tf, grads_tf = tf.function(trainer.loss_and_grads)(u, x0, modes, 0.0)
    weights = [
        jnp.asarray(v.numpy())
        for v in (trainer.net.w_rec, trainer.net.w_in, trainer.net.b, trainer.net.a)
    ]
    t = cfg.task

    def loss_jax(w_rec, w_in, b, a):
        xs = run(w_rec, w_in, b, a, jnp.asarray(u.numpy()), jnp.asarray(x0.numpy()), None, 0.0,
                 "current")  # fmt: skip
        z = jnp.mean(jnp.tanh(xs), axis=-1).T
        masks = band_masks(t.window_steps, t.fs_hz, t.bands_hz)
        starts = window_starts(t)
        return window_loss(z, jnp.asarray(modes.numpy()), starts, t.window_steps, masks, t.fs_hz)[0]

    loss_j, grads_j = jax.value_and_grad(loss_jax, argnums=(0, 1, 2, 3))(*weights)
    assert float(loss_tf) == pytest.approx(float(loss_j), rel=1e-4)
    for g_tf, g_j in zip(grads_tf, grads_j, strict=True):
        g_j = np.asarray(g_j)
        np.testing.assert_allclose(g_tf.numpy(), g_j, atol=1e-4 * np.abs(g_j).max())
    # one training step keeps a >= 0 and returns a finite loss
    assert np.isfinite(trainer.step())
    assert float(trainer.net.a.numpy().min()) >= 0.0
