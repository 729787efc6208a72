"""Event-count checks: does an event (a run diverging, or its metric past a threshold) happen in a
larger (``goal: max``) or smaller (``goal: min``) fraction of the treatment's runs than of the
baseline's?

Each judged run is one observation, and a side may pool several levels of the factor
(``treatment: [0.3, 1.0, 3.0]``). What counts as the event is the check's ``event``
(:class:`ablate.report.spec.fields.EventSpec`): ``diverged`` (status diverged, or the check's metric
recorded as NaN/inf), ``above: x`` / ``below: x`` (an ok run's metric, after ``transform``, at or
above / at or below x; diverged runs follow ``on_diverged``: left out, or scored as the worst ok
value or as chance and then compared with x), or both (either one). Failed runs, and ok runs
without the metric, are left out; every one is counted per side.

The counts k_t of n_t vs k_b of n_b go into Fisher's exact test on the 2×2 table
(``scipy.stats.fisher_exact``), one-sided in each direction at α/2, the rate every interval check
decides each direction at (its bound of a two-sided (1 − α) interval). **p for** is twice the
one-sided p of "the treatment has the event more often" (goal max; "less often" for goal min),
**p against** twice that of the opposite direction, so that, as for every other check, a p below α
decides. At a look judged at α: supported when p for < α; not supported when p against < α and
Holm's correction over the claim's checks keeps it (:mod:`ablate.report.judge`); else inconclusive.

Power: there is no interval and no effect size to power; the report gives instead the smallest
one-sided p the run counts could reach at all (every run of one side with the event, none of the
other's): when it is not below α, the check cannot decide at this budget whatever happens.

Robustness (:mod:`ablate.report.judge.robust` for interval checks), in the same units; borderline
only when one run undoes the decision (:func:`ablate.report.judge.robust.is_borderline` with ``count``):

* **room**: ``z(p) / z(α/2) − 1``, with ``z(p) = Φ⁻¹(1 − p)`` the normal quantile of the deciding
  one-sided p (p for when supported or undecided, p against when contradicted). An interval
  decides by ``t / t(1 − α/2) − 1`` half-widths, so this is the room an interval test with the same
  one-sided p at the same level would have: positive exactly when p < α/2, 0.25 at
  ``p = Φ(−1.25 z(α/2))`` (0.0071 at α/2 = 0.025). NaN when p = 1 (no evidence either way).
* **flips**: the fewest runs whose outcome (event or not) would have to change to undo a decision:
  the discrete counterpart of room, printed with it.
* **one seed out**: whether the decision survives leaving out any one run of either side (one with
  the event or one without; each run is one seed of its cell) **and** survives any one run's outcome
  changing (flips > 1): for a count, one run on the other side of a threshold (another machine's
  floating point) is what a last-bit difference looks like. A decision one run can undo either
  way is borderline, like an interval one seed can undo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as st

from ablate.report.judge import stats
from ablate.report.judge.scope import (
    SIDES, Scope, Scorer, Work, at_seeds, counted_runs, missing_level_reason, pairs, transformed,
)
from ablate.report.spec.claim import CheckSpec, EventSpec, metric_direction
from ablate.report.judge.sequential import Look
from ablate.report.records.values import chance_level, metric_recorded, metric_value


@dataclass(frozen=True)
class EventCounts:
    """k of n runs with the event per side, and Fisher's one-sided p-values."""

    k: dict[str, int]
    n: dict[str, int]
    p_greater: float  # H1: the treatment has the event more often
    p_less: float     # H1: less often
    min_p: float      # the smallest one-sided p these n could reach
    flips: int | None = None  # a decided look: the fewest runs whose outcome would have to change to undo it

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


# ---------------------------------------------------------------------------------------------
# Judging one look
# ---------------------------------------------------------------------------------------------


def _count(work: Work, spec: CheckSpec, side: str, rows: list[dict], scorer: Scorer | None) -> tuple[int, int]:
    """k (runs with the event) and n (runs counted) of one side; the runs counted go to run_ids,
    the ones left out to counts and notes."""
    event, metric = spec.event, spec.metric
    counts = {"diverged": 0, "failed": 0, "missing": 0}
    values = transformed(rows, metric, spec.transform) if metric else np.full(len(rows), np.nan)
    k = n = 0
    counted = work.run_ids.setdefault(side, [])
    for r, v, diverged in counted_runs(rows, values, counts):
        if diverged:
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
    if event.diverged:  # the counts line says it: they are the event
        how = None
    elif scorer is not None and scorer.fill is not None:
        how = f"scored as {scorer.mode} ({stats.fmt(scorer.fill)}), then compared with the threshold"
    else:
        how = "left out"
    work.count(side, counts, how, metric, None)
    return k, n


def one_sided(k: dict[str, int], n: dict[str, int], greater: bool) -> float:
    """Fisher's one-sided p (as ``scipy.stats.fisher_exact``'s ``alternative="greater"``/``"less"``),
    exactly from the hypergeometric law of the treatment's count: P(X ≥ k_t) or P(X ≤ k_t) with
    X ~ Hypergeometric(n_t + n_b runs, k_t + k_b events, n_t drawn). Integer arithmetic, for the
    many tables :func:`flips` tries."""
    nt, nb, kt = n["treatment"], n["baseline"], k["treatment"]
    total, events = nt + nb, k["treatment"] + k["baseline"]
    support = range(max(0, nt - (total - events)), min(events, nt) + 1)
    tail = [x for x in support if (x >= kt if greater else x <= kt)]
    mass = sum(math.comb(events, x) * math.comb(total - events, nt - x) for x in tail)
    return mass / math.comb(total, nt)


def flips(k: dict[str, int], n: dict[str, int], greater: bool, level: float) -> int | None:
    """The fewest runs whose outcome would have to change for the one-sided p of "the treatment has
    the event more often" (``greater``; else "less often") to reach ``level`` or above: each change
    moves the treatment's count against that direction or the baseline's toward it. None when the
    p is already at or above ``level``."""
    if one_sided(k, n, greater) >= level:
        return None
    step = -1 if greater else 1  # the treatment's count moves this way, the baseline's the other
    for m in range(1, n["treatment"] + n["baseline"] + 1):
        for i in range(m + 1):
            kt, kb = k["treatment"] + step * i, k["baseline"] - step * (m - i)
            if 0 <= kt <= n["treatment"] and 0 <= kb <= n["baseline"] and \
                    one_sided({"treatment": kt, "baseline": kb}, n, greater) >= level:
                return m
    return None


def room(p: float, alpha: float) -> float:
    """A one-sided p's room at level ``alpha / 2``, in the units of an interval's half-width:
    ``Φ⁻¹(1 − p) / Φ⁻¹(1 − α/2) − 1`` (the room an interval test with that one-sided p would have);
    NaN when p is 1 or undefined."""
    if not (math.isfinite(p) and 0 <= p < 1):
        return math.nan
    return float(st.norm.isf(max(p, 1e-300)) / st.norm.isf(alpha / 2) - 1)


def _one_run_out(k: dict[str, int], n: dict[str, int], goal: str, alpha: float, supported: bool) -> bool:
    """Whether the decision survives leaving out any one run of either side (one with the event,
    or one without)."""
    for side in k:
        for lost in (1, 0):  # a run with the event, a run without
            if (k[side] if lost else n[side] - k[side]) == 0 or n[side] < 2:
                continue
            e = fisher(dict(k, **{side: k[side] - lost}), dict(n, **{side: n[side] - 1}))
            one_for, one_against = (e.p_less, e.p_greater) if goal == "min" else (e.p_greater, e.p_less)
            if not ((one_for if supported else one_against) < alpha / 2):
                return False
    return True


def _at_chance(spec: CheckSpec, rows: list[dict], work: Work) -> tuple[CheckSpec, str | None]:
    """``spec`` with its event's chance-relative threshold made a number (ln k for a loss, 1/k for an
    accuracy, after the check's transform), said in the notes; or why it cannot be."""
    chance, problem = chance_level(rows, spec.metric)
    if chance is None:
        return spec, f"the event's threshold is relative to chance, but {problem}"
    level = float(transformed([{"metrics": {"x": chance}}], "x", spec.transform)[0])
    event = replace(spec.event, chance=False,
                    above=None if spec.event.above is None else level + spec.event.above,
                    below=None if spec.event.below is None else level + spec.event.below)
    sign, value = ("≥", event.above) if event.above is not None else ("≤", event.below)
    note = (f"the event's threshold is {spec.metric} {sign} {stats.fmt(value, 6)}: chance is {stats.fmt(chance, 6)} "
            "from the runs' num_classes")
    if note not in work.notes:
        work.notes.append(note)
    return replace(spec, event=event), None


def _past(event: EventSpec, value: float) -> bool:
    if event.above is not None and value >= event.above:
        return True
    return event.below is not None and value <= event.below


def judge(scope: Scope, spec: CheckSpec, look: Look, alpha: float, work: Work) -> tuple[dict, set]:
    """The event check on the runs of ``look`` at ``alpha``, and the (cell, seed) pairs it reads:
    every cell of both sides at the look's seeds."""
    judged = {side: at_seeds(rows, look.judge) for side, rows in scope.sides.items()}
    required = pairs(scope.sides, look.judge)
    scorer = None
    if spec.event.chance:   # above/below from the task's chance level: resolved on the runs judged
        spec, problem = _at_chance(spec, [r for rows in judged.values() for r in rows], work)
        if problem:
            return dict(reason=problem), required
    threshold = spec.event.above is not None or spec.event.below is not None
    if threshold and not spec.event.diverged:
        pool = [r for rows in judged.values() for r in rows]
        scorer = Scorer(spec, spec.metric, metric_direction(spec.metric, spec.metric_goal), pool)
        work.notes += scorer.notes
    k, n = {}, {}
    for side, rows in judged.items():
        k[side], n[side] = _count(work, spec, side, rows, scorer)
    e = fisher(k, n)
    out: dict = dict(estimate=e)
    for side, level in zip(SIDES, (spec.treatment, spec.baseline)):
        if not n[side]:
            out["reason"] = missing_level_reason(scope, spec.factor, level).replace("no ok run", "no run to count", 1)
            return out, required
    one_for, one_against = (e.p_less, e.p_greater) if spec.goal == "min" else (e.p_greater, e.p_less)
    out.update(p_support=min(1.0, 2 * one_for), p_against=min(1.0, 2 * one_against))
    direction = "less often" if spec.goal == "min" else "more often"
    opposite = "more often" if spec.goal == "min" else "less often"
    half = f"α/2={alpha / 2:.3g}"
    if one_for < alpha / 2:
        out.update(verdict=stats.SUPPORTED, reason=f"one-sided Fisher p={stats.fmt(one_for, 2)} < {half}: "
                                                   f"the treatment has the event {direction}")
    elif one_against < alpha / 2:
        out.update(verdict=stats.NOT_SUPPORTED,  # stands only if Holm agrees (judge/claim.py)
                   reason=f"one-sided Fisher p={stats.fmt(one_against, 2)} < {half} the other way: the "
                          f"treatment has the event {opposite}")
    elif not any(k.values()):
        out["reason"] = "no run on either side had the event"
    else:
        out["reason"] = (f"one-sided Fisher p={stats.fmt(one_for, 2)} ≥ {half} (opposite direction "
                         f"p={stats.fmt(one_against, 2)})")
    supported = out.get("verdict") == stats.SUPPORTED
    deciding = one_against if out.get("verdict") == stats.NOT_SUPPORTED else one_for
    out["room"] = room(deciding, alpha)
    if "verdict" in out:
        greater = supported == (spec.goal != "min")  # the direction the decision points to
        out["estimate"] = replace(e, flips=flips(k, n, greater, alpha / 2))
        # one run can undo it: left out, or its outcome changed (a loss on the other side of a threshold
        # on another machine); either makes the look borderline (robust.is_borderline)
        out["one_seed_out"] = _one_run_out(k, n, spec.goal, alpha, supported) and out["estimate"].flips != 1
    return out, required
