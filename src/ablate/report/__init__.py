"""Comparison reports: aggregate a sweep's run records, judge its claim, write md/html/json/csv/png.

    from ablate.report import build_report
    build_report("reports/residual_depth/2026-11-23_12-00-00")   # -> .../report.md

or ``python -m ablate.report <sweep folder> [--out DIR] [--wandb]``.

The report is a pipeline of stages; each imports only earlier ones:

* ``spec/``: the claim schema (``parse_claim``, ``claim_errors``), levels and derived metrics —
  pure Python, so the config check and the sweeper use it before any run;
* ``records/``: reading values from run records, the per-run and per-cell tables;
* ``judge/``: statistics, the sequential plan, one look skeleton with an estimator per check kind,
  the replay of looks with Holm's correction, clauses and claims — numbers only;
* ``present/``: words per check kind, the document, figures, Markdown/HTML, ``verdict.json``, W&B;
* ``build``: the orchestrator that runs them and writes the files.

Names are imported lazily, so that ``ablate.report.spec`` (which the config check uses before any
run) costs neither pandas nor statsmodels.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ReportError": "build", "SweepReport": "build", "analyse": "build", "build_report": "build",
    "compose": "build", "load_records": "build", "make_figures": "build", "write_report": "build",
    "SUPPORTED": "judge.stats", "NOT_SUPPORTED": "judge.stats", "INCONCLUSIVE": "judge.stats",
    "NO_EFFECT": "judge.stats", "NOT_TESTED": "judge.stats", "CheckResult": "judge.results",
    "ClaimResult": "judge.results", "judge_check": "judge.claim", "judge_claim": "judge.claim",
    "text_of": "present.text",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"ablate.report.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'ablate.report' has no attribute {name!r}")
