"""A claim's verdict from its run records: replay each check's looks, correct for multiplicity, and
combine checks into clauses and clauses into the claim.

The sweeper (``hydra/sweeper: ablate``) calls :func:`judge_claim` after every look to learn which
checks are still open and which runs their next look needs (``CheckResult.need``); the report
calls the same function on the finished sweep. So both judge alike: at look k each cell counts only
the seeds of look k (:mod:`ablate.report.sequential`), judged at alpha / K, and a check's verdict
is the one of the first look that decided it.

* A look decides when its interval does (:func:`ablate.report.stats.decide`) and every run it
  reads has a record (a look with runs missing is shown, but decides nothing).
* Multiplicity: a clause (and the claim) is supported only when every check of it is
  (intersection-union: no correction needed). The p-values behind "contradicted" are Holm-corrected
  over the claim's checks, after multiplying each by its number of looks: a check is not supported
  only when that adjusted p < alpha (and its interval says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from ablate.report import stats
from ablate.report.checks import CheckResult, LookResult, judge_look, scope_of
from ablate.report.claims import CheckSpec, ClaimSpec, Clause, parse_claim
from ablate.report.sequential import METHOD, SeedPlan, fresh_seeds, look_alpha, looks, plan_of
from ablate.report.values import record_cell


@dataclass
class ClauseResult:
    clause: Clause
    verdict: str
    checks: list[CheckResult] = field(default_factory=list)


@dataclass
class ClaimResult:
    name: str
    statement: str
    verdict: str
    reason: str
    checks: list[CheckResult]
    plot: dict[str, Any] = field(default_factory=dict)
    claim: dict[str, Any] = field(default_factory=dict)
    clauses: list[ClauseResult] = field(default_factory=list)
    scope: dict[str, str] = field(default_factory=dict)
    plan: SeedPlan = field(default_factory=SeedPlan)
    budget: str = ""
    alpha: float = stats.ALPHA
    notes: list[str] = field(default_factory=list)

    @property
    def untested(self) -> list[ClauseResult]:
        return [c for c in self.clauses if c.verdict == stats.NOT_TESTED]

    @property
    def open_checks(self) -> list[CheckResult]:
        """Checks whose next look still lacks runs: what a sequential sweep launches next."""
        return [c for c in self.checks if not c.decided and c.need]

    def needs(self) -> set:
        """The (cell, seed) pairs the open checks' next looks read and no record holds yet."""
        out: set = set()
        for c in self.open_checks:
            out |= c.need
        return out


def budget_text(records: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]] | None = None) -> str:
    """``budget=quick`` and the epochs of ``rows`` (default: all records), e.g. ``budget=quick, 10 epochs``."""
    names = sorted({str((r.get("choices") or {}).get("budget")) for r in records if (r.get("choices") or {}).get("budget")})
    epochs = sorted({e for r in (rows if rows is not None else records)
                     if isinstance(e := ((r.get("config") or {}).get("trainer") or {}).get("max_epochs"), int)})
    parts = []
    if names:
        parts.append(f"budget={'/'.join(names)}")
    if epochs:
        parts.append(f"{'/'.join(map(str, epochs))} epoch{'s' if epochs != [1] else ''}")
    return ", ".join(parts)


def replay_check(records: Sequence[dict[str, Any]], spec: CheckSpec, plan: SeedPlan,
                 alpha: float = stats.ALPHA, present: set | None = None) -> CheckResult:
    """Judge ``spec`` look by look; stop at the first look that decides, or at the first look
    whose runs are not all there (its missing runs become ``need``)."""
    if present is None:
        present = {(record_cell(r), r.get("seed")) for r in records}
    fresh, fresh_note = fresh_seeds(plan, spec.fresh_seeds) if spec.tune else (False, None)
    planned = looks(plan, spec.kind, fresh)
    a = look_alpha(alpha, len(planned))
    scope = scope_of(records, spec)
    history: list[LookResult] = []
    result: CheckResult | None = None
    for look in planned:
        current, required = judge_look(scope, spec, look, a)
        missing = {pair for pair in required if pair not in present}
        complete = not missing
        if not complete and result is not None:  # a later look not run (yet): keep the last one
            result.need = missing
            break
        result = current
        result.need = missing
        history.append(LookResult(look.index, {s: result.n(s) for s in ("treatment", "baseline")}, a,
                                  result.verdict, result.comparison.diff_low if result.comparison else float("nan"),
                                  result.comparison.diff_high if result.comparison else float("nan"), complete))
        if not complete:
            if result.verdict != stats.INCONCLUSIVE:
                result.notes.append(f"look {look.index} lacks {len(missing)} run(s): it decides nothing yet "
                                    f"(its interval said {result.verdict_label})")
            result.verdict, result.candidate = stats.INCONCLUSIVE, False
            result.reason = f"look {look.index} is incomplete: {len(missing)} of its runs have no record yet"
            break
        if result.decided or scope.problem:
            break
    assert result is not None
    result.fresh, result.history, result.looks_planned, result.alpha_total = fresh, history, len(planned), alpha
    if fresh_note:
        result.notes.append(fresh_note)
    return result


def _holm(checks: Sequence[CheckResult], alpha: float) -> None:
    """Holm over the checks of min(1, looks × p_against): a contradiction stands only below alpha."""
    raw = [min(1.0, c.p_against * c.looks_planned) if math.isfinite(c.p_against) else 1.0 for c in checks]
    for check, adjusted in zip(checks, stats.holm(raw, alpha)):
        check.p_holm = adjusted
        if check.candidate:
            if adjusted < alpha:
                check.verdict = stats.NOT_SUPPORTED
            else:
                check.verdict = stats.INCONCLUSIVE
                check.reason += (f"; the interval excludes the claim at α={check.alpha:.3g}, but after Holm's "
                                 f"correction over {len(checks)} checks p={stats.fmt(adjusted, 2)} ≥ {alpha:g}")


def _null_reason(check: CheckResult, budget: str) -> None:
    """An inconclusive check is a null at this budget, never evidence against the claim: say so."""
    if check.verdict != stats.INCONCLUSIVE or check.comparison is None or not check.comparison.defined:
        return
    n = {s: check.n(s) for s in ("treatment", "baseline")}
    seeds = f"{n['treatment']} seeds" if n["treatment"] == n["baseline"] else f"{n['treatment']} vs {n['baseline']} seeds"
    at = f"at {budget.split(', ')[0]} " if budget else ""
    epochs = [p for p in budget.split(", ")[1:]]
    detail = ", ".join([seeds, *epochs])
    text = f"not shown {at}({detail}; detectable effect ≥ {stats.fmt(check.detectable, 2)})"
    if check.seeds_needed:
        what = f"the margin {stats.fmt(check.margin)}" if check.margin else f"the observed |Δ|={stats.fmt(abs(check.comparison.diff), 2)}"
        text += f"; {what} would need about {check.seeds_needed} seeds per side"
    check.reason = f"{check.reason}; {text}" if check.reason else text


def _clauses(spec: ClaimSpec, checks: Sequence[CheckResult]) -> list[ClauseResult]:
    out = []
    for clause in spec.clauses:
        mine = [c for c in checks if c.clause == clause.name]
        verdict = stats.combine([c.verdict for c in mine]) if mine else stats.NOT_TESTED
        out.append(ClauseResult(clause, verdict, mine))
    return out


def judge_claim(records: Sequence[dict[str, Any]], claim: dict[str, Any], alpha: float = stats.ALPHA) -> ClaimResult:
    """Judge every check of ``claim`` over ``records`` (any status) and combine the verdicts."""
    spec = parse_claim(claim)
    plan, notes = plan_of(records)
    present = {(record_cell(r), r.get("seed")) for r in records}
    checks = [replay_check(records, c, plan, alpha, present) for c in spec.checks]
    _holm(checks, alpha)
    budget = budget_text(records)
    for check in checks:
        check.budget = budget
        _null_reason(check, budget)
    clauses = _clauses(spec, checks)
    tested = [c for c in clauses if c.verdict != stats.NOT_TESTED]
    if clauses:
        verdict = stats.combine([c.verdict for c in tested])
    else:
        verdict = stats.combine([c.verdict for c in checks])
    if not checks:
        reason = "the claim declares no checks"
    else:
        counts = {v: sum(c.verdict == v for c in checks) for v in stats.VERDICTS}
        reason = ", ".join(f"{n} of {len(checks)} check(s) {v if v != stats.NO_EFFECT else 'no effect'}"
                           for v, n in counts.items() if n)
        untested = [c.clause.name for c in clauses if c.verdict == stats.NOT_TESTED]
        if untested:
            reason += f"; not tested: {', '.join(untested)}"
    return ClaimResult(name=spec.name, statement=spec.statement, verdict=verdict, reason=reason, checks=checks,
                       plot=dict(spec.plot), claim=dict(claim), clauses=clauses, scope=dict(spec.scope), plan=plan,
                       budget=budget, alpha=alpha, notes=notes)


def judge_check(records: Sequence[dict[str, Any]], check: dict[str, Any], alpha: float = stats.ALPHA) -> CheckResult:
    """One check on its own (a claim of one check): replayed and Holm-adjusted alike."""
    return judge_claim(records, {"name": "check", "statement": "", "checks": [check]}, alpha).checks[0]


SEQUENTIAL_METHOD = METHOD
