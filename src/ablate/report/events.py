"""Event-count checks: does an event (a run diverging, or its metric past a threshold) happen in a
larger (``goal: max``) or smaller (``goal: min``) fraction of the treatment's runs than of the
baseline's?

Each judged run is one observation, and a side may pool several levels of the factor
(``treatment: [0.3, 1.0, 3.0]``). What counts as the event is the check's ``event``
(:class:`ablate.report.claims.EventSpec`): ``diverged`` (status diverged, or the check's metric
recorded as NaN/inf), ``above: x`` / ``below: x`` (an ok run's metric, after ``transform``, at or
above / at or below x; diverged runs follow ``on_diverged``: left out, or scored as the worst ok
value or as chance and then compared with x), or both (either one). Failed runs, and ok runs
without the metric, are left out; every one is counted per side.

The counts k_t of n_t vs k_b of n_b go into Fisher's exact test on the 2×2 table
(``scipy.stats.fisher_exact``), one-sided: **p for** is the p of "the treatment has the event more
often" (goal max; "less often" for goal min), **p against** the p of the opposite direction. At a
look judged at α: supported when p for < α; not supported when p against < α and Holm's
correction over the claim's checks keeps it (:mod:`ablate.report.judge`); else inconclusive.
Each direction is a one-sided test at α, where the interval checks decide each direction at α/2.

Power: there is no interval and no effect size to power; the report gives instead the smallest
one-sided p the run counts could reach at all (every run of one side with the event, none of the
other's): when it is not below α, the check cannot decide at this budget whatever happens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np
from scipy import stats as st

from ablate.report import stats
from ablate.report.checks import SIDES, CheckResult, LookResult, Scope, Scorer, at_seeds, transformed, missing_level_reason
from ablate.report.claims import CheckSpec, EventSpec, metric_direction
from ablate.report.sequential import Look
from ablate.report.values import metric_recorded, metric_value, record_cell


def describe(event: EventSpec, metric: str) -> str:
    """``train/loss ≥ 2.30259 or the run diverged (status diverged, or train/loss NaN/inf)``: what
    counts as the event, as the report prints it."""
    parts = []
    if event.above is not None:
        parts.append(f"{metric} ≥ {stats.fmt(event.above, 6)}")
    if event.below is not None:
        parts.append(f"{metric} ≤ {stats.fmt(event.below, 6)}")
    if event.diverged:
        parts.append("the run diverged" + (f" (status diverged, or {metric} NaN/inf)" if metric else " (status diverged)"))
    return " or ".join(parts)


@dataclass(frozen=True)
class EventCounts:
    """k of n runs with the event per side, and Fisher's one-sided p-values."""

    k: dict[str, int]
    n: dict[str, int]
    p_greater: float  # H1: the treatment has the event more often
    p_less: float     # H1: less often
    min_p: float      # the smallest one-sided p these n could reach

    def fraction(self, side: str) -> float:
        return self.k[side] / self.n[side] if self.n[side] else math.nan


def fisher(k: dict[str, int], n: dict[str, int]) -> EventCounts:
    """Fisher's exact test on [[k_t, n_t − k_t], [k_b, n_b − k_b]], both one-sided alternatives."""
    nan = float("nan")
    if not (n["treatment"] and n["baseline"]):
        return EventCounts(dict(k), dict(n), nan, nan, nan)
    table = [[k["treatment"], n["treatment"] - k["treatment"]], [k["baseline"], n["baseline"] - k["baseline"]]]
    greater = float(st.fisher_exact(table, alternative="greater").pvalue)
    less = float(st.fisher_exact(table, alternative="less").pvalue)
    extreme = [[n["treatment"], 0], [0, n["baseline"]]]
    return EventCounts(dict(k), dict(n), greater, less, float(st.fisher_exact(extreme, alternative="greater").pvalue))


@dataclass
class EventResult(CheckResult):
    """A check with ``event:``: counts per side and Fisher's test."""

    events: EventCounts | None = None
    CONTRADICTS = "Fisher's test contradicts the claim"

    @property
    def metric_label(self) -> str:
        name = f"log10({self.metric})" if self.transform == "log10" and self.metric else self.metric
        return describe(self.event, name)

    @property
    def test_label(self) -> str:
        return "event count (Fisher's exact test, one-sided)"

    def n(self, side: str) -> int:
        return self.events.n[side] if self.events is not None else 0

    def diverged_policy(self) -> str:
        return "a diverged run is the event" if self.event.diverged else super().diverged_policy()

    def n_text(self) -> str:
        return f"{self.n('treatment')} vs {self.n('baseline')} runs"

    def seeds_phrase(self) -> str:
        return self.n_text()

    @property
    def estimated(self) -> bool:
        return self.events is not None and all(self.events.n.values())

    @property
    def p_for_direction(self) -> str:
        return "more often" if self.goal != "min" else "less often"

    def _diff(self) -> float:
        e = self.events
        d = e.fraction("treatment") - e.fraction("baseline")
        return -d if self.goal == "min" else d

    def observed(self) -> float:
        return abs(self._diff()) if self.events is not None else math.nan

    def table_side(self, side: str) -> tuple[str, str] | None:
        if self.events is None:
            return None
        label = self.treatment_label if side == "treatment" else self.baseline_label
        return label, f": {self.events.k[side]}/{self.events.n[side]} runs with the event"

    def diff_text(self) -> str:
        if not self.estimated:
            return "—"
        return f"{stats.fmt(self._diff())} (fractions)"

    def evidence(self) -> str:
        """``optimizer.lr ∈ {0.3, 1, 3} 7/12 runs vs optimizer.lr ∈ {0.001, 0.01} 0/12 with the event
        ; event: train/loss ≥ 2.30259 or the run diverged (...); difference of fractions (treatment −
        baseline) 0.583;
        Fisher's exact test, one-sided p=0.0026 (the treatment more often), opposite direction p=1``."""
        e = self.events
        if e is None:
            return ""
        text = (f"{self.treatment_label} {e.k['treatment']}/{e.n['treatment']} runs vs {self.baseline_label} "
                f"{e.k['baseline']}/{e.n['baseline']} with the event; event: {self.metric_label}")
        if self.estimated:
            text += (f"; difference of fractions ({self.diff_label}) {stats.fmt(self._diff())}; Fisher's exact test, "
                     f"one-sided p={stats.fmt(self.p_support, 2)} (the treatment {self.p_for_direction}), opposite "
                     f"direction p={stats.fmt(self.p_against, 2)}")
        return text

    def setup(self) -> str:
        higher = "lower" if self.goal == "min" else "higher"
        return (f"the fraction of runs where {self.metric_label}: {self.treatment_label} vs "
                f"{self.baseline_label}{self.where_text()}, claimed {higher} for the treatment; each run counts once")

    def power_text(self) -> str:
        e = self.events
        if not self.estimated:
            return "n/a for event checks (Fisher's exact test), and no runs to count on a side"
        text = (f"n/a for event checks (Fisher's exact test); the smallest one-sided p {self.n_text()} can reach "
                f"(every run of one side with the event, none of the other's) is {stats.fmt(e.min_p, 2)}")
        if e.min_p >= self.alpha:
            text += f", not below α={self.alpha:.3g}: this check cannot decide with these runs"
        return text

    def null_text(self, budget: str) -> str | None:
        text = super().null_text(budget)
        if text and self.events.min_p >= self.alpha:
            text += f"; {self.n_text()} cannot reach p < {self.alpha:.3g} at all"
        return text

    def look_result(self, index: int, alpha: float, complete: bool) -> LookResult:
        e = self.events
        counts = (f"{e.k['treatment']}/{e.n['treatment']} vs {e.k['baseline']}/{e.n['baseline']} runs with the event"
                  if e is not None else "no counts")
        p = f", p for {stats.fmt(self.p_support, 2)}" if self.p_support == self.p_support else ""
        return LookResult(index, {s: self.n(s) for s in SIDES}, alpha, self.verdict, math.nan, math.nan, complete,
                          f"{counts}, α={alpha:.3g}{p}")


# ---------------------------------------------------------------------------------------------
# Judging one look
# ---------------------------------------------------------------------------------------------


def _count(result: EventResult, side: str, rows: list[dict], scorer: Scorer | None) -> tuple[int, int]:
    """k (runs with the event) and n (runs counted) of one side; the runs counted go to run_ids,
    the ones left out to counts and notes."""
    spec = result.spec
    event, metric = spec.event, spec.metric
    counts = {"diverged": 0, "failed": 0, "missing": 0}
    values = transformed(rows, metric, spec.transform) if metric else np.full(len(rows), np.nan)
    k = n = 0
    counted = result.run_ids.setdefault(side, [])
    for r, v in zip(rows, values):
        status = r.get("status")
        if status == "failed":
            counts["failed"] += 1
            continue
        if status == "diverged":
            counts["diverged"] += 1
            if event.diverged:
                happened: bool | None = True
            else:
                fill = scorer.fill if scorer is not None else None
                happened = None if fill is None else _past(event, fill)
        elif event.diverged and metric and metric_recorded(r, metric) and not math.isfinite(metric_value(r, metric)):
            happened = True  # an ok run whose metric went NaN/inf
        elif event.above is not None or event.below is not None:
            happened = _past(event, float(v)) if math.isfinite(v) else None
            counts["missing"] += happened is None
        elif metric and not metric_recorded(r, metric):
            happened = None
            counts["missing"] += 1
        else:
            happened = False
        if happened is not None:
            n += 1
            k += happened
            counted.append(str(r.get("run_id")))
    result.counts[side] = counts
    if counts["diverged"] and not event.diverged:  # else the counts line says it: they are the event
        if scorer is not None and scorer.fill is not None:
            how = f"scored as {scorer.mode} ({stats.fmt(scorer.fill)}), then compared with the threshold"
        else:
            how = "left out"
        result.notes.append(f"{side}: {counts['diverged']} diverged run(s) {how}")
    if counts["failed"]:
        result.notes.append(f"{side}: {counts['failed']} failed run(s) left out")
    if counts["missing"]:
        result.notes.append(f"{side}: {counts['missing']} ok run(s) without a finite {metric} left out")
    return k, n


def _past(event: EventSpec, value: float) -> bool:
    if event.above is not None and value >= event.above:
        return True
    return event.below is not None and value <= event.below


def judge_look(scope: Scope, spec: CheckSpec, look: Look, alpha: float) -> tuple[CheckResult, set]:
    """The event check on the runs of ``look`` at ``alpha``, and the (cell, seed) pairs it reads:
    every cell of both sides at the look's seeds."""
    result = EventResult(spec=spec, alpha=alpha, look=look.index, where=dict(scope.where), seeds_judged=look.judge)
    result.notes += scope.notes
    if scope.problem:
        result.reason = scope.problem
        return result, set()
    judged = {side: at_seeds(rows, look.judge) for side, rows in scope.sides.items()}
    required = {(record_cell(r), s) for rows in scope.sides.values() for r in rows for s in (look.judge or ())}
    scorer = None
    threshold = spec.event.above is not None or spec.event.below is not None
    if threshold and not spec.event.diverged:
        pool = [r for rows in judged.values() for r in rows]
        scorer = Scorer(spec, spec.metric, metric_direction(spec.metric, spec.metric_goal), pool)
        result.notes += scorer.notes
    k, n = {}, {}
    for side, rows in judged.items():
        k[side], n[side] = _count(result, side, rows, scorer)
    e = result.events = fisher(k, n)
    for side, level in zip(SIDES, (spec.treatment, spec.baseline)):
        if not n[side]:
            result.reason = missing_level_reason(scope, spec.factor, level).replace("no ok run", "no run to count", 1)
            return result, required
    result.p_support, result.p_against = (e.p_less, e.p_greater) if spec.goal == "min" else (e.p_greater, e.p_less)
    direction = result.p_for_direction
    opposite = "less often" if direction == "more often" else "more often"
    if result.p_support < alpha:
        result.verdict = stats.SUPPORTED
        result.reason = (f"one-sided Fisher p={stats.fmt(result.p_support, 2)} < α={alpha:.3g}: the treatment has the "
                         f"event {direction}")
    elif result.p_against < alpha:
        result.verdict, result.candidate = stats.NOT_SUPPORTED, True  # stands only if Holm agrees (judge.py)
        result.reason = (f"one-sided Fisher p={stats.fmt(result.p_against, 2)} < α={alpha:.3g} the other way: the "
                         f"treatment has the event {opposite}")
    elif not any(k.values()):
        result.reason = "no run on either side had the event"
    else:
        result.reason = (f"one-sided Fisher p={stats.fmt(result.p_support, 2)} ≥ α={alpha:.3g} (opposite direction "
                         f"p={stats.fmt(result.p_against, 2)})")
    return result, required

