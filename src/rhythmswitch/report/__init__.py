"""The report: figures equivalent to the paper's, the claims table and one HTML page.

``build_report(run_dirs, quiet=False) -> Path`` writes ``<first DIR>/report/index.html``; see
:mod:`rhythmswitch.report.html`.  Plotting lives in :mod:`rhythmswitch.report.figures`, the
claims' rules in :mod:`rhythmswitch.report.claims`.
"""

from rhythmswitch.report.html import build_report

__all__ = ["build_report"]
