"""Statistics and verdicts: pure functions of run records, no I/O.

A claim holds one or more *checks*. Each check compares the seeds of a *treatment* level of a factor
with the seeds of a *baseline* level (after an optional row filter ``where`` and an optional
per-side tuning of a hyper-parameter ``tune``) with Welch's t-test, which does not assume the two
sides share a variance: a residual net and a plain net at depth 64 rarely do.

Verdicts:

* ``supported``: p < alpha and the mean difference points the way the claim says;
* ``not supported``: p < alpha and it points the other way;
* ``inconclusive``: anything else: the difference is within seed noise, fewer than two ok seeds on
  a side, or the check cannot be evaluated (the reason is always given).

A claim is supported when every check is, not supported when any check is not, else inconclusive.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import stats as st

from ablate.report.values import (
    canonical, fmt_level, get_value, levels, matching, metric_value, same_level, sort_key,
)

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)
ALPHA = 0.05
CONFIDENCE = 0.95

_GOALS = {"min": "min", "minimize": "min", "lower": "min", "max": "max", "maximize": "max", "higher": "max"}
_TRANSFORMS = {None: None, "": None, "none": None, "log10": "log10", "log": "log10"}


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------


def fmt(x: float | None, sig: int = 3) -> str:
    """``sig`` significant digits, plain notation for everyday magnitudes, scientific otherwise."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    a = abs(x)
    if a == 0:
        return "0"
    if 1e-3 <= a < 1e5:
        decimals = max(0, sig - 1 - math.floor(math.log10(a)))
        return f"{x:.{decimals}f}"
    return f"{x:.{sig - 1}e}"


def _finite(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values if v is not None], dtype=float)
    return arr[np.isfinite(arr)]


@dataclass(frozen=True)
class Summary:
    """Mean of ``n`` finite values with the t-distribution confidence interval of the mean."""

    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); NaN when n < 2
    sem: float
    ci_low: float
    ci_high: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def t_quantile(confidence: float, df: float) -> float:
    """The two-sided critical value t_{(1+c)/2, df}."""
    return float(st.t.ppf((1 + confidence) / 2, df))


def summarize(values: Iterable[float], confidence: float = CONFIDENCE) -> Summary:
    """``mean ± t_{(1+c)/2, n-1} * s / sqrt(n)``; NaN/inf values are dropped first."""
    arr = _finite(values)
    n = int(arr.size)
    nan = float("nan")
    if n == 0:
        return Summary(0, nan, nan, nan, nan, nan)
    mean = float(arr.mean())
    if n == 1:
        return Summary(1, mean, nan, nan, nan, nan)
    std = float(arr.std(ddof=1))
    sem = std / math.sqrt(n)
    half = t_quantile(confidence, n - 1) * sem
    return Summary(n, mean, std, sem, mean - half, mean + half)


def hedges_g(treatment: Sequence[float], baseline: Sequence[float]) -> float:
    """Standardised mean difference (treatment − baseline) / pooled sd, with Hedges' small-sample
    correction J = 1 − 3 / (4 (n1 + n2) − 9); with 3 seeds a side Cohen's d overstates by ~25%."""
    a, b = _finite(treatment), _finite(baseline)
    n1, n2 = a.size, b.size
    if n1 < 2 or n2 < 2:
        return float("nan")
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    diff = float(a.mean() - b.mean())
    if pooled == 0:
        return float("nan") if diff == 0 else math.copysign(float("inf"), diff)
    return diff / pooled * (1 - 3 / (4 * (n1 + n2) - 9))


@dataclass(frozen=True)
class Comparison:
    """Treatment vs baseline: summaries, mean difference with its Welch CI, t-test, effect size."""

    treatment: Summary
    baseline: Summary
    diff: float  # mean(treatment) − mean(baseline)
    diff_low: float
    diff_high: float
    t: float
    df: float
    p: float
    g: float


def compare(treatment: Sequence[float], baseline: Sequence[float], confidence: float = CONFIDENCE) -> Comparison:
    """Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``), the Welch–Satterthwaite CI of
    the mean difference, and Hedges' g. Statistics are NaN where they are undefined (n < 2)."""
    a, b = _finite(treatment), _finite(baseline)
    sa, sb = summarize(a, confidence), summarize(b, confidence)
    nan = float("nan")
    diff = sa.mean - sb.mean if a.size and b.size else nan
    if a.size < 2 or b.size < 2:
        return Comparison(sa, sb, diff, nan, nan, nan, nan, nan, nan)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()))
    if se <= 1e-10 * scale or se == 0:
        # No seed-to-seed variation on either side (up to float rounding): the t statistic would
        # be rounding noise divided by rounding noise, so the test (and g) is undefined.
        return Comparison(sa, sb, diff, nan, nan, nan, nan, nan, nan)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = t_quantile(confidence, df) * se
    with warnings.catch_warnings():  # near-identical seeds: scipy's precision warning, not ours
        warnings.simplefilter("ignore", RuntimeWarning)
        result = st.ttest_ind(a, b, equal_var=False)
    return Comparison(sa, sb, diff, diff - half, diff + half, float(result.statistic), float(df),
                      float(result.pvalue), hedges_g(a, b))


def decide(comparison: Comparison, goal: str, alpha: float = ALPHA) -> tuple[str, str]:
    """``(verdict, why)`` for a comparison under a claimed direction (``goal`` min or max)."""
    goal = _GOALS[goal]
    nt, nb = comparison.treatment.n, comparison.baseline.n
    if nt < 2 or nb < 2:
        short = [f"{side} has n={n}" for side, n in (("treatment", nt), ("baseline", nb)) if n < 2]
        return INCONCLUSIVE, f"{' and '.join(short)}; a t-test needs at least 2 ok seeds on each side"
    if math.isnan(comparison.p):
        return INCONCLUSIVE, "no seed-to-seed variation on either side, so the t-test is undefined"
    if comparison.p >= alpha:
        return INCONCLUSIVE, f"p={fmt(comparison.p, 2)} ≥ {alpha:g}: the difference is within seed noise"
    claimed = -1 if goal == "min" else 1
    if np.sign(comparison.diff) == claimed:
        return SUPPORTED, f"p={fmt(comparison.p, 2)} < {alpha:g} in the claimed direction"
    return NOT_SUPPORTED, f"p={fmt(comparison.p, 2)} < {alpha:g} in the opposite direction"


def claim_verdict(verdicts: Sequence[str]) -> str:
    """All checks supported → supported; any not supported → not supported; else inconclusive."""
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if any(v == NOT_SUPPORTED for v in verdicts):
        return NOT_SUPPORTED
    return INCONCLUSIVE


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


@dataclass
class CheckResult:
    """The verdict on one check, with every number that went into it."""

    name: str
    metric: str
    goal: str
    factor: str
    treatment: Any
    baseline: Any
    verdict: str
    reason: str
    comparison: Comparison | None = None
    transform: str | None = None
    where: dict[str, Any] = field(default_factory=dict)  # key -> resolved level
    where_spec: dict[str, Any] = field(default_factory=dict)  # key -> as written (min/max/literal)
    tune: str | None = None
    tuned: dict[str, Any] = field(default_factory=dict)  # "treatment"/"baseline" -> chosen level
    spread: str | None = None  # compare each seed's spread of the metric over this key's grid
    spread_grid: list[Any] = field(default_factory=list)  # the levels the spread is taken over
    run_ids: dict[str, list[str]] = field(default_factory=dict)  # side -> run ids compared
    notes: list[str] = field(default_factory=list)

    @property
    def treatment_label(self) -> str:
        return f"{self.factor}={fmt_level(self.treatment)}"

    @property
    def baseline_label(self) -> str:
        return f"{self.factor}={fmt_level(self.baseline)}"

    @property
    def metric_label(self) -> str:
        name = f"log10({self.metric})" if self.transform == "log10" else self.metric
        return f"sd of {name} over {self.spread}" if self.spread else name

    def evidence(self) -> str:
        """The numbers and the test, e.g. ``a=true 0.100 ± 0.010 vs a=false 1.00 ± 0.02 (mean ± sd,
        n=5 each); difference −0.900, 95% CI [−0.92, −0.88]; Welch t=−90.1, df=7.1, p=3.1e-12;
        Hedges' g=−51``."""
        c = self.comparison
        if c is None:
            return ""

        def side(label: str, s: Summary) -> str:
            if s.n == 0:
                return f"{label} (no ok runs)"
            if s.n == 1:
                return f"{label} {fmt(s.mean)}"
            return f"{label} {fmt(s.mean)} ± {fmt(s.std, 2)}"

        n = (f"n={c.treatment.n} each" if c.treatment.n == c.baseline.n
             else f"n={c.treatment.n} vs {c.baseline.n}")
        text = f"{side(self.treatment_label, c.treatment)} vs {side(self.baseline_label, c.baseline)} (mean ± sd, {n})"
        if not math.isnan(c.diff_low):
            text += (f"; difference {fmt(c.diff)}, {CONFIDENCE:.0%} CI [{fmt(c.diff_low)}, {fmt(c.diff_high)}]"
                     f"; Welch t={fmt(c.t)}, df={fmt(c.df, 2)}, p={fmt(c.p, 2)}; Hedges' g={fmt(c.g, 2)}")
        elif not math.isnan(c.diff):
            text += f"; difference {fmt(c.diff)}"
        return text

    def detail(self) -> str:
        """The numbers and the test, followed by the reason when the test alone did not decide."""
        evidence = self.evidence()
        if not evidence:
            return self.reason
        return f"{evidence} ({self.reason})" if self.verdict == INCONCLUSIVE else evidence

    def line(self) -> str:
        """One line: ``verdict — numbers and test``."""
        return f"{self.verdict} — {self.detail()}"

    def setup(self) -> str:
        """What was compared: metric and direction, levels, filters, tuning."""
        better = "lower" if self.goal == "min" else "higher"
        text = (f"{self.metric_label} ({better} is better): {self.treatment_label} vs {self.baseline_label}")
        if self.where:
            conds = []
            for key, level in self.where.items():
                spec = self.where_spec.get(key)
                extra = f" ({spec})" if isinstance(spec, str) and spec.lower() in ("min", "max") else ""
                conds.append(f"{key}={fmt_level(level)}{extra}")
            text += ", where " + ", ".join(conds)
        if self.spread:
            grid = ", ".join(fmt_level(v) for v in self.spread_grid) or "no common levels"
            text += f"; per seed, the sd over the {self.spread} grid ({grid}) that both sides ran"
        if self.tune:
            if self.tuned:
                picks = ", ".join(f"{side} at {fmt_level(v)}" for side, v in self.tuned.items())
                text += f", each side at its own best {self.tune} ({picks})"
            else:
                text += f", each side at its own best {self.tune}"
        return text


def _transformed(records: Sequence[dict], metric: str, transform: str | None) -> np.ndarray:
    values = np.array([metric_value(r, metric) for r in records], dtype=float)
    if transform == "log10":
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)
    return values


def _status_counts(records: Iterable[dict]) -> str:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no runs"


def _spreads(sides: dict[str, list[dict]], result: CheckResult) -> dict[str, np.ndarray]:
    """Per seed, the standard deviation of the metric over the levels of ``result.spread``: how
    much the outcome depends on that setting (e.g. learning-rate sensitivity), one value per seed.

    Only levels where *both* sides have an ok run enter: a grid point where one side diverged would
    otherwise shrink that side's spread and reward the divergence. Left-out levels are noted.
    """
    key = result.spread
    per_side: dict[str, dict[Any, dict[Any, float]]] = {}  # side -> seed -> level -> mean value
    for side, rows in sides.items():
        table: dict[Any, dict[Any, list[float]]] = {}
        for r, v in zip(rows, _transformed(rows, result.metric, result.transform)):
            if np.isfinite(v):
                table.setdefault(r.get("seed"), {}).setdefault(get_value(r, key), []).append(float(v))
        per_side[side] = {seed: {lv: float(np.mean(vs)) for lv, vs in by_level.items()}
                          for seed, by_level in table.items()}
    present = {side: {lv for by_level in seeds.values() for lv in by_level} for side, seeds in per_side.items()}
    all_levels = levels([r for rows in sides.values() for r in rows], key)
    common = [lv for lv in all_levels if all(any(same_level(lv, p) for p in present[s]) for s in sides)]
    result.spread_grid = common
    for lv in all_levels:
        if lv not in common:
            missing = [s for s in sides if not any(same_level(lv, p) for p in present[s])]
            result.notes.append(f"{key}={fmt_level(lv)} left out of the spread: no ok run for "
                                f"{' and '.join(missing)}")
    values: dict[str, np.ndarray] = {}
    for side, seeds in per_side.items():
        spreads, ids = [], []
        for seed in sorted(seeds, key=sort_key):
            vals = [v for lv, v in seeds[seed].items() if any(same_level(lv, c) for c in common)]
            if len(vals) >= 2:
                spreads.append(float(np.std(vals, ddof=1)))
            else:
                result.notes.append(f"{side} seed {fmt_level(seed)}: fewer than 2 grid values, no spread")
        for r in sides[side]:
            if any(same_level(get_value(r, key), c) for c in common):
                ids.append(str(r.get("run_id")))
        values[side] = np.asarray(spreads, dtype=float)
        result.run_ids[side] = ids
    return values


def judge_check(records: Sequence[dict[str, Any]], check: dict[str, Any], alpha: float = ALPHA,
                confidence: float = CONFIDENCE) -> CheckResult:
    """Evaluate one check of a claim over a sweep's records (any status; only ``ok`` runs count)."""
    check = dict(check or {})
    missing = [k for k in ("metric", "goal", "factor", "treatment", "baseline") if k not in check]
    goal_text = str(check.get("goal", "")).lower()
    transform_text = check.get("transform")
    result = CheckResult(
        name=str(check.get("name") or f"{check.get('factor')}: {check.get('treatment')} vs {check.get('baseline')}"),
        metric=str(check.get("metric", "")), goal=_GOALS.get(goal_text, goal_text),
        factor=str(check.get("factor", "")), treatment=canonical(check.get("treatment")),
        baseline=canonical(check.get("baseline")), verdict=INCONCLUSIVE, reason="",
        transform=_TRANSFORMS.get(str(transform_text).lower() if transform_text is not None else None, transform_text),
        tune=str(check["tune"]) if check.get("tune") else None,
        spread=str(check["spread"]) if check.get("spread") else None,
        where_spec=dict(check.get("where") or {}),
    )
    if missing:
        result.reason = f"the check is malformed: missing {', '.join(missing)}"
        return result
    if goal_text not in _GOALS:
        result.reason = f"the check's goal is {check.get('goal')!r}; valid: min, max"
        return result
    if result.transform not in (None, "log10"):
        result.reason = f"the check's transform is {transform_text!r}; valid: log10"
        return result
    if result.tune and result.spread:
        result.reason = "the check is malformed: 'tune' and 'spread' cannot be combined"
        return result

    every = list(records)
    ok = [r for r in every if r.get("status") == "ok"]
    rows, rows_all = ok, every
    for key, spec in result.where_spec.items():
        if isinstance(spec, str) and spec.strip().lower() in ("min", "max"):
            numeric = [v for v in levels(ok, key) if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if not numeric:
                result.reason = f"where {key}: {spec} needs numeric levels of {key} among ok runs; found none"
                return result
            level = min(numeric) if spec.strip().lower() == "min" else max(numeric)
        else:
            level = canonical(spec)
        result.where[key] = level
        rows, rows_all = matching(rows, key, level), matching(rows_all, key, level)

    sides: dict[str, list[dict]] = {}
    for side, level in (("treatment", result.treatment), ("baseline", result.baseline)):
        side_rows = matching(rows, result.factor, level)
        side_all = matching(rows_all, result.factor, level)
        if len(side_all) > len(side_rows):
            result.notes.append(f"{side} {result.factor}={fmt_level(level)}: {_status_counts(side_all)}; "
                                "only ok runs are compared")
        if result.tune and side_rows:
            best, best_mean = None, None
            for value in levels(side_rows, result.tune):
                vals = _transformed(matching(side_rows, result.tune, value), result.metric, result.transform)
                vals = vals[np.isfinite(vals)]
                if not vals.size:
                    continue
                mean = float(vals.mean())
                if best_mean is None or (mean < best_mean if result.goal == "min" else mean > best_mean):
                    best, best_mean = value, mean
            if best_mean is None:
                side_rows = []
            else:
                result.tuned[side] = best
                side_rows = matching(side_rows, result.tune, best)
        sides[side] = side_rows

    values: dict[str, np.ndarray] = {}
    if result.spread:
        values = _spreads(sides, result)
    for side, side_rows in sides.items():
        if result.spread:
            continue
        vals = _transformed(side_rows, result.metric, result.transform)
        dropped = int((~np.isfinite(vals)).sum())
        if dropped:
            what = "a positive finite" if result.transform == "log10" else "a finite"
            result.notes.append(f"{side}: {dropped} ok run(s) without {what} {result.metric} left out")
        values[side] = vals[np.isfinite(vals)]
        result.run_ids[side] = [str(r.get("run_id")) for r, v in zip(side_rows, vals) if np.isfinite(v)]

    # Other keys that vary inside a side are pooled into its seeds: say so.
    fixed = {result.factor, "seed", *(result.where), *(k for k in (result.tune, result.spread) if k)}
    pooled = set()
    for side_rows in sides.values():
        for key in sorted({k for r in side_rows for k in (r.get("overrides") or {})} - fixed):
            if len(levels(side_rows, key)) > 1:
                pooled.add(key)
    for key in sorted(pooled):
        lv = levels(sides["treatment"] + sides["baseline"], key)
        result.notes.append(f"pooled over {key} ({', '.join(fmt_level(v) for v in lv)})")

    result.comparison = compare(values["treatment"], values["baseline"], confidence)
    result.verdict, result.reason = decide(result.comparison, result.goal, alpha)
    for side, level in (("treatment", result.treatment), ("baseline", result.baseline)):
        if not values[side].size:
            seen = ", ".join(fmt_level(v) for v in levels(rows_all, result.factor)) or "none"
            result.reason = (f"no ok run with {result.factor}={fmt_level(level)}"
                             + (f" where {', '.join(f'{k}={fmt_level(v)}' for k, v in result.where.items())}"
                                if result.where else "")
                             + f" (levels present: {seen})")
            break
    return result


@dataclass
class ClaimResult:
    name: str
    statement: str
    verdict: str
    reason: str
    checks: list[CheckResult]
    plot: dict[str, Any] = field(default_factory=dict)
    claim: dict[str, Any] = field(default_factory=dict)


def judge_claim(records: Sequence[dict[str, Any]], claim: dict[str, Any], alpha: float = ALPHA,
                confidence: float = CONFIDENCE) -> ClaimResult:
    """Judge every check of ``claim`` and combine them into the claim's verdict."""
    checks = [judge_check(records, c, alpha, confidence) for c in (claim.get("checks") or [])]
    verdict = claim_verdict([c.verdict for c in checks])
    if not checks:
        reason = "the claim declares no checks"
    else:
        counts = {v: sum(c.verdict == v for c in checks) for v in VERDICTS}
        reason = ", ".join(f"{n} of {len(checks)} check(s) {v}" for v, n in counts.items() if n)
    plot = claim.get("plot") if isinstance(claim.get("plot"), dict) else {}
    return ClaimResult(name=str(claim.get("name") or "claim"), statement=str(claim.get("statement") or ""),
                       verdict=verdict, reason=reason, checks=checks, plot=dict(plot or {}), claim=dict(claim))
