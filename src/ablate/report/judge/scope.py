"""What a check reads at a look: its where-filter resolved, each side's runs, and the value each
run counts with (``on_diverged``).

Diverged runs (``status: diverged``) are left out, or with ``on_diverged`` scored as the worst
finite value of the check's ok runs (``worst``) or as chance (``chance``: 1/classes for accuracy,
ln(classes) for loss); failed runs are always left out. Every one is counted per group, in the
look's :class:`Work`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ablate.report.judge.sequential import Look
from ablate.report.records.summary import fmt
from ablate.report.records.values import canonical, fmt_level, levels, matching, metric_value, record_cell
from ablate.report.spec.claim import CheckSpec
from ablate.report.spec.levels import level_label

SIDES = ("treatment", "baseline")


@dataclass
class Work:
    """What a look gathers while it reads runs, besides its numbers: shown with the check's result."""

    notes: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # group -> diverged/failed/missing/censored
    run_ids: dict[str, list[str]] = field(default_factory=dict)      # group -> run ids compared
    tuned: dict[str, Any] = field(default_factory=dict)              # tune: side -> chosen level
    spread_grid: list[Any] = field(default_factory=list)             # spread sd: the levels both sides ran
    side_grids: dict[str, list[Any]] = field(default_factory=dict)   # spread width: each side's own grid

    def count(self, name: str, counts: dict[str, int], diverged: str | None, metric: str, transform: str | None) -> None:
        """Record a group's runs left out or scored, and say so in the notes: ``diverged`` is how its
        diverged runs were treated (None: they were the event, which the counts already say)."""
        self.counts[name] = dict(counts)
        if counts.get("diverged") and diverged is not None:
            self.notes.append(f"{name}: {counts['diverged']} diverged run(s) {diverged}")
        if counts.get("failed"):
            self.notes.append(f"{name}: {counts['failed']} failed run(s) left out")
        if counts.get("missing"):
            what = "a positive finite" if transform == "log10" else "a finite"
            self.notes.append(f"{name}: {counts['missing']} ok run(s) without {what} {metric} left out")


def pairs(groups: dict[str, list[dict]], seeds: tuple[int, ...] | None) -> set:
    """The (cell, seed) pairs a look reads: every cell of ``groups`` at each of ``seeds``."""
    return {(record_cell(r), s) for rows in groups.values() for r in rows for s in (seeds or ())}


@dataclass
class Scope:
    """The rows a check reads at any look: its where-filter resolved, each side's runs (any status)."""

    where: dict[str, Any] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)  # every run the where-filter keeps
    sides: dict[str, list[dict]] = field(default_factory=dict)
    problem: str | None = None  # why it cannot be judged at all
    notes: list[str] = field(default_factory=list)


def scope_of(records: Sequence[dict[str, Any]], spec: CheckSpec) -> Scope:
    """Resolve ``where`` (``min``/``max`` among the ok runs' numeric levels) and split the sides."""
    scope = Scope()
    if spec.problems:
        scope.problem = "; ".join(spec.problems)
        return scope
    rows = list(records)
    ok = [r for r in rows if r.get("status") == "ok"]
    for key, wanted in spec.where.items():
        if isinstance(wanted, str) and wanted.strip().lower() in ("min", "max"):
            numeric = [v for v in levels(ok, key) if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if not numeric:
                scope.problem = f"where {key}: {wanted} needs numeric levels of {key} among ok runs; found none"
                return scope
            level = min(numeric) if wanted.strip().lower() == "min" else max(numeric)
        else:
            level = canonical(wanted)
        scope.where[key] = level
        rows = matching(rows, key, level)
        ok = matching(ok, key, level)
    scope.rows = rows
    for side, level in zip(SIDES, (spec.treatment, spec.baseline)):
        scope.sides[side] = matching(rows, spec.factor, level)
    return scope


def seed_of(record: dict) -> Any:
    return canonical(record.get("seed"))


def union(look: Look) -> tuple[int, ...] | None:
    if look.select is None or look.judge is None:
        return None
    return tuple(sorted(set(look.select) | set(look.judge)))


def at_seeds(rows: Sequence[dict], seeds: tuple[int, ...] | None) -> list[dict]:
    if seeds is None:
        return list(rows)
    wanted = set(seeds)
    return [r for r in rows if seed_of(r) in wanted]


def transformed(rows: Sequence[dict], metric: str, transform: str | None) -> np.ndarray:
    values = np.array([metric_value(r, metric) for r in rows], dtype=float)
    if transform == "log10":
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)
    return values


def counted_runs(rows: Sequence[dict], values: Sequence[float], counts: dict[str, int]):
    """The runs a check can count (ok and diverged), each as ``(record, value, diverged)``; failed runs
    are left out. Both are tallied in ``counts`` (``failed``, ``diverged``)."""
    for r, v in zip(rows, values):
        status = r.get("status")
        if status == "failed":
            counts["failed"] += 1
            continue
        diverged = status == "diverged"
        counts["diverged"] += diverged
        yield r, v, diverged


@dataclass
class Scored:
    """The value each run of a side counts with, after ``on_diverged``; NaN = left out."""

    rows: list[dict]
    values: np.ndarray
    counts: dict[str, int]  # diverged (scored or left out), failed, missing (ok without a finite value)


class Scorer:
    """Scores runs on one metric: ok runs by their value, diverged runs by ``on_diverged``."""

    def __init__(self, spec: CheckSpec, metric: str, direction: str | None, pool: Sequence[dict]):
        self.spec, self.metric, self.notes = spec, metric, []
        self.mode = spec.on_diverged
        ok = [r for r in pool if r.get("status") == "ok"]
        values = transformed(ok, metric, spec.transform)
        values = values[np.isfinite(values)]
        self.worst = None
        if self.mode == "worst":
            if direction is None:
                self.notes.append(f"on_diverged: worst needs to know which way {metric} is better "
                                  "(metric_goal); diverged runs are left out")
                self.mode = "exclude"
            elif values.size:
                self.worst = float(values.min() if direction == "max" else values.max())
        if self.mode == "chance":
            classes = {r.get("num_classes") for r in pool if isinstance(r.get("num_classes"), int)}
            if len(classes) != 1 or not all(c and c > 1 for c in classes):
                self.notes.append("on_diverged: chance needs the records' num_classes (absent here); diverged "
                                  "runs are left out")
                self.mode = "exclude"
            else:
                (k,) = classes
                chance = 1.0 / k if metric.endswith("acc") else math.log(k)
                self.chance = math.log10(chance) if spec.transform == "log10" else chance

    @property
    def fill(self) -> float | None:
        if self.mode == "worst":
            return self.worst
        if self.mode == "chance":
            return self.chance
        return None

    def score(self, rows: Sequence[dict]) -> Scored:
        counts = {"diverged": 0, "failed": 0, "missing": 0}
        kept, values = [], []
        raw = transformed(rows, self.metric, self.spec.transform)
        for r, v, diverged in counted_runs(rows, raw, counts):
            if diverged:
                v = self.fill if self.fill is not None else float("nan")
            elif not np.isfinite(v):
                counts["missing"] += 1
            kept.append(r)
            values.append(v)
        return Scored(kept, np.asarray(values, dtype=float), counts)


def note_pooled(work: Work, spec: CheckSpec, where: dict[str, Any], sides: dict[str, list[dict]],
                also: Sequence[str] = ()) -> None:
    """Other keys that vary inside a side (or cell) are pooled into its seeds: say so. ``also``: keys
    the check fixes besides its factor, where-filter, tuned and spread keys."""
    fixed = {spec.factor, "seed", *where, *(k for k in (spec.tune, spec.spread) if k), *also}
    pooled = set()
    for rows in sides.values():
        for key in sorted({k for r in rows for k in (r.get("overrides") or {})} - fixed):
            if len(levels(rows, key)) > 1:
                pooled.add(key)
    for key in sorted(pooled):
        lv = levels([r for rows in sides.values() for r in rows], key)
        work.notes.append(f"pooled over {key} ({', '.join(fmt_level(v) for v in lv)})")


def score_groups(work: Work, spec: CheckSpec, scorer: Scorer, groups: dict[str, list[dict]]) -> dict[str, Scored]:
    """Score each group of runs (a side, or an interaction's cell) and count, per group, the runs
    left out or scored for ``on_diverged``."""
    scored = {name: scorer.score(rows) for name, rows in groups.items()}
    for name, s in scored.items():
        scoring = spec.on_diverged != "exclude" and scorer.fill is not None
        how = f"scored as {scorer.mode} ({fmt(scorer.fill)})" if scoring else "left out"
        work.count(name, s.counts, how, spec.metric, spec.transform)
    return scored


def missing_level_reason(scope: Scope, factor: str, level: Any, extra: str = "") -> str:
    """``no ok run with model.a=maybe (levels present: false, true)``."""
    present = ", ".join(fmt_level(v) for v in levels(scope.rows, factor)) or "none"
    where = f" where {', '.join(f'{k}={fmt_level(v)}' for k, v in scope.where.items())}" if scope.where else ""
    return f"no ok run with {level_label(factor, level)}{extra}{where} (levels present: {present})"


