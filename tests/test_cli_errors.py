"""Bad input is refused before any work: exit status 2, a message naming field, value and what
is allowed, and nothing written to --out (issue 6, "Faults and bad input")."""

from __future__ import annotations

import pytest

from rhythmswitch import cli
from rhythmswitch.config import apply_overrides, get_preset

PAPER = "[[4,7],[8,13],[14,29],[30,50]]"

# (extra arguments, substrings the message must contain)
BAD_CONFIGS = [
    pytest.param(
        ["--set", "task.bands_hz=[[4,9],[8,13],[14,29],[30,50]]"],
        ["task.bands_hz[1]", "[8.0, 13.0]", "ordered and non-overlapping", "ends at 9.0"],
        id="overlapping-bands",
    ),
    pytest.param(
        ["--set", "task.bands_hz=[[8,13],[4,7],[14,29],[30,50]]"],
        ["task.bands_hz[1]", "[4.0, 7.0]", "ordered and non-overlapping"],
        id="unordered-bands",
    ),
    pytest.param(
        ["--set", "task.bands_hz=[[4,7],[8,13],[13,13],[30,50]]"],
        ["task.bands_hz[2]", "0 <= low < high"],
        id="empty-band",
    ),
    pytest.param(
        ["--set", "task.bands_hz=[[4,7],[8,13],[14,29],[30,500]]"],
        ["task.bands_hz[3]", "[30.0, 500.0]", "Nyquist", "< 500 Hz"],
        id="band-at-nyquist",
    ),
    pytest.param(
        ["--set", "task.dt_s=0.01", "--set", f"task.bands_hz={PAPER}"],
        ["task.bands_hz[3]", "[30.0, 50.0]", "Nyquist", "< 50 Hz"],
        id="band-above-nyquist",
    ),
    pytest.param(["--set", "task.dt_s=0"], ["task.dt_s = 0", "must be > 0"], id="dt-zero"),
    pytest.param(
        ["--set", "task.dt_s=-0.001"], ["task.dt_s = -0.001", "must be > 0"], id="dt-negative"
    ),
    pytest.param(
        ["--set", "model.tau_param=bounded", "--set", "model.tau_min_s=0.0005"],
        ["model.tau_min_s = 0.0005", ">= task.dt_s (0.001)"],
        id="bounded-tau-min-below-dt",
    ),
    pytest.param(
        ["--set", "model.n_units=0"], ["model.n_units = 0", "integer >= 1"], id="n-units-zero"
    ),
    pytest.param(["--networks", "0"], ["n_networks = 0", "integer >= 1"], id="zero-networks"),
    pytest.param(
        ["--set", "model.n_unit=8"],
        ["model.n_unit", "not a known setting of [model]", "n_units"],
        id="unknown-key",
    ),
    pytest.param(
        ["--set", "optim.lr=1"], ["optim.lr", "section must be one of"], id="unknown-section"
    ),
    pytest.param(["--set", "nonsense=1"], ["nonsense", "not a known setting"], id="unknown-bare"),
    pytest.param(
        ["--set", "model.n_units=abc"],
        ["model.n_units", "abc", "must be an integer"],
        id="type-int",
    ),
    pytest.param(
        ["--set", "model.n_units=8.5"],
        ["model.n_units", "8.5", "must be an integer"],
        id="type-float",
    ),
    pytest.param(
        ["--set", "train.learning_rate=fast"],
        ["train.learning_rate", "fast", "must be a number"],
        id="type-number",
    ),
    pytest.param(
        ["--set", "model.train_tau=maybe"],
        ["model.train_tau", "maybe", "true or false"],
        id="type-bool",
    ),
    pytest.param(
        ["--set", "task.bands_hz=5"], ["task.bands_hz", "must be a list"], id="type-bands"
    ),
    pytest.param(
        ["--set", "model.form=spiking"],
        ["model.form", "spiking", "'current', 'rate'"],
        id="bad-choice",
    ),
    pytest.param(["--set", "train.batch_size"], ["--set", "key=value"], id="no-equals"),
    pytest.param(["--preset", "huge"], ["preset", "huge", "must be one of"], id="bad-preset"),
]


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    rc = cli.main(argv)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "reproduce"])
@pytest.mark.parametrize("extra, expected", BAD_CONFIGS)
def test_bad_config_exits_2_and_writes_nothing(command, extra, expected, tmp_path, capsys):
    out = tmp_path / "out"
    rc, err = run_cli([command, "--preset", "tiny", "--out", str(out), "-q", *extra], capsys)
    assert rc == 2, err
    assert err.startswith("rhythmswitch: error: ")
    for text in expected:
        assert text in err, f"{text!r} not in {err!r}"
    assert not out.exists()


@pytest.mark.parametrize("extra, expected", BAD_CONFIGS[:4] + BAD_CONFIGS[9:11])
def test_bad_config_refused_by_sweep(extra, expected, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--out", str(out), "--grid", "seed=1,2", "-q", *extra]
    rc, err = run_cli(argv, capsys)
    assert rc == 2, err
    for text in expected:
        assert text in err
    assert not out.exists()


def _snapshot(path):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("command", ["train", "reproduce"])
def test_out_dir_with_another_config_is_refused(command, tmp_path, capsys):
    out = tmp_path / "run"
    apply_overrides(get_preset("tiny"), ["model.n_units=8"]).save(out / "config.toml")
    before = _snapshot(out)
    rc, err = run_cli([command, "--preset", "tiny", "--out", str(out), "-q"], capsys)
    assert rc == 2
    assert "--out" in err and str(out) in err and "different configuration" in err
    assert _snapshot(out) == before


def test_out_dir_with_unreadable_config_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.toml").write_text("this is = = not toml")
    rc, err = run_cli(["train", "--preset", "tiny", "--out", str(out), "-q"], capsys)
    assert rc == 2
    assert "config.toml" in err and "unreadable" in err


def test_bad_chunk_size_is_refused(tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "run"
    argv = ["train", "--preset", "tiny", "--out", str(out), "--backend", "ray", "--chunk-size", "0"]
    rc, err = run_cli([*argv, "-q"], capsys)
    assert rc == 2
    assert "--chunk-size = 0" in err and ">= 1" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "grid, expected",
    [
        (["model.n_units"], ["--grid", "'model.n_units'", "KEY=V1,V2"]),
        (["model.n_units="], ["--grid", "KEY=V1,V2"]),
        (["model.n_units=8,,16"], ["--grid", "KEY=V1,V2"]),
        (["model.n_units=8,8"], ["--grid", "distinct"]),
        (["model.n_units=8", "model.n_units=16"], ["model.n_units is swept twice"]),
        (["model.n_units=8,0"], ["model.n_units=0", "model.n_units = 0", ">= 1"]),
        (["model.n_unitz=8,16"], ["model.n_unitz", "not a known setting"]),
        (["model.tau_init=constant,fancy"], ["model.tau_init = 'fancy'", "'loguniform'"]),
    ],
)
def test_bad_grid_is_refused_before_any_point_runs(grid, expected, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--out", str(out), "-q"]
    for g in grid:
        argv += ["--grid", g]
    rc, err = run_cli(argv, capsys)
    assert rc == 2, err
    for text in expected:
        assert text in err, f"{text!r} not in {err!r}"
    assert not out.exists()


def test_bad_stages_are_refused(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--out", str(out), "--grid", "seed=1,2", "--stages", "train,fly", "-q"]
    rc, err = run_cli(argv, capsys)
    assert rc == 2
    assert "--stages" in err and "train,fly" in err and "train, evaluate, analyze, report" in err
    assert not out.exists()


def test_sweep_point_dir_with_another_config_is_refused(tmp_path, capsys):
    """A sweep over an OUT whose second point holds a different run refuses before the first."""
    from rhythmswitch.pipeline import sweep_points

    out = tmp_path / "sweep"
    points = sweep_points(get_preset("tiny"), ["model.n_units=8,12"])
    apply_overrides(get_preset("tiny"), ["model.n_units=5"]).save(
        out / points[1][0] / "config.toml"
    )
    before = _snapshot(out)
    argv = ["sweep", "--out", str(out), "--grid", "model.n_units=8,12", "-q"]
    rc, err = run_cli(argv, capsys)
    assert rc == 2
    assert points[1][0] in err and "different configuration" in err
    assert _snapshot(out) == before
    assert not (out / points[0][0]).exists()


@pytest.mark.parametrize("command", ["evaluate", "analyze", "report"])
def test_missing_run_dir_is_refused(command, tmp_path, capsys):
    rc, err = run_cli([command, str(tmp_path / "nowhere"), "-q"], capsys)
    assert rc == 2
    assert "nowhere" in err and "networks/" in err


def test_ray_backend_without_ray_is_refused(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    out = tmp_path / "run"
    argv = ["train", "--preset", "tiny", "--out", str(out), "--backend", "ray", "-q"]
    rc, err = run_cli(argv, capsys)
    assert rc == 2
    assert "--backend = 'ray'" in err and "rhythmswitch[ray]" in err
    assert not out.exists()
