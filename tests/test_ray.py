"""The Ray backend trains and analyses the same networks as the local backend (issue 6)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")

from conftest import random_network  # noqa: E402
from rhythmswitch.backends import ray_map, train_run_ray  # noqa: E402
from rhythmswitch.config import apply_overrides, get_preset  # noqa: E402
from rhythmswitch.network import load_network, save_network  # noqa: E402
from rhythmswitch.runs import train_run  # noqa: E402
from rhythmswitch.store import read_manifest, sha256_file  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster():
    """A local two-CPU Ray cluster for this module, shut down afterwards."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_map_keeps_order_and_reports_each_result(ray_cluster):
    seen = []
    # a lambda is pickled by value (a test-module function would need importing on the worker)
    out = ray_map(lambda x: x * x, list(range(7)), on_result=lambda k, r: seen.append((k, r)))
    assert out == [k * k for k in range(7)]
    assert sorted(seen) == [(k, k * k) for k in range(7)]
    assert ray_map(abs, []) == []


def test_ray_training_equals_local_training(ray_cluster, tmp_path):
    """Seeds 43..45 in Ray chunks [43, 44] + [45] equal one local ensemble of all three."""
    cfg = apply_overrides(get_preset("tiny"), ["n_networks=3", "train.max_iters=10"])
    local, remote = tmp_path / "local", tmp_path / "ray"
    train_run(cfg, local)
    paths = train_run_ray(cfg, remote, chunk_size=2)
    assert [p.name for p in paths] == ["net043.npz", "net044.npz", "net045.npz"]
    for path in paths:
        a, b = load_network(local / "networks" / path.name), load_network(path)
        # the trained float32 parameters (a = dt/tau, not tau: a tau of 26 s is a = 4e-5, where
        # float32 round-off of a is a relative 4e-5 of tau)
        for key in ("W_rec", "W_in", "b", "a"):
            np.testing.assert_allclose(getattr(b, key), getattr(a, key), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            b.extras["loss_history"], a.extras["loss_history"], rtol=1e-5, atol=1e-7
        )
        assert int(b.extras["seed"]) == int(a.extras["seed"])
        assert int(b.extras["iterations"]) == int(a.extras["iterations"]) == 10
    # same run layout, every file recorded and intact
    for name in ("config.toml", "training.csv", "training_summary.csv"):
        assert (remote / name).is_file()
    files = read_manifest(remote)
    assert {"networks/net043.npz", "networks/net045.npz", "training_summary.csv"} <= set(files)
    for rel, digest in files.items():
        assert sha256_file(remote / rel) == digest
    # a rerun finds every network finished and trains nothing
    before = {p: p.stat().st_mtime_ns for p in paths}
    train_run_ray(cfg, remote, chunk_size=2)
    assert {p: p.stat().st_mtime_ns for p in paths} == before


def test_ray_analysis_equals_local_analysis(ray_cluster, tmp_path):
    from rhythmswitch.analysis.pipeline import analyze_run

    tiny = apply_overrides(get_preset("tiny"), ["model.n_units=10"])
    tables = {}
    for backend in ("local", "ray"):
        run = tmp_path / backend
        for seed in (1, 2):
            save_network(
                random_network(n=10, seed=seed, gain=1.6, name=f"hand{seed}"),
                run / "networks" / f"hand{seed}.npz",
            )
        (run / "networks" / "broken.npz").write_bytes(b"not a network")
        tiny.save(run / "config.toml")
        adir = analyze_run(run, quiet=True, backend=backend, fixed_points=False)
        with open(adir / "neurons.csv", newline="") as fh:
            neurons = list(csv.DictReader(fh))
        with open(adir / "networks.csv", newline="") as fh:
            networks = {r["network"]: r for r in csv.DictReader(fh)}
        tables[backend] = (neurons, networks)
    (n_local, net_local), (n_ray, net_ray) = tables["local"], tables["ray"]
    assert set(net_local) == set(net_ray) == {"hand1", "hand2", "broken"}
    assert "not a readable .npz" in net_ray["broken"]["reason"]
    assert len(n_local) == len(n_ray) == 20
    for a, b in zip(n_local, n_ray, strict=True):
        for key in a:
            try:
                np.testing.assert_allclose(float(b[key]), float(a[key]), rtol=1e-9, atol=1e-12)
            except ValueError:
                assert b[key] == a[key], key


def test_ray_training_from_network_files_equals_local(ray_cluster, tmp_path):
    """``init_from`` on Ray: the driver reads the files and ships the weights to the workers."""
    start = tmp_path / "start"
    start.mkdir()
    for k in range(3):
        save_network(random_network(n=16, m=4, seed=k, gain=0.9), start / f"n{k}.npz")
    cfg = apply_overrides(
        get_preset("tiny"), ["n_networks=3", "train.max_iters=4", f"init_from={start}"]
    )
    local = train_run(cfg, tmp_path / "local")
    remote = train_run_ray(cfg, tmp_path / "ray", chunk_size=2)
    for a, b in zip(local, remote, strict=True):
        na, nb = load_network(a), load_network(b)
        for key in ("W_rec", "W_in", "b", "a"):
            np.testing.assert_allclose(getattr(nb, key), getattr(na, key), rtol=1e-5, atol=1e-6)
    # and the start really was those files: member 1 began at n1.npz's weights
    first = load_network(start / "n1.npz")
    assert np.abs(load_network(local[1]).W_rec - first.W_rec).max() < 0.05
