"""Comparison reports: aggregate a sweep's run records, judge its claim, write md/html/csv/png.

    from ablate.report import build_report
    build_report("reports/residual_depth/2026-11-23_12-00-00")   # -> .../report.md

or ``python -m ablate.report <sweep folder> [--out DIR] [--wandb]``.
"""

from ablate.report.build import (
    ReportError, SweepReport, analyse, build_report, compose, load_records, make_figures, write_report,
)
from ablate.report.stats import (
    INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CheckResult, ClaimResult, judge_check, judge_claim,
)

__all__ = [
    "INCONCLUSIVE", "NOT_SUPPORTED", "SUPPORTED", "CheckResult", "ClaimResult", "ReportError",
    "SweepReport", "analyse", "build_report", "compose", "judge_check", "judge_claim", "load_records",
    "make_figures", "write_report",
]
