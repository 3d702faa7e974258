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
