"""How firmly a look decided: the room its deciding bound has, and whether one seed can undo it.

* **room**: how far the interval bound that decides sits past its threshold, in units of the
  interval's half-width (superiority supported: lower bound / half-width; non-inferiority: (lower
  bound + δ) / half-width; equivalence and no effect: the nearer of the two ends to ±δ; a
  contradiction: the upper bound's distance below its threshold). For a look that did not decide,
  the room of the decision for the claim, which is then negative: how far it fell short.
* **one seed out**: the interval recomputed with each seed of each group (a side, or an
  interaction's cell) left out in turn; the verdict survives when every one of them gives the same
  decision. Groups need at least 3 seeds to leave one out (None: not assessed).

A decided look with room below :data:`BORDERLINE_ROOM`, or whose verdict one seed can undo, is
**borderline**: floating point across machines, or one more seed, may decide it differently.

Event checks have no interval; :mod:`ablate.report.judge.events` gives them the same two numbers on
the same scale (room from the deciding one-sided Fisher p, ``z(p) / z(α/2) − 1``: the room an
interval with that p would have; one seed out: one run left out, or one run's outcome changed) and
this module's rule marks them borderline alike.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from scipy import special

from ablate.report.judge import stats
from ablate.report.judge.power import welch
from ablate.report.spec.claim import EQUIVALENCE

BORDERLINE_ROOM = 0.25  # decided by less than a quarter of the interval's half-width: borderline
DECIDED = (stats.SUPPORTED, stats.NOT_SUPPORTED, stats.NO_EFFECT)


def room(low: float, high: float, test: str, margin: float | None, verdict: str) -> float:
    """The deciding bound's distance past its threshold, in half-widths (negative: short of it)."""
    half = (high - low) / 2
    if not (math.isfinite(half) and half > 0):
        return math.nan
    delta = float(margin) if margin is not None else math.nan
    if verdict == stats.NO_EFFECT or (test == EQUIVALENCE and verdict in (stats.SUPPORTED, stats.INCONCLUSIVE)):
        distance = min(low + delta, delta - high)
    elif test == EQUIVALENCE:  # contradicted: wholly outside (−δ, δ)
        distance = max(low - delta, -delta - high)
    elif verdict == stats.NOT_SUPPORTED:
        distance = stats.bound(test, margin) - high
    else:
        distance = low - stats.bound(test, margin)
    return float(distance / half)


def contrast(groups: Mapping[str, np.ndarray], signs: Mapping[str, float], alpha: float,
             hc3: bool = False) -> tuple[float, float]:
    """The Welch interval of Σ sign · mean over ``groups`` at ``alpha`` (Satterthwaite df; ``hc3``: as
    :func:`ablate.report.judge.power.welch`)."""
    names = list(groups)
    if any(groups[g].size < 2 for g in names):
        return math.nan, math.nan
    se, df = welch([float(groups[g].var(ddof=1)) for g in names], [groups[g].size for g in names], hc3)
    if not (math.isfinite(se) and se > 0):
        return math.nan, math.nan
    diff = sum(signs[g] * float(groups[g].mean()) for g in names)
    half = float(special.stdtrit(df, 1 - alpha / 2)) * se  # scipy.stats.t.ppf, without its ~40 µs overhead
    return diff - half, diff + half


def one_seed_out(groups: Mapping[str, np.ndarray], signs: Mapping[str, float], alpha: float, test: str,
                 margin: float | None, verdict: str, hc3: bool = False) -> bool | None:
    """Whether every interval with one seed of one group left out gives ``verdict``; None when a
    group has fewer than 3 seeds."""
    if any(v.size < 3 for v in groups.values()):
        return None
    for name, values in groups.items():
        for i in range(values.size):
            fewer = dict(groups, **{name: np.delete(values, i)})
            if stats.interval_verdict(*contrast(fewer, signs, alpha, hc3), test, margin) != verdict:
                return False
    return True


def assess(groups: Mapping[str, np.ndarray], signs: Mapping[str, float], alpha: float, test: str,
           margin: float | None, verdict: str, low: float, high: float, hc3: bool = False) -> dict:
    """``room`` and ``one_seed_out`` of a look, for :class:`ablate.report.judge.results.CheckResult`."""
    out: dict = {"room": room(low, high, test, margin, verdict)}
    if verdict in DECIDED:
        out["one_seed_out"] = one_seed_out(groups, signs, alpha, test, margin, verdict, hc3)
    return out


def is_borderline(verdict: str, room_: float, survives: bool | None, count: bool = False) -> bool:
    """A decided verdict with less than :data:`BORDERLINE_ROOM` of room, or one that one seed undoes.
    A ``count`` (an event check) is borderline only when one run undoes it (left out, or its outcome
    changed): a count moves only by runs, and the room of even a clean split is capped by its runs (9
    of 9 against 0 of 9 has 0.18 at the first look's α), so room alone would call every first look
    borderline."""
    if verdict not in DECIDED:
        return False
    return survives is False or (not count and math.isfinite(room_) and room_ < BORDERLINE_ROOM)
