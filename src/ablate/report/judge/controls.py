"""A claim's controls judged: does the design reach the effect its checks are about?

Each control (:mod:`ablate.report.spec.controls`, which states the schema and the rule) reads the
runs its ``where`` keeps, per level of ``each`` (one group when it has none), each group at its best
level of ``tune`` when it has one. In each group: the mean of the metric over its ok runs (diverged
runs scored by ``on_diverged``, failed runs left out) and the mean's one-sided (1 − α/2) t bound, the
bound of a two-sided (1 − α) interval, as every decision of the engine. It holds when every group's
bound clears the threshold (lower bound > ``above``, upper bound < ``below``); a group with fewer
than 2 values, or a threshold it cannot resolve, does not hold.

A failed control turns every clause it guards (that has checks) into **not informative at this
budget** (:func:`apply_controls`), whatever its checks said; the checks keep their own verdicts,
Holm's correction and the sweeper's seeds are untouched. Controls read every record the claim is
judged on (all looks' seeds).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from ablate.report.judge import stats
from ablate.report.judge.results import ClauseResult, ControlGroup, ControlResult
from ablate.report.records.values import chance_level, levels, matching, metric_value
from ablate.report.spec.controls import ControlSpec, Threshold
from ablate.report.spec.names import metric_direction


NO_RUN = "no run matches its where"


def _values(rows: Sequence[dict], spec: ControlSpec, fill: float | None) -> tuple[np.ndarray, dict[str, int], list[str]]:
    """The value each run counts with: ok runs by their metric, diverged ones by ``fill`` (None: left
    out), failed runs and ok runs without a finite value left out (counted)."""
    counts = {"diverged": 0, "failed": 0, "missing": 0}
    values, ids = [], []
    for r in rows:
        status = r.get("status")
        if status == "failed":
            counts["failed"] += 1
            continue
        if status == "diverged":
            counts["diverged"] += 1
            if fill is None:
                continue
            v = fill
        else:
            v = _transform(metric_value(r, spec.metric), spec.transform)
            if not math.isfinite(v):
                counts["missing"] += 1
                continue
        values.append(v)
        ids.append(str(r.get("run_id")))
    return np.asarray(values, dtype=float), counts, ids


def _transform(x: float, transform: str | None) -> float:
    if transform == "log10":
        return math.log10(x) if x > 0 else float("nan")
    return x


def _resolve_where(records: Sequence[dict], spec: ControlSpec) -> tuple[list[dict], dict[str, Any], str | None]:
    rows = list(records)
    resolved: dict[str, Any] = {}
    for key, wanted in spec.where.items():
        if isinstance(wanted, str) and wanted.strip().lower() in ("min", "max"):
            ok = [r for r in rows if r.get("status") == "ok"]
            numeric = [v for v in levels(ok, key) if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if not numeric:
                return [], resolved, f"where {key}: {wanted} needs numeric levels of {key} among ok runs; found none"
            wanted = min(numeric) if wanted.strip().lower() == "min" else max(numeric)
        resolved[key] = wanted
        rows = matching(rows, key, wanted)
    return rows, resolved, None


def _tuned(rows: Sequence[dict], spec: ControlSpec) -> tuple[list[dict], Any, str | None]:
    """The rows at the group's best level of ``spec.tune`` (mean of ``select_on`` over its ok runs,
    highest for a lower threshold, lowest for an upper one, unless the metric says which way is better)."""
    direction = metric_direction(str(spec.select_on)) or spec.goal
    best, best_level = None, None
    for value in levels(rows, str(spec.tune)):
        at = [r for r in matching(rows, str(spec.tune), value) if r.get("status") == "ok"]
        scores = [metric_value(r, str(spec.select_on)) for r in at]
        scores = [s for s in scores if math.isfinite(s)]
        if not scores:
            continue
        mean = float(np.mean(scores))
        if best is None or (mean > best if direction == "max" else mean < best):
            best, best_level = mean, value
    if best_level is None:
        return [], None, f"no ok run with a finite {spec.select_on} to choose {spec.tune} by"
    return matching(rows, str(spec.tune), best_level), best_level, None


def _groups(rows: Sequence[dict], keys: Sequence[str]) -> list[tuple[tuple, list[dict]]]:
    """The runs at each combination of levels of ``keys`` that some run has, in level order."""
    groups: list[tuple[tuple, list[dict]]] = [((), list(rows))]
    for key in keys:
        groups = [(combo + (v,), matching(members, key, v)) for combo, members in groups for v in levels(members, key)]
    return groups


def _resolve(threshold: Threshold | None, chance: float | None, transform: str | None) -> float | None:
    if threshold is None:
        return None
    if not threshold.chance:
        return threshold.value
    if chance is None:
        return float("nan")
    return _transform(chance, transform) + threshold.value


def judge_control(records: Sequence[dict[str, Any]], spec: ControlSpec, alpha: float = stats.ALPHA) -> ControlResult:
    """One control over ``records`` (any status): its groups' numbers and whether it holds."""
    if spec.problems:
        return ControlResult(spec, False, reason="cannot be evaluated: " + "; ".join(spec.problems))
    rows, where, problem = _resolve_where(records, spec)
    if problem:
        return ControlResult(spec, False, where=where, reason=problem)
    if not rows:
        return ControlResult(spec, False, where=where, reason=NO_RUN)
    chance, chance_problem = chance_level(rows or records, spec.metric) if (
        spec.on_diverged == "chance" or any(t is not None and t.chance for t in (spec.above, spec.below))) else (None, None)
    above, below = _resolve(spec.above, chance, spec.transform), _resolve(spec.below, chance, spec.transform)
    if any(t is not None and math.isnan(t) for t in (above, below)):
        return ControlResult(spec, False, where=where, above=above, below=below, reason=str(chance_problem))
    fill = None
    if spec.on_diverged == "chance" and chance is not None:
        fill = _transform(chance, spec.transform)
    elif spec.on_diverged == "worst":
        ok = [v for r in rows if r.get("status") == "ok"
              if math.isfinite(v := _transform(metric_value(r, spec.metric), spec.transform))]
        direction = metric_direction(spec.metric) or spec.goal
        fill = (min(ok) if direction == "max" else max(ok)) if ok else None
    groups = [(None, rows)] if spec.each is None else _groups(rows, spec.each)
    out = []
    for value, members in groups:
        tuned, problem = None, None
        if spec.tune:
            members, tuned, problem = _tuned(members, spec)
        values, counts, ids = _values(members, spec, fill)
        s = stats.summarize(values, 1 - alpha)
        holds = problem is None and s.n >= 2 and (above is None or s.ci_low > above) and (below is None or s.ci_high < below)
        if problem is None and s.n < 2:
            problem = f"{s.n} run(s) with a value: a bound needs at least 2"
        out.append(ControlGroup(value, s.n, s.mean, s.ci_low, s.ci_high,
                                holds, tuned, counts, tuple(ids), problem))
    if not out:
        return ControlResult(spec, False, where=where, above=above, below=below, chance=chance, reason=NO_RUN)
    holds = all(g.holds for g in out)
    return ControlResult(spec, holds, tuple(out), where=where, above=above, below=below, chance=chance, alpha=alpha)


def judge_controls(records: Sequence[dict[str, Any]], specs: Sequence[ControlSpec],
                   alpha: float = stats.ALPHA) -> tuple[ControlResult, ...]:
    return tuple(judge_control(records, s, alpha) for s in specs)


def apply_controls(clauses: Sequence[ClauseResult], controls: Sequence[ControlResult]) -> tuple[ClauseResult, ...]:
    """Each clause with checks that a failed control guards becomes **not informative at this budget**
    (what its checks said is kept in ``judged``); clauses without checks (not tested, not applicable)
    stay as they are."""
    out = []
    for clause in clauses:
        failed = tuple(c.spec.name for c in controls if not c.holds and c.spec.guards(clause.clause.name))
        if failed and clause.checks:
            clause = replace(clause, verdict=stats.NOT_INFORMATIVE, judged=clause.verdict, failed_controls=failed)
        out.append(clause)
    return tuple(out)
