"""``verdict.json``: the report's verdicts and the numbers behind them, for machines.

The catalogue reads it instead of judging again or reading ``report.md``; anyone can. Every
value is plain JSON: NaN and infinities are written as null, levels in their config spelling.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ablate.report.judge.results import CheckResult, ClaimResult, ControlResult
from ablate.report.judge.sweep import SweepReport
from ablate.report.present.text import text_of
from ablate.report.present.text.controls import ControlText
from ablate.report.records import tables as collect
from ablate.report.spec.levels import fmt_level

VERDICT_JSON = "verdict.json"
SCHEMA = 1


def _number(x: Any) -> float | int | None:
    if x is None or isinstance(x, bool):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _check(c: CheckResult, budget: str) -> dict[str, Any]:
    spec, text = c.spec, text_of(c, budget)
    lo, hi = text.interval() if spec.kind != "events" else (math.nan, math.nan)
    diff = getattr(c.estimate, "diff", math.nan) if spec.kind != "events" else math.nan
    return {
        "name": spec.name, "clause": spec.clause, "kind": spec.kind, "test": spec.test, "margin": _number(spec.margin),
        "metric": spec.metric, "goal": spec.goal, "factor": spec.factor,
        "treatment": fmt_level(spec.treatment), "baseline": fmt_level(spec.baseline),
        "verdict": c.verdict, "verdict_label": text.verdict_label, "reason": text.reason,
        "n": {side: text.n(side) for side in ("treatment", "baseline")},
        "diff": _number(diff), "diff_low": _number(lo), "diff_high": _number(hi),
        "p_for": _number(c.p_inside if spec.test == "equivalence" else c.p_support),
        "p_against": _number(c.p_against), "p_holm": _number(c.p_holm),
        "alpha": c.alpha, "alpha_total": c.alpha_total, "look": c.look + 1, "looks_planned": c.looks_planned,
        "detectable": _number(c.detectable), "seeds_needed": c.seeds_needed,
        "room": _number(c.room), "one_seed_out": c.one_seed_out, "borderline": c.borderline,
    }


def _control(c: ControlResult) -> dict[str, Any]:
    spec = c.spec
    return {
        "name": spec.name, "text": spec.text, "metric": spec.metric, "transform": spec.transform,
        "where": {k: fmt_level(v) for k, v in (c.where or spec.where).items()}, "each": list(spec.each) if spec.each else None, "tune": spec.tune,
        "above": spec.above.text if spec.above else None, "below": spec.below.text if spec.below else None,
        "above_value": _number(c.above), "below_value": _number(c.below), "clauses": list(spec.clauses or []) or None,
        "holds": c.holds, "reason": c.reason or None, "summary": ControlText(c).sentence(), "confidence": 1 - c.alpha / 2,
        "groups": [{"level": None if g.level is None else dict(zip(spec.each or (), map(fmt_level, g.level))), "tuned": None if g.tuned is None
                    else fmt_level(g.tuned), "n": g.n, "mean": _number(g.mean), "low": _number(g.low),
                    "high": _number(g.high), "holds": g.holds, "problem": g.problem,
                    "counts": {k: v for k, v in g.counts.items() if v}} for g in c.groups],
    }


def _claim(claim: ClaimResult) -> dict[str, Any]:
    index = {id(c): i for i, c in enumerate(claim.checks)}
    return {
        "name": claim.name, "statement": claim.statement, "verdict": claim.verdict, "reason": claim.reason,
        "borderline": [c.spec.name for c in claim.checks if c.borderline],
        "scope": dict(claim.scope), "budget": claim.budget, "seeds": claim.plan.describe(), "alpha": claim.alpha,
        "clauses": [{"name": c.clause.name, "text": c.clause.text, "verdict": c.verdict,
                     "not_tested": c.clause.not_tested, "not_applicable": c.reason, "explains": c.clause.explains,
                     "failed_controls": list(c.failed_controls), "checks_verdict": c.judged,
                     "checks": [index[id(k)] for k in c.checks]} for c in claim.clauses],
        "checks": [_check(c, claim.budget) for c in claim.checks],
        "controls": [_control(c) for c in claim.controls],
    }


def verdict_json(report: SweepReport, figures: Sequence[str] = ()) -> dict[str, Any]:
    """What ``verdict.json`` holds: the overall verdict, every claim with its clauses and checks,
    the runs behind them, and the figures drawn (``figures/<name>.png``; the first is the headline)."""
    records = report.records
    return {
        "schema": SCHEMA,
        "sweep": report.sweep_label,
        "title": report.title,
        "verdict": report.verdict,
        "runs": len(records),
        "status": collect.status_counts(records),
        "versions": dict(records[-1].get("versions") or {}) if records else {},
        "headline_figure": figures[0] if figures else None,
        "figures": list(figures),
        "claims": [_claim(c) for c in report.claims],
    }
