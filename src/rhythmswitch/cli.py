"""Command line: ``rhythmswitch <command> ...`` (also ``python -m rhythmswitch``).

The CLI parses arguments, builds a config, calls the library and reports; no science here.
Invalid input exits with status 2 and a message naming the field, the value and what is allowed,
before any work is done.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rhythmswitch.config import PRESETS, ConfigError, RunConfig, apply_overrides, get_preset

log = logging.getLogger("rhythmswitch")


class UsageError(ConfigError):
    """Bad command-line input (exit status 2)."""


# -- progress ------------------------------------------------------------------------------


def _train_progress(total: int, quiet: bool):
    """A tqdm bar: iteration, elapsed, best/median/worst member loss, members at goal."""
    if quiet:
        return None, lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="train", unit="it", dynamic_ncols=True, file=sys.stderr)

    def update(p) -> None:
        if bar.total != p.max_iters:
            bar.total = p.max_iters
        bar.n = p.iteration
        bar.set_postfix_str(
            f"loss best={p.best:.2e} med={p.median:.2e} worst={p.worst:.2e} "
            f"goal={p.n_done}/{p.n_members}",
            refresh=False,
        )
        bar.refresh()

    return update, bar.close


def _count_progress(desc: str, total: int, quiet: bool):
    if quiet:
        return lambda *_: None, lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="net", dynamic_ncols=True, file=sys.stderr)
    return (lambda *_: bar.update(1)), bar.close


# -- commands ------------------------------------------------------------------------------


def build_config(args: argparse.Namespace) -> RunConfig:
    """Preset, then --networks/--seed, then --set overrides; validated before any work."""
    cfg = get_preset(args.preset)
    top = []
    init_from = getattr(args, "init_from", None)
    if init_from:
        from rhythmswitch.runs import init_network_files

        top.append(f"init_from={init_from}")
        if getattr(args, "networks", None) is None:  # one member per network file
            top.append(f"n_networks={len(init_network_files(init_from))}")
    if getattr(args, "networks", None) is not None:
        top.append(f"n_networks={args.networks}")
    if getattr(args, "seed", None) is not None:
        top.append(f"seed={args.seed}")
    try:
        return apply_overrides(cfg, [*top, *(args.set or [])])
    except TypeError as exc:  # a wrong type that slipped past the field checks
        raise ConfigError(f"--set: {exc}") from exc


def cmd_train(args: argparse.Namespace) -> int:
    from rhythmswitch.runs import check_run_dir

    cfg = build_config(args)
    out = Path(args.out)
    check_run_dir(out, cfg)
    if args.backend == "ray":
        from rhythmswitch.backends import train_run_ray

        train_run_ray(cfg, out, address=args.address, chunk_size=args.chunk_size)
    else:
        from rhythmswitch.runs import train_run

        update, close = _train_progress(cfg.train.max_iters, args.quiet)
        try:
            train_run(cfg, out, progress=update)
        finally:
            close()
    print(f"networks written to {out / 'networks'}")
    return 0


def _require_run_dir(path: str) -> Path:
    p = Path(path)
    if not (p / "networks").is_dir():
        raise UsageError(
            f"DIR = {path!r} is invalid: it must hold a networks/ folder of .npz files"
        )
    return p


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rhythmswitch.network import list_network_files
    from rhythmswitch.runs import evaluate_run

    run_dir = _require_run_dir(args.dir)
    tick, close = _count_progress("evaluate", len(list_network_files(run_dir)), args.quiet)
    try:
        evals = evaluate_run(run_dir, sigma=args.sigma, on_network=tick)
    finally:
        close()
    n_conv = sum(e.converged for e in evals)
    print(f"{n_conv}/{len(evals)} networks converged; wrote {run_dir / 'evaluation.csv'}")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from rhythmswitch.analysis.pipeline import analyze_run

    run_dir = _require_run_dir(args.dir)
    analyze_run(
        run_dir,
        quiet=args.quiet,
        backend=args.backend,
        address=args.address,
        fixed_points=not args.no_fixed_points,
    )
    print(f"analysis written to {run_dir / 'analysis'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from rhythmswitch.report import build_report

    dirs = [_require_run_dir(d) for d in args.dirs]
    index = build_report(dirs, quiet=args.quiet)
    print(f"report: {index}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from rhythmswitch.pipeline import reproduce

    cfg = build_config(args)
    update, close = _train_progress(cfg.train.max_iters, args.quiet)
    try:
        index = reproduce(
            cfg,
            Path(args.out),
            quiet=args.quiet,
            backend=args.backend,
            address=args.address,
            progress=update,
        )
    finally:
        close()
    print(f"report: {index}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from rhythmswitch.pipeline import sweep

    cfg = build_config(args)
    index = sweep(
        cfg,
        Path(args.out),
        grid=args.grid,
        quiet=args.quiet,
        backend=args.backend,
        address=args.address,
        stages=args.stages,
    )
    print(f"sweep index: {index}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from rhythmswitch import bench

    if args.what == "train":
        bench.bench_train(
            args.preset,
            networks=args.networks,
            iters=args.iters,
            overrides=args.set or [],
            tensorflow=not args.no_tensorflow,
        )
    else:
        cfg = build_config(args)
        bench.bench_converge(cfg, out=args.out)
    return 0


# -- parser --------------------------------------------------------------------------------


def _add_config_args(
    p: argparse.ArgumentParser, default_preset: str, networks_default=None
) -> None:
    p.add_argument("--preset", default=default_preset, help=f"one of {', '.join(sorted(PRESETS))}")
    p.add_argument("--networks", type=int, default=networks_default, help="ensemble size K")
    p.add_argument("--seed", type=int, default=None, help="base seed (member k uses seed + k)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set train.batch_size=16 --set model.tau_init=loguniform",
    )


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--address", default=None, help="Ray cluster address (with --backend ray)")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rhythmswitch",
        description="Train and analyse rhythm-switching RNNs with learned time constants.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)
    _add = sub.add_parser

    def add_parser(name, **kw):
        return _add(name, parents=[common], **kw)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    p = sub.add_parser("train", help="train an ensemble; write DIR/networks/*.npz")
    _add_config_args(p, "paper")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--chunk-size", type=int, default=4, help="seeds per Ray task")
    p.add_argument(
        "--init-from",
        default=None,
        metavar="PATH",
        help="start the members from these network files (a run directory, a folder of .npz "
        "or one .npz; member k from the k-th file) instead of a fresh initialisation",
    )
    _add_backend_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate every DIR/networks/*.npz")
    p.add_argument("dir")
    p.add_argument(
        "--sigma", type=float, default=None, help="noise of the noisy runs (default: the run's)"
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("analyze", help="run every analysis; write DIR/analysis/*")
    p.add_argument("dir")
    p.add_argument("--no-fixed-points", action="store_true", help="skip the fixed-point search")
    _add_backend_args(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("report", help="write DIR/report/index.html (compares several DIRs)")
    p.add_argument("dirs", nargs="+")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("reproduce", help="train, evaluate, analyse and report, resuming")
    _add_config_args(p, "fast", networks_default=20)
    p.add_argument("--out", default="runs/reproduce", help="run directory (default runs/reproduce)")
    _add_backend_args(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("sweep", help="run a grid over config values, one run directory per point")
    _add_config_args(p, "tiny")
    p.add_argument("--out", required=True, help="sweep directory")
    p.add_argument(
        "--grid",
        action="append",
        required=True,
        metavar="KEY=V1,V2,...",
        help="a swept setting, e.g. --grid model.tau_init=constant,loguniform",
    )
    p.add_argument(
        "--stages", default="train,evaluate,analyze", help="comma list of stages per point"
    )
    _add_backend_args(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "bench", help="benchmarks: 'train' (speed) or 'converge' (time to criterion)"
    )
    p.add_argument("what", choices=("train", "converge"))
    _add_config_args(p, "paper")
    p.add_argument("--iters", type=int, default=3, help="timed iterations (bench train)")
    p.add_argument("--no-tensorflow", action="store_true", help="skip the authors-style TF step")
    p.add_argument("--out", default=None, help="run directory for bench converge (default: temp)")
    p.set_defaults(func=cmd_bench)
    return parser


def enable_compile_cache() -> None:
    """Keep compiled XLA programs on disk (``$RHYTHMSWITCH_CACHE`` or ~/.cache/rhythmswitch),
    so a resumed run or a repeated command does not compile the training loop again."""
    import os

    import jax

    path = os.environ.get("RHYTHMSWITCH_CACHE") or str(
        Path.home() / ".cache" / "rhythmswitch" / "jax"
    )
    if path.lower() in ("0", "off", "none"):
        return
    try:
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    except Exception as exc:  # an old jax or a read-only home: run without the cache
        log.debug("compile cache disabled: %s", exc)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    enable_compile_cache()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("jax", "absl", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"rhythmswitch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rhythmswitch: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
