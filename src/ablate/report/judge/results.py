"""What judging produces: frozen records of numbers, one per check, clause and claim.

Words are the presentation stage's (:mod:`ablate.report.present.text`); what is here is what
``verdict.json`` carries. ``reason`` and ``notes`` are the judge's short factual statements (why a
look could not decide, which runs were left out), kept with the numbers they explain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ablate.report.judge import stats
from ablate.report.judge.sequential import SeedPlan
from ablate.report.spec.claim import SUPERIORITY, CheckSpec, Clause
from ablate.report.spec.controls import ControlSpec


@dataclass(frozen=True)
class CheckResult:
    """One check at one look, or (after the replay) the check's verdict with its looks in ``history``."""

    spec: CheckSpec
    verdict: str = stats.INCONCLUSIVE
    reason: str = ""
    estimate: Any = None      # the look's numbers: stats.Comparison, interaction.InteractionEstimate or events.EventCounts
    where: dict[str, Any] = field(default_factory=dict)             # key -> resolved level
    tuned: dict[str, Any] = field(default_factory=dict)             # tune: side -> chosen level
    spread_grid: list[Any] = field(default_factory=list)            # spread sd: the levels both sides ran
    side_grids: dict[str, list[Any]] = field(default_factory=dict)  # spread width: each side's own grid
    run_ids: dict[str, list[str]] = field(default_factory=dict)     # group -> run ids compared
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # group -> diverged/failed/missing/censored
    notes: tuple[str, ...] = ()
    p_support: float = math.nan
    p_against: float = math.nan
    p_inside: float = math.nan
    p_holm: float = math.nan          # Holm-adjusted over the claim's checks of min(1, p_fail × α_total / α)
    contradicts: bool = False         # this look's test contradicts the claim; Holm over the checks decides
    no_effect: bool = False           # this look's interval lies inside (−δ, δ); Holm over the checks decides
    alpha: float = stats.ALPHA        # per look
    alpha_total: float = stats.ALPHA
    looks_planned: int = 1
    look: int = 0                     # the look the verdict is from
    history: tuple["LookEntry", ...] = ()
    seeds_chose: tuple[int, ...] | None = None   # tune: the seeds that chose (None: every seed)
    seeds_judged: tuple[int, ...] | None = None  # the seeds judged on (None: every seed)
    fresh: bool = False
    detectable: float = math.nan      # smallest |Δ| the seeds detect with 80% power at `alpha`
    seeds_needed: int | None = None   # seeds per side (or cell) the margin (or |Δ|) needs
    need: frozenset = frozenset()     # (cell, seed) pairs the next look still lacks
    room: float = math.nan            # the deciding bound's distance past its threshold, in half-widths
    one_seed_out: bool | None = None  # the verdict survives leaving out any one seed per side (None: not assessed)

    @property
    def decided(self) -> bool:
        return self.verdict != stats.INCONCLUSIVE

    @property
    def borderline(self) -> bool:
        """Decided by less than :data:`ablate.report.judge.robust.BORDERLINE_ROOM` of the interval's
        half-width, or undone by leaving out one seed (:mod:`ablate.report.judge.robust`)."""
        from ablate.report.judge.robust import is_borderline

        return is_borderline(self.verdict, self.room, self.one_seed_out, count=self.spec.kind == "events")

    @property
    def fails(self) -> bool:
        """This look says the check fails (contradicted, or no effect within ±δ) before Holm's say."""
        return self.contradicts or self.no_effect

    @property
    def p_fail(self) -> float:
        """The p of the way the check can fail: ``p_against``, or for a superiority check with a
        margin the smaller of it and ``p_inside`` ("no effect within ±δ"). Below alpha exactly when
        this look's interval shows one of them."""
        p = self.p_against
        if self.spec.test == SUPERIORITY and self.spec.margin is not None and math.isfinite(self.p_inside):
            p = min(p, self.p_inside) if math.isfinite(p) else self.p_inside
        return p


@dataclass(frozen=True)
class LookEntry:
    """One look as the replay judged it: its result, whether every run it reads had a record, and
    the verdict after Holm's correction over the claim's checks."""

    index: int
    result: CheckResult
    complete: bool
    verdict: str


@dataclass(frozen=True)
class ClauseResult:
    clause: Clause
    verdict: str
    checks: tuple[CheckResult, ...] = ()
    reason: str | None = None      # why the clause is not applicable (a model or data of the user's)
    judged: str | None = None      # not informative: what its checks said before a failed control overrode it
    failed_controls: tuple[str, ...] = ()  # the failed controls that guard it (names)


@dataclass(frozen=True)
class ControlGroup:
    """One group of a control's runs (a level of its ``each``, or all the runs its where keeps): the
    mean of its values and the two one-sided (1 − α/2) bounds of that mean."""

    level: tuple | None       # the levels of ``each``'s keys (None: no each)
    n: int
    mean: float
    low: float                # lower bound (NaN when n < 2)
    high: float               # upper bound
    holds: bool
    tuned: Any = None         # tune: the level chosen
    counts: dict[str, int] = field(default_factory=dict)   # diverged/failed/missing
    run_ids: tuple[str, ...] = ()
    problem: str | None = None   # why it cannot hold (fewer than 2 values, nothing to tune on)


@dataclass(frozen=True)
class ControlResult:
    """A control judged: it holds when every group's bound clears its threshold(s)."""

    spec: ControlSpec
    holds: bool
    groups: tuple[ControlGroup, ...] = ()
    where: dict[str, Any] = field(default_factory=dict)   # resolved (min/max named levels)
    above: float | None = None     # the thresholds resolved (chance + x, after transform)
    below: float | None = None
    chance: float | None = None    # the task's chance level, when the control needed it
    alpha: float = stats.ALPHA
    reason: str = ""               # why it could not be evaluated at all


@dataclass(frozen=True)
class ClaimResult:
    name: str
    statement: str
    verdict: str
    reason: str
    checks: tuple[CheckResult, ...]
    plot: dict[str, Any] = field(default_factory=dict)
    claim: dict[str, Any] = field(default_factory=dict)
    clauses: tuple[ClauseResult, ...] = ()
    scope: dict[str, str] = field(default_factory=dict)
    plan: SeedPlan = field(default_factory=SeedPlan)
    budget: str = ""                  # "budget=quick, 10 epochs": what a null is a null at
    alpha: float = stats.ALPHA
    notes: tuple[str, ...] = ()
    controls: tuple[ControlResult, ...] = ()

    @property
    def failed_controls(self) -> list[ControlResult]:
        return [c for c in self.controls if not c.holds]

    @property
    def untested(self) -> list[ClauseResult]:
        return [c for c in self.clauses if c.verdict == stats.NOT_TESTED]

    @property
    def open_checks(self) -> list[CheckResult]:
        """Checks whose next look still lacks runs (undecided, or decided on a hair with looks to go):
        what a sequential sweep launches next."""
        return [c for c in self.checks if (not c.decided or c.borderline) and c.need]

    def needs(self) -> set:
        """The (cell, seed) pairs the open checks' next looks read and no record holds yet."""
        out: set = set()
        for c in self.open_checks:
            out |= c.need
        return out
