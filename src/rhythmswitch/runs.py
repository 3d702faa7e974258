"""Run directories: what ``train`` and ``evaluate`` write, and how a run resumes.

Layout of ``DIR``::

    config.toml              the RunConfig that produced everything here
    networks/<name>.npz      one file per trained network (METHOD section 9 format + extras)
    training.csv             loss history: network, iteration, loss
    training_summary.csv     one row per network: seed, best loss, iterations, time to goal
    checkpoint.npz           training state of unfinished members (removed when all are done)
    evaluation.csv           long form: network, protocol, noise, mode, ratio
    evaluation_summary.csv   network, converged, min_ratio
    manifest.json            SHA-256 of every file above

Every file is written atomically; a network file is written the moment its member finishes, so
a killed run loses at most the progress since the last checkpoint of unfinished members.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rhythmswitch.config import ConfigError, RunConfig
from rhythmswitch.evaluate import Evaluation, evaluate_network, write_evaluations
from rhythmswitch.model import params_from_network
from rhythmswitch.network import (
    Network,
    NetworkFileError,
    list_network_files,
    load_network,
    save_network,
)
from rhythmswitch.store import atomic_write_text, record, verify
from rhythmswitch.train import (
    Progress,
    config_fingerprint,
    member_name,
    member_network,
    train_ensemble,
)

log = logging.getLogger(__name__)

CONFIG_FILE = "config.toml"
TRAINING_COLUMNS = ("network", "iteration", "loss")
SUMMARY_COLUMNS = (
    "network",
    "seed",
    "best_loss",
    "iterations",
    "time_to_goal_s",
    "paper_converged",
    "rollbacks",
)


def check_run_dir(out: str | Path, cfg: RunConfig) -> None:
    """Refuse (ConfigError) a directory that holds a run with a different configuration."""
    path = Path(out) / CONFIG_FILE
    if not path.exists():
        return
    try:
        old = RunConfig.load(path)
    except (ConfigError, OSError, TypeError) as exc:
        raise ConfigError(f"--out {out}: holds an unreadable {CONFIG_FILE} ({exc})") from exc
    if config_fingerprint(old) != config_fingerprint(cfg):
        raise ConfigError(
            f"--out = {str(out)!r} is invalid: it holds a run with a different configuration "
            f"(see {path}); choose a new directory or the same settings"
        )


def member_seeds(cfg: RunConfig) -> list[int]:
    return [cfg.seed + k for k in range(cfg.n_networks)]


def finished_seeds(out: str | Path, seeds: list[int]) -> set[int]:
    """Seeds whose network file exists, loads, and matches its manifest checksum."""
    out = Path(out)
    done = set()
    for s in seeds:
        path = out / "networks" / f"{member_name(s)}.npz"
        if not path.exists():
            continue
        try:
            if verify(out, path) is False:
                log.warning("%s does not match its manifest checksum; it will be retrained", path)
                continue
            load_network(path)
        except NetworkFileError as exc:
            log.warning("%s; it will be retrained", exc)
            continue
        done.add(s)
    return done


def write_member(out: Path, cfg: RunConfig, params, info: dict, history: list[float]) -> Path:
    net = member_network(cfg, params, info["seed"])
    arrays = net.to_arrays()
    arrays.update(
        seed=np.asarray(info["seed"]),
        best_loss=np.asarray(info["best_loss"]),
        iterations=np.asarray(info["iterations"]),
        time_to_goal_s=np.asarray(info["time_to_goal_s"]),
        rollbacks=np.asarray(info["rollbacks"]),
        loss_history=np.asarray(history, np.float32),
    )
    from rhythmswitch.store import atomic_write_bytes, npz_bytes

    path = out / "networks" / f"{net.name}.npz"
    atomic_write_bytes(path, npz_bytes(arrays))
    record(out, path)
    return path


def write_training_tables(out: str | Path) -> None:
    """(Re)build training.csv and training_summary.csv from the network files' extras."""
    out = Path(out)
    hist = io.StringIO()
    summ = io.StringIO()
    wh = csv.writer(hist, lineterminator="\n")
    ws = csv.writer(summ, lineterminator="\n")
    wh.writerow(TRAINING_COLUMNS)
    ws.writerow(SUMMARY_COLUMNS)
    for path in list_network_files(out):
        try:
            net = load_network(path)
        except NetworkFileError as exc:
            log.warning("skipping %s", exc)
            continue
        ex = net.extras
        if "loss_history" not in ex:
            continue
        for i, v in enumerate(np.asarray(ex["loss_history"]).tolist()):
            wh.writerow([net.name, i, f"{v:.6g}"])
        best = float(ex.get("best_loss", np.nan))
        ws.writerow(
            [
                net.name,
                int(ex.get("seed", -1)),
                f"{best:.6g}",
                int(ex.get("iterations", 0)),
                f"{float(ex.get('time_to_goal_s', np.nan)):.1f}",
                str(bool(best < 2e-5)).lower(),
                int(ex.get("rollbacks", 0)),
            ]
        )
    atomic_write_text(out / "training.csv", hist.getvalue())
    atomic_write_text(out / "training_summary.csv", summ.getvalue())
    record(out, out / "training.csv", out / "training_summary.csv")


def init_network_files(path: str | Path) -> list[Path]:
    """The network files ``init_from`` names: a file, ``DIR/networks/*.npz`` or ``DIR/*.npz``."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise ConfigError(f"init_from = {str(path)!r} is invalid: no such file or directory")
    files = list_network_files(p) if (p / "networks").is_dir() else sorted(p.glob("*.npz"))
    if not files:
        raise ConfigError(
            f"init_from = {str(path)!r} is invalid: it holds no network files (.npz), "
            "neither in it nor in its networks/ folder"
        )
    return files


def initial_params(cfg: RunConfig, seeds: list[int]) -> list | None:
    """Starting weights of the members with ``seeds`` from ``cfg.init_from`` (None: fresh).

    Member k of the run (seed ``cfg.seed + k``) starts from the k-th file; the number of files
    must equal ``n_networks``, and every file must fit the run's model and task
    (:func:`rhythmswitch.model.params_from_network` names a mismatching field).
    """
    if not cfg.init_from:
        return None
    files = init_network_files(cfg.init_from)
    if len(files) != cfg.n_networks:
        raise ConfigError(
            f"init_from = {cfg.init_from!r} is invalid: it holds {len(files)} network file(s), "
            f"the run has n_networks = {cfg.n_networks} (one file per member)"
        )
    order = member_seeds(cfg)
    out = []
    for s in seeds:
        if s not in order:
            raise ConfigError(
                f"init_from: seed {s} is not one of the run's members {order} (one file each)"
            )
        path = files[order.index(s)]
        try:
            out.append(params_from_network(load_network(path), cfg.model, cfg.task))
        except (NetworkFileError, ValueError) as exc:
            raise ConfigError(f"init_from: {path}: {exc}") from exc
    return out


def train_run(
    cfg: RunConfig,
    out: str | Path,
    *,
    progress: Callable[[Progress], None] | None = None,
    seeds: list[int] | None = None,
) -> list[Path]:
    """Train the run's members that have no valid network file yet; write everything.

    Returns the paths of all network files of the run's seeds.
    """
    out = Path(out)
    check_run_dir(out, cfg)
    seeds = member_seeds(cfg) if seeds is None else list(seeds)
    todo = [s for s in seeds if s not in finished_seeds(out, seeds)]
    initial = initial_params(cfg, todo) if todo else None  # bad files: refused before any write
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / CONFIG_FILE)
    record(out, out / CONFIG_FILE)
    if todo:
        log.info("training %d network(s): seeds %s", len(todo), todo)

        def member_done(k: int, params, info: dict) -> None:
            write_member(out, cfg, params, info, info["history"])

        result = train_ensemble(
            cfg,
            seeds=todo,
            checkpoint=out / "checkpoint.npz",
            progress=progress,
            on_member_done=member_done,
            initial=initial,
        )
        log.info("trained %d network(s) in %.1f s", len(todo), result.wall_s)
    ckpt = out / "checkpoint.npz"
    if ckpt.exists() and not (set(seeds) - finished_seeds(out, seeds)):
        ckpt.unlink()
    write_training_tables(out)
    return [out / "networks" / f"{member_name(s)}.npz" for s in seeds]


def load_run_networks(run_dir: str | Path) -> tuple[list[Network], list[tuple[Path, str]]]:
    """All valid networks of ``DIR/networks`` and (path, reason) of every refused file."""
    nets, bad = [], []
    for path in list_network_files(run_dir):
        try:
            if verify(run_dir, path) is False:
                raise NetworkFileError(
                    f"{path}: checksum does not match manifest.json (corrupt file)"
                )
            nets.append(load_network(path))
        except NetworkFileError as exc:
            log.error("%s", exc)
            bad.append((path, str(exc)))
    return nets, bad


def evaluate_run(
    run_dir: str | Path,
    *,
    sigma: float | None = None,
    on_network: Callable[[str], None] | None = None,
) -> list[Evaluation]:
    """Evaluate every network of the run; write evaluation.csv and evaluation_summary.csv.

    ``sigma`` defaults to the run's training noise (config.toml), else 0.1.
    """
    run_dir = Path(run_dir)
    cfg = None
    if (run_dir / CONFIG_FILE).exists():
        cfg = RunConfig.load(run_dir / CONFIG_FILE)
    if sigma is None:
        sigma = cfg.model.sigma if cfg is not None else 0.1
    nets, _bad = load_run_networks(run_dir)
    evals = []
    for net in nets:
        evals.append(evaluate_network(net, cfg.task if cfg is not None else None, sigma=sigma))
        if on_network is not None:
            on_network(net.name)
    write_evaluations(evals, run_dir)
    return evals


__all__ = [
    "check_run_dir",
    "evaluate_run",
    "load_run_networks",
    "save_network",
    "train_run",
    "write_training_tables",
]
