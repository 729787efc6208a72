"""Statistics behind a verdict: pure functions of numbers, no records, no I/O.

Every decision comes from one two-sided ``(1 - alpha)`` Welch confidence interval of the difference
Δ = claimed side − other side (oriented so that positive is the direction the claim states), from
statsmodels (``CompareMeans``: ``tconfint_diff``, ``ttest_ind``, ``ttost_ind`` with
``usevar="unequal"``), which does not assume the two sides share a variance: a residual net and a
plain net at depth 64 rarely do.

=================  ===================================  ====================================  =====================
test               supported                            not supported (contradicted)          otherwise
=================  ===================================  ====================================  =====================
superiority        lower bound > 0                      upper bound < 0                       no effect within ±δ when
                                                                                              the interval lies in
                                                                                              (−δ, δ), else
                                                                                              inconclusive
non-inferiority    lower bound > −δ                     upper bound < −δ                      inconclusive
equivalence        interval inside (−δ, δ) (TOST)       lower bound > δ or upper bound < −δ   inconclusive
=================  ===================================  ====================================  =====================

Each decision has a p-value that is below alpha exactly when the interval decides: the two-sided
Welch p against the bound (0 for superiority, −δ for non-inferiority, the nearer of ±δ for
equivalence's contradiction), and twice the TOST p for "inside (−δ, δ)". A p-value for a direction
the estimate does not point to is 1.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import stats as st

from ablate.report.records.summary import CONFIDENCE, Summary, ci_label, finite, fmt, summarize  # noqa: F401 (re-exported)
from ablate.report.spec.claim import EQUIVALENCE, NONINFERIORITY, SUPERIORITY

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive"
NO_EFFECT = "no effect within ±δ"
NOT_TESTED = "not tested"
EXPLORATORY = "exploratory"  # a tune check judged on the seeds that chose: never supported or contradicted
NOT_APPLICABLE = "not applicable"  # a clause or claim whose checks the user's model or data cannot run
NOT_INFORMATIVE = "not informative at this budget"  # a clause a failed control guards (judge/controls.py)
VERDICTS = (SUPPORTED, NOT_SUPPORTED, NO_EFFECT, INCONCLUSIVE, EXPLORATORY)
ALPHA = 0.05
POWER = 0.8  # the power the detectable effect and seeds needed are for (judge/power.py)


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------


def pooled_sd(a: Sequence[float], b: Sequence[float]) -> float:
    """``sqrt(((n1-1) s1² + (n2-1) s2²) / (n1 + n2 - 2))``; NaN with fewer than 2 values a side."""
    a, b = finite(a), finite(b)
    n1, n2 = a.size, b.size
    if n1 < 2 or n2 < 2:
        return float("nan")
    return math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))


def hedges_g(claimed: Sequence[float], other: Sequence[float]) -> float:
    """Standardised mean difference (claimed − other) / pooled sd, with Hedges' small-sample
    correction J = 1 − 3 / (4 (n1 + n2) − 9); with 3 seeds a side Cohen's d overstates by ~25%."""
    a, b = finite(claimed), finite(other)
    pooled = pooled_sd(a, b)
    if math.isnan(pooled):
        return float("nan")
    diff = float(a.mean() - b.mean())
    if pooled == 0:
        return float("nan") if diff == 0 else math.copysign(float("inf"), diff)
    return diff / pooled * (1 - 3 / (4 * (a.size + b.size) - 9))


@dataclass(frozen=True)
class Comparison:
    """Claimed side vs the other: summaries of the treatment and the baseline, the oriented
    difference Δ with its Welch interval at ``alpha``, the Welch test of Δ = 0, Hedges' g.

    ``diff`` is treatment − baseline for ``goal: max`` and baseline − treatment for ``goal: min``:
    positive always means the way the claim says. Statistics are NaN where undefined (n < 2, or
    no seed-to-seed variation).
    """

    treatment: Summary
    baseline: Summary
    diff: float
    diff_low: float
    diff_high: float
    t: float
    df: float
    p: float
    g: float
    alpha: float = ALPHA
    sd: float = float("nan")  # pooled sd of the two sides: the unit of the power figures
    _means: Any = field(default=None, repr=False, compare=False)  # statsmodels CompareMeans

    @property
    def defined(self) -> bool:
        return self._means is not None

    def p_at(self, value: float) -> float:
        """Two-sided Welch p of H0: Δ = ``value``."""
        if not self.defined:
            return float("nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(self._means.ttest_ind(alternative="two-sided", usevar="unequal", value=value)[1])

    def p_inside(self, margin: float) -> float:
        """Twice the TOST p of "Δ inside (−δ, δ)": below alpha exactly when the (1 − alpha)
        interval lies inside (−δ, δ)."""
        if not self.defined:
            return float("nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p = float(self._means.ttost_ind(-margin, margin, usevar="unequal")[0])
        return min(1.0, 2 * p)


def compare(treatment: Sequence[float], baseline: Sequence[float], goal: str = "max",
            alpha: float = ALPHA) -> Comparison:
    """Welch's interval and test (statsmodels ``CompareMeans``) of the oriented difference, and
    Hedges' g (oriented alike)."""
    from statsmodels.stats.weightstats import CompareMeans

    t, b = finite(treatment), finite(baseline)
    confidence = 1 - alpha
    st_, sb = summarize(t, confidence), summarize(b, confidence)
    claimed, other = (b, t) if goal == "min" else (t, b)
    nan = float("nan")
    diff = float(claimed.mean() - other.mean()) if t.size and b.size else nan
    if t.size < 2 or b.size < 2:
        return Comparison(st_, sb, diff, nan, nan, nan, nan, nan, nan, alpha)
    se = math.sqrt(t.var(ddof=1) / t.size + b.var(ddof=1) / b.size)
    scale = max(float(np.abs(t).max()), float(np.abs(b).max()))
    if se == 0 or se <= 1e-10 * scale:
        # No seed-to-seed variation on either side (up to float rounding): the t statistic would
        # be rounding noise divided by rounding noise, so the test (and g) is undefined.
        return Comparison(st_, sb, diff, nan, nan, nan, nan, nan, nan, alpha)
    means = CompareMeans.from_data(claimed, other)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = means.tconfint_diff(alpha=alpha, alternative="two-sided", usevar="unequal")
        tstat, p, df = means.ttest_ind(alternative="two-sided", usevar="unequal", value=0)
    return Comparison(st_, sb, diff, float(low), float(high), float(tstat), float(df), float(p),
                      hedges_g(claimed, other), alpha, pooled_sd(t, b), means)


# ---------------------------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What one interval says about one check, with the p-values that agree with it."""

    verdict: str          # SUPPORTED, NOT_SUPPORTED (before Holm), NO_EFFECT or INCONCLUSIVE
    reason: str
    p_support: float      # < alpha exactly when the interval supports the claim
    p_against: float      # < alpha exactly when the interval contradicts it
    p_inside: float = float("nan")  # twice TOST's p: < alpha exactly when it lies inside (−δ, δ)


def bound(test: str, margin: float | None) -> float:
    """The value the claim's direction is tested against: 0, or −δ for non-inferiority."""
    return -float(margin or 0.0) if test == NONINFERIORITY else 0.0


def decide(c: Comparison, test: str = SUPERIORITY, margin: float | None = None) -> Decision:
    """The decision of the interval ``[c.diff_low, c.diff_high]`` (at ``c.alpha``) for ``test``."""
    nan = float("nan")
    nt, nb = c.treatment.n, c.baseline.n
    if nt < 2 or nb < 2:
        short = [f"{side} has n={n}" for side, n in (("treatment", nt), ("baseline", nb)) if n < 2]
        return Decision(INCONCLUSIVE, f"{' and '.join(short)}; an interval needs at least 2 ok seeds on each side",
                        nan, nan)
    if not c.defined:
        return Decision(INCONCLUSIVE, "no seed-to-seed variation on either side, so the interval is undefined",
                        nan, nan)
    return decide_interval(c, test, margin)


def interval_verdict(low: float, high: float, test: str = SUPERIORITY, margin: float | None = None) -> str:
    """The verdict of the interval ``[low, high]`` for ``test`` (before Holm), by the table above."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    if test == EQUIVALENCE:
        delta = float(margin)
        if -delta < low and high < delta:
            return SUPPORTED
        return NOT_SUPPORTED if low > delta or high < -delta else INCONCLUSIVE
    b = bound(test, margin)
    if low > b:
        return SUPPORTED
    if high < b:
        return NOT_SUPPORTED
    if test == SUPERIORITY and margin is not None and -margin < low and high < margin:
        return NO_EFFECT
    return INCONCLUSIVE


def decide_interval(c: Any, test: str = SUPERIORITY, margin: float | None = None) -> Decision:
    """The decision of a defined estimate's interval for ``test``: ``c`` is a :class:`Comparison`
    or any estimate with the same interval and tests (``diff``, ``diff_low``, ``diff_high``,
    ``alpha``, ``p`` against 0, ``p_at(value)``, ``p_inside(margin)``), e.g. the interaction's."""
    nan = float("nan")
    lo, hi, d = c.diff_low, c.diff_high, c.diff
    verdict = interval_verdict(lo, hi, test, margin)
    ci = f"the {ci_label(c.alpha)} interval of Δ is [{fmt(lo)}, {fmt(hi)}]"
    if test == EQUIVALENCE:
        delta = float(margin)
        inside = c.p_inside(delta)
        p_out = c.p_at(delta if d >= 0 else -delta) if abs(d) > delta else 1.0
        band = f"(−{fmt(delta)}, {fmt(delta)})"
        reason = {SUPPORTED: f"{ci}, inside {band}", NOT_SUPPORTED: f"{ci}, wholly outside {band}"}.get(
            verdict, f"{ci}: neither inside nor wholly outside {band}")
        return Decision(verdict, reason, inside, p_out, inside)
    b = bound(test, margin)
    p = c.p_at(b) if b != 0 else c.p
    p_support, p_against = (p if d > b else 1.0), (p if d < b else 1.0)
    inside = c.p_inside(float(margin)) if margin is not None and test == SUPERIORITY else nan
    where = "0" if b == 0 else f"−δ = {fmt(b)}"
    reason = {SUPPORTED: f"{ci}, above {where}", NOT_SUPPORTED: f"{ci}, below {where}",
              NO_EFFECT: f"{ci}, inside (−{fmt(margin)}, {fmt(margin)}): any effect is smaller than the margin"}.get(
        verdict, f"{ci}, which contains {where}")
    return Decision(verdict, reason, p_support, p_against, inside)


def holm(pvalues: Sequence[float], alpha: float = ALPHA) -> list[float]:
    """Holm-adjusted p-values, as ``statsmodels.stats.multitest.multipletests(method="holm")``
    gives them (the test checks it to ~1e-15), computed here with NumPy: that function runs a full
    ``gc.collect()`` on every call, which costs ~60 ms, and the replay calls this once per round
    (the calibration, thousands of times). NaN (undefined) counts as 1."""
    if not pvalues:
        return []
    clean = np.array([1.0 if p is None or not math.isfinite(p) else min(1.0, max(0.0, float(p))) for p in pvalues])
    order = np.argsort(clean, kind="mergesort")
    stepped = np.maximum.accumulate(clean[order] * np.arange(clean.size, 0, -1))
    adjusted = np.empty_like(clean)
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(p) for p in adjusted]


def combine(verdicts: Sequence[str]) -> str:
    """Checks -> clause, clauses -> claim (intersection-union): any not supported or no effect -> not
    supported; all supported -> supported; else inconclusive (no verdicts: inconclusive). An
    exploratory check decides nothing: it keeps its clause from being supported, like an
    inconclusive one. A clause not informative at this budget (a failed control) combines like an
    inconclusive one, and labels the result: what keeps it undecided is then the budget."""
    if any(v in (NOT_SUPPORTED, NO_EFFECT) for v in verdicts):
        return NOT_SUPPORTED
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return NOT_INFORMATIVE if NOT_INFORMATIVE in verdicts else INCONCLUSIVE


claim_verdict = combine  # the name the report used before clauses
