"""Event-count checks in words: k of n runs per side, and Fisher's exact test."""

from __future__ import annotations

import math

from scipy import stats as st

from ablate.report.judge import robust, stats
from ablate.report.present.text.plain import CheckText
from ablate.report.spec.fields import EventSpec, Threshold


def describe(event: EventSpec, metric: str) -> str:
    """``train/loss ≥ 2.30259 or the run diverged (status diverged, or train/loss NaN/inf)``: what
    counts as the event, as the report prints it."""
    parts = []
    for sign, value in (("≥", event.above), ("≤", event.below)):
        if value is not None:
            parts.append(f"{metric} {sign} " + (Threshold(value, chance=True).text if event.chance else stats.fmt(value, 6)))
    if event.diverged:
        parts.append("the run diverged" + (f" (status diverged, or {metric} NaN/inf)" if metric else " (status diverged)"))
    return " or ".join(parts)


class EventText(CheckText):
    """A check with ``event:``: counts per side and Fisher's test."""

    @property
    def metric_label(self) -> str:
        name = f"log10({self.spec.metric})" if self.spec.transform == "log10" and self.spec.metric else self.spec.metric
        return describe(self.spec.event, name)

    @property
    def test_label(self) -> str:
        return "event count (Fisher's exact test, one-sided)"

    def n(self, side: str) -> int:
        return self.c.estimate.n[side] if self.c.estimate is not None else 0

    def diverged_policy(self) -> str:
        return "a diverged run is the event" if self.spec.event.diverged else CheckText.diverged_policy(self)

    def n_text(self) -> str:
        return f"{self.n('treatment')} vs {self.n('baseline')} runs"

    def seeds_phrase(self) -> str:
        return self.n_text()

    @property
    def estimated(self) -> bool:
        return self.c.estimate is not None and all(self.c.estimate.n.values())

    @property
    def p_for_direction(self) -> str:
        return "more often" if self.spec.goal != "min" else "less often"

    def _diff(self) -> float:
        e = self.c.estimate
        d = e.fraction("treatment") - e.fraction("baseline")
        return -d if self.spec.goal == "min" else d

    def observed(self) -> float:
        return abs(self._diff()) if self.c.estimate is not None else math.nan

    def table_side(self, side: str) -> tuple[str, str] | None:
        if self.c.estimate is None:
            return None
        label = self.treatment_label if side == "treatment" else self.baseline_label
        return label, f": {self.c.estimate.k[side]}/{self.c.estimate.n[side]} runs with the event"

    def diff_text(self) -> str:
        if not self.estimated:
            return "—"
        return f"{stats.fmt(self._diff())} (fractions)"

    def evidence_parts(self, e) -> list[str]:
        """``optimizer.lr ∈ {0.3, 1, 3} 7/12 runs vs optimizer.lr ∈ {0.001, 0.01} 0/12 with the event;
        event: train/loss ≥ 2.30259 or the run diverged (...); difference of fractions (treatment −
        baseline) 0.583; Fisher's exact test, one-sided p=0.0026 (the treatment more often), opposite
        direction p=1``."""
        parts = [f"{self.treatment_label} {e.k['treatment']}/{e.n['treatment']} runs vs {self.baseline_label} "
                 f"{e.k['baseline']}/{e.n['baseline']} with the event", f"event: {self.metric_label}"]
        one_for, one_against = (e.p_less, e.p_greater) if self.spec.goal == "min" else (e.p_greater, e.p_less)
        if self.estimated:
            parts += [f"difference of fractions ({self.diff_label}) {stats.fmt(self._diff())}",
                      f"Fisher's exact test, one-sided p={stats.fmt(one_for, 2)} (the treatment "
                      f"{self.p_for_direction}), opposite direction p={stats.fmt(one_against, 2)}, "
                      f"each decided at α/2={self.c.alpha / 2:.3g}"]
        return parts

    def setup(self) -> str:
        higher = "lower" if self.spec.goal == "min" else "higher"
        return (f"the fraction of runs where {self.metric_label}: {self.treatment_label} vs "
                f"{self.baseline_label}{self.where_text()}, claimed {higher} for the treatment; each run counts once")

    def power_text(self) -> str:
        e = self.c.estimate
        if not self.estimated:
            return "n/a for event checks (Fisher's exact test), and no runs to count on a side"
        text = (f"n/a for event checks (Fisher's exact test); the smallest one-sided p {self.n_text()} can reach "
                f"(every run of one side with the event, none of the other's) is {stats.fmt(e.min_p, 2)}")
        if e.min_p >= self.c.alpha / 2:
            text += f", not below α/2={self.c.alpha / 2:.3g}: this check cannot decide with these runs"
        return text

    def null_text(self) -> str | None:
        text = super().null_text()
        if text and self.c.estimate.min_p >= self.c.alpha / 2:
            text += f"; {self.n_text()} cannot reach a one-sided p < {self.c.alpha / 2:.3g} at all"
        return text

    def robustness_text(self) -> str:
        """``the one-sided p=0.0023 clears α/2=0.025 by 0.45 (normal quantiles 2.84 against 1.96: the room an
        interval with this p would have, in half-widths; borderline below 0.25); 2 runs would have to change
        outcome (event or not) to undo it; the verdict survives leaving out any one run of either side``:
        the event check's room, flips and one run out (:mod:`ablate.report.judge.events`), with the
        borderline mark."""
        c, e = self.c, self.c.estimate
        if e is None or not self.estimated:
            return "n/a"
        one_for, one_against = (e.p_less, e.p_greater) if self.spec.goal == "min" else (e.p_greater, e.p_less)
        p = one_against if c.verdict == stats.NOT_SUPPORTED else one_for
        level = c.alpha / 2
        quantiles = f"normal quantiles {stats.fmt(st.norm.isf(p), 3)} against {stats.fmt(st.norm.isf(level), 3)}"
        parts = []
        if c.room == c.room and c.verdict in robust.DECIDED:  # not NaN
            parts.append(f"the one-sided p={stats.fmt(p, 2)} clears α/2={level:.3g} by {stats.fmt(c.room, 2)} "
                         f"({quantiles}: the room an interval with this p would have, in half-widths; borderline "
                         f"below {robust.BORDERLINE_ROOM:g})")
        elif c.room == c.room:
            parts.append(f"the one-sided p for the claim, {stats.fmt(p, 2)}, falls {stats.fmt(-c.room, 2)} short of "
                         f"α/2={level:.3g} ({quantiles}, in half-widths)")
        if e.flips is not None and e.flips > 1:
            parts.append(f"{e.flips} runs would have to change outcome (event or not) to undo it")
        if e.flips == 1:
            parts.append("changing one run's outcome undoes the verdict")
        elif c.one_seed_out is False:
            parts.append("leaving out one run undoes the verdict")
        elif c.one_seed_out:
            parts.append("the verdict survives leaving out any one run of either side")
        text = "; ".join(parts) or "n/a"
        return f"borderline: {text}" if c.borderline else text

    def look_text(self) -> str:
        e = self.c.estimate
        counts = (f"{e.k['treatment']}/{e.n['treatment']} vs {e.k['baseline']}/{e.n['baseline']} runs with the event"
                  if e is not None else "no counts")
        p = f", p for {stats.fmt(self.c.p_support, 2)}" if self.c.p_support == self.c.p_support else ""
        return f"{counts}, α={self.c.alpha:.3g}{p}"
