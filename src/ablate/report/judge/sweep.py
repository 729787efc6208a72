"""A whole sweep judged: its tables (one row per run, one per cell) and every claim its records
declare, with the metrics its tables show. What the presentation stage lays out and draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from ablate.report.judge import stats
from ablate.report.judge.claim import judge_claim
from ablate.report.judge.results import ClaimResult
from ablate.report.records import tables as collect
from ablate.report.records.tables import CELLS_CSV, RUNS_CSV  # noqa: F401 (the tables' files, re-exported)
from ablate.report.spec import derived

_STANDARD_METRICS = ("train/loss", "val/acc", "test/acc", "val/loss")
_MAX_TABLE_METRICS = 5


def claim_metrics(claims: Sequence[ClaimResult]) -> list[str]:
    """The metrics judged claims show: each one's headline (``plot.metric``), then every check's
    metric, in order, once each."""
    names: list[str] = []
    for claim in claims:
        if claim.plot.get("metric"):
            names.append(str(claim.plot["metric"]))
        names.extend(c.spec.metric for c in claim.checks if c.spec.metric)
    return list(dict.fromkeys(names))


@dataclass
class SweepReport:
    """Everything a report shows, computed from the records alone."""

    title: str
    sweep_label: str
    records: list[dict[str, Any]]
    factors: list[str]
    runs: pd.DataFrame
    cells: pd.DataFrame
    claims: list[ClaimResult]
    key_metrics: list[str]
    figures: list = field(default_factory=list)       # FigureOut, drawn by the presentation stage
    problems: list[str] = field(default_factory=list)  # record files that could not be read

    @property
    def verdict(self) -> str | None:
        """The overall verdict: the claim's, or the combination over several claims."""
        if not self.claims:
            return None
        return stats.combine([c.verdict for c in self.claims])


def judge_sweep(records: Sequence[dict[str, Any]], sweep_label: str = "", problems: Sequence[str] = (),
                applicability: Any = None) -> SweepReport:
    """Aggregate the records (which must not be empty) and judge every claim they declare (on a
    model or data of the user's, only what applies: ``applicability``, the sweep's ``applicability.json``)."""
    records = list(records)
    factors = collect.swept_factors(records)
    claims = [judge_claim(records, c, applicability=applicability) for c in collect.claims(records)]
    present = set(collect.metric_names(records))
    key_metrics = [m for m in (*claim_metrics(claims), *_STANDARD_METRICS)
                   if m in present or (derived.is_derived(m) and set(derived.operands(m)) <= present)]
    key_metrics = list(dict.fromkeys(key_metrics))[:_MAX_TABLE_METRICS]
    experiments = sorted({str(r.get("experiment")) for r in records if r.get("experiment")})
    subject = ", ".join(experiments) or (claims[0].name if claims else sweep_label or "sweep")
    report = SweepReport(
        title=f"ablate report: {subject}",
        sweep_label=sweep_label,
        records=records,
        factors=factors,
        runs=collect.runs_frame(records, factors),
        cells=collect.cells_frame(records, factors),
        claims=claims,
        key_metrics=key_metrics,
        problems=list(problems),
    )
    return report
