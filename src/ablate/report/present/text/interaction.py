"""Interaction checks in words: each level's effect, and Δ, the difference of the two effects."""

from __future__ import annotations

import math

from ablate.report.judge import stats
from ablate.report.judge.interaction import CELLS
from ablate.report.present.text.plain import CheckText
from ablate.report.spec.levels import fmt_level, level_label


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

    def evidence_parts(self, e) -> list[str]:
        """``under norm=batch the effect of data.batch_size=32 vs 4 is 0.300 (32 0.910 vs 4 0.610, n=3
        vs 3); under norm=layer 0.050 (...); Δ (effect under norm=batch − effect under norm=layer)
        0.250, 95% CI [0.21, 0.29]; HC3 se=0.012, t=20.1, Satterthwaite df=7.6, p=3.1e-08``."""
        parts = [f"under {self.level_text('A')} the effect of {self.treatment_label} vs {self.baseline_label} is "
                 f"{self._effect_text('A')}", f"under {self.level_text('B')} {self._effect_text('B')}"]
        if e.defined:
            parts += [f"Δ ({self.diff_label}) {stats.fmt(e.diff)}, {stats.ci_label(e.alpha)} CI "
                      f"[{stats.fmt(e.diff_low)}, {stats.fmt(e.diff_high)}]",
                      f"HC3 se={stats.fmt(e.se, 2)}, t={stats.fmt(e.t)}, Satterthwaite df={stats.fmt(e.df, 2)}, "
                      f"p={stats.fmt(e.p, 2)}"]
        elif math.isfinite(e.diff):
            parts.append(f"Δ ({self.diff_label}) {stats.fmt(e.diff)}")
        return parts

    def setup(self) -> str:
        bigger = "smaller" if self.spec.goal == "min" else "larger"
        return (f"{self.metric_label}: the effect of {self.treatment_label} vs {self.baseline_label} (mean at "
                f"{fmt_level(self.spec.treatment)} − mean at {fmt_level(self.spec.baseline)}){self.where_text()}, claimed "
                f"{bigger} under {self.level_text('A')} than under {self.level_text('B')}; Δ is the difference of the "
                "two effects of the four cells' seed means (HC3 standard error, each cell its own variance; t with "
                "Satterthwaite's degrees of freedom)")

    def power_text(self) -> str:
        e = self.c.estimate
        if e is None or not e.defined:
            return "n/a (no interval: the interaction needs at least 2 ok seeds with some variation in each cell)"
        return super().power_text().replace("Welch df", "HC3 se, Satterthwaite df", 1)
