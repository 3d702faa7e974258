"""Print the null models behind the mechanism thresholds (and the thresholds) as JSON.

    python benchmarks/null_models.py                 # N = 100, seed 0, 2000 draws (~15 s)
    python benchmarks/null_models.py --n-units 50 --draws 500
    python benchmarks/null_models.py --synthetic /tmp/synth   # also classify the hand-built
                                                              # networks (writes a run dir)

Every number comes from :func:`rhythmswitch.mechanisms.null_model_report` (turnover: the exact
law of the Jaccard index of random active sets and a no-turnover simulation; baseline: the
within-mode noise score and the apparent shift of amplitude-only changes; phase: the coherence
loss of amplitude-only changes).  See docs/mechanisms.md for how each justifies its threshold.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _synthetic(out: Path) -> dict:
    """Analyse the hand-built networks in ``out`` and return their mechanism profiles."""
    import csv

    from rhythmswitch.analysis.pipeline import analyze_run
    from rhythmswitch.network import save_network
    from rhythmswitch.synthetic import all_synthetic

    syn = all_synthetic()
    lines = ["network,converged,min_ratio"]
    for s in syn.values():
        save_network(s.network, out / "networks" / f"{s.network.name}.npz")
        lines.append(f"{s.network.name},true,NaN")
    (out / "evaluation_summary.csv").write_text("\n".join(lines) + "\n")
    analyze_run(out, quiet=True, fixed_points=False)
    rows = list(csv.DictReader((out / "analysis" / "mechanisms.csv").read_text().splitlines()))
    report = {}
    for key, s in syn.items():
        mine = {r["pair"]: r for r in rows if r["network"] == s.network.name}
        report[key] = {
            "demo_pair": "-".join(s.demo_pair),
            "claimed": {"-".join(p): sorted(v) or ["none"] for p, v in s.truth.items()},
            "classified": {
                p: {
                    "profile": r["profile"],
                    "scores": {m: r[f"{m}_score"] for m in ("turnover", "baseline", "phase")},
                }
                for p, r in mine.items()
            },
        }
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-units", type=int, default=100)
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--synthetic", default=None, help="run dir for the synthetic validation")
    args = p.parse_args(argv)
    if args.n_units < 5 or args.draws < 10:
        p.error(f"--n-units must be >= 5 and --draws >= 10 (got {args.n_units}, {args.draws})")
    logging.basicConfig(level=logging.WARNING)
    from rhythmswitch.mechanisms import null_model_report, thresholds

    out = {
        "thresholds": thresholds(),
        "null_models": null_model_report(seed=args.seed, n=args.n_units, n_draws=args.draws),
    }
    if args.synthetic:
        out["synthetic"] = _synthetic(Path(args.synthetic))
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
