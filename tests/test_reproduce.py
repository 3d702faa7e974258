"""reproduce and sweep: stage skipping and resumption rules, grids, the sweep index (issue 6).

The stage logic is tested with stand-in stages that write the real output files through the
real store (fast, exact control over which files exist and how old they are); the real
end-to-end ``reproduce`` (killed twice, then finished) is in test_faults.py, and a real sweep
runs through the CLI below.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rhythmswitch import pipeline
from rhythmswitch.config import ConfigError, RunConfig, apply_overrides, get_preset
from rhythmswitch.network import Network, list_network_files, save_network
from rhythmswitch.runs import member_seeds
from rhythmswitch.store import atomic_write_text, read_manifest, record, sha256_file
from rhythmswitch.train import member_name


def _net(name: str, seed: int) -> Network:
    rng = np.random.default_rng(seed)
    return Network(
        W_rec=rng.standard_normal((4, 4)) / 2,
        W_in=rng.uniform(-1, 1, (4, 4)),
        b=np.zeros(4),
        tau_s=np.full(4, 0.02),
        dt_s=0.001,
        bands_hz=np.array([[4, 7], [8, 13], [14, 29], [30, 50]], float),
        mode_names=("theta", "alpha", "beta", "gamma"),
        name=name,
    )


def _table(path: Path, run_dir: Path, header: str, names) -> None:
    atomic_write_text(path, header + "\n" + "".join(f"{n}\n" for n in names))
    record(run_dir, path)


@pytest.fixture
def stages(monkeypatch):
    """Stand-in stages writing the real output files; returns a Counter of calls."""
    import rhythmswitch.analysis.pipeline as analysis_pipeline
    import rhythmswitch.report as report
    import rhythmswitch.runs as runs

    calls: Counter = Counter()

    def train_run(cfg, out, *, progress=None, seeds=None):
        calls["train"] += 1
        out = Path(out)
        runs.check_run_dir(out, cfg)
        cfg.save(out / "config.toml")
        record(out, out / "config.toml")
        for s in member_seeds(cfg):
            path = out / "networks" / f"{member_name(s)}.npz"
            if not path.exists():
                save_network(_net(member_name(s), s), path)
                record(out, path)
        (out / "checkpoint.npz").unlink(missing_ok=True)
        _table(
            out / "training_summary.csv", out, "network", [p.stem for p in list_network_files(out)]
        )

    def evaluate_run(run_dir, **_kw):
        calls["evaluate"] += 1
        run_dir = Path(run_dir)
        names = [p.stem for p in list_network_files(run_dir)]
        for f in pipeline.EVALUATION_OUTPUTS:
            _table(run_dir / f, run_dir, "network", names)

    def analyze_run(run_dir, *, quiet=False, backend="local", address=None, fixed_points=True):
        calls["analyze"] += 1
        calls[f"analyze-{backend}"] += 1
        run_dir = Path(run_dir)
        names = [p.stem for p in list_network_files(run_dir)]
        for f in pipeline.ANALYSIS_OUTPUTS:
            _table(run_dir / "analysis" / f, run_dir, "network", names)
        return run_dir / "analysis"

    def build_report(run_dirs, *, quiet=False):
        calls["report"] += 1
        index = Path(run_dirs[0]) / "report" / "index.html"
        atomic_write_text(index, "<html></html>")
        return index

    monkeypatch.setattr(runs, "train_run", train_run)
    monkeypatch.setattr(runs, "evaluate_run", evaluate_run)
    monkeypatch.setattr(analysis_pipeline, "analyze_run", analyze_run)
    monkeypatch.setattr(report, "build_report", build_report)
    return calls


def _cfg(*extra: str) -> RunConfig:
    return apply_overrides(get_preset("tiny"), ["n_networks=2", *extra])


def _backdate(run_dir: Path, *, keep: Path | None = None, only: str = "") -> None:
    """Move the mtime of the run's files (all but ``keep``, or those under ``only``) 100 s back,
    so that ``keep`` (or everything else) becomes the newer input."""
    for path in run_dir.rglob("*"):
        if path.is_file() and path != keep and str(path.relative_to(run_dir)).startswith(only):
            t = path.stat().st_mtime - 100
            os.utime(path, (t, t))


def test_reproduce_runs_every_stage_once_then_skips(stages, tmp_path):
    cfg, out = _cfg(), tmp_path / "run"
    index = pipeline.reproduce(cfg, out, quiet=True)
    assert index == out / "report" / "index.html" and index.is_file()
    assert stages == Counter(train=1, evaluate=1, analyze=1, report=1, **{"analyze-local": 1})
    status = pipeline.run_stages(cfg, out, quiet=True)
    assert status == dict.fromkeys(pipeline.STAGES, "skipped")
    assert stages["train"] == stages["report"] == 1


@pytest.mark.parametrize(
    "damage, rerun",
    [
        ("leftover checkpoint", ["train", "evaluate", "analyze", "report"]),
        ("missing network", ["train", "evaluate", "analyze", "report"]),
        ("newer network", ["evaluate", "analyze", "report"]),
        ("corrupt evaluation", ["evaluate", "analyze", "report"]),
        ("newer config", ["evaluate", "analyze", "report"]),
        ("missing analysis table", ["analyze", "report"]),
        ("corrupt analysis table", ["analyze", "report"]),
        ("analysis lacks a network", ["analyze", "report"]),
        ("newer analysis", ["report"]),
        ("missing report", ["report"]),
    ],
)
def test_a_stage_reruns_when_its_outputs_are_missing_invalid_or_stale(
    stages, tmp_path, damage, rerun
):
    cfg, out = _cfg(), tmp_path / "run"
    pipeline.reproduce(cfg, out, quiet=True)
    net = out / "networks" / "net043.npz"
    if damage == "leftover checkpoint":
        (out / "checkpoint.npz").write_bytes(b"")
    elif damage == "missing network":
        net.unlink()
    elif damage == "newer network":
        _backdate(out, keep=net)
    elif damage == "corrupt evaluation":
        with open(out / "evaluation_summary.csv", "a") as fh:
            fh.write("garbage\n")
    elif damage == "newer config":
        _backdate(out, keep=out / "config.toml")
    elif damage == "missing analysis table":
        (out / "analysis" / "pairs.csv").unlink()
    elif damage == "corrupt analysis table":
        (out / "analysis" / "summary.json").write_text("{")
    elif damage == "analysis lacks a network":
        _table(out / "analysis" / "networks.csv", out, "network", ["net044"])
    elif damage == "newer analysis":
        _backdate(out, only="report")
    elif damage == "missing report":
        (out / "report" / "index.html").unlink()
    status = pipeline.run_stages(cfg, out, quiet=True)
    assert [s for s, v in status.items() if v == "ran"] == rerun
    assert pipeline.run_stages(cfg, out, quiet=True) == dict.fromkeys(pipeline.STAGES, "skipped")


def test_reproduce_refuses_another_config_before_any_work(stages, tmp_path):
    out = tmp_path / "run"
    pipeline.reproduce(_cfg(), out, quiet=True)
    with pytest.raises(ConfigError, match="different configuration"):
        pipeline.reproduce(_cfg("model.n_units=8"), out, quiet=True)
    assert stages["train"] == 1


def test_more_networks_resume_the_same_run(stages, tmp_path):
    """Growing the ensemble (same config otherwise) trains the new seeds and redoes the rest."""
    out = tmp_path / "run"
    pipeline.reproduce(_cfg(), out, quiet=True)
    status = pipeline.run_stages(_cfg("n_networks=3"), out, quiet=True)
    assert status == dict.fromkeys(pipeline.STAGES, "ran")
    assert sorted(p.stem for p in list_network_files(out)) == ["net043", "net044", "net045"]


def test_ray_backend_reaches_the_analysis(stages, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    import rhythmswitch.backends as backends
    import rhythmswitch.runs as runs

    def train_run_ray(cfg, out, *, address=None, chunk_size=4):
        assert address == "auto"
        stages["ray-train"] += 1
        runs.train_run(cfg, out)

    monkeypatch.setattr(backends, "train_run_ray", train_run_ray)
    pipeline.reproduce(_cfg(), tmp_path / "run", quiet=True, backend="ray", address="auto")
    assert stages["ray-train"] == 1 and stages["analyze-ray"] == 1


def test_stage_parsing():
    assert pipeline.parse_stages("analyze, train") == ("train", "analyze")
    assert pipeline.parse_stages(["report"]) == ("report",)
    for bad in ("", "train,fly", ","):
        with pytest.raises(ConfigError, match="--stages"):
            pipeline.parse_stages(bad)


def test_grid_parsing_keeps_brackets_together():
    axes = pipeline.parse_grid(
        ["task.bands_hz=[[4,8],[8,13],[13,30],[30,80]],paper", "model.n_units=8,16"]
    )
    assert axes == [
        ("task.bands_hz", ["[[4,8],[8,13],[13,30],[30,80]]", "paper"]),
        ("model.n_units", ["8", "16"]),
    ]
    points = pipeline.sweep_points(get_preset("tiny"), [f"{k}={','.join(v)}" for k, v in axes])
    assert len(points) == 4
    assert points[0][2].task.bands_hz[-1] == (30.0, 80.0)
    assert points[1][2].model.n_units == 16
    assert points[3][2].task.bands_hz[-1] == (30.0, 50.0)
    assert len({name for name, _, _ in points}) == 4  # distinct directory names
    assert all("/" not in name and " " not in name for name, _, _ in points)


def test_sweep_runs_every_point_and_resumes(stages, tmp_path):
    out = tmp_path / "sweep"
    grid = ["model.n_units=8,12", "model.tau_init=constant,loguniform"]
    index = pipeline.sweep(_cfg(), out, grid=grid, quiet=True, stages="train,evaluate")
    assert index == out / "sweep.csv"
    with open(index, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["model.n_units"], r["model.tau_init"]) for r in rows] == [
        ("8", "constant"),
        ("8", "loguniform"),
        ("12", "constant"),
        ("12", "loguniform"),
    ]
    assert all(r["stages_done"] == "train,evaluate" for r in rows)
    for r in rows:
        cfg = RunConfig.load(out / r["dir"] / "config.toml")
        assert cfg.model.n_units == int(r["model.n_units"])
        assert cfg.model.tau_init == r["model.tau_init"]
    assert stages == Counter(train=4, evaluate=4)
    assert sha256_file(index) == read_manifest(out)["sweep.csv"]
    pipeline.sweep(_cfg(), out, grid=grid, quiet=True, stages="train,evaluate")
    assert stages == Counter(train=4, evaluate=4)  # nothing redone


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory) -> dict[str, str]:
    env = dict(os.environ)
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_cache"))
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def test_sweep_cli_trains_one_run_per_point(tmp_path, cli_env):
    """A real sweep over two seeds: two run directories, each a valid trained run."""
    out = tmp_path / "sweep"
    args = [
        "sweep", "--preset", "tiny", "--networks", "1", "--out", str(out),
        "--grid", "seed=7,9", "--stages", "train", "-q",
        "--set", "train.max_iters=4", "--set", "train.iters_per_call=2",
        "--set", "model.n_units=8", "--set", "task.switch_num=1",
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "rhythmswitch", *args], env=cli_env, capture_output=True, timeout=600
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert f"sweep index: {out / 'sweep.csv'}" in done.stdout.decode()
    with open(out / "sweep.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["seed"] for r in rows] == ["7", "9"]
    for r, seed in zip(rows, (7, 9), strict=True):
        run = out / r["dir"]
        assert [p.name for p in list_network_files(run)] == [f"{member_name(seed)}.npz"]
        assert RunConfig.load(run / "config.toml").seed == seed
        for rel, digest in read_manifest(run).items():
            assert sha256_file(run / rel) == digest
