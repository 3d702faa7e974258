"""Benchmark: analyse a 20-network ensemble of N = 100 hand-built networks (issue 4 target:
<= 5 minutes on 2 cores, fixed points included).

The networks are random RNNs (W_rec ~ N(0, gain^2/N), gain 1.8, log-uniform tau on
[5, 100] ms), built here without training; they fluctuate irregularly, so every analysis has
real signals to work on.  The run is first evaluated (METHOD section 6, what ``rhythmswitch
evaluate`` does; timed separately), then ``analyze_run`` is timed; with ``--no-evaluate`` the
analysis evaluates every network itself, which is also what it does on a run without an
``evaluation_summary.csv``.

    python benchmarks/bench_analyze.py [--networks 20] [--units 100] [--no-evaluate] [--keep DIR]

Prints one JSON line: {"networks", "n_units", "wall_s", "per_network_s", "cpu_s",
"evaluate_wall_s", "load_avg_1min", ...}.  ``cpu_s`` is this process's CPU time (all threads)
during the analysis; the load average is printed too: on a shared machine the wall times are
upper bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from rhythmswitch.analysis.handbuilt import random_network
from rhythmswitch.analysis.pipeline import analyze_run
from rhythmswitch.network import save_network
from rhythmswitch.runs import evaluate_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", type=int, default=20)
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--no-evaluate", action="store_true", help="let analyze_run evaluate")
    ap.add_argument("--no-fixed-points", action="store_true")
    ap.add_argument("--keep", default=None, help="run directory to keep (default: a temp dir)")
    args = ap.parse_args()
    run_dir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_analyze_"))
    try:
        for k in range(args.networks):
            net = random_network(args.units, gain=1.8, seed=100 + k, name=f"rand{k:03d}")
            save_network(net, run_dir / "networks" / f"{net.name}.npz")
        eval_s = None
        if not args.no_evaluate:
            t0 = time.perf_counter()
            evaluate_run(run_dir)
            eval_s = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        analyze_run(run_dir, quiet=True, fixed_points=not args.no_fixed_points)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        summary = json.loads((run_dir / "analysis" / "summary.json").read_text())
        result = {
            "networks": args.networks,
            "n_units": args.units,
            "wall_s": round(wall, 2),
            "per_network_s": round(wall / args.networks, 3),
            "cpu_s": round(cpu, 2),
            "evaluate_wall_s": None if eval_s is None else round(eval_s, 2),
            "analysis_includes_evaluation": bool(args.no_evaluate),
            "fixed_points": not args.no_fixed_points,
            "n_analysed": summary["n_analysed"],
            "cpu_count": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(result))
    finally:
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
