"""Plain, ``tune`` and ``spread`` checks in words: the base renderer the other kinds extend."""

from __future__ import annotations

import math

from ablate.report.judge import power, robust, stats
from ablate.report.judge.results import CheckResult
from ablate.report.judge.sequential import seeds_text
from ablate.report.spec.claim import EQUIVALENCE, NONINFERIORITY, SUPERIORITY
from ablate.report.spec.levels import fmt_level, level_label, where_text

TEST_LABELS = {SUPERIORITY: "superiority", NONINFERIORITY: "non-inferiority", EQUIVALENCE: "equivalence"}


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
        """``smallest |Δ| past the threshold these seeds find with 80% power (one-sided at α/2=0.025, Welch
        df=3.9): 0.31 (in train/loss's units; it rests on the sd estimated from these seeds, taken at its
        60% upper confidence bound)``: for the test the check runs (:mod:`ablate.report.judge.power`)."""
        df = getattr(self.c.estimate, "df", math.nan)
        test = f"at α/2={self.c.alpha / 2:.3g}" + (f", Welch df={stats.fmt(df, 2)}" if df == df else "")
        if self.spec.test == EQUIVALENCE:
            what = f"smallest δ these seeds show equivalence within with 80% power when Δ is 0 (two one-sided tests {test})"
        else:
            what = f"smallest |Δ| past the threshold these seeds find with 80% power (one-sided {test})"
        value = "—" if self.c.detectable != self.c.detectable else stats.fmt(self.c.detectable, 2)
        return (f"{what}: {value} (in {self.metric_label}'s units; it rests on the sd estimated from these seeds, "
                f"taken at its {power.SD_CONFIDENCE:.0%} upper confidence bound)") + self.needed_suffix()

    def robustness_text(self) -> str:
        """``**borderline**: the deciding bound sits 0.12 half-widths past its threshold (borderline below
        0.25), and leaving out one seed undoes the verdict``, or the same without the mark."""
        c = self.c
        parts = []
        if c.room == c.room and c.verdict in robust.DECIDED:  # not NaN
            parts.append(f"the deciding bound sits {stats.fmt(c.room, 2)} half-widths past its threshold "
                         f"(borderline below {robust.BORDERLINE_ROOM:g})")
        elif c.room == c.room:
            parts.append(f"the bound that would support the claim falls {stats.fmt(-c.room, 2)} half-widths short "
                         "of its threshold")
        if c.one_seed_out is not None:
            parts.append("the verdict survives leaving out any one seed per side" if c.one_seed_out
                         else "leaving out one seed undoes the verdict")
        elif c.verdict in robust.DECIDED:
            parts.append("too few seeds to leave one out")
        text = "; ".join(parts) or "n/a"
        return f"borderline: {text}" if c.borderline else text

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
        p=3.1e-12; Hedges' g=51``: the parts of the kind's :meth:`evidence_parts`, or nothing
        without numbers."""
        if self.c.estimate is None:
            return ""
        return "; ".join(part for part in self.evidence_parts(self.c.estimate) if part)

    def evidence_parts(self, c) -> list[str]:
        def side(label: str, s: stats.Summary) -> str:
            if s.n == 0:
                return f"{label} (no ok runs)"
            if s.n == 1:
                return f"{label} {stats.fmt(s.mean)}"
            return f"{label} {stats.fmt(s.mean)} ± {stats.fmt(s.std, 2)}"

        n = (f"n={c.treatment.n} each" if c.treatment.n == c.baseline.n
             else f"n={c.treatment.n} vs {c.baseline.n}")
        sides = f"{side(self.treatment_label, c.treatment)} vs {side(self.baseline_label, c.baseline)} (mean ± sd, {n})"
        if not math.isnan(c.diff_low):
            return [sides, f"Δ ({self.diff_label}) {stats.fmt(c.diff)}, {stats.ci_label(c.alpha)} CI "
                           f"[{stats.fmt(c.diff_low)}, {stats.fmt(c.diff_high)}]",
                    f"Welch t={stats.fmt(c.t)}, df={stats.fmt(c.df, 2)}, p={stats.fmt(c.p, 2)}",
                    f"Hedges' g={stats.fmt(c.g, 2)}"]
        return [sides, f"Δ ({self.diff_label}) {stats.fmt(c.diff)}" if not math.isnan(c.diff) else ""]

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
                "the same seeds choose and judge, so the check is exploratory. Each side's best value is partly "
                "its seeds' luck, and not by the same amount: a side whose curve is flat has more values near "
                "its best to be lucky with than a side whose curve is sharp, so the bias favours one side")
