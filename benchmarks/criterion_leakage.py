"""How often can a perfect rhythm pass the convergence criterion?  (spectral leakage)

The evaluation (METHOD section 6) scores each mode by the in-band power ratio of a plain
(rectangular-window) FFT of a 7500-sample segment (8000 steps per mode, first 500 dropped),
and calls a network converged when every ratio is >= 0.99.  A pure sinusoid whose frequency
does not complete a whole number of cycles in the segment leaks power into neighbouring bins
(the Dirichlet kernel), and in a narrow band some of that leak lands outside it.  This script
scans pure sinusoids across each band and prints, per band and segment length, the share of
frequencies whose ratio is >= 0.99 and the worst ratio, plus the ratio at the frequencies a
loss window of L samples favours (multiples of Fs / L, which leak nothing in that window).

    python benchmarks/criterion_leakage.py [--bands paper|canonical]

No network is involved: this bounds what any network can score on the criterion.
"""

from __future__ import annotations

import argparse

import numpy as np

from rhythmswitch.config import get_preset
from rhythmswitch.loss import ratio_numpy

FS = 1000.0


def scan(band: tuple[float, float], length: int, n: int = 600) -> tuple[float, float]:
    """(share of frequencies with ratio >= 0.99, worst ratio) over pure sinusoids in the band
    (0.1 Hz away from either edge), ``length`` samples at FS."""
    t = np.arange(length) / FS
    freqs = np.linspace(band[0] + 0.1, band[1] - 0.1, n)
    ratios = np.array([ratio_numpy(np.sin(2 * np.pi * f * t + 0.3), FS, band) for f in freqs])
    return float(np.mean(ratios >= 0.99)), float(ratios.min())


def grid_ratios(band: tuple[float, float], window: int, length: int) -> list[tuple[float, float]]:
    """Ratio on a ``length``-sample segment of the sinusoids at multiples of FS / window inside
    the band (the frequencies a ``window``-sample loss window scores without leakage)."""
    t = np.arange(length) / FS
    step = FS / window
    freqs = np.arange(np.ceil(band[0] / step), np.ceil(band[1] / step)) * step
    return [(float(f), ratio_numpy(np.sin(2 * np.pi * f * t + 0.3), FS, band)) for f in freqs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bands", default="paper", choices=("paper", "canonical"))
    args = ap.parse_args()
    task = get_preset(args.bands).task
    eval_len = 8000 - 500
    print(f"bands: {args.bands}; evaluation segment {eval_len} samples at {FS:g} Hz")
    for name, band in zip(task.mode_names, task.bands_hz, strict=True):
        band = (float(band[0]), float(band[1]))
        share, worst = scan(band, eval_len)
        print(
            f"{name:6s} {band[0]:g}-{band[1]:g} Hz: pure sinusoids passing >= 0.99: "
            f"{100 * share:5.1f} %  (worst {worst:.4f})"
        )
        for window in (4000, 3750):
            rs = grid_ratios(band, window, eval_len)
            bad = [f"{f:.2f}:{r:.3f}" for f, r in rs if r < 0.99]
            print(
                f"    grid of a {window}-sample loss window: {len(rs)} frequencies, "
                f"{len(bad)} fail on the evaluation segment {' '.join(bad[:8])}"
            )


if __name__ == "__main__":
    main()
