"""One check at one look: which runs it reads, the numbers it compares, and its decision.

A check compares the seeds of a *treatment* level of a factor with those of a *baseline* level,
after an optional row filter ``where``, with one of three kinds of observation per seed:

* plain: the metric of each run;
* ``tune: key``: each side at its own best value of ``key`` (chosen on ``select_on`` over the
  selection seeds), then the metric of the runs at that value on the judging seeds;
* ``spread: key``: per seed, a statistic of the metric over the side's grid of ``key``: ``sd``
  (over the levels both sides ran) or ``width`` (the width in decades of the interval of
  log10(key) where the metric is within ``within`` of that seed's best).

Diverged runs (``status: diverged``) are left out, or with ``on_diverged`` scored as the worst
finite value of the check's ok runs (``worst``) or as chance (``chance``: 1/classes for accuracy,
ln(classes) for loss); failed runs are always left out. Every one is counted per side.

Which seeds a look reads comes from :mod:`ablate.report.sequential`; how looks combine into the
check's verdict, and checks into the claim's, from :mod:`ablate.report.judge`. Interaction and
event-count checks are judged in :mod:`ablate.report.interaction` and :mod:`ablate.report.events`,
with results that subclass :class:`CheckResult` and override how they print.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ablate.report import stats
from ablate.report.claims import EQUIVALENCE, NONINFERIORITY, SUPERIORITY, CheckSpec, metric_direction
from ablate.report.sequential import Look, seeds_text
from ablate.report.values import (
    best_level, canonical, fmt_level, get_value, levels, matching, metric_value, record_cell, same_level, sort_key,
)

SIDES = ("treatment", "baseline")
TEST_LABELS = {SUPERIORITY: "superiority", NONINFERIORITY: "non-inferiority", EQUIVALENCE: "equivalence"}


# ---------------------------------------------------------------------------------------------
# What a check reads
# ---------------------------------------------------------------------------------------------


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


def _seed_of(record: dict) -> Any:
    return canonical(record.get("seed"))


def _union(look: Look) -> tuple[int, ...] | None:
    if look.select is None or look.judge is None:
        return None
    return tuple(sorted(set(look.select) | set(look.judge)))


def at_seeds(rows: Sequence[dict], seeds: tuple[int, ...] | None) -> list[dict]:
    if seeds is None:
        return list(rows)
    wanted = set(seeds)
    return [r for r in rows if _seed_of(r) in wanted]


def transformed(rows: Sequence[dict], metric: str, transform: str | None) -> np.ndarray:
    values = np.array([metric_value(r, metric) for r in rows], dtype=float)
    if transform == "log10":
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)
    return values


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
        for r, v in zip(rows, raw):
            status = r.get("status")
            if status == "failed":
                counts["failed"] += 1
                continue
            if status == "diverged":
                counts["diverged"] += 1
                v = self.fill if self.fill is not None else float("nan")
            elif not np.isfinite(v):
                counts["missing"] += 1
            kept.append(r)
            values.append(v)
        return Scored(kept, np.asarray(values, dtype=float), counts)


# ---------------------------------------------------------------------------------------------
# The result of a check
# ---------------------------------------------------------------------------------------------


@dataclass
class LookResult:
    """One look of a check as it was judged: shown in the report's look table."""

    index: int
    n: dict[str, int]
    alpha: float
    verdict: str
    diff_low: float
    diff_high: float
    complete: bool = True
    text: str = ""  # what the look saw: ``n=3 vs 3, α=0.025, Δ [0.1, 0.3]``


def level_label(factor: str, level: Any) -> str:
    """``optimizer=adam``; a pooled side: ``optimizer.lr ∈ {0.3, 1, 3}``."""
    if isinstance(level, tuple):
        return f"{factor} ∈ {fmt_level(level)}"
    return f"{factor}={fmt_level(level)}"


@dataclass
class CheckResult:
    """The verdict on one check, with every number that went into it."""

    spec: CheckSpec
    verdict: str = stats.INCONCLUSIVE
    reason: str = ""
    comparison: stats.Comparison | None = None
    where: dict[str, Any] = field(default_factory=dict)          # key -> resolved level
    tuned: dict[str, Any] = field(default_factory=dict)          # side -> chosen level
    spread_grid: list[Any] = field(default_factory=list)         # sd: the levels both sides ran
    side_grids: dict[str, list[Any]] = field(default_factory=dict)  # width: each side's own grid
    run_ids: dict[str, list[str]] = field(default_factory=dict)  # side -> run ids compared
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # side -> diverged/failed/missing/censored
    notes: list[str] = field(default_factory=list)
    # the decision and its p-values (see ablate.report.stats.decide)
    p_support: float = float("nan")
    p_against: float = float("nan")
    p_inside: float = float("nan")
    p_holm: float = float("nan")          # Holm-adjusted over the claim's checks of min(1, looks × p_against)
    alpha: float = stats.ALPHA            # per look
    alpha_total: float = stats.ALPHA
    looks_planned: int = 1
    look: int = 0                         # the look the verdict is from
    history: list[LookResult] = field(default_factory=list)
    seeds_chose: tuple[int, ...] | None = None   # tune: the seeds that chose (None: every seed)
    seeds_judged: tuple[int, ...] | None = None  # the seeds judged on (None: every seed)
    fresh: bool = False
    detectable: float = float("nan")      # smallest |Δ| the seeds detect with 80% power at `alpha`
    seeds_needed: int | None = None       # inconclusive: seeds per side the margin (or |Δ|) needs
    budget: str = ""                      # "budget=quick (3 seeds, 10 epochs)" for nulls
    need: set = field(default_factory=set)  # (cell, seed) pairs the next look still lacks
    candidate: bool = False               # the interval contradicts; Holm over the checks decides if it stands
    CONTRADICTS = "the interval excludes the claim"  # how a candidate contradiction reads before Holm

    # -- the declared fields, for the figures and the text --------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name in ("name", "metric", "goal", "factor", "treatment", "baseline", "transform", "tune", "spread",
                    "clause", "test", "margin", "select_on", "on_diverged", "statistic", "within", "metric_goal",
                    "interaction", "event", "kind"):
            return getattr(self.spec, name)
        raise AttributeError(name)

    @property
    def where_spec(self) -> dict[str, Any]:
        return self.spec.where

    @property
    def decided(self) -> bool:
        return self.verdict != stats.INCONCLUSIVE

    @property
    def verdict_label(self) -> str:
        """The verdict as printed: ``no effect within ±0.015`` names its δ."""
        if self.verdict == stats.NO_EFFECT:
            return f"no effect within ±{stats.fmt(self.margin)}"
        return self.verdict

    @property
    def treatment_label(self) -> str:
        return level_label(self.factor, self.treatment)

    @property
    def baseline_label(self) -> str:
        return level_label(self.factor, self.baseline)

    @property
    def metric_label(self) -> str:
        name = f"log10({self.metric})" if self.transform == "log10" else self.metric
        if self.spread and self.statistic == "width":
            return f"width (decades of {self.spread}) where {name} is within {stats.fmt(self.within)} of its best"
        return f"sd of {name} over {self.spread}" if self.spread else name

    @property
    def test_label(self) -> str:
        text = TEST_LABELS.get(self.test, self.test)
        return f"{text}, δ={stats.fmt(self.margin)}" if self.margin is not None else text

    @property
    def diff_label(self) -> str:
        """What Δ is: ``treatment − baseline`` (goal max), ``baseline − treatment`` (goal min)."""
        return "baseline − treatment" if self.goal == "min" else "treatment − baseline"

    def n(self, side: str) -> int:
        c = self.comparison
        if c is None:
            return 0
        return (c.treatment if side == "treatment" else c.baseline).n

    # -- how it prints: the report's table, look line and power line (subclasses override) ----------
    def n_text(self) -> str:
        """The seeds per side: ``3 vs 3``."""
        return f"{self.n('treatment')} vs {self.n('baseline')}"

    def table_side(self, side: str) -> tuple[str, str] | None:
        """The checks table's cell of one side: its label and ``: mean ± sd (n=k)``; None: no numbers."""
        c = self.comparison
        if c is None:
            return None
        label = self.treatment_label if side == "treatment" else self.baseline_label
        s = c.treatment if side == "treatment" else c.baseline
        if s.n == 0:
            return label, ": no ok runs"
        sd = f" ± {stats.fmt(s.std, 2)}" if s.n >= 2 else ""
        return label, f": {stats.fmt(s.mean)}{sd} (n={s.n})"

    def diff_text(self) -> str:
        """The checks table's Δ cell: ``0.900 [0.88, 0.92]``, or ``—``."""
        c = self.comparison
        if c is None or not (c.treatment.n and c.baseline.n):
            return "—"
        text = stats.fmt(c.diff)
        if c.diff_low == c.diff_low:  # not NaN
            text += f" [{stats.fmt(c.diff_low)}, {stats.fmt(c.diff_high)}]"
        return text

    def interval(self) -> tuple[float, float]:
        c = self.comparison
        return (c.diff_low, c.diff_high) if c is not None else (math.nan, math.nan)

    def look_result(self, index: int, alpha: float, complete: bool) -> LookResult:
        """This result as one look of the look table."""
        lo, hi = self.interval()
        ci = f"[{stats.fmt(lo)}, {stats.fmt(hi)}]" if lo == lo else "—"
        return LookResult(index, {s: self.n(s) for s in SIDES}, alpha, self.verdict, lo, hi, complete,
                          f"n={self.n_text()}, α={alpha:.3g}, Δ {ci}")

    def power_text(self) -> str:
        text = (f"smallest |Δ| these seeds detect with 80% power at α={self.alpha:.3g}: "
                f"{'—' if self.detectable != self.detectable else stats.fmt(self.detectable, 2)} "
                f"(in {self.metric_label}'s units)")
        if self.verdict == stats.INCONCLUSIVE and self.seeds_needed:
            target = f"the margin {stats.fmt(self.margin)}" if self.margin else "the observed |Δ|"
            text += f"; {target} would need about {self.seeds_needed} seeds per side"
        return text

    @property
    def estimated(self) -> bool:
        """Whether the look had numbers to test (an inconclusive one is then a null at this budget)."""
        return self.comparison is not None and self.comparison.defined

    def seeds_phrase(self) -> str:
        nt, nb = self.n("treatment"), self.n("baseline")
        return f"{nt} seeds" if nt == nb else f"{nt} vs {nb} seeds"

    def observed(self) -> float:
        """|Δ| as measured (what an inconclusive check would need seeds for, without a margin)."""
        return abs(self.comparison.diff) if self.comparison is not None else math.nan

    def null_text(self, budget: str) -> str | None:
        """``not shown at budget=quick (3 seeds, 10 epochs; detectable effect ≥ 0.031)``: an
        inconclusive check is a null at this budget, never evidence against the claim."""
        if self.verdict != stats.INCONCLUSIVE or not self.estimated:
            return None
        at = f"at {budget.split(', ')[0]} " if budget else ""
        detail = ", ".join([self.seeds_phrase(), *budget.split(", ")[1:]])
        text = f"not shown {at}({detail}"
        text += f"; detectable effect ≥ {stats.fmt(self.detectable, 2)})" if self.detectable == self.detectable else ")"
        if self.seeds_needed:
            what = (f"the margin {stats.fmt(self.margin)}" if self.margin
                    else f"the observed |Δ|={stats.fmt(self.observed(), 2)}")
            text += f"; {what} would need about {self.seeds_needed} {self.needed_unit()}"
        return text

    def needed_unit(self) -> str:
        return "seeds per side"

    def diverged_policy(self) -> str:
        return f"on_diverged: {self.on_diverged}"

    def evidence(self) -> str:
        """The numbers and the test, e.g. ``a=true 0.100 ± 0.010 vs a=false 1.00 ± 0.02 (mean ± sd,
        n=5 each); Δ (baseline − treatment) 0.900, 95% CI [0.88, 0.92]; Welch t=90.1, df=7.1,
        p=3.1e-12; Hedges' g=51``."""
        c = self.comparison
        if c is None:
            return ""

        def side(label: str, s: stats.Summary) -> str:
            if s.n == 0:
                return f"{label} (no ok runs)"
            if s.n == 1:
                return f"{label} {stats.fmt(s.mean)}"
            return f"{label} {stats.fmt(s.mean)} ± {stats.fmt(s.std, 2)}"

        n = (f"n={c.treatment.n} each" if c.treatment.n == c.baseline.n
             else f"n={c.treatment.n} vs {c.baseline.n}")
        text = (f"{side(self.treatment_label, c.treatment)} vs {side(self.baseline_label, c.baseline)} "
                f"(mean ± sd, {n})")
        if not math.isnan(c.diff_low):
            text += (f"; Δ ({self.diff_label}) {stats.fmt(c.diff)}, {stats.ci_label(c.alpha)} CI [{stats.fmt(c.diff_low)}, "
                     f"{stats.fmt(c.diff_high)}]; Welch t={stats.fmt(c.t)}, df={stats.fmt(c.df, 2)}, "
                     f"p={stats.fmt(c.p, 2)}; Hedges' g={stats.fmt(c.g, 2)}")
        elif not math.isnan(c.diff):
            text += f"; Δ ({self.diff_label}) {stats.fmt(c.diff)}"
        return text

    def detail(self) -> str:
        """The numbers and the test, followed by the reason when the test alone did not decide."""
        evidence = self.evidence()
        if not evidence:
            return self.reason
        return f"{evidence} ({self.reason})" if self.verdict == stats.INCONCLUSIVE else evidence

    def line(self) -> str:
        """One line: ``verdict — numbers and test``."""
        return f"{self.verdict_label} — {self.detail()}"

    def where_text(self) -> str:
        """``, where model.depth=32 (max)``, or nothing."""
        if not self.where:
            return ""
        conds = []
        for key, level in self.where.items():
            wanted = self.where_spec.get(key)
            extra = f" ({wanted})" if isinstance(wanted, str) and wanted.lower() in ("min", "max") else ""
            conds.append(f"{key}={fmt_level(level)}{extra}")
        return ", where " + ", ".join(conds)

    def setup(self) -> str:
        """What was compared: metric and direction, levels, filters, tuning, seeds."""
        better = "lower" if self.goal == "min" else "higher"
        text = f"{self.metric_label} ({better} is better): {self.treatment_label} vs {self.baseline_label}"
        text += self.where_text()
        if self.spread and self.statistic == "sd":
            grid = ", ".join(fmt_level(v) for v in self.spread_grid) or "no common levels"
            text += f"; per seed, the sd over the {self.spread} grid ({grid}) that both sides ran"
        elif self.spread:
            grids = "; ".join(f"{side} {', '.join(fmt_level(v) for v in grid)}" for side, grid in self.side_grids.items())
            text += f"; per seed, over each side's own {self.spread} grid ({grids})"
        if self.tune:
            if self.tuned:
                picks = ", ".join(f"{side} at {fmt_level(v)}" for side, v in self.tuned.items())
                text += f", each side at its own best {self.tune} ({picks}, chosen on {self.select_on})"
            else:
                text += f", each side at its own best {self.tune} (chosen on {self.select_on})"
        return text

    def seeds_line(self) -> str:
        """Which seeds chose and which judged."""

        def seeds(s: tuple[int, ...] | None) -> str:
            return "every seed" if s is None else f"seeds {seeds_text(s)}"

        if not self.tune:
            return seeds(self.seeds_judged)
        if self.fresh:
            return (f"{seeds(self.seeds_chose)} chose each side's {self.tune}; fresh {seeds(self.seeds_judged)} "
                    "judged it")
        return (f"{seeds(self.seeds_chose)} chose each side's {self.tune} and {seeds(self.seeds_judged)} judged it: "
                "the same seeds choose and judge, which is optimistic for both sides (each side's best value "
                "is partly its seeds' luck)")


# ---------------------------------------------------------------------------------------------
# Judging one look
# ---------------------------------------------------------------------------------------------


def note_pooled(result: CheckResult, sides: dict[str, list[dict]], also: Sequence[str] = ()) -> None:
    """Other keys that vary inside a side (or cell) are pooled into its seeds: say so. ``also``: keys
    the check fixes besides its factor, where-filter, tuned and spread keys."""
    spec = result.spec
    fixed = {spec.factor, "seed", *result.where, *(k for k in (spec.tune, spec.spread) if k), *also}
    pooled = set()
    for rows in sides.values():
        for key in sorted({k for r in rows for k in (r.get("overrides") or {})} - fixed):
            if len(levels(rows, key)) > 1:
                pooled.add(key)
    for key in sorted(pooled):
        lv = levels([r for rows in sides.values() for r in rows], key)
        result.notes.append(f"pooled over {key} ({', '.join(fmt_level(v) for v in lv)})")


def _choose(result: CheckResult, scope: Scope, look: Look) -> tuple[dict[str, list[dict]], set]:
    """Tune checks: each side at its best ``tune`` value on ``select_on`` over the selection seeds.
    Returns each side's runs at that value (every seed) and the (cell, seed) pairs selection needs."""
    spec = result.spec
    pool = [r for rows in scope.sides.values() for r in at_seeds(rows, look.select)]
    direction = metric_direction(spec.select_on, None) or spec.goal
    scorer = Scorer(spec, spec.select_on, direction, pool)
    result.notes += [f"selection: {n}" for n in scorer.notes]
    chosen: dict[str, list[dict]] = {}
    required = set()
    for side, rows in scope.sides.items():
        selecting = at_seeds(rows, look.select)
        required |= {(record_cell(r), s) for r in rows for s in (look.select or ())}
        best, _ = best_level([r for r in selecting if r.get("status") != "failed"], spec.tune,
                             lambda at: scorer.score(at).values, direction)
        if best is None:
            chosen[side] = []
            continue
        result.tuned[side] = best
        chosen[side] = matching(rows, spec.tune, best)
    return chosen, required


def _per_seed(scored: Scored, key: str) -> dict[Any, dict[Any, float]]:
    """seed -> level of ``key`` -> mean value (finite values only)."""
    table: dict[Any, dict[Any, list[float]]] = {}
    for r, v in zip(scored.rows, scored.values):
        if np.isfinite(v):
            table.setdefault(_seed_of(r), {}).setdefault(get_value(r, key), []).append(float(v))
    return {seed: {lv: float(np.mean(vs)) for lv, vs in by.items()} for seed, by in table.items()}


def _sd_spread(result: CheckResult, scored: dict[str, Scored]) -> dict[str, np.ndarray]:
    """Per seed, the sd of the metric over the levels of ``spread`` that both sides have: a grid
    point one side lacks (left out: failed, or diverged with ``exclude``) would otherwise shrink
    that side's spread and reward the failure. Left-out levels are noted."""
    key = result.spec.spread
    per_side = {side: _per_seed(s, key) for side, s in scored.items()}
    present = {side: {lv for by in seeds.values() for lv in by} for side, seeds in per_side.items()}
    all_levels = levels([r for s in scored.values() for r in s.rows], key)
    common = [lv for lv in all_levels if all(any(same_level(lv, p) for p in present[s]) for s in scored)]
    result.spread_grid = common
    for lv in all_levels:
        if lv not in common:
            missing = [s for s in scored if not any(same_level(lv, p) for p in present[s])]
            result.notes.append(f"{key}={fmt_level(lv)} left out of the spread: no run to count for "
                                f"{' and '.join(missing)}")
    values: dict[str, np.ndarray] = {}
    for side, seeds in per_side.items():
        spreads = []
        for seed in sorted(seeds, key=sort_key):
            vals = [v for lv, v in seeds[seed].items() if any(same_level(lv, c) for c in common)]
            if len(vals) >= 2:
                spreads.append(float(np.std(vals, ddof=1)))
            else:
                result.notes.append(f"{side} seed {fmt_level(seed)}: fewer than 2 grid values, no spread")
        values[side] = np.asarray(spreads, dtype=float)
        result.run_ids[side] = [str(r.get("run_id")) for r, v in zip(scored[side].rows, scored[side].values)
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


def _width_spread(result: CheckResult, scored: dict[str, Scored]) -> dict[str, np.ndarray]:
    """Per seed, the width in decades of the interval of log10(``spread``) where the metric is
    within ``within`` of that seed's best, on each side's own grid (no common levels needed)."""
    spec = result.spec
    key, direction = spec.spread, metric_direction(spec.metric, spec.metric_goal)
    values: dict[str, np.ndarray] = {}
    for side, s in scored.items():
        per_seed = _per_seed(s, key)
        grid = levels(s.rows, key)
        result.side_grids[side] = grid
        widths, censored = [], 0
        for seed in sorted(per_seed, key=sort_key):
            points = [(lv, v) for lv, v in per_seed[seed].items()
                      if isinstance(lv, (int, float)) and not isinstance(lv, bool) and lv > 0]
            if len(points) < 2:
                result.notes.append(f"{side} seed {fmt_level(seed)}: fewer than 2 positive {key} values, no width")
                continue
            width, cut = interval_width([math.log10(lv) for lv, _ in points], [v for _, v in points],
                                        float(spec.within), direction or "max")
            widths.append(width)
            censored += cut
        result.counts.setdefault(side, {})["censored"] = censored
        values[side] = np.asarray(widths, dtype=float)
        result.run_ids[side] = [str(r.get("run_id")) for r, v in zip(s.rows, s.values) if np.isfinite(v)]
    if any(c.get("censored") for c in result.counts.values()):
        counts = ", ".join(f"{side} {c.get('censored', 0)} of {len(values[side])}" for side, c in result.counts.items())
        result.notes.append(f"censored widths (the interval reaches the end of the {key} grid, so the width is a "
                            f"lower bound): {counts}")
    return values


def score_groups(result: CheckResult, scorer: Scorer, groups: dict[str, list[dict]]) -> dict[str, Scored]:
    """Score each group of runs (a side, or an interaction's cell) and count, per group, the runs
    left out or scored for ``on_diverged``, in ``result.counts`` and its notes."""
    spec = result.spec
    scored = {name: scorer.score(rows) for name, rows in groups.items()}
    for name, s in scored.items():
        result.counts[name] = dict(s.counts)
        if spec.on_diverged != "exclude" and s.counts["diverged"] and scorer.fill is not None:
            result.notes.append(f"{name}: {s.counts['diverged']} diverged run(s) scored as {scorer.mode} "
                                f"({stats.fmt(scorer.fill)})")
        elif s.counts["diverged"]:
            result.notes.append(f"{name}: {s.counts['diverged']} diverged run(s) left out")
        if s.counts["failed"]:
            result.notes.append(f"{name}: {s.counts['failed']} failed run(s) left out")
        if s.counts["missing"]:
            what = "a positive finite" if spec.transform == "log10" else "a finite"
            result.notes.append(f"{name}: {s.counts['missing']} ok run(s) without {what} {spec.metric} left out")
    return scored


def missing_level_reason(scope: Scope, factor: str, level: Any, extra: str = "") -> str:
    """``no ok run with model.a=maybe (levels present: false, true)``."""
    present = ", ".join(fmt_level(v) for v in levels(scope.rows, factor)) or "none"
    where = f" where {', '.join(f'{k}={fmt_level(v)}' for k, v in scope.where.items())}" if scope.where else ""
    return f"no ok run with {level_label(factor, level)}{extra}{where} (levels present: {present})"


def judge_look(scope: Scope, spec: CheckSpec, look: Look, alpha: float) -> tuple[CheckResult, set]:
    """The check judged on the seeds of ``look`` at ``alpha``, and the (cell, seed) pairs that look
    reads (so the caller can tell whether every one of them has a record)."""
    result = CheckResult(spec=spec, alpha=alpha, look=look.index, where=dict(scope.where),
                         seeds_chose=look.select if spec.tune else None, seeds_judged=look.judge)
    result.notes += scope.notes
    if scope.problem:
        result.reason = scope.problem
        return result, set()
    required: set = set()
    sides = scope.sides
    if spec.tune:
        sides, required = _choose(result, scope, look)
    judged = {side: at_seeds(rows, look.judge) for side, rows in sides.items()}
    required |= {(record_cell(r), s) for rows in sides.values() for r in rows for s in (look.judge or ())}

    direction = metric_direction(spec.metric, spec.metric_goal) if spec.spread else spec.goal
    # "worst" is the worst value among the check's ok runs at this look's seeds: for a tune check
    # every value of the tuned key, not only the chosen ones
    pool = [r for rows in scope.sides.values() for r in at_seeds(rows, _union(look))] if spec.tune else \
        [r for rows in judged.values() for r in rows]
    scorer = Scorer(spec, spec.metric, direction, pool)
    result.notes += scorer.notes
    scored = score_groups(result, scorer, judged)

    if spec.spread:
        values = (_width_spread if spec.statistic == "width" else _sd_spread)(result, scored)
    else:
        values = {}
        for side, s in scored.items():
            values[side] = s.values[np.isfinite(s.values)]
            result.run_ids[side] = [str(r.get("run_id")) for r, v in zip(s.rows, s.values) if np.isfinite(v)]
    note_pooled(result, judged)

    c = stats.compare(values["treatment"], values["baseline"], spec.goal, alpha)
    result.comparison = c
    decision = stats.decide(c, spec.test, spec.margin)
    result.verdict, result.reason = decision.verdict, decision.reason
    result.p_support, result.p_against, result.p_inside = decision.p_support, decision.p_against, decision.p_inside
    if result.verdict == stats.NOT_SUPPORTED:  # stands only if Holm's correction agrees (judge.py)
        result.candidate = True
    result.detectable = stats.detectable_effect(c.treatment.n, c.baseline.n, c.sd, alpha)
    target = spec.margin if spec.margin else abs(c.diff) if math.isfinite(c.diff) else float("nan")
    result.seeds_needed = stats.seeds_needed(target, c.sd, alpha)
    for side, level in zip(SIDES, (spec.treatment, spec.baseline)):
        if not values[side].size:
            result.reason = missing_level_reason(scope, spec.factor, level)
            break
    return result, required
