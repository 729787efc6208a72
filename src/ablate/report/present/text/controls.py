"""A claim's controls in words: each control's groups with their numbers, and whether it holds."""

from __future__ import annotations

from typing import Any

from ablate.report.judge import stats
from ablate.report.judge.results import ControlGroup, ControlResult
from ablate.report.records.summary import ci_label
from ablate.report.spec.controls import where_label
from ablate.report.spec.levels import fmt_level


class ControlText:
    """One judged control: its threshold, each group's mean, bound and n, and holds/fails."""

    def __init__(self, control: ControlResult):
        self.c, self.spec = control, control.spec

    @property
    def status(self) -> str:
        return "holds" if self.c.holds else "fails"

    @property
    def metric_label(self) -> str:
        return f"log10({self.spec.metric})" if self.spec.transform == "log10" else self.spec.metric

    @property
    def bound_label(self) -> str:
        """``97.5% lower bound`` (one-sided at α/2)."""
        side = "lower" if self.spec.above is not None else "upper"
        both = self.spec.above is not None and self.spec.below is not None
        return f"one-sided {ci_label(self.c.alpha / 2)} {'bounds' if both else side + ' bound'}"

    def threshold(self) -> str:
        """``> chance + 0.1 = 0.225`` (the resolved number when it is not the one written)."""
        parts = []
        for sign, written, value in ((">", self.spec.above, self.c.above), ("<", self.spec.below, self.c.below)):
            if written is None:
                continue
            text = f"{sign} {written.text}"
            if written.chance and value is not None and value == value:
                text += f" = {stats.fmt(value)}"
            parts.append(text)
        return " and ".join(parts)

    def where(self) -> str:
        text = where_label(self.c.where or self.spec.where)
        return text or "every run"

    def group_label(self, g: ControlGroup) -> str:
        parts = []
        if self.spec.each is not None and g.level is not None:
            parts += [f"{k}={fmt_level(v)}" for k, v in zip(self.spec.each, g.level)]
        if self.spec.tune is not None:
            parts.append(f"at its best {self.spec.tune}={fmt_level(g.tuned)}" if g.tuned is not None
                         else f"no best {self.spec.tune}")
        return ", ".join(parts)

    def bound(self, g: ControlGroup) -> str:
        """The bound the group is judged by (lower for ``above``, upper for ``below``; both for a range)."""
        if g.n < 2:
            return "—"
        both = self.spec.above is not None and self.spec.below is not None
        if both:
            return f"[{stats.fmt(g.low)}, {stats.fmt(g.high)}]"
        return stats.fmt(g.low if self.spec.above is not None else g.high)

    def group_text(self, g: ControlGroup) -> str:
        """``model.cell=lstm: mean 0.12, 97.5% lower bound 0.095 (3 runs): fails``."""
        label = self.group_label(g)
        head = f"{label}: " if label else ""
        if g.n == 0:
            return f"{head}no run with a value ({g.problem or 'nothing to read'}): fails"
        counts = ", ".join(f"{v} {k}" for k, v in g.counts.items() if v)
        extra = f"; {counts}" if counts else ""
        why = f"; {g.problem}" if g.problem and g.n >= 2 else ""
        if g.n < 2:
            return f"{head}mean {stats.fmt(g.mean)} (1 run{extra}): a bound needs 2: fails"
        return (f"{head}mean {stats.fmt(g.mean)}, {self.bound_label} {self.bound(g)} ({g.n} runs{extra}{why}): "
                f"{'holds' if g.holds else 'fails'}")

    def sentence(self) -> str:
        """The whole control in one line, for the report and verdict.json."""
        if self.c.reason and not self.c.groups:
            return f"{self.spec.name} fails: {self.c.reason}"
        groups = "; ".join(self.group_text(g) for g in self.c.groups)
        return (f"{self.spec.name} {self.status}: {self.metric_label} {self.threshold()}, where {self.where()}: "
                f"{groups}")

    def guards(self, clauses: Any) -> str:
        names = self.spec.clauses if self.spec.clauses is not None else [c.clause.name for c in clauses if c.checks]
        return ", ".join(names) if names else "the claim"
