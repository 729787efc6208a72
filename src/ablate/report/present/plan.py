"""Which figures a report draws: the headline of each claim (its ``plot`` block), one per further
check, training curves, gradient-norm profiles and learning-rate sensitivity, each when the sweep
has the data for it.
"""

from __future__ import annotations

from typing import Sequence

from ablate.report.judge.sweep import SweepReport
from ablate.report.present import curves, figures
from ablate.report.present.figures import FigureOut
from ablate.report.records.values import is_numeric_key


def _default_x(records: Sequence[dict], factors: Sequence[str], avoid: set[str]) -> str | None:
    for f in factors:
        if f in avoid or f == figures.LR_KEY:
            continue
        if is_numeric_key(records, f):
            return f
    return None


def make_figures(report: SweepReport) -> list[FigureOut]:
    """The headline figure of each claim, one per further check, training curves, gradient-norm
    profiles and learning-rate sensitivity, each when the sweep has the data for it."""
    records, factors = report.records, report.factors
    out: list[FigureOut] = []
    seen: set[tuple] = set()

    def add(fig: FigureOut | None) -> None:
        if fig is None:
            return
        name, i = fig.name, 2
        while any(f.name == name for f in out):
            name = fig.name.replace(".png", f"_{i}.png")
            i += 1
        out.append(FigureOut(name, fig.title, fig.caption, fig.png))

    for claim in report.claims:
        plot = claim.plot
        first = claim.checks[0] if claim.checks else None
        # The headline (claim.plot's metric), then each check's own metric. The headline takes its
        # lines, filter, tuning and direction from the plot block (line, where, tune, goal) where it
        # sets them, else from the first check on its metric (a check on another metric would pick
        # each point's "best" rate in that check's direction: a test/acc headline at its lowest).
        headline = plot.get("metric") or (first.spec.metric if first else None)
        lead = next((c for c in claim.checks if c.spec.metric == headline), first)
        wanted = [(headline, lead, plot)]
        wanted += [(c.spec.metric, c, {}) for c in claim.checks]
        for metric, check, spec in wanted:
            if not metric:
                continue
            line = spec["line"] if "line" in spec else check.spec.factor if check and check.spec.factor else None
            x = plot.get("x") or _default_x(records, factors, {line} if line else set())
            if line == x:  # a check across the plot's own axis (depth 2 vs 32): one line along it
                line = None
            where = dict(spec["where"] if "where" in spec else check.where if check else {})
            tune = spec["tune"] if "tune" in spec else check.spec.tune if check else None
            goal = spec.get("goal") or (check.spec.goal if check else "min")
            key = (metric, line, x)
            if key in seen:
                continue
            seen.add(key)
            if "logy" in plot and metric == plot.get("metric"):
                logy = bool(plot["logy"])
            else:
                logy = bool(check and check.spec.transform)
            logx = bool(plot.get("logx")) if "logx" in plot else False
            title = f"{claim.name}: {metric} vs {x}" if x else f"{claim.name}: {metric} by {line}"
            add(figures.metric_vs_factor(
                records, factors, metric, line, x, logx=logx, logy=logy, where=where,
                tune=tune if tune != x else None,  # along x each point is one value
                goal=goal, title=title,
                name=f"{figures.slug(claim.name)}_{figures.slug(metric)}_vs_{figures.slug(x or line or 'all')}.png",
            ))

    if not report.claims:
        x = _default_x(records, factors, set())
        others = [f for f in factors if f != x]
        for metric in report.key_metrics[:2]:
            add(figures.metric_vs_factor(records, factors, metric, others[0] if others else None, x))

    color_by = next((c.spec.factor for claim in report.claims for c in claim.checks if c.spec.factor), None)
    add(curves.training_curves(records, factors, curves.history_metrics(records, report.key_metrics), color_by))
    add(curves.grad_norm_profiles(records, factors))

    if figures.LR_KEY in factors:
        first_check = next((c for claim in report.claims for c in claim.checks if c.spec.metric), None)
        metric = first_check.spec.metric if first_check else (report.key_metrics or [None])[0]
        line = figures.lr_line_factor(factors, first_check.spec.factor if first_check else None)
        if metric and (metric, line, figures.LR_KEY) not in seen:  # else the claim's figure shows it
            add(figures.lr_sensitivity(records, factors, metric, line))
    return out
