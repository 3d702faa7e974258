"""Faults lose nothing (issue 6): SIGKILL mid-run, NaN members, corrupt files, torn writes."""

from __future__ import annotations

import csv
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import random_network
from rhythmswitch import store, train
from rhythmswitch.config import apply_overrides, get_preset
from rhythmswitch.network import Network, NetworkFileError, load_network, save_network
from rhythmswitch.runs import finished_seeds, load_run_networks

# -- helpers -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jax_cache_env(tmp_path_factory) -> dict[str, str]:
    """Environment for CLI subprocesses: a persistent XLA cache shared by this session's runs,
    so a rerun loads the programs its killed predecessor compiled instead of recompiling."""
    env = dict(os.environ)
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_cache"))
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def small_network(n: int = 8, seed: int = 0, name: str = "good") -> Network:
    return random_network(n=n, seed=seed, name=name)


def assert_manifest_intact(run_dir: Path, *, except_: tuple[str, ...] = ()) -> None:
    files = store.read_manifest(run_dir)
    assert files, "empty manifest"
    for rel, digest in files.items():
        if rel in except_:
            continue
        path = run_dir / rel
        assert path.is_file(), f"manifest lists missing {rel}"
        assert store.sha256_file(path) == digest, f"{rel} does not match its checksum"


def start_cli(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as fh:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "rhythmswitch", *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )


def poll(condition, proc: subprocess.Popen, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"process ended (rc={proc.returncode}) before {what}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def sigkill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL


# -- SIGKILL -------------------------------------------------------------------------------

RUN_ARGS = [
    "--preset",
    "tiny",
    "--networks",
    "2",
    "--set",
    "train.max_iters=40",
    "--set",
    "train.iters_per_call=2",
    "--set",
    "train.checkpoint_every_s=0",
    "-q",
]


@pytest.mark.slow
def test_sigkill_reproduce_twice_then_rerun_loses_nothing(tmp_path, jax_cache_env):
    """Kill ``reproduce`` mid-training and again mid-analysis; the rerun finishes with valid
    files and networks equal to an uninterrupted ``train`` of the same seeds."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    log_path = tmp_path / "log.txt"
    done = subprocess.run(
        [sys.executable, "-m", "rhythmswitch", "train", *RUN_ARGS, "--out", str(ref)],
        env=jax_cache_env,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]

    # kill 1: as soon as a training checkpoint exists (training is under way)
    proc = start_cli(["reproduce", *RUN_ARGS, "--out", str(run)], jax_cache_env, log_path)
    poll((run / "checkpoint.npz").exists, proc, 300, "the first checkpoint")
    sigkill(proc)
    assert (run / "checkpoint.npz").exists(), "killed after training ended: test is vacuous"
    with np.load(run / "checkpoint.npz") as ck:
        assert int(ck["iteration"].min()) < 40

    # kill 2: once the analysis stage has started
    proc = start_cli(["reproduce", *RUN_ARGS, "--out", str(run)], jax_cache_env, log_path)
    poll(lambda: "stage analyze" in log_path.read_text(), proc, 400, "the analyze stage")
    time.sleep(0.5)
    if proc.poll() is None:
        sigkill(proc)

    done = subprocess.run(
        [sys.executable, "-m", "rhythmswitch", "reproduce", *RUN_ARGS, "--out", str(run)],
        env=jax_cache_env,
        capture_output=True,
        timeout=600,
    )
    err = done.stderr.decode()
    assert done.returncode == 0, err[-3000:]
    assert "train: up to date, skipped" in err
    assert "report:" in done.stdout.decode()
    assert (run / "report" / "index.html").is_file()
    assert not (run / "checkpoint.npz").exists()
    assert_manifest_intact(run)

    names = sorted(p.name for p in (ref / "networks").glob("*.npz"))
    assert names == ["net043.npz", "net044.npz"]
    assert sorted(p.name for p in (run / "networks").glob("*.npz")) == names
    for name in names:
        a, b = load_network(ref / "networks" / name), load_network(run / "networks" / name)
        for key in ("W_rec", "W_in", "b", "a"):  # the trained float32 parameters
            np.testing.assert_allclose(getattr(b, key), getattr(a, key), rtol=1e-5, atol=1e-6)
        assert int(b.extras["iterations"]) == int(a.extras["iterations"]) == 40
        np.testing.assert_allclose(
            b.extras["loss_history"], a.extras["loss_history"], rtol=1e-5, atol=1e-7
        )
    with open(run / "analysis" / "networks.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["network"] for r in rows) == ["net043", "net044"]


# -- NaN members ---------------------------------------------------------------------------

MICRO = [
    "task.wait_steps=5",
    "task.pulse_steps=5",
    "task.transient_steps=10",
    "task.window_steps=64",
    "task.switch_num=1",
    "model.n_units=8",
    "train.batch_size=2",
    "train.max_iters=6",
    "train.iters_per_call=3",
    "train.time_chunk=25",
]


def _train_with_fault(monkeypatch, cfg, seeds, bad_seed: int, bad_iter: int):
    """Train with a loss that is NaN (value and gradient) for one member at one iteration.

    The member is recognised by its iteration key, fold_in(member key, iteration), the key the
    trainer hands the loss; everything else is the real trainer.
    """
    member_key = train.init_member_state(cfg, [bad_seed], train.make_optimizer(cfg)).key[0]
    bad_key = jnp.asarray(jax.random.fold_in(member_key, bad_iter))
    make_loss_fn = train.make_loss_fn

    def faulty_make_loss_fn(cfg, window_steps, *args):
        loss_fn = make_loss_fn(cfg, window_steps, *args)

        def faulty(params, keys):  # a stack of members, one key each
            objectives, (losses, ratios) = loss_fn(params, keys)
            nan = jnp.where(jnp.all(keys == bad_key, axis=-1), jnp.nan, 1.0)
            return objectives * nan, (losses * nan, ratios)

        return faulty

    monkeypatch.setattr(train, "make_loss_fn", faulty_make_loss_fn)
    clear = getattr(train.make_ensemble_chunk, "cache_clear", lambda: None)
    clear()  # the trainer caches compiled chunks per config: never reuse (or leave) a faulty one
    try:
        return train.train_ensemble(cfg, seeds=seeds)
    finally:
        clear()


def test_nan_member_is_rolled_back_and_never_poisons_others(monkeypatch, caplog):
    cfg = apply_overrides(get_preset("tiny"), MICRO)
    seeds = [43, 44, 45]
    # the same loss code in both runs; only the fault's position differs (never reached here)
    clean = _train_with_fault(monkeypatch, cfg, seeds, bad_seed=44, bad_iter=10**6)
    with caplog.at_level(logging.WARNING, logger="rhythmswitch.train"):
        faulty = _train_with_fault(monkeypatch, cfg, seeds, bad_seed=44, bad_iter=3)

    assert list(clean.rollbacks) == [0, 0, 0]
    assert list(faulty.rollbacks) == [0, 1, 0]
    messages = [r.getMessage() for r in caplog.records]
    assert any("seed=44" in m and "rolled back" in m and "0.5" in m for m in messages), messages
    assert not any("seed=43" in m or "seed=45" in m for m in messages)
    for k in (0, 2):  # the other members are bit-identical to the run without the fault
        assert clean.history[k] == faulty.history[k]
        for a, b in zip(
            jax.tree_util.tree_leaves(clean.best_params[k]),
            jax.tree_util.tree_leaves(faulty.best_params[k]),
            strict=True,
        ):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    h_clean, h_bad = clean.history[1], faulty.history[1]
    assert len(h_bad) == len(h_clean) == 6
    assert h_bad[:3] == h_clean[:3]  # identical until the fault
    assert np.isnan(h_bad[3])  # the faulty iteration is recorded as NaN ...
    assert np.all(np.isfinite(h_bad[4:]))  # ... and the member goes on from its last good state
    assert np.isfinite(faulty.best_loss[1])
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(faulty.best_params[1]))


# -- corrupt files -------------------------------------------------------------------------


def _write_bad_files(run_dir: Path) -> dict[str, str]:
    """A run dir with one good network and one of every kind of bad file; name -> reason."""
    nets = run_dir / "networks"
    good = save_network(small_network(), nets / "good.npz")
    store.record(run_dir, good)
    data = good.read_bytes()
    (nets / "truncated.npz").write_bytes(data[: len(data) // 2])
    (nets / "garbage.npz").write_bytes(b"\x00not a zip file" * 50)
    arrays = small_network().to_arrays()
    store.atomic_write_bytes(
        nets / "wrongkey.npz", store.npz_bytes({k: v for k, v in arrays.items() if k != "W_rec"})
    )
    store.atomic_write_bytes(nets / "wrongshape.npz", store.npz_bytes({**arrays, "b": np.zeros(3)}))
    store.atomic_write_bytes(
        nets / "nantau.npz", store.npz_bytes({**arrays, "tau": np.full(8, np.nan)})
    )
    tampered = save_network(small_network(seed=1, name="tampered"), nets / "tampered.npz")
    store.record(run_dir, tampered)
    save_network(small_network(seed=2), tampered)  # valid file, but not the recorded one
    return {
        "truncated": "not a readable .npz",
        "garbage": "not a readable .npz",
        "wrongkey": "missing key(s) W_rec",
        "wrongshape": "b must have shape (8,)",
        "nantau": "tau holds non-finite values",
        "tampered": "checksum does not match",
    }


def test_corrupt_files_are_refused_by_name_and_skipped(tmp_path, caplog, capsys):
    from rhythmswitch import cli

    run_dir = tmp_path / "run"
    expected = _write_bad_files(run_dir)
    for name, reason in expected.items():
        if name == "tampered":
            continue
        with pytest.raises(NetworkFileError, match=reason.replace("(", r"\(").replace(")", r"\)")):
            load_network(run_dir / "networks" / f"{name}.npz")
    nets, bad = load_run_networks(run_dir)
    assert [n.name for n in nets] == ["good"]
    got = {Path(p).stem: why for p, why in bad}
    assert set(got) == set(expected)
    for name, reason in expected.items():
        assert reason in got[name] and f"{name}.npz" in got[name]

    # evaluate: skips them with an error naming the file, evaluates the good one
    apply_overrides(get_preset("tiny"), ["model.n_units=8"]).save(run_dir / "config.toml")
    with caplog.at_level(logging.ERROR):
        assert cli.main(["evaluate", str(run_dir), "-q"]) == 0
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    for name, reason in expected.items():
        assert f"{name}.npz" in logged and reason in logged
    with open(run_dir / "evaluation_summary.csv", newline="") as fh:
        assert [r["network"] for r in csv.DictReader(fh)] == ["good"]

    # analyze: one row per file, the refused ones with their reason, and it goes on
    from rhythmswitch.analysis.pipeline import analyze_run

    adir = analyze_run(run_dir, quiet=True, fixed_points=False)
    with open(adir / "networks.csv", newline="") as fh:
        rows = {r["network"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"good", *expected}
    for name, reason in expected.items():
        assert reason in rows[name]["reason"]
    assert_manifest_intact(run_dir, except_=("networks/tampered.npz",))


def test_checksum_mismatch_means_retrain(tmp_path):
    """A network file that no longer matches its manifest entry is not counted as finished."""
    run_dir = tmp_path / "run"
    path = save_network(small_network(name="net043"), run_dir / "networks" / "net043.npz")
    store.record(run_dir, path)
    save_network(small_network(name="net044"), run_dir / "networks" / "net044.npz")  # unrecorded
    assert finished_seeds(run_dir, [43, 44, 45]) == {43, 44}
    save_network(small_network(seed=5, name="net043"), path)
    assert finished_seeds(run_dir, [43, 44, 45]) == {44}
    path.write_bytes(path.read_bytes()[:100])
    store.record(run_dir, path)  # even recorded, a torn file is refused by the loader
    assert finished_seeds(run_dir, [43, 44, 45]) == {44}


def test_interrupted_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "table.csv"
    store.atomic_write_text(target, "old\n")

    def dies(*_args):
        raise KeyboardInterrupt  # the process dies between writing the temp file and renaming

    monkeypatch.setattr(store.os, "replace", dies)
    with pytest.raises(KeyboardInterrupt):
        store.atomic_write_text(target, "new\n" * 1000)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_sigkill_during_writes_never_tears_a_file(tmp_path):
    """A child rewriting a file in a tight loop is SIGKILLed; the file is always whole."""
    target = tmp_path / "data.bin"
    code = (
        "import sys\n"
        "from rhythmswitch.store import atomic_write_bytes\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        "    atomic_write_bytes(sys.argv[1], bytes([i % 256]) * 200_000)\n"
    )
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code, str(target)])
        poll(target.exists, proc, 60, "the first write")
        time.sleep(0.05 + 0.1 * np.random.default_rng(_).random())
        sigkill(proc)
        data = target.read_bytes()
        assert len(data) == 200_000 and len(set(data)) == 1
