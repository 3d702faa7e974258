"""Optional Ray backend: train chunks of seeds and analyse networks on a Ray cluster.

Ray is an optional extra (``pip install 'rhythmswitch[ray]'``); nothing here imports it until a
Ray function is called, and a missing Ray is reported as a usage error (exit status 2).

- :func:`train_run_ray` splits the run's unfinished seeds into chunks of ``chunk_size``; each
  chunk is one Ray task that trains its seeds as one vectorised ensemble
  (:func:`rhythmswitch.train.train_ensemble`) and returns every member's best parameters and
  bookkeeping.  The driver writes the network files into the ordinary run layout
  (:func:`rhythmswitch.runs.write_member`) the moment a chunk returns, so a run killed half-way
  keeps every finished chunk and a rerun trains only what is missing.  A member's result does not
  depend on its chunk: its initial state, batches and noise derive from its own seed only
  (``tests/test_ray.py`` checks Ray against the local backend).
- :func:`ray_map` maps a picklable module-level function over items on the cluster, preserving
  order (the analysis pipeline uses it per network file).

With ``address=None`` and no Ray session already initialised, a local Ray instance is started
for the call and shut down afterwards; an address (``"auto"``, ``"ray://host:10001"``, ...)
connects to an existing cluster.  Workers must be able to import ``rhythmswitch`` (install it on
every node, or pass a ``runtime_env``); see docs/scaling.md.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rhythmswitch.config import ConfigError, RunConfig

log = logging.getLogger(__name__)


def require_ray() -> Any:
    """Import Ray or raise ConfigError telling how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "--backend = 'ray' is invalid: Ray is not installed "
            "(allowed: 'local', or install the extra with pip install 'rhythmswitch[ray]')"
        ) from exc
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[Any]:
    """Yield the ``ray`` module with a session up; shut down only a session started here."""
    ray = require_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"log_to_driver": True, "include_dashboard": False}
        if address:
            kwargs["address"] = address
        log.info("starting Ray session (address=%s)", address or "local")
        ray.init(**kwargs)
        started = True
    elif address:
        log.info("using the Ray session already initialised (ignoring address=%s)", address)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def ray_map(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    address: str | None = None,
    *,
    num_cpus: float = 1,
    on_result: Callable[[int, Any], None] | None = None,
) -> list:
    """``[fn(x) for x in items]`` computed as Ray tasks; results in the order of ``items``.

    ``fn`` must be picklable (a module-level function).  ``on_result(index, result)`` is called
    as each task finishes (in completion order).  A task's exception is re-raised here.
    """
    items = list(items)
    if not items:
        return []
    with ray_session(address) as ray:
        remote = ray.remote(num_cpus=num_cpus)(fn)
        refs = [remote.remote(x) for x in items]
        index = {ref: k for k, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            k = index[done[0]]
            results[k] = ray.get(done[0])
            if on_result is not None:
                on_result(k, results[k])
        return results


def train_chunk(
    cfg: RunConfig, seeds: list[int], initial: list | None = None
) -> list[tuple[Any, dict]]:
    """Train ``seeds`` as one ensemble (runs inside a Ray task); (best params, info) per seed.

    ``initial``: the members' starting weights (``init_from``, read by the driver: workers
    need no shared filesystem).  Parameters come back as NumPy arrays so that they pickle
    without JAX device buffers.
    """
    import jax

    from rhythmswitch.train import train_ensemble

    result = train_ensemble(cfg, seeds=list(seeds), initial=initial)
    out = []
    for k, seed in enumerate(result.seeds):
        params = jax.tree_util.tree_map(np.asarray, result.best_params[k])
        info = {
            "seed": int(seed),
            "best_loss": float(result.best_loss[k]),
            "iterations": int(result.iterations[k]),
            "time_to_goal_s": float(result.time_to_goal_s[k]),
            "rollbacks": int(result.rollbacks[k]),
            "history": [float(v) for v in result.history[k]],
        }
        out.append((params, info))
    return out


def _chunks(seeds: list[int], size: int) -> list[list[int]]:
    return [seeds[i : i + size] for i in range(0, len(seeds), size)]


def train_run_ray(
    cfg: RunConfig,
    out: str | Path,
    *,
    address: str | None = None,
    chunk_size: int = 4,
    num_cpus: float = 1,
    on_member: Callable[[str], None] | None = None,
) -> list[Path]:
    """Train the run's unfinished members on Ray in chunks of ``chunk_size`` seeds.

    Same run layout and resume rules as :func:`rhythmswitch.runs.train_run` (a network with a
    valid file is not retrained).  Resumption is per chunk: a chunk still running when the driver
    dies is trained again from scratch on the rerun (workers need no shared filesystem, so no
    checkpoint is kept for them).  Returns the paths of all network files of the run's seeds.
    """
    from rhythmswitch.runs import (
        CONFIG_FILE,
        check_run_dir,
        finished_seeds,
        initial_params,
        member_seeds,
        write_member,
        write_training_tables,
    )
    from rhythmswitch.store import record
    from rhythmswitch.train import member_name

    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"--chunk-size = {chunk_size!r} is invalid: must be an integer >= 1")
    out = Path(out)
    check_run_dir(out, cfg)
    require_ray()
    seeds = member_seeds(cfg)
    todo = [s for s in seeds if s not in finished_seeds(out, seeds)]
    # starting weights (init_from) are read here, before any write: bad files are refused
    initial = _as_numpy(initial_params(cfg, todo)) if todo else None
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / CONFIG_FILE)
    record(out, out / CONFIG_FILE)
    chunks = _chunks(todo, chunk_size)
    if chunks:
        log.info(
            "training %d network(s) on Ray in %d chunk(s) of <= %d seeds",
            len(todo),
            len(chunks),
            chunk_size,
        )

        def write_chunk(_k: int, members: list[tuple[Any, dict]]) -> None:
            for params, info in members:
                path = write_member(out, cfg, params, info, info["history"])
                log.info("wrote %s (best loss %.3g)", path, info["best_loss"])
                if on_member is not None:
                    on_member(path.stem)

        ray_map(
            _train_chunk_item,
            [
                (cfg, chunk, None if initial is None else initial[i : i + len(chunk)])
                for i, chunk in zip(range(0, len(todo), chunk_size), chunks, strict=True)
            ],
            address,
            num_cpus=num_cpus,
            on_result=write_chunk,
        )
    ckpt = out / "checkpoint.npz"
    if ckpt.exists() and not (set(seeds) - finished_seeds(out, seeds)):
        ckpt.unlink()
    write_training_tables(out)
    return [out / "networks" / f"{member_name(s)}.npz" for s in seeds]


def _as_numpy(params: list | None) -> list | None:
    import jax

    return None if params is None else [jax.tree_util.tree_map(np.asarray, p) for p in params]


def _train_chunk_item(item: tuple[RunConfig, list[int], list | None]) -> list[tuple[Any, dict]]:
    cfg, seeds, initial = item
    return train_chunk(cfg, seeds, initial)


__all__ = ["ray_map", "ray_session", "require_ray", "train_chunk", "train_run_ray"]
