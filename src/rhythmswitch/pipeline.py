"""One command for the whole study (``reproduce``) and grids of runs (``sweep``).

``reproduce`` runs four stages in one run directory, resuming whatever an earlier (possibly
killed) invocation already finished:

========  =============================================  ========================================
stage     outputs                                        done when
========  =============================================  ========================================
train     networks/<name>.npz per seed, training*.csv    every seed's file loads and matches the
                                                         manifest, no checkpoint left over
evaluate  evaluation.csv, evaluation_summary.csv         both match the manifest, are newer than
                                                         every network file and config.toml, and
                                                         the summary names every network
analyze   analysis/{networks,neurons,pairs,              all match the manifest (or are not
          fixed_points}.csv, analysis/summary.json       recorded), are newer than the networks
                                                         and the evaluation, and networks.csv
                                                         names every network file
report    report/index.html                              newer than every analysis output
========  =============================================  ========================================

A stage that is not done is run again in full (training itself resumes per member from the
network files and the checkpoint); every later stage then runs too, because its inputs are newer
than its outputs.  All files are written atomically, so a process killed at any moment leaves
either the old or the new version of each file and a rerun finishes the job.

``sweep`` expands ``--grid key=v1,v2`` settings into their cartesian product, one run directory
per point under ``OUT`` (named from the values), runs the chosen stages in each with the same
resume rules, and keeps ``OUT/sweep.csv`` (point, directory, values, stages done).  Every point's
configuration is validated before any work starts.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from rhythmswitch.config import ConfigError, RunConfig, apply_overrides
from rhythmswitch.network import list_network_files
from rhythmswitch.store import atomic_write_text, record, verify

log = logging.getLogger(__name__)

STAGES = ("train", "evaluate", "analyze", "report")
BACKENDS = ("local", "ray")
ANALYSIS_OUTPUTS = ("networks.csv", "neurons.csv", "pairs.csv", "fixed_points.csv", "summary.json")
EVALUATION_OUTPUTS = ("evaluation.csv", "evaluation_summary.csv")
REPORT_INDEX = Path("report") / "index.html"
SWEEP_INDEX = "sweep.csv"


# -- freshness -----------------------------------------------------------------------------


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


def _valid(run_dir: Path, path: Path) -> bool:
    """Exists and does not contradict its manifest checksum (unrecorded files are accepted)."""
    if not path.is_file():
        return False
    try:
        return verify(run_dir, path) is not False
    except (OSError, ValueError):
        return False


def _fresh(run_dir: Path, outputs: Sequence[Path], inputs: Sequence[Path]) -> bool:
    """Every output valid and no older than the newest existing input."""
    if not outputs or not all(_valid(run_dir, p) for p in outputs):
        return False
    newest_in = max((_mtime(p) for p in inputs if p.is_file()), default=0)
    return min(_mtime(p) for p in outputs) >= newest_in


def _csv_column(path: Path, column: str) -> set[str]:
    try:
        with open(path, newline="") as fh:
            return {row.get(column, "") for row in csv.DictReader(fh)}
    except (OSError, csv.Error):
        return set()


def _network_names(run_dir: Path) -> set[str]:
    return {p.stem for p in list_network_files(run_dir)}


def train_done(run_dir: Path, cfg: RunConfig) -> bool:
    from rhythmswitch.runs import finished_seeds, member_seeds

    seeds = member_seeds(cfg)
    return (
        not (run_dir / "checkpoint.npz").exists()
        and finished_seeds(run_dir, seeds) == set(seeds)
        and _valid(run_dir, run_dir / "training_summary.csv")
    )


def evaluate_done(run_dir: Path) -> bool:
    outputs = [run_dir / f for f in EVALUATION_OUTPUTS]
    inputs = [run_dir / "config.toml", *list_network_files(run_dir)]
    if not _fresh(run_dir, outputs, inputs):
        return False
    # every network file is either evaluated or refused (then it is absent from the summary
    # and evaluate would refuse it again; nothing to redo)
    return _network_names(run_dir) <= _csv_column(
        run_dir / "evaluation_summary.csv", "network"
    ) | _refused(run_dir)


def _refused(run_dir: Path) -> set[str]:
    from rhythmswitch.runs import load_run_networks

    return {p.stem for p, _reason in load_run_networks(run_dir)[1]}


def analyze_done(run_dir: Path) -> bool:
    adir = run_dir / "analysis"
    outputs = [adir / f for f in ANALYSIS_OUTPUTS]
    inputs = [
        run_dir / "config.toml",
        *(run_dir / f for f in EVALUATION_OUTPUTS),
        *list_network_files(run_dir),
    ]
    if not _fresh(run_dir, outputs, inputs):
        return False
    return _network_names(run_dir) <= _csv_column(adir / "networks.csv", "network")


def report_done(run_dir: Path) -> bool:
    adir = run_dir / "analysis"
    inputs = [adir / f for f in ANALYSIS_OUTPUTS]
    inputs += [p for p in adir.glob("*") if p.is_file()] if adir.is_dir() else []
    return _fresh(run_dir, [run_dir / REPORT_INDEX], inputs)


# -- validation ----------------------------------------------------------------------------


def parse_stages(stages: str | Sequence[str]) -> tuple[str, ...]:
    """``"train,evaluate"`` -> ('train', 'evaluate') in pipeline order; unknown names refused."""
    names = [s.strip() for s in stages.split(",")] if isinstance(stages, str) else list(stages)
    names = [s for s in names if s]
    bad = [s for s in names if s not in STAGES]
    if bad or not names:
        raise ConfigError(
            f"--stages = {','.join(names)!r} is invalid: must be a comma list of "
            f"{', '.join(STAGES)}"
        )
    return tuple(s for s in STAGES if s in names)


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"--backend = {backend!r} is invalid: must be one of local, ray")
    if backend == "ray":
        from rhythmswitch.backends import require_ray

        require_ray()


# -- stages --------------------------------------------------------------------------------


def run_stages(
    cfg: RunConfig,
    out: str | Path,
    stages: Sequence[str] = STAGES,
    *,
    quiet: bool = False,
    backend: str = "local",
    address: str | None = None,
    chunk_size: int = 4,
    progress: Callable | None = None,
) -> dict[str, str]:
    """Run ``stages`` in ``out`` for ``cfg``; each is skipped when its outputs are current.

    Returns ``{stage: 'skipped' | 'ran'}``.  ``progress`` receives the trainer's
    :class:`rhythmswitch.train.Progress` (local backend).
    """
    from rhythmswitch.runs import check_run_dir

    out = Path(out)
    stages = parse_stages(stages)
    _check_backend(backend)
    check_run_dir(out, cfg)
    status: dict[str, str] = {}
    forced = False  # once a stage ran, every later stage runs (its inputs just changed)

    if "train" in stages:
        if not forced and train_done(out, cfg):
            status["train"] = "skipped"
        else:
            log.info("stage train: %s", out)
            if backend == "ray":
                from rhythmswitch.backends import train_run_ray

                train_run_ray(cfg, out, address=address, chunk_size=chunk_size)
            else:
                from rhythmswitch.runs import train_run

                train_run(cfg, out, progress=progress)
            status["train"] = "ran"
            forced = True
    if not (out / "networks").is_dir():
        raise ConfigError(
            f"--out = {str(out)!r} is invalid: it holds no networks/ folder; "
            "include the train stage"
        )
    if "evaluate" in stages:
        if not forced and evaluate_done(out):
            status["evaluate"] = "skipped"
        else:
            from rhythmswitch.runs import evaluate_run

            log.info("stage evaluate: %s", out)
            evaluate_run(out)
            status["evaluate"] = "ran"
            forced = True
    if "analyze" in stages:
        if not forced and analyze_done(out):
            status["analyze"] = "skipped"
        else:
            from rhythmswitch.analysis.pipeline import analyze_run

            log.info("stage analyze: %s", out)
            analyze_run(out, quiet=quiet, backend=backend, address=address)
            status["analyze"] = "ran"
            forced = True
    if "report" in stages:
        if not forced and report_done(out):
            status["report"] = "skipped"
        else:
            from rhythmswitch.report import build_report

            log.info("stage report: %s", out)
            build_report([out], quiet=quiet)
            status["report"] = "ran"
    for name, what in status.items():
        if what == "skipped":
            log.info("stage %s: up to date, skipped", name)
    return status


def reproduce(
    cfg: RunConfig,
    out: str | Path,
    *,
    quiet: bool = False,
    backend: str = "local",
    address: str | None = None,
    chunk_size: int = 4,
    progress: Callable | None = None,
) -> Path:
    """Train, evaluate, analyse and report in ``out``, resuming; returns the report's index.

    Safe to kill at any moment and rerun with the same arguments.  A directory that holds a run
    with a different configuration is refused (ConfigError) before any work.
    """
    out = Path(out)
    status = run_stages(
        cfg,
        out,
        STAGES,
        quiet=quiet,
        backend=backend,
        address=address,
        chunk_size=chunk_size,
        progress=progress,
    )
    index = out / REPORT_INDEX
    log.info(
        "reproduce %s: %s; report at %s",
        out,
        ", ".join(f"{k} {v}" for k, v in status.items()),
        index,
    )
    return index


# -- sweeps --------------------------------------------------------------------------------


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets/quotes: ``[[4,8],[8,13]],paper`` -> 2 values."""
    out: list[str]
    cur: list[str]
    out, depth, cur, quote = [], 0, [], ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_grid(grid: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``['model.n_units=8,16', 'seed=1,2']`` -> [(key, [values...]), ...] (order kept)."""
    if not grid:
        raise ConfigError("--grid = [] is invalid: give at least one KEY=V1,V2,... setting")
    axes: list[tuple[str, list[str]]] = []
    for item in grid:
        key, sep, raw = item.partition("=")
        key = key.strip()
        values = _split_values(raw) if sep else []
        if not sep or not key or not values or any(v == "" for v in values):
            raise ConfigError(
                f"--grid = {item!r} is invalid: must look like KEY=V1,V2,... "
                "e.g. model.tau_init=constant,loguniform"
            )
        if key in (k for k, _ in axes):
            raise ConfigError(f"--grid = {item!r} is invalid: {key} is swept twice")
        if len(set(values)) != len(values):
            raise ConfigError(f"--grid = {item!r} is invalid: values must be distinct")
        axes.append((key, values))
    return axes


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "v"


def point_name(index: int, assignment: Sequence[tuple[str, str]]) -> str:
    """Directory name of a grid point: ``p000_n_units-8_tau_init-constant``."""
    parts = [f"{key.rpartition('.')[2]}-{_slug(value)}" for key, value in assignment]
    return f"p{index:03d}_" + "_".join(parts)


def sweep_points(
    cfg: RunConfig, grid: Sequence[str]
) -> list[tuple[str, dict[str, str], RunConfig]]:
    """Every grid point as (dir name, {key: value}, validated config); raises ConfigError."""
    axes = parse_grid(grid)
    points = []
    for index, combo in enumerate(itertools.product(*(values for _, values in axes))):
        assignment = [(key, value) for (key, _), value in zip(axes, combo, strict=True)]
        try:
            point_cfg = apply_overrides(cfg, [f"{k}={v}" for k, v in assignment])
        except ConfigError as exc:
            where = ", ".join(f"{k}={v}" for k, v in assignment)
            raise ConfigError(f"--grid point {where}: {exc}") from exc
        points.append((point_name(index, assignment), dict(assignment), point_cfg))
    return points


def _write_sweep_index(
    out: Path, axes: list[str], rows: list[tuple[str, dict[str, str], str]]
) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["point", "dir", *axes, "stages_done"])
    for k, (name, values, done) in enumerate(rows):
        w.writerow([k, name, *(values[a] for a in axes), done])
    path = out / SWEEP_INDEX
    atomic_write_text(path, buf.getvalue())
    record(out, path)
    return path


def sweep(
    cfg: RunConfig,
    out: str | Path,
    *,
    grid: Sequence[str],
    quiet: bool = False,
    backend: str = "local",
    address: str | None = None,
    stages: str | Sequence[str] = "train,evaluate,analyze",
    chunk_size: int = 4,
    progress: Callable | None = None,
) -> Path:
    """Run ``stages`` for every point of ``grid`` under ``out``; returns ``out/sweep.csv``.

    Every point is validated (config values, existing directories with another config) before
    any work.  Rerunning the same sweep resumes it.
    """
    from rhythmswitch.runs import check_run_dir

    out = Path(out)
    stage_list = parse_stages(stages)
    _check_backend(backend)
    points = sweep_points(cfg, grid)
    for name, _values, point_cfg in points:
        check_run_dir(out / name, point_cfg)
    axes = [key for key, _ in parse_grid(grid)]
    rows = [(name, values, "") for name, values, _ in points]
    out.mkdir(parents=True, exist_ok=True)
    index = _write_sweep_index(out, axes, rows)
    log.info("sweep: %d point(s) x stages %s under %s", len(points), ",".join(stage_list), out)
    for k, (name, values, point_cfg) in enumerate(points):
        log.info("sweep point %d/%d: %s", k + 1, len(points), name)
        run_stages(
            point_cfg,
            out / name,
            stage_list,
            quiet=quiet,
            backend=backend,
            address=address,
            chunk_size=chunk_size,
            progress=progress,
        )
        rows[k] = (name, values, ",".join(stage_list))
        _write_sweep_index(out, axes, rows)
    log.info("sweep index: %s", index)
    return index


__all__ = [
    "STAGES",
    "parse_grid",
    "parse_stages",
    "reproduce",
    "run_stages",
    "sweep",
    "sweep_points",
]
