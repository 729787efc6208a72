"""One look of one check: the skeleton every kind shares, and the registry of the part that differs.

A look reads the runs of its check's scope at the look's seeds (:mod:`ablate.report.judge.sequential`)
and hands them to its kind's estimator, which returns numbers and a decision:

* plain, ``tune`` and ``spread`` checks: :func:`ablate.report.judge.plain.estimate` (Welch);
* ``interaction`` checks: :func:`ablate.report.judge.interaction.judge` (difference in differences, Welch se, Satterthwaite df);
* ``event`` checks: :func:`ablate.report.judge.events.judge` (Fisher's exact test).

Adding a check kind is one estimator here and one text renderer in :mod:`ablate.report.present.text`.
How looks combine into the check's verdict, and checks into the claim's: :mod:`ablate.report.judge.claim`.
"""

from __future__ import annotations

from typing import Callable

from ablate.report.judge import events, interaction, plain, stats
from ablate.report.judge.results import CheckResult
from ablate.report.judge.scope import Scope, Work, scope_of
from ablate.report.judge.sequential import Look
from ablate.report.spec.claim import CheckSpec

Estimator = Callable[[Scope, CheckSpec, Look, float, Work], "tuple[dict, set]"]
ESTIMATORS: dict[str, Estimator] = {
    "plain": plain.estimate, "tune": plain.estimate, "spread": plain.estimate,
    "interaction": interaction.judge, "events": events.judge,
}

__all__ = ["ESTIMATORS", "judge_look", "scope_of"]


def judge_look(scope: Scope, spec: CheckSpec, look: Look, alpha: float) -> tuple[CheckResult, set]:
    """The check judged on the seeds of ``look`` at ``alpha``, and the (cell, seed) pairs that look
    reads (so the caller can tell whether every one of them has a record)."""
    work = Work(notes=list(scope.notes))
    numbers: dict = {}
    required: set = set()
    if scope.problem:
        numbers["reason"] = scope.problem
    else:
        numbers, required = ESTIMATORS[spec.kind](scope, spec, look, alpha, work)
    result = CheckResult(
        spec=spec, alpha=alpha, look=look.index, where=dict(scope.where),
        seeds_chose=look.select if spec.tune else None, seeds_judged=look.judge,
        notes=tuple(work.notes), counts=work.counts, run_ids=work.run_ids, tuned=work.tuned,
        spread_grid=list(work.spread_grid), side_grids=work.side_grids,
        contradicts=numbers.get("verdict") == stats.NOT_SUPPORTED, no_effect=numbers.get("verdict") == stats.NO_EFFECT,
        **numbers)
    return result, required
