"""The estimator of plain, ``tune`` and ``spread`` checks: one value per seed a side, compared by Welch.

* plain: the metric of each run;
* ``tune: key``: each side at its own best value of ``key`` (chosen on ``select_on`` over the
  selection seeds), then the metric of the runs at that value on the judging seeds;
* ``spread: key``: per seed, a statistic of the metric over the side's grid of ``key``: ``sd``
  (over the levels both sides ran) or ``width`` (the width in decades of the interval of
  log10(key) where the metric is within ``within`` of that seed's best).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ablate.report.judge import power, robust, stats
from ablate.report.judge.scope import (
    SIDES, Scope, Scored, Scorer, Work, at_seeds, missing_level_reason, note_pooled, pairs, score_groups, seed_of,
    union,
)
from ablate.report.judge.sequential import Look
from ablate.report.records.values import best_level, fmt_level, get_value, levels, matching, same_level, sort_key
from ablate.report.spec.claim import CheckSpec, metric_direction


def _choose(work: Work, spec: CheckSpec, scope: Scope, look: Look) -> tuple[dict[str, list[dict]], set]:
    """Tune checks: each side at its best ``tune`` value on ``select_on`` over the selection seeds.
    Returns each side's runs at that value (every seed) and the (cell, seed) pairs selection needs."""
    pool = [r for rows in scope.sides.values() for r in at_seeds(rows, look.select)]
    direction = metric_direction(spec.select_on, None) or spec.goal
    scorer = Scorer(spec, spec.select_on, direction, pool)
    work.notes += [f"selection: {n}" for n in scorer.notes]
    chosen: dict[str, list[dict]] = {}
    required = set()
    for side, rows in scope.sides.items():
        selecting = at_seeds(rows, look.select)
        required |= pairs({side: rows}, look.select)
        best, _ = best_level([r for r in selecting if r.get("status") != "failed"], spec.tune,
                             lambda at: scorer.score(at).values, direction)
        if best is None:
            chosen[side] = []
            continue
        work.tuned[side] = best
        chosen[side] = matching(rows, spec.tune, best)
    return chosen, required


def _per_seed(scored: Scored, key: str) -> dict[Any, dict[Any, float]]:
    """seed -> level of ``key`` -> mean value (finite values only)."""
    table: dict[Any, dict[Any, list[float]]] = {}
    for r, v in zip(scored.rows, scored.values):
        if np.isfinite(v):
            table.setdefault(seed_of(r), {}).setdefault(get_value(r, key), []).append(float(v))
    return {seed: {lv: float(np.mean(vs)) for lv, vs in by.items()} for seed, by in table.items()}


def _sd_spread(work: Work, spec: CheckSpec, scored: dict[str, Scored]) -> dict[str, np.ndarray]:
    """Per seed, the sd of the metric over the levels of ``spread`` that both sides have: a grid
    point one side lacks (left out: failed, or diverged with ``exclude``) would otherwise shrink
    that side's spread and reward the failure. Left-out levels are noted."""
    key = spec.spread
    per_side = {side: _per_seed(s, key) for side, s in scored.items()}
    present = {side: {lv for by in seeds.values() for lv in by} for side, seeds in per_side.items()}
    all_levels = levels([r for s in scored.values() for r in s.rows], key)
    common = [lv for lv in all_levels if all(any(same_level(lv, p) for p in present[s]) for s in scored)]
    work.spread_grid = common
    for lv in all_levels:
        if lv not in common:
            missing = [s for s in scored if not any(same_level(lv, p) for p in present[s])]
            work.notes.append(f"{key}={fmt_level(lv)} left out of the spread: no run to count for "
                                f"{' and '.join(missing)}")
    values: dict[str, np.ndarray] = {}
    for side, seeds in per_side.items():
        spreads = []
        for seed in sorted(seeds, key=sort_key):
            vals = [v for lv, v in seeds[seed].items() if any(same_level(lv, c) for c in common)]
            if len(vals) >= 2:
                spreads.append(float(np.std(vals, ddof=1)))
            else:
                work.notes.append(f"{side} seed {fmt_level(seed)}: fewer than 2 grid values, no spread")
        values[side] = np.asarray(spreads, dtype=float)
        work.run_ids[side] = [str(r.get("run_id")) for r, v in zip(scored[side].rows, scored[side].values)
                                if np.isfinite(v) and any(same_level(get_value(r, key), c) for c in common)]
    return values


def interval_width(xs: Sequence[float], ys: Sequence[float], within: float, direction: str) -> tuple[float, bool]:
    """The width of the interval of ``xs`` around the best ``ys`` where ``ys`` stays within ``within``
    of the best, linearly interpolated between grid points; and whether it is censored (reaches
    the first or last point, so the true width is at least this)."""
    order = np.argsort(xs)
    x, y = np.asarray(xs, dtype=float)[order], np.asarray(ys, dtype=float)[order]
    best = int(np.argmax(y) if direction == "max" else np.argmin(y))
    threshold = y[best] - within if direction == "max" else y[best] + within

    def good(i: int) -> bool:
        return y[i] >= threshold if direction == "max" else y[i] <= threshold

    def crossing(inside: int, outside: int) -> float:
        if y[inside] == y[outside]:
            return float(x[inside])
        t = (threshold - y[outside]) / (y[inside] - y[outside])
        return float(x[outside] + t * (x[inside] - x[outside]))

    lo = best
    while lo > 0 and good(lo - 1):
        lo -= 1
    hi = best
    while hi < len(x) - 1 and good(hi + 1):
        hi += 1
    left = float(x[0]) if lo == 0 else crossing(lo, lo - 1)
    right = float(x[-1]) if hi == len(x) - 1 else crossing(hi, hi + 1)
    return right - left, lo == 0 or hi == len(x) - 1


def _width_spread(work: Work, spec: CheckSpec, scored: dict[str, Scored]) -> dict[str, np.ndarray]:
    """Per seed, the width in decades of the interval of log10(``spread``) where the metric is
    within ``within`` of that seed's best, on each side's own grid (no common levels needed)."""
    key, direction = spec.spread, metric_direction(spec.metric, spec.metric_goal)
    values: dict[str, np.ndarray] = {}
    for side, s in scored.items():
        per_seed = _per_seed(s, key)
        grid = levels(s.rows, key)
        work.side_grids[side] = grid
        widths, censored = [], 0
        for seed in sorted(per_seed, key=sort_key):
            points = [(lv, v) for lv, v in per_seed[seed].items()
                      if isinstance(lv, (int, float)) and not isinstance(lv, bool) and lv > 0]
            if len(points) < 2:
                work.notes.append(f"{side} seed {fmt_level(seed)}: fewer than 2 positive {key} values, no width")
                continue
            width, cut = interval_width([math.log10(lv) for lv, _ in points], [v for _, v in points],
                                        float(spec.within), direction or "max")
            widths.append(width)
            censored += cut
        work.counts.setdefault(side, {})["censored"] = censored
        values[side] = np.asarray(widths, dtype=float)
        work.run_ids[side] = [str(r.get("run_id")) for r, v in zip(s.rows, s.values) if np.isfinite(v)]
    if any(c.get("censored") for c in work.counts.values()):
        counts = ", ".join(f"{side} {c.get('censored', 0)} of {len(values[side])}" for side, c in work.counts.items())
        work.notes.append(f"censored widths (the interval reaches the end of the {key} grid, so the width is a "
                            f"lower bound): {counts}")
    return values


def estimate(scope: Scope, spec: CheckSpec, look: Look, alpha: float, work: Work) -> tuple[dict, set]:
    """The check on the seeds of ``look`` at ``alpha``: its numbers and decision, and the (cell, seed)
    pairs the look reads."""
    required: set = set()
    sides = scope.sides
    if spec.tune:
        sides, required = _choose(work, spec, scope, look)
    judged = {side: at_seeds(rows, look.judge) for side, rows in sides.items()}
    required |= pairs(sides, look.judge)

    direction = metric_direction(spec.metric, spec.metric_goal) if spec.spread else spec.goal
    # "worst" is the worst value among the check's ok runs at this look's seeds: for a tune check
    # every value of the tuned key, not only the chosen ones
    pool = [r for rows in scope.sides.values() for r in at_seeds(rows, union(look))] if spec.tune else \
        [r for rows in judged.values() for r in rows]
    scorer = Scorer(spec, spec.metric, direction, pool)
    work.notes += scorer.notes
    scored = score_groups(work, spec, scorer, judged)

    if spec.spread:
        values = (_width_spread if spec.statistic == "width" else _sd_spread)(work, spec, scored)
    else:
        values = {}
        for side, s in scored.items():
            values[side] = s.values[np.isfinite(s.values)]
            work.run_ids[side] = [str(r.get("run_id")) for r, v in zip(s.rows, s.values) if np.isfinite(v)]
    note_pooled(work, spec, scope.where, judged)

    c = stats.compare(values["treatment"], values["baseline"], spec.goal, alpha)
    decision = stats.decide(c, spec.test, spec.margin)
    target = spec.margin if spec.margin else abs(c.diff) if math.isfinite(c.diff) else float("nan")
    variances = [s.std ** 2 for s in (c.treatment, c.baseline)]
    ns = [c.treatment.n, c.baseline.n]
    out = dict(estimate=c, verdict=decision.verdict, reason=decision.reason, p_support=decision.p_support,
               p_against=decision.p_against, p_inside=decision.p_inside,
               detectable=power.detectable(variances, ns, alpha, spec.test),
               seeds_needed=power.seeds_needed(target, variances, power.welch(variances, ns)[1], alpha, spec.test))
    signs = {"treatment": -1.0, "baseline": 1.0} if spec.goal == "min" else {"treatment": 1.0, "baseline": -1.0}
    out.update(robust.assess(values, signs, alpha, spec.test, spec.margin, decision.verdict, c.diff_low, c.diff_high))
    for side, level in zip(SIDES, (spec.treatment, spec.baseline)):
        if not values[side].size:
            out["reason"] = missing_level_reason(scope, spec.factor, level)
            break
    return out, required
