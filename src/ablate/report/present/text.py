"""A check's result in words: one renderer per check kind, reading only the result's numbers.

``text_of(check, budget)`` gives the renderer of a check's kind: :class:`CheckText` (plain, ``tune``,
``spread``), :class:`InteractionText`, :class:`EventText`. The report's tables, check details,
W&B summary and catalogue all print through it. Adding a check kind is one estimator in
:mod:`ablate.report.judge.look` and one renderer here.
"""

from __future__ import annotations

import math

from ablate.report.judge import stats
from ablate.report.judge.interaction import CELLS
from ablate.report.judge.results import CheckResult
from ablate.report.judge.sequential import seeds_text
from ablate.report.spec.claim import EQUIVALENCE, NONINFERIORITY, SUPERIORITY, EventSpec
from ablate.report.spec.levels import fmt_level, level_label, where_text

TEST_LABELS = {SUPERIORITY: "superiority", NONINFERIORITY: "non-inferiority", EQUIVALENCE: "equivalence"}


def describe(event: EventSpec, metric: str) -> str:
    """``train/loss ≥ 2.30259 or the run diverged (status diverged, or train/loss NaN/inf)``: what
    counts as the event, as the report prints it."""
    parts = []
    if event.above is not None:
        parts.append(f"{metric} ≥ {stats.fmt(event.above, 6)}")
    if event.below is not None:
        parts.append(f"{metric} ≤ {stats.fmt(event.below, 6)}")
    if event.diverged:
        parts.append("the run diverged" + (f" (status diverged, or {metric} NaN/inf)" if metric else " (status diverged)"))
    return " or ".join(parts)


class CheckText:
    """A plain, ``tune`` or ``spread`` check in words. ``budget`` (``budget=quick, 10 epochs``) is what
    an inconclusive check is a null at."""

    def __init__(self, check: CheckResult, budget: str = ""):
        self.c, self.spec, self.budget = check, check.spec, budget

    @property
    def reason(self) -> str:
        """The judge's reason, and for an inconclusive check with numbers, what it was a null at."""
        null = self.null_text()
        if not null:
            return self.c.reason
        return f"{self.c.reason}; {null}" if self.c.reason else null

    @property
    def verdict_label(self) -> str:
        """The verdict as printed: ``no effect within ±0.015`` names its δ."""
        if self.c.verdict == stats.NO_EFFECT:
            return f"no effect within ±{stats.fmt(self.spec.margin)}"
        return self.c.verdict

    @property
    def treatment_label(self) -> str:
        return level_label(self.spec.factor, self.spec.treatment)

    @property
    def baseline_label(self) -> str:
        return level_label(self.spec.factor, self.spec.baseline)

    @property
    def metric_label(self) -> str:
        name = f"log10({self.spec.metric})" if self.spec.transform == "log10" else self.spec.metric
        if self.spec.spread and self.spec.statistic == "width":
            return f"width (decades of {self.spec.spread}) where {name} is within {stats.fmt(self.spec.within)} of its best"
        return f"sd of {name} over {self.spec.spread}" if self.spec.spread else name

    @property
    def test_label(self) -> str:
        text = TEST_LABELS.get(self.spec.test, self.spec.test)
        return f"{text}, δ={stats.fmt(self.spec.margin)}" if self.spec.margin is not None else text

    @property
    def diff_label(self) -> str:
        """What Δ is: ``treatment − baseline`` (goal max), ``baseline − treatment`` (goal min)."""
        return "baseline − treatment" if self.spec.goal == "min" else "treatment − baseline"

    def n(self, side: str) -> int:
        c = self.c.estimate
        if c is None:
            return 0
        return (c.treatment if side == "treatment" else c.baseline).n

    # -- how it prints: the report's table, look line and power line (subclasses override) ----------
    def n_text(self) -> str:
        """The seeds per side: ``3 vs 3``."""
        return f"{self.n('treatment')} vs {self.n('baseline')}"

    def table_side(self, side: str) -> tuple[str, str] | None:
        """The checks table's cell of one side: its label and ``: mean ± sd (n=k)``; None: no numbers."""
        c = self.c.estimate
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
        c = self.c.estimate
        if c is None or not (c.treatment.n and c.baseline.n):
            return "—"
        text = stats.fmt(c.diff)
        if c.diff_low == c.diff_low:  # not NaN
            text += f" [{stats.fmt(c.diff_low)}, {stats.fmt(c.diff_high)}]"
        return text

    def interval(self) -> tuple[float, float]:
        c = self.c.estimate
        return (c.diff_low, c.diff_high) if c is not None else (math.nan, math.nan)

    def look_text(self) -> str:
        """What one look saw: ``n=3 vs 3, α=0.025, Δ [0.1, 0.3]``."""
        lo, _ = self.interval()
        ci = "[{}, {}]".format(*map(stats.fmt, self.interval())) if lo == lo else "—"
        return f"n={self.n_text()}, α={self.c.alpha:.3g}, Δ {ci}"

    def power_text(self) -> str:
        text = (f"smallest |Δ| these seeds detect with 80% power at α={self.c.alpha:.3g}: "
                f"{'—' if self.c.detectable != self.c.detectable else stats.fmt(self.c.detectable, 2)} "
                f"(in {self.metric_label}'s units)")
        return text + self.needed_suffix()

    def needed_suffix(self) -> str:
        """``; the margin 0.02 would need about 12 seeds per side`` for an inconclusive check."""
        if self.c.verdict != stats.INCONCLUSIVE or not self.c.seeds_needed:
            return ""
        target = f"the margin {stats.fmt(self.spec.margin)}" if self.spec.margin else "the observed |Δ|"
        return f"; {target} would need about {self.c.seeds_needed} {self.needed_unit()}"

    @property
    def estimated(self) -> bool:
        """Whether the look had numbers to test (an inconclusive one is then a null at this budget)."""
        return self.c.estimate is not None and self.c.estimate.defined

    def seeds_phrase(self) -> str:
        nt, nb = self.n("treatment"), self.n("baseline")
        return f"{nt} seeds" if nt == nb else f"{nt} vs {nb} seeds"

    def observed(self) -> float:
        """|Δ| as measured (what an inconclusive check would need seeds for, without a margin)."""
        return abs(self.c.estimate.diff) if self.c.estimate is not None else math.nan

    def null_text(self) -> str | None:
        """``not shown at budget=quick (3 seeds, 10 epochs; detectable effect ≥ 0.031)``: an
        inconclusive check is a null at this budget, never evidence against the claim."""
        if self.c.verdict != stats.INCONCLUSIVE or not self.estimated:
            return None
        budget = self.budget
        at = f"at {budget.split(', ')[0]} " if budget else ""
        detail = ", ".join([self.seeds_phrase(), *budget.split(", ")[1:]])
        text = f"not shown {at}({detail}"
        text += f"; detectable effect ≥ {stats.fmt(self.c.detectable, 2)})" if self.c.detectable == self.c.detectable else ")"
        if self.c.seeds_needed:
            what = (f"the margin {stats.fmt(self.spec.margin)}" if self.spec.margin
                    else f"the observed |Δ|={stats.fmt(self.observed(), 2)}")
            text += f"; {what} would need about {self.c.seeds_needed} {self.needed_unit()}"
        return text

    def needed_unit(self) -> str:
        return "seeds per side"

    def diverged_policy(self) -> str:
        return f"on_diverged: {self.spec.on_diverged}"

    def evidence(self) -> str:
        """The numbers and the test, e.g. ``a=true 0.100 ± 0.010 vs a=false 1.00 ± 0.02 (mean ± sd,
        n=5 each); Δ (baseline − treatment) 0.900, 95% CI [0.88, 0.92]; Welch t=90.1, df=7.1,
        p=3.1e-12; Hedges' g=51``."""
        c = self.c.estimate
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
        return f"{evidence} ({self.reason})" if self.c.verdict == stats.INCONCLUSIVE else evidence

    def line(self) -> str:
        """One line: ``verdict — numbers and test``."""
        return f"{self.verdict_label} — {self.detail()}"

    def where_text(self) -> str:
        """``, where model.depth=32 (max)``, or nothing."""
        return where_text(self.c.where, self.spec.where)

    def setup(self) -> str:
        """What was compared: metric and direction, levels, filters, tuning, seeds."""
        better = "lower" if self.spec.goal == "min" else "higher"
        text = f"{self.metric_label} ({better} is better): {self.treatment_label} vs {self.baseline_label}"
        text += self.where_text()
        if self.spec.spread and self.spec.statistic == "sd":
            grid = ", ".join(fmt_level(v) for v in self.c.spread_grid) or "no common levels"
            text += f"; per seed, the sd over the {self.spec.spread} grid ({grid}) that both sides ran"
        elif self.spec.spread:
            grids = "; ".join(f"{side} {', '.join(fmt_level(v) for v in grid)}" for side, grid in self.c.side_grids.items())
            text += f"; per seed, over each side's own {self.spec.spread} grid ({grids})"
        if self.spec.tune:
            if self.c.tuned:
                picks = ", ".join(f"{side} at {fmt_level(v)}" for side, v in self.c.tuned.items())
                text += f", each side at its own best {self.spec.tune} ({picks}, chosen on {self.spec.select_on})"
            else:
                text += f", each side at its own best {self.spec.tune} (chosen on {self.spec.select_on})"
        return text

    def seeds_line(self) -> str:
        """Which seeds chose and which judged."""

        def seeds(s: tuple[int, ...] | None) -> str:
            return "every seed" if s is None else f"seeds {seeds_text(s)}"

        if not self.spec.tune:
            return seeds(self.c.seeds_judged)
        if self.c.fresh:
            return (f"{seeds(self.c.seeds_chose)} chose each side's {self.spec.tune}; fresh {seeds(self.c.seeds_judged)} "
                    "judged it")
        return (f"{seeds(self.c.seeds_chose)} chose each side's {self.spec.tune} and {seeds(self.c.seeds_judged)} judged it: "
                "the same seeds choose and judge, which is optimistic for both sides (each side's best value "
                "is partly its seeds' luck)")


class InteractionText(CheckText):
    """A check with ``interaction:``: the four cells, each level's effect and Δ, the difference."""

    def level_text(self, which: str) -> str:
        """``norm=batch`` for A, ``norm=layer`` for B."""
        inter = self.spec.interaction
        return level_label(inter.factor, inter.treatment if which == "A" else inter.baseline)

    @property
    def diff_label(self) -> str:
        first, second = ("A", "B") if self.spec.goal != "min" else ("B", "A")
        return f"effect under {self.level_text(first)} − effect under {self.level_text(second)}"

    @property
    def test_label(self) -> str:
        return f"interaction, {CheckText.test_label.fget(self)}"

    def cell_n(self, cell: str) -> int:
        return self.c.estimate.cells[cell].n if self.c.estimate is not None else 0

    def n(self, side: str) -> int:
        """Seeds of one cell (``tA`` ...), or of a side's two cells (``treatment``: t under A and B)."""
        if side in CELLS:
            return self.cell_n(side)
        key = "t" if side == "treatment" else "b"
        return sum(self.cell_n(c) for c in CELLS if c[0] == key)

    def n_text(self) -> str:
        return f"{', '.join(str(self.cell_n(c)) for c in CELLS)} per cell"

    def seeds_phrase(self) -> str:
        ns = [self.cell_n(c) for c in CELLS]
        return f"{ns[0]} seeds per cell" if len(set(ns)) == 1 else f"{', '.join(map(str, ns))} seeds per cell"

    def needed_unit(self) -> str:
        return "seeds per cell"

    @property
    def estimated(self) -> bool:
        return self.c.estimate is not None and self.c.estimate.defined

    def observed(self) -> float:
        return abs(self.c.estimate.diff) if self.c.estimate is not None else math.nan

    def interval(self) -> tuple[float, float]:
        e = self.c.estimate
        return (e.diff_low, e.diff_high) if e is not None else (math.nan, math.nan)

    def _effect_text(self, which: str) -> str:
        e = self.c.estimate
        t, b = f"t{which}", f"b{which}"
        return (f"{stats.fmt(e.effects[which])} ({fmt_level(self.spec.treatment)} {stats.fmt(e.cells[t].mean)} vs "
                f"{fmt_level(self.spec.baseline)} {stats.fmt(e.cells[b].mean)}, n={e.cells[t].n} vs {e.cells[b].n})")

    def table_side(self, side: str) -> tuple[str, str] | None:
        """The treatment column shows the effect under A, the baseline column the effect under B."""
        if self.c.estimate is None:
            return None
        which = "A" if side == "treatment" else "B"
        return f"under {self.level_text(which)}", f": effect {self._effect_text(which)}"

    def diff_text(self) -> str:
        e = self.c.estimate
        if e is None or not math.isfinite(e.diff):
            return "—"
        return stats.fmt(e.diff) + (f" [{stats.fmt(e.diff_low)}, {stats.fmt(e.diff_high)}]" if e.defined else "")

    def evidence(self) -> str:
        """``under norm=batch the effect of data.batch_size=32 vs 4 is 0.300 (32 0.910 vs 4 0.610, n=3
        vs 3); under norm=layer 0.050 (...); Δ (effect under norm=batch − effect under norm=layer)
        0.250, 95% CI [0.21, 0.29]; OLS interaction term, HC3 se=0.012, t=20.1, df=8, p=3.1e-08``."""
        e = self.c.estimate
        if e is None:
            return ""
        text = (f"under {self.level_text('A')} the effect of {self.treatment_label} vs {self.baseline_label} is "
                f"{self._effect_text('A')}; under {self.level_text('B')} {self._effect_text('B')}")
        if e.defined:
            text += (f"; Δ ({self.diff_label}) {stats.fmt(e.diff)}, {stats.ci_label(e.alpha)} CI "
                     f"[{stats.fmt(e.diff_low)}, {stats.fmt(e.diff_high)}]; OLS interaction term, HC3 "
                     f"se={stats.fmt(e.se, 2)}, t={stats.fmt(e.t)}, df={e.df:g}, p={stats.fmt(e.p, 2)}")
        elif math.isfinite(e.diff):
            text += f"; Δ ({self.diff_label}) {stats.fmt(e.diff)}"
        return text

    def setup(self) -> str:
        bigger = "smaller" if self.spec.goal == "min" else "larger"
        return (f"{self.metric_label}: the effect of {self.treatment_label} vs {self.baseline_label} (mean at "
                f"{fmt_level(self.spec.treatment)} − mean at {fmt_level(self.spec.baseline)}){self.where_text()}, claimed "
                f"{bigger} under {self.level_text('A')} than under {self.level_text('B')}; Δ is the difference of the "
                "two effects, the interaction coefficient of an OLS fit to the four cells' seed values (HC3 "
                "standard errors, t with N − 4 degrees of freedom)")

    def power_text(self) -> str:
        e = self.c.estimate
        if e is None or not e.defined:
            return "n/a (no interval: the interaction needs at least 2 ok seeds with some variation in each cell)"
        text = (f"smallest |Δ| these seeds detect with 80% power at α={self.c.alpha:.3g}: {stats.fmt(self.c.detectable, 2)} "
                f"(in {self.metric_label}'s units; noncentral t at the HC3 standard error {stats.fmt(e.se, 2)}, "
                f"df={e.df:g})")
        return text + self.needed_suffix()


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

    def evidence(self) -> str:
        """``optimizer.lr ∈ {0.3, 1, 3} 7/12 runs vs optimizer.lr ∈ {0.001, 0.01} 0/12 with the event
        ; event: train/loss ≥ 2.30259 or the run diverged (...); difference of fractions (treatment −
        baseline) 0.583;
        Fisher's exact test, one-sided p=0.0026 (the treatment more often), opposite direction p=1``."""
        e = self.c.estimate
        if e is None:
            return ""
        text = (f"{self.treatment_label} {e.k['treatment']}/{e.n['treatment']} runs vs {self.baseline_label} "
                f"{e.k['baseline']}/{e.n['baseline']} with the event; event: {self.metric_label}")
        if self.estimated:
            text += (f"; difference of fractions ({self.diff_label}) {stats.fmt(self._diff())}; Fisher's exact test, "
                     f"one-sided p={stats.fmt(self.c.p_support, 2)} (the treatment {self.p_for_direction}), opposite "
                     f"direction p={stats.fmt(self.c.p_against, 2)}")
        return text

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
        if e.min_p >= self.c.alpha:
            text += f", not below α={self.c.alpha:.3g}: this check cannot decide with these runs"
        return text

    def null_text(self) -> str | None:
        text = super().null_text()
        if text and self.c.estimate.min_p >= self.c.alpha:
            text += f"; {self.n_text()} cannot reach p < {self.c.alpha:.3g} at all"
        return text

    def look_text(self) -> str:
        e = self.c.estimate
        counts = (f"{e.k['treatment']}/{e.n['treatment']} vs {e.k['baseline']}/{e.n['baseline']} runs with the event"
                  if e is not None else "no counts")
        p = f", p for {stats.fmt(self.c.p_support, 2)}" if self.c.p_support == self.c.p_support else ""
        return f"{counts}, α={self.c.alpha:.3g}{p}"


TEXTS: dict[str, type[CheckText]] = {"interaction": InteractionText, "events": EventText}


def text_of(check: CheckResult, budget: str = "") -> CheckText:
    """The renderer of ``check``'s kind."""
    return TEXTS.get(check.spec.kind, CheckText)(check, budget)
