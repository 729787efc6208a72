"""Interaction checks: is the effect of the check's factor larger under one level of a second factor
than under another (a difference in differences)?

The four cells are the check's factor at ``treatment`` (t) or ``baseline`` (b), crossed with the
second factor at ``interaction.treatment`` (A) or ``interaction.baseline`` (B). Every ok seed of a
cell is one row ``y``; the OLS fit of ``y ~ 1 + x_f + x_g + x_f·x_g`` (``x_f`` = 1 at t, ``x_g`` = 1
at A) is saturated, so the coefficient of ``x_f·x_g`` is exactly the difference in differences of
the cell means::

    DiD = (mean[t, A] − mean[b, A]) − (mean[t, B] − mean[b, B])

Its standard error is HC3 (heteroskedasticity-consistent: each cell may vary differently, as Welch
allows for two sides), which for this design is ``sqrt(Σ_cells s²/(n − 1))``; the interval and the
p-values use the t distribution with N − 4 degrees of freedom (statsmodels
``OLS(y, X).fit(cov_type="HC3", use_t=True)``). Δ is DiD for ``goal: max`` (the effect is claimed
larger under A) and −DiD for ``goal: min``, and it is decided like any other interval
(:func:`ablate.report.stats.decide_interval`: superiority, non-inferiority, equivalence, no effect
within ±δ). Every cell needs at least 2 ok seeds.

Power: the smallest |Δ| detected with 80% probability by the two-sided t test at the look's α, from
the noncentral t distribution at the fit's HC3 standard error; an inconclusive check also says about
how many seeds per cell (equal cells, the cells' variances as measured) its margin or |Δ| needs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import optimize
from scipy import stats as st

from ablate.report.judge import stats
from ablate.report.judge.scope import Scope, Scorer, Work, at_seeds, note_pooled, pairs, score_groups
from ablate.report.spec.claim import CheckSpec, metric_direction
from ablate.report.judge.sequential import Look
from ablate.report.records.values import fmt_level, levels, matching
from ablate.report.spec.levels import level_label, where_text

CELLS = ("tA", "bA", "tB", "bB")  # (check factor t|b) × (interaction factor A|B)
_MAX_SEEDS = 10_000


@dataclass(frozen=True)
class InteractionEstimate:
    """The oriented difference in differences, its interval at ``alpha`` and its tests; the
    interface of :class:`ablate.report.stats.Comparison` that ``decide_interval`` reads."""

    cells: dict[str, stats.Summary]
    effects: dict[str, float]  # "A", "B": mean[t] − mean[b] under each level (not oriented)
    diff: float
    diff_low: float
    diff_high: float
    se: float
    t: float
    df: float
    p: float
    alpha: float
    sign: int  # +1 goal max, −1 goal min
    _fit: Any = field(default=None, repr=False, compare=False)  # statsmodels RegressionResults

    @property
    def defined(self) -> bool:
        return self._fit is not None

    def _t(self, value: float) -> float:
        """The t statistic of Δ − ``value`` (oriented), from the fit's contrast test."""
        contrast = self._fit.t_test((np.array([[0.0, 0.0, 0.0, 1.0]]), np.array([self.sign * value])))
        return self.sign * float(np.squeeze(contrast.tvalue))

    def p_at(self, value: float) -> float:
        """Two-sided p of H0: Δ = ``value``."""
        if not self.defined:
            return float("nan")
        return float(2 * st.t.sf(abs(self._t(value)), self.df))

    def p_inside(self, margin: float) -> float:
        """Twice the TOST p of "Δ inside (−δ, δ)": below alpha exactly when the interval lies inside."""
        if not self.defined:
            return float("nan")
        p_low = st.t.sf(self._t(-margin), self.df)   # H0: Δ ≤ −δ
        p_high = st.t.cdf(self._t(margin), self.df)  # H0: Δ ≥ δ
        return min(1.0, 2 * float(max(p_low, p_high)))


def estimate(values: dict[str, Sequence[float]], goal: str = "max", alpha: float = stats.ALPHA) -> InteractionEstimate:
    """OLS with an interaction term on the four cells' values (keys :data:`CELLS`), HC3 errors."""
    from statsmodels.regression.linear_model import OLS

    arrays = {k: stats.finite(values.get(k, ())) for k in CELLS}
    cells = {k: stats.summarize(v, 1 - alpha) for k, v in arrays.items()}
    sign = -1 if goal == "min" else 1
    nan = float("nan")
    means = {k: float(v.mean()) if v.size else nan for k, v in arrays.items()}
    effects = {"A": means["tA"] - means["bA"], "B": means["tB"] - means["bB"]}
    diff = sign * (effects["A"] - effects["B"])
    undefined = InteractionEstimate(cells, effects, diff, nan, nan, nan, nan, nan, nan, alpha, sign)
    if any(v.size < 2 for v in arrays.values()):
        return undefined
    y = np.concatenate([arrays[k] for k in CELLS])
    x_f = np.concatenate([np.full(arrays[k].size, float(k[0] == "t")) for k in CELLS])
    x_g = np.concatenate([np.full(arrays[k].size, float(k[1] == "A")) for k in CELLS])
    X = np.column_stack([np.ones_like(y), x_f, x_g, x_f * x_g])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = OLS(y, X).fit(cov_type="HC3", use_t=True)
    se = float(fit.bse[3])
    if not math.isfinite(se) or se <= 1e-10 * max(float(np.abs(y).max()), 1e-300):
        return undefined  # no seed-to-seed variation in any cell: the test is rounding noise
    low, high = (float(v) for v in fit.conf_int(alpha)[3])
    if sign < 0:
        low, high = -high, -low
    return InteractionEstimate(cells, effects, sign * float(fit.params[3]), low, high, se,
                               sign * float(fit.tvalues[3]), float(fit.df_resid), float(fit.pvalues[3]),
                               alpha, sign, fit)


# ---------------------------------------------------------------------------------------------
# Power
# ---------------------------------------------------------------------------------------------


def power(effect: float, se: float, df: float, alpha: float) -> float:
    """Probability that the two-sided t test at ``alpha`` rejects Δ = 0 when Δ = ``effect``."""
    crit = st.t.ppf(1 - alpha / 2, df)
    nc = abs(effect) / se
    upper, lower = float(st.nct.sf(crit, df, nc)), float(st.nct.cdf(-crit, df, nc))
    if not math.isfinite(upper):  # SciPy's noncentral t gives NaN far out in a tail
        upper = 1.0 if nc > crit else 0.0
    return upper + (lower if math.isfinite(lower) else 0.0)  # the wrong-way tail: negligible there


def detectable(se: float, df: float, alpha: float, target: float = stats.POWER) -> float:
    """The smallest |Δ| detected with probability ``target`` at this standard error."""
    if not (math.isfinite(se) and se > 0 and math.isfinite(df) and df > 0):
        return float("nan")
    high = se
    while power(high, se, df, alpha) < target:
        high *= 2
    return float(optimize.brentq(lambda d: power(d, se, df, alpha) - target, 0.0, high, xtol=se * 1e-6))


def seeds_needed(effect: float, variances: Sequence[float], alpha: float, target: float = stats.POWER) -> int | None:
    """About how many seeds per cell (all four equal, each with its measured variance) detect
    ``effect``: the HC3 variance of Δ is then Σ s²/(n − 1), with 4n − 4 degrees of freedom."""
    total = float(np.sum(variances))
    if not (math.isfinite(effect) and effect != 0 and math.isfinite(total) and total > 0):
        return None
    for n in range(2, _MAX_SEEDS):
        if power(effect, math.sqrt(total / (n - 1)), 4 * n - 4, alpha) >= target:
            return n
    return None


# ---------------------------------------------------------------------------------------------
# Judging one look
# ---------------------------------------------------------------------------------------------


def cell_label(spec: CheckSpec, cell: str) -> str:
    """``data.batch_size=32, norm=batch``: one of the four cells, as its group is named."""
    inter = spec.interaction
    level = spec.treatment if cell[0] == "t" else spec.baseline
    other = inter.treatment if cell[1] == "A" else inter.baseline
    return f"{level_label(spec.factor, level)}, {level_label(inter.factor, other)}"


def _cells(scope: Scope, spec: CheckSpec) -> dict[str, list[dict]]:
    inter = spec.interaction
    return {c: matching(scope.sides["treatment" if c[0] == "t" else "baseline"], inter.factor,
                        inter.treatment if c[1] == "A" else inter.baseline) for c in CELLS}


def judge(scope: Scope, spec: CheckSpec, look: Look, alpha: float, work: Work) -> tuple[dict, set]:
    """The interaction check on the seeds of ``look`` at ``alpha``, and the (cell, seed) pairs it
    reads: the four cells' runs at the look's seeds (what a sequential sweep runs next)."""
    cells = _cells(scope, spec)
    labels = {c: cell_label(spec, c) for c in CELLS}
    judged = {labels[c]: at_seeds(rows, look.judge) for c, rows in cells.items()}
    required = pairs(cells, look.judge)
    pool = [r for rows in judged.values() for r in rows]
    scorer = Scorer(spec, spec.metric, metric_direction(spec.metric, spec.metric_goal), pool)
    work.notes += scorer.notes
    scored = score_groups(work, spec, scorer, judged)
    values = {}
    for c in CELLS:
        s = scored[labels[c]]
        values[c] = s.values[np.isfinite(s.values)]
        work.run_ids[labels[c]] = [str(r.get("run_id")) for r, v in zip(s.rows, s.values) if np.isfinite(v)]
    note_pooled(work, spec, scope.where, judged, also=(spec.interaction.factor,))

    e = estimate(values, spec.goal, alpha)
    out: dict = dict(estimate=e)
    empty = [c for c in CELLS if not values[c].size]
    short = [c for c in CELLS if values[c].size < 2]
    if empty:
        inter = spec.interaction
        present = "; ".join(f"{key}: {', '.join(fmt_level(v) for v in levels(scope.rows, key)) or 'none'}"
                            for key in (spec.factor, inter.factor))
        out["reason"] = f"no ok run with {labels[empty[0]]}{where_text(scope.where, spec.where)} (levels present: {present})"
    elif short:
        out["reason"] = (f"{' and '.join(f'{labels[c]} has n={values[c].size}' for c in short)}; the interaction "
                         "needs at least 2 ok seeds in each of its four cells")
    elif not e.defined:
        out["reason"] = "no seed-to-seed variation in any cell, so the interval is undefined"
    else:
        decision = stats.decide_interval(e, spec.test, spec.margin)
        target = spec.margin if spec.margin else abs(e.diff)
        out.update(verdict=decision.verdict, reason=decision.reason, p_support=decision.p_support,
                   p_against=decision.p_against, p_inside=decision.p_inside,
                   detectable=detectable(e.se, e.df, alpha),
                   seeds_needed=seeds_needed(target, [e.cells[c].std ** 2 for c in CELLS], alpha))
    return out, required
