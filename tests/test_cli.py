"""Smoke tests of the command line on the tiny preset."""

import csv

import numpy as np

from rhythmswitch.cli import main
from rhythmswitch.network import load_network
from rhythmswitch.store import verify


def _train(out, networks: int, max_iters: int) -> int:
    """``rhythmswitch train`` on the tiny preset, quietly; returns the exit status."""
    args = ["--preset", "tiny", "--networks", str(networks), "--out", str(out), "-q"]
    return main(["train", *args, "--set", f"train.max_iters={max_iters}"])


def test_train_then_evaluate_tiny(tmp_path):
    out = tmp_path / "run"
    assert _train(out, 2, 10) == 0
    files = sorted((out / "networks").glob("*.npz"))
    assert [f.stem for f in files] == ["net043", "net044"]
    for f in files:
        net = load_network(f)
        assert net.n_units == 16 and verify(out, f) is True
        assert len(net.extras["loss_history"]) == 10
    rows = list(csv.DictReader((out / "training.csv").open()))
    assert len(rows) == 20 and set(rows[0]) == {"network", "iteration", "loss"}
    # rerunning the same command trains nothing and keeps the files
    before = {f: f.read_bytes() for f in files}
    assert _train(out, 2, 10) == 0
    assert all(f.read_bytes() == b for f, b in before.items())
    assert main(["evaluate", str(out), "-q"]) == 0
    summary = list(csv.DictReader((out / "evaluation_summary.csv").open()))
    assert [r["network"] for r in summary] == ["net043", "net044"]
    long = list(csv.DictReader((out / "evaluation.csv").open()))
    assert {r["protocol"] for r in long} >= {"sequence", "theta->alpha", "gamma->beta"}
    assert all(0 <= float(r["ratio"]) <= 1 for r in long)
    assert np.isfinite([float(r["min_ratio"]) for r in summary]).all()


def test_different_config_in_same_dir_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, 1, 5) == 0
    rc = _train(out, 1, 6)
    assert rc == 2 and "different configuration" in capsys.readouterr().err


def test_train_init_from_starts_from_the_given_networks(tmp_path, capsys):
    first = tmp_path / "first"
    assert _train(first, 2, 5) == 0
    # one iteration: the best-loss weights are the weights the loss was computed on, i.e. the
    # starting weights, so the new files must hold exactly the old networks
    again = tmp_path / "again"
    args = ["--preset", "tiny", "--init-from", str(first), "--out", str(again), "-q"]
    assert main(["train", *args, "--set", "train.max_iters=1"]) == 0
    old = sorted((first / "networks").glob("*.npz"))
    new = sorted((again / "networks").glob("*.npz"))
    assert len(new) == 2  # n_networks taken from the number of files
    for a, b in zip(old, new, strict=True):
        na, nb = load_network(a), load_network(b)
        for key in ("W_rec", "W_in", "b", "a"):
            np.testing.assert_allclose(getattr(nb, key), getattr(na, key), rtol=1e-6, atol=1e-7)
    # ... and a fresh run's first weights are not those
    fresh = tmp_path / "fresh"
    assert _train(fresh, 2, 1) == 0
    assert not np.allclose(load_network(fresh / "networks" / "net043.npz").W_rec, na.W_rec)
    # one file per member, files that fit the model, a path that exists
    bad = [
        (["--networks", "3", "--init-from", str(first)], "n_networks = 3"),
        (["--init-from", str(tmp_path / "nope")], "no such file"),
        (["--init-from", str(tmp_path)], "no network files"),
        (["--init-from", str(first), "--set", "model.n_units=8"], "init_from"),
    ]
    for extra, needle in bad:
        rc = main(["train", "--preset", "tiny", "--out", str(tmp_path / "x"), "-q", *extra])
        assert rc == 2 and needle in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything was written
