"""Benchmarks: the speed of one training iteration, and the wall time to the criterion.

``bench_train`` (``rhythmswitch bench train``) times the compiled ensemble step of the trainer
(:func:`rhythmswitch.train.make_ensemble_chunk` with one iteration per call) for one network and
for a K-network ensemble, and, in the same run, this machine's float32 matrix-multiply peak.
Model FLOPs per iteration and network are :func:`rhythmswitch.recurrence.flops_per_iteration`,
``3 x 2 B N^2 T`` (one recurrent (B, N) x (N, N) product per step forward, one backward and one
for the weight gradient; T = trial length in steps at the timed window).  So::

    gflops     = K * flops_per_iteration(N, B, T) / s_per_iter / 1e9
    efficiency = gflops / peak_gflops

Every measurement runs in its own Python process (``python -m rhythmswitch.bench --worker``), so
its peak memory (resident set on the CPU, the device allocator's peak on an accelerator) belongs
to that measurement alone, and the authors-style TensorFlow step (``benchmarks/tf_reference.py``)
never shares a process with JAX.  Each measurement is one JSON line on ``stream`` (stdout):
``{"preset", "networks", "s_per_iter", "gflops", "peak_gflops", "efficiency", "peak_mem_gib",
"impl", ...}``.  Progress goes to the ``rhythmswitch.bench`` logger.

``bench_converge`` (``rhythmswitch bench converge``) trains an ensemble with
:func:`rhythmswitch.runs.train_run`, evaluates it with :func:`rhythmswitch.runs.evaluate_run`
(METHOD section 6) and prints one JSON line with the wall time, the trainer's time to its goal
per network, the iterations, and the converged counts by both criteria.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import logging
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from rhythmswitch.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    changes_from_preset,
    get_preset,
)

log = logging.getLogger("rhythmswitch.bench")  # also when run as python -m

PAPER_CONVERGE_LOSS = 2e-5  # METHOD section 5: best loss at or above this = not converged
DEFAULT_ENSEMBLES = (1, 20)
TF_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tf_reference.py"

Record = dict[str, Any]


# -- helpers -------------------------------------------------------------------------------


def trial_steps(cfg: RunConfig, window_steps: int | None = None) -> int:
    """Steps T of one training trial at ``window_steps`` (default: the task's window)."""
    t = cfg.task
    w = t.window_steps if window_steps is None else window_steps
    return t.wait_steps + t.switch_num * (t.transient_steps + w)


def model_flops(cfg: RunConfig, networks: int = 1, window_steps: int | None = None) -> float:
    """Model FLOPs of one training iteration of ``networks`` networks (3 x 2 B N^2 T each)."""
    from rhythmswitch.recurrence import flops_per_iteration

    per_net = flops_per_iteration(
        cfg.model.n_units, cfg.train.batch_size, trial_steps(cfg, window_steps)
    )
    return float(networks) * float(per_net)


def host_peak_rss_gib() -> float:
    """Peak resident memory of this process so far, GiB (ru_maxrss is KiB on Linux)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1.0 if sys.platform == "darwin" else 1024.0  # macOS reports bytes
    return rss * scale / 2**30


def _device_peak_gib() -> float | None:
    """Peak bytes of the first JAX device's allocator (accelerators); None on the CPU."""
    import jax

    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return None
    with contextlib.suppress(Exception):
        stats = dev.memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            return stats["peak_bytes_in_use"] / 2**30
    return None


def code_version() -> str | None:
    """``git describe --always --dirty`` of the source checkout, or None outside one."""
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def machine_info() -> Record:
    """What the numbers were measured on: CPU count, load at the time, code version."""
    info: Record = {"host_cpus": os.cpu_count(), "machine": platform.machine()}
    with contextlib.suppress(OSError):
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    info["code"] = code_version()
    return info


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} = {value!r} is invalid: must be an integer >= 1")


# -- measurements (run inside a worker process, or in-process when isolate=False) -----------


def measure_peak_gflops(n: int = 4096, repeats: int = 5) -> float:
    """This machine's float32 GFLOP/s: the best of ``repeats`` jitted (n, n) x (n, n) products
    (2 n^3 FLOPs) on one device and, where there are several local devices (one per core on
    the CPU, see :mod:`rhythmswitch.devices`), also one such product on every device at once;
    the larger figure is the peak (so the split training step is compared with all cores)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    _check_positive_int("matmul_n", n)
    _check_positive_int("repeats", repeats)
    ka, kb = jax.random.split(jax.random.PRNGKey(0))

    def best_of(fn, *args) -> float:
        fn(*args).block_until_ready()
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(*args).block_until_ready()
            best = min(best, time.perf_counter() - t0)
        return best

    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    peak = 2.0 * n**3 / best_of(jax.jit(jnp.matmul), a, b) / 1e9
    devs = jax.local_devices()
    if len(devs) > 1:
        nd = len(devs)
        sharding = NamedSharding(Mesh(np.array(devs), ("d",)), P("d"))
        a_s = jax.device_put(jnp.broadcast_to(a, (nd, n, n)), sharding)
        b_s = jax.device_put(jnp.broadcast_to(b, (nd, n, n)), sharding)
        t = best_of(jax.jit(jnp.matmul), a_s, b_s)
        peak = max(peak, nd * 2.0 * n**3 / t / 1e9)
    return peak


def _xla_memory_gib(compiled) -> float | None:
    """XLA's own plan for a compiled step: arguments + outputs + temporaries - aliased, GiB."""
    try:
        m = compiled.memory_analysis()
        total = (
            m.argument_size_in_bytes
            + m.output_size_in_bytes
            + m.temp_size_in_bytes
            - m.alias_size_in_bytes
        )
    except Exception:  # not every backend/version reports it
        return None
    return total / 2**30


def _compile_step(cfg: RunConfig, st, networks: int, opt):
    """The trainer's one-iteration ensemble step, compiled for ``st`` with the members split
    over the local devices as the trainer splits them (:func:`rhythmswitch.train.place_members`).

    Returns ``(compiled, st, it_of)``: the placed state, and ``it_of(i)`` builds the (K,) vector
    of per-member iteration counts, placed likewise.
    """
    import jax
    import jax.numpy as jnp

    from rhythmswitch.train import a_stays_large, make_ensemble_chunk, place_members

    cheap_da = a_stays_large(cfg, st.params.tau_raw, 1)  # as the trainer decides per call
    st, it0, nd, _k = place_members(st, jnp.zeros((networks,), jnp.int32))
    fn = make_ensemble_chunk(cfg, cfg.task.window_steps, 1, opt, nd, cheap_da)

    def it_of(i: int):
        return jax.device_put(jnp.full(it0.shape, i, jnp.int32), it0.sharding)

    return fn.lower(st, it0).compile(), st, it_of


def planned_memory_gib(cfg: RunConfig, networks: int) -> float | None:
    """XLA's memory plan of one training iteration of ``networks`` members, compiled, not run.

    A cheap stand-in for the measured peak (the resident set adds the runtime, ~0.5 GiB on the
    CPU); use it to check that a large ensemble fits before running it.
    """
    from rhythmswitch.train import init_member_state, make_optimizer

    _check_positive_int("networks", networks)
    opt = make_optimizer(cfg)
    st = init_member_state(cfg, [cfg.seed + k for k in range(networks)], opt)
    return _xla_memory_gib(_compile_step(cfg, st, networks, opt)[0])


def time_jax_step(cfg: RunConfig, networks: int, iters: int) -> Record:
    """Seconds per training iteration of ``networks`` members (the trainer's compiled step).

    The step is ``make_ensemble_chunk(cfg, window, n_iters=1, opt, n_devices)`` on
    ``init_member_state(cfg, seeds, opt)`` with ``window = cfg.task.window_steps``, the members
    split over the local devices as in training; one call
    compiles and warms up, then ``iters`` calls are timed one by one (``block_until_ready``).
    """
    import jax

    from rhythmswitch.train import init_member_state, make_optimizer

    _check_positive_int("networks", networks)
    _check_positive_int("iters", iters)
    opt = make_optimizer(cfg)
    seeds = [cfg.seed + k for k in range(networks)]
    st = init_member_state(cfg, seeds, opt)
    t0 = time.perf_counter()
    step, st, it_of = _compile_step(cfg, st, networks, opt)
    compile_s = time.perf_counter() - t0
    xla_gib = _xla_memory_gib(step)
    t0 = time.perf_counter()
    st, (losses, _oks) = step(st, it_of(0))
    jax.block_until_ready((st, losses))
    warmup_s = time.perf_counter() - t0
    log.info(
        "jax %s x%d: compiled in %.1f s (XLA plans %s GiB), first iteration %.1f s; "
        "timing %d iteration(s)",
        cfg.preset,
        networks,
        compile_s,
        "?" if xla_gib is None else f"{xla_gib:.2f}",
        warmup_s,
        iters,
    )
    times = []
    for i in range(iters):
        t0 = time.perf_counter()
        st, (losses, _oks) = step(st, it_of(i + 1))
        jax.block_until_ready((st, losses))
        times.append(time.perf_counter() - t0)
        log.info(
            "jax %s x%d: iteration %d/%d %.3f s", cfg.preset, networks, i + 1, iters, times[-1]
        )
    loss = [float(v) for v in jax.device_get(losses).reshape(-1)]
    return {
        "times_s": times,
        "compile_s": compile_s,
        "warmup_s": warmup_s,
        "xla_mem_gib": xla_gib,
        "loss_finite": bool(all(math.isfinite(v) for v in loss)),
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
        "split_over_devices": min(networks, len(jax.local_devices())),
    }


def _summarise(cfg: RunConfig, networks: int, times: Sequence[float], peak_gflops: float) -> Record:
    s_per_iter = statistics.median(times)  # robust to a neighbour's burst on a shared CPU
    gflops = model_flops(cfg, networks) / s_per_iter / 1e9
    return {
        "s_per_iter": s_per_iter,
        "s_per_iter_min": min(times),
        "gflops": gflops,
        "peak_gflops": peak_gflops,
        "efficiency": gflops / peak_gflops,
    }


def _worker_jax(spec: Record) -> Record:
    cfg = RunConfig.from_dict(spec["config"])
    res = time_jax_step(cfg, spec["networks"], spec["iters"])
    res["peak_rss_gib"] = host_peak_rss_gib()
    res["device_peak_gib"] = _device_peak_gib()
    return res


def _worker_peak(spec: Record) -> Record:
    import jax

    return {
        "peak_gflops": measure_peak_gflops(spec["matmul_n"], spec["repeats"]),
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
    }


_WORKERS: dict[str, Callable[[Record], Record]] = {"jax": _worker_jax, "peak": _worker_peak}


def _run_worker(kind: str, spec: Record, isolate: bool) -> Record:
    """Run one measurement, in a fresh process when ``isolate`` (its memory peak is its own)."""
    if not isolate:
        return _WORKERS[kind](spec)
    cmd = [sys.executable, "-m", "rhythmswitch.bench", "--worker", kind, json.dumps(spec)]
    return _run_json_process(cmd, what=f"{kind} worker")


def _run_json_process(cmd: list[str], what: str) -> Record:
    """Run ``cmd``; its stderr passes through (progress), its last stdout line is the result."""
    env = dict(os.environ)
    env.setdefault("RHYTHMSWITCH_LOG_LEVEL", str(logging.getLogger().getEffectiveLevel()))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        return {"error": f"{what} exited with status {proc.returncode} (see the log above)"}
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"{what} printed no JSON result: {lines[-1][:200]!r}"}


def _run_tensorflow(cfg: RunConfig, iters: int) -> Record:
    if not TF_SCRIPT.exists():
        return {
            "error": f"{TF_SCRIPT} not found (the TensorFlow reference lives in the source "
            "checkout's benchmarks/ folder)"
        }
    if importlib.util.find_spec("tensorflow") is None:
        return {
            "error": "tensorflow is not installed in this environment; install the optional "
            "extra: pip install -e '.[bench]' (tensorflow-cpu)"
        }
    spec = {"config": cfg.to_dict(), "iters": iters}
    return _run_json_process(
        [sys.executable, str(TF_SCRIPT), "--spec", json.dumps(spec)], what="TensorFlow step"
    )


# -- the commands --------------------------------------------------------------------------


def _emitter(stream: TextIO | None) -> Callable[[Record], None]:
    def emit(rec: Record) -> None:
        out = sys.stdout if stream is None else stream
        out.write(json.dumps(rec) + "\n")
        out.flush()

    return emit


def bench_train(
    preset_name: str,
    *,
    networks: int | None = None,
    iters: int = 3,
    overrides: Sequence[str] = (),
    tensorflow: bool = True,
    matmul_n: int = 4096,
    matmul_repeats: int = 5,
    isolate: bool = True,
    stream: TextIO | None = None,
) -> list[Record]:
    """Time one training iteration for 1 and 20 networks (or ``networks``) and the TF step.

    Emits one JSON line per measurement on ``stream`` (default stdout) and returns the records:
    first the JAX ensembles, then (``tensorflow=True``) the TensorFlow step of one network and a
    ``"impl": "comparison"`` line with ``tf_s_per_iter / jax_s_per_iter_per_network``.
    """
    cfg = apply_overrides(get_preset(preset_name), list(overrides))
    _check_positive_int("--iters", iters)
    if networks is not None:
        _check_positive_int("--networks", networks)
    counts = (networks,) if networks is not None else DEFAULT_ENSEMBLES
    emit = _emitter(stream)
    base: Record = {
        "preset": cfg.preset,
        "n_units": cfg.model.n_units,
        "batch": cfg.train.batch_size,
        "trial_steps": trial_steps(cfg),
        "gflop_per_iter_per_network": model_flops(cfg) / 1e9,
        "iters": iters,
    }
    log.info("measuring the float32 matmul peak (%d^3, best of %d)", matmul_n, matmul_repeats)
    peak = _run_worker("peak", {"matmul_n": matmul_n, "repeats": matmul_repeats}, isolate)
    if "error" in peak:
        raise RuntimeError(f"peak measurement failed: {peak['error']}")
    peak_gflops = float(peak["peak_gflops"])
    log.info("peak %.1f GFLOP/s on %s (%s)", peak_gflops, peak["device"], peak["backend"])
    records: list[Record] = []
    jax_by_k: dict[int, float] = {}
    for k in counts:
        log.info("timing %s with %d network(s), %d iteration(s)", cfg.preset, k, iters)
        spec = {"config": cfg.to_dict(), "networks": k, "iters": iters}
        res = _run_worker("jax", spec, isolate)
        rec: Record = {**base, "impl": "jax", "networks": k}
        if "error" in res:
            rec.update(error=res["error"], peak_gflops=peak_gflops)
        else:
            rec.update(_summarise(cfg, k, res["times_s"], peak_gflops))
            device_peak = res.get("device_peak_gib")
            rec["peak_mem_gib"] = device_peak if device_peak is not None else res["peak_rss_gib"]
            rec["peak_rss_gib"] = res["peak_rss_gib"]
            rec["mem_kind"] = "device" if device_peak is not None else "host_rss"
            rec.update(
                xla_mem_gib=res["xla_mem_gib"],
                compile_s=res["compile_s"],
                warmup_s=res["warmup_s"],
                loss_finite=res["loss_finite"],
                backend=res["backend"],
                device=res["device"],
            )
            jax_by_k[k] = rec["s_per_iter"]
        rec.update(machine_info())
        records.append(rec)
        emit(rec)
    if tensorflow:
        log.info("timing the authors-style TensorFlow step (%s, 1 network)", cfg.preset)
        res = _run_tensorflow(cfg, iters)
        rec = {**base, "impl": "tensorflow", "networks": 1}
        if "error" in res:
            rec.update(error=res["error"], peak_gflops=peak_gflops)
        else:
            rec.update(_summarise(cfg, 1, res["times_s"], peak_gflops))
            rec.update(
                peak_mem_gib=res["peak_rss_gib"],
                peak_rss_gib=res["peak_rss_gib"],
                mem_kind="host_rss",
                compile_s=res["compile_s"],
                loss_finite=res["loss_finite"],
                tensorflow_version=res["tensorflow_version"],
            )
        rec.update(machine_info())
        records.append(rec)
        emit(rec)
        if "error" not in rec and jax_by_k:
            tf_s = rec["s_per_iter"]
            cmp: Record = {"preset": cfg.preset, "impl": "comparison", "tf_s_per_iter": tf_s}
            for k, s in sorted(jax_by_k.items()):
                cmp[f"jax_s_per_iter_per_network_k{k}"] = s / k
                cmp[f"tf_over_jax_k{k}"] = tf_s / (s / k)
            records.append(cmp)
            emit(cmp)
    return records


def _read_summary(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "training_summary.csv"
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


def bench_converge(
    cfg: RunConfig, out: str | Path | None = None, *, stream: TextIO | None = None
) -> Record:
    """Train ``cfg.n_networks`` networks, evaluate them, emit one JSON line and return it.

    ``time_to_criterion_s`` is the trainer's time to its goal loss per network (``null`` when a
    network never reached it); ``converged`` counts networks meeting METHOD section 6 (every
    in-band ratio >= 0.99 in every evaluation run); ``paper_converged`` counts best training loss
    < 2e-5.  Without ``out`` the run lives in a temporary directory that is removed afterwards.
    """
    from rhythmswitch.runs import evaluate_run, train_run

    with contextlib.ExitStack() as stack:
        if out is None:
            run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rs-bench-")))
        else:
            run_dir = Path(out)
            if (run_dir / "networks").is_dir() and any((run_dir / "networks").iterdir()):
                log.warning(
                    "%s already holds networks: finished ones are not retrained, so wall_s "
                    "covers only the rest",
                    run_dir,
                )
        log.info(
            "bench converge: training %d %s network(s) in %s", cfg.n_networks, cfg.preset, run_dir
        )
        t0 = time.perf_counter()
        train_run(cfg, run_dir)
        t1 = time.perf_counter()
        log.info("trained in %.1f s; evaluating", t1 - t0)
        evals = evaluate_run(run_dir)
        t2 = time.perf_counter()
        rows = _read_summary(run_dir)
        by_name = {e.network: e for e in evals}
        names = [r["network"] for r in rows]
        best = [float(r["best_loss"]) for r in rows]
        rec: Record = {
            "preset": cfg.preset,
            "changes": changes_from_preset(cfg),
            "networks": cfg.n_networks,
            "seed": cfg.seed,
            "wall_s": t2 - t0,
            "train_s": t1 - t0,
            "evaluate_s": t2 - t1,
            "time_to_criterion_s": [_finite_or_none(float(r["time_to_goal_s"])) for r in rows],
            "iterations": [int(r["iterations"]) for r in rows],
            "best_loss": best,
            "min_ratio": [
                _finite_or_none(by_name[n].min_ratio) if n in by_name else None for n in names
            ],
            "converged": int(sum(e.converged for e in evals)),
            "paper_converged": int(sum(b < PAPER_CONVERGE_LOSS for b in best)),
            "goal_loss": cfg.train.goal_loss,
            "networks_evaluated": len(evals),
        }
        rec.update(machine_info())
        _emitter(stream)(rec)
        return rec


# -- worker entry point --------------------------------------------------------------------


def _worker_main(argv: list[str]) -> int:
    level = os.environ.get("RHYTHMSWITCH_LOG_LEVEL", "20")
    logging.basicConfig(
        level=int(level) if level.isdigit() else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("jax", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if len(argv) != 3 or argv[0] != "--worker" or argv[1] not in _WORKERS:
        log.error("usage: python -m rhythmswitch.bench --worker {%s} SPEC_JSON", ",".join(_WORKERS))
        return 2
    res = _WORKERS[argv[1]](json.loads(argv[2]))
    sys.stdout.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker_main(sys.argv[1:]))
