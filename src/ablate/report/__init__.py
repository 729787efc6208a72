"""Comparison reports: aggregate a sweep's run records, judge its claim, write md/html/csv/png.

    from ablate.report import build_report
    build_report("reports/residual_depth/2026-11-23_12-00-00")   # -> .../report.md

or ``python -m ablate.report <sweep folder> [--out DIR] [--wandb]``.

Modules: ``claims`` (the claim schema and its errors), ``values`` (reading records), ``derived``
(``a - b`` metrics), ``collect`` (tables), ``stats`` (intervals, tests, power), ``sequential`` (which
seeds each look reads), ``checks`` (one check at one look), ``interaction`` (difference-in-differences
checks), ``events`` (event-count checks), ``judge`` (looks, Holm, clauses: the claim's verdict),
``figures``, ``render`` (Markdown/HTML), ``build`` (the report), ``wandb_report``.

Names are imported lazily, so that ``ablate.report.claims`` (which the config check uses before
any run) costs neither pandas nor statsmodels.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ReportError": "build", "SweepReport": "build", "analyse": "build", "build_report": "build",
    "compose": "build", "load_records": "build", "make_figures": "build", "write_report": "build",
    "SUPPORTED": "stats", "NOT_SUPPORTED": "stats", "INCONCLUSIVE": "stats", "NO_EFFECT": "stats",
    "NOT_TESTED": "stats", "CheckResult": "checks", "ClaimResult": "judge", "judge_check": "judge",
    "judge_claim": "judge",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"ablate.report.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'ablate.report' has no attribute {name!r}")
