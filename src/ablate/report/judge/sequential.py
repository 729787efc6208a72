"""Sequential seeds: which seeds each look of a check reads, and the alpha each look is judged at.

Pure functions of the budget (``budget.seeds``, a count, and ``budget.max_seeds``, a cap): the
sweeper (``hydra/sweeper: ablate``) and the report call the same ones, so a report replays exactly
the looks the sweep ran.

* Look sizes grow by about 1.6x, by at least one seed, up to the cap: ``schedule(3, 8) == (3, 5, 8)``.
* A plain or spread check reads every cell it compares at seeds ``0 .. n_k - 1`` at look ``k``.
* A tune check picks each side's best value on the *selection* seeds ``0 .. seeds - 1``. With fresh
  seeds it is judged at that value on seeds that did not choose: ``seeds ..``, in looks of their
  own schedule, capped so that no cell runs more than ``max_seeds`` seeds in total. Without fresh
  seeds the judging seeds are ``0 .. n_k - 1``, the choosing ones among them.
* Alpha is spent over a check's planned looks by the Lan–DeMets O'Brien–Fleming spending function
  (:func:`look_alphas`): little at the early looks, most at the last, with the chance of a false
  decision in each direction over all looks at most ``alpha / 2``. Bonferroni (``alpha / K`` at each
  look) spent much less than that (1.6% against 2.5% under A/A at looks 3 → 5 → 8).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
from scipy import optimize
from scipy import stats as st

GROWTH = 1.6
_GRID = 1501  # points of the grid that carries the continuation density from look to look
METHOD = "Lan–DeMets O'Brien–Fleming α-spending"


@dataclass(frozen=True)
class SeedPlan:
    """The budget's seeds: ``seeds`` per cell to start with, at most ``max_seeds`` in the end.

    ``seeds`` None: unknown (records without a budget count); every look then reads every seed
    present, once.
    """

    seeds: int | None = None
    max_seeds: int | None = None

    @property
    def sequential(self) -> bool:
        return self.seeds is not None and self.max_seeds is not None and self.max_seeds > self.seeds

    def fresh_available(self) -> bool:
        """Whether the cap leaves at least 2 fresh judging seeds per side for a tune check."""
        return self.sequential and self.max_seeds - self.seeds >= 2

    def describe(self) -> str:
        if self.seeds is None:
            return "every seed present"
        if not self.sequential:
            return f"{self.seeds} seeds per cell (sequential seeds off)"
        return (f"{self.seeds} seeds per cell, up to {self.max_seeds} in looks "
                f"{' → '.join(map(str, schedule(self.seeds, self.max_seeds)))}")


@dataclass(frozen=True)
class Look:
    """The seeds one look of one check reads; None: every seed present."""

    index: int
    select: tuple[int, ...] | None  # tune checks: the seeds that choose each side's best value
    judge: tuple[int, ...] | None   # the seeds the verdict is computed over

    @property
    def chooses_with_judging_seeds(self) -> bool:
        return self.select is None or self.judge is None or bool(set(self.select) & set(self.judge))


def schedule(start: int, cap: int | None) -> tuple[int, ...]:
    """Seeds per cell at each look: ``start``, then about x1.6 (at least +1) each look, up to ``cap``."""
    start = max(1, int(start))
    if cap is None or cap <= start:
        return (start if cap is None else max(1, min(start, int(cap))),)
    sizes = [start]
    while sizes[-1] < cap:
        sizes.append(min(cap, max(sizes[-1] + 1, round(sizes[-1] * GROWTH))))
    return tuple(sizes)


def _as_count(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def plan_of(records: Sequence[dict[str, Any]]) -> tuple[SeedPlan, list[str]]:
    """The seed plan the records were run under (``config.budget``), and notes on anything odd.

    Records without a seed count (hand-made ones, or an old ``seeds: 0,1,2`` list) give the plan
    "every seed present, one look". So do records whose seeds do not fit the budget (a seed at or
    beyond the cap, or not even seeds ``0 .. seeds-1``): seeds swept on the command line, where the
    sweeper adds none, and the report cannot know which looks such a sweep ran.
    """
    found = Counter()
    for r in records:
        budget = (r.get("config") or {}).get("budget") or {}
        if isinstance(budget, dict):
            found[(_as_count(budget.get("seeds")), _as_count(budget.get("max_seeds")))] += 1
    notes: list[str] = []
    if not found:
        return SeedPlan(), notes
    (seeds, max_seeds), _ = found.most_common(1)[0]
    if len(found) > 1:
        notes.append("the records disagree on budget.seeds / budget.max_seeds; judged with the most common "
                     f"({seeds}, {max_seeds})")
    if seeds is None:
        return SeedPlan(), notes
    if max_seeds is not None and max_seeds < seeds:
        max_seeds = seeds
    plan = SeedPlan(seeds, max_seeds)
    cap = max_seeds if plan.sequential else seeds
    present = {int(r["seed"]) for r in records if isinstance(r.get("seed"), int)}
    beyond = sorted(s for s in present if s >= cap)
    if beyond:
        notes.append(f"seeds {', '.join(map(str, beyond[:5]))}{'…' if len(beyond) > 5 else ''} lie beyond "
                     f"the budget's {cap}: seeds were swept by hand, so every seed present is judged once")
        return SeedPlan(), notes
    if not set(range(seeds)) <= present:
        notes.append(f"no cell ran the budget's seeds 0-{seeds - 1}: seeds were swept by hand, so every seed "
                     "present is judged once")
        return SeedPlan(), notes
    return plan, notes


def fresh_seeds(plan: SeedPlan, requested: bool | None) -> tuple[bool, str | None]:
    """Whether a tune check judges on fresh seeds, and a note when a request cannot be met."""
    if requested is False:
        return False, None
    if plan.fresh_available():
        return True, None
    if requested:
        return False, ("fresh_seeds: true, but budget.max_seeds leaves fewer than 2 fresh seeds per side; "
                       "the same seeds choose and judge")
    return False, None


def looks(plan: SeedPlan, kind: str, fresh: bool) -> list[Look]:
    """Every planned look of a check of ``kind`` under ``plan``: ``tune`` as above; every other kind
    (plain, spread, interaction, events) reads the first n_k seeds of each cell it compares."""
    if plan.seeds is None:
        return [Look(0, None, None)]
    cap = plan.max_seeds if plan.sequential else plan.seeds
    selection = tuple(range(plan.seeds)) if kind == "tune" else None
    if kind == "tune" and fresh:
        room = cap - plan.seeds
        return [Look(k, selection, tuple(range(plan.seeds, plan.seeds + m)))
                for k, m in enumerate(schedule(min(plan.seeds, room), room))]
    return [Look(k, selection, tuple(range(n))) for k, n in enumerate(schedule(plan.seeds, cap))]


def spent(alpha: float, fraction: float) -> float:
    """The Lan–DeMets O'Brien–Fleming spending function at information ``fraction`` (seeds so far /
    seeds at the last look), for one-sided level ``alpha / 2``: ``2 − 2 Φ(z(1 − alpha/4) / √t)``."""
    return float(2 * st.norm.sf(st.norm.isf(alpha / 4) / np.sqrt(fraction)))


@lru_cache(maxsize=256)
def look_alphas(alpha: float, sizes: tuple[int, ...]) -> tuple[float, ...]:
    """Each look's alpha (its interval is two-sided ``1 − alpha_k``, each direction one-sided at
    ``alpha_k / 2``) when looks at ``sizes`` seeds per side share ``alpha`` by O'Brien–Fleming spending.

    The one-sided z bounds c_k solve P(no crossing before look k, crossing at k) = spent(t_k) −
    spent(t_{k−1}) under H0, where the looks' statistics are a Brownian motion ``B(t) = z_k √t_k`` in
    information time (the usual normal theory of group-sequential tests); the sub-density of B on
    the continuation region is carried from look to look on a grid (Armitage, McPherson & Rowe).
    alpha_k = 2 (1 − Φ(c_k)). One look: ``alpha``.

    Each look's Welch interval then uses its alpha_k with the t quantile at the look's Satterthwaite
    degrees of freedom (the significance-level approach to group-sequential t tests): the
    information fractions are the looks' seeds, as planned. With equal sds this is conservative
    (looks 3 → 5 → 8 spend 2.41% of 2.5% under A/A, 2.28% with a borderline look continuing); with
    one side's sd 3× the other's the early looks spend more than their share and the whole rule
    2.47% (``python -m ablate.calibrate``, docs/calibration.md)."""
    if len(sizes) <= 1:
        return (alpha,)
    t = np.asarray(sizes, dtype=float) / sizes[-1]
    bounds: list[float] = []
    grid = density = None
    used, previous = 0.0, 0.0
    for k, tk in enumerate(t):
        share = spent(alpha, tk) - used
        step = np.sqrt(tk - previous)

        def crossing(c: float) -> float:
            edge = c * np.sqrt(tk)
            if density is None:
                return float(st.norm.sf(c))
            return float(np.sum(density * st.norm.sf((edge - grid) / step)))

        c = float(optimize.brentq(lambda c: crossing(c) - share, -2.0, 12.0, xtol=1e-9))
        bounds.append(c)
        edge = c * np.sqrt(tk)
        x = np.linspace(-12 * np.sqrt(tk), edge, _GRID)
        width = x[1] - x[0]
        if density is None:
            new = st.norm.pdf(x / np.sqrt(tk)) / np.sqrt(tk)
        else:
            new = (density[None, :] * st.norm.pdf((x[:, None] - grid[None, :]) / step) / step).sum(axis=1)
        grid, density = x, new * width  # probability mass per grid point
        density[[0, -1]] /= 2  # trapezoid ends
        used, previous = spent(alpha, tk), tk
    return tuple(float(2 * st.norm.sf(c)) for c in bounds)


def seeds_text(seeds: Sequence[int] | None) -> str:
    """``0-2`` / ``3, 5`` / ``every seed``."""
    if seeds is None:
        return "every seed"
    seeds = sorted(seeds)
    if not seeds:
        return "none"
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))
