"""Interaction checks: is the effect of the check's factor larger under one level of a second factor
than under another (a difference in differences)?

The four cells are the check's factor at ``treatment`` (t) or ``baseline`` (b), crossed with the
second factor at ``interaction.treatment`` (A) or ``interaction.baseline`` (B). Every ok seed of a
cell is one value; the estimate is the difference in differences of the cell means (the
interaction coefficient of the saturated OLS fit ``y ~ 1 + x_f + x_g + x_f·x_g``)::

    DiD = (mean[t, A] − mean[b, A]) − (mean[t, B] − mean[b, B])

Its standard error is HC3's, which on this saturated design is ``sqrt(Σ_cells s²/(n − 1))``
(heteroskedasticity-consistent: each cell may vary differently, as Welch allows for two sides), and
the interval and p-values use the t distribution with Satterthwaite's degrees of freedom
``se⁴ / Σ (s²/(n − 1))² / (n − 1)``: with one cell much noisier than the others, that cell's few
seeds set the degrees of freedom, not N − 4. Welch's ``s²/n`` with the same degrees of freedom errs
above the stated rate when one cell dominates; this one holds it (``python -m ablate.calibrate``)
(:mod:`ablate.report.judge.power`). Δ is DiD for ``goal: max`` (the effect is claimed larger under A)
and −DiD for ``goal: min``, and it is decided like any other interval
(:func:`ablate.report.judge.stats.decide_interval`: superiority, non-inferiority, equivalence, no
effect within ±δ). Every cell needs at least 2 ok seeds.

Power: as for a plain check (:mod:`ablate.report.judge.power`), over the four cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as st

from ablate.report.judge import power, robust, stats
from ablate.report.judge.scope import Scope, Scorer, Work, at_seeds, note_pooled, pairs, score_groups
from ablate.report.spec.claim import CheckSpec, metric_direction
from ablate.report.judge.sequential import Look
from ablate.report.records.values import fmt_level, levels, matching
from ablate.report.spec.levels import level_label, where_text

CELLS = ("tA", "bA", "tB", "bB")  # (check factor t|b) × (interaction factor A|B)


@dataclass(frozen=True)
class InteractionEstimate:
    """The oriented difference in differences, its interval at ``alpha`` and its tests; the
    interface of :class:`ablate.report.judge.stats.Comparison` that ``decide_interval`` reads."""

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

    @property
    def defined(self) -> bool:
        return math.isfinite(self.se)

    def _t(self, value: float) -> float:
        """The t statistic of Δ − ``value`` (oriented)."""
        return (self.diff - value) / self.se

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
    """The difference in differences of the four cells' values (keys :data:`CELLS`), HC3's standard
    error and Satterthwaite's degrees of freedom."""
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
    se, df = power.welch([cells[k].std ** 2 for k in CELLS], [cells[k].n for k in CELLS], hc3=True)
    scale = max(float(np.abs(v).max()) for v in arrays.values())
    if not math.isfinite(se) or se <= 1e-10 * max(scale, 1e-300):
        return undefined  # no seed-to-seed variation in any cell: the test is rounding noise
    half = float(st.t.ppf(1 - alpha / 2, df)) * se
    t = diff / se
    return InteractionEstimate(cells, effects, diff, diff - half, diff + half, se, t, df,
                               float(2 * st.t.sf(abs(t), df)), alpha, sign)


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
        variances = [e.cells[c].std ** 2 for c in CELLS]
        out.update(verdict=decision.verdict, reason=decision.reason, p_support=decision.p_support,
                   p_against=decision.p_against, p_inside=decision.p_inside,
                   detectable=power.detectable(variances, [e.cells[c].n for c in CELLS], alpha, spec.test, hc3=True),
                   seeds_needed=power.seeds_needed(target, variances, e.df, alpha, spec.test, hc3=True))
        signs = {c: e.sign * (1.0 if (c[0] == "t") == (c[1] == "A") else -1.0) for c in CELLS}
        out.update(robust.assess(values, signs, alpha, spec.test, spec.margin, decision.verdict, e.diff_low, e.diff_high,
                                 hc3=True))
    return out, required
