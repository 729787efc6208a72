"""A claim's verdict from its run records: replay each check's looks, correct for multiplicity, and
combine checks into clauses and clauses into the claim.

The sweeper (``hydra/sweeper: ablate``) calls :func:`judge_claim` after every look to learn which
checks are still open and which runs their next look needs (``CheckResult.need``); the report
calls the same function on the finished sweep. So both judge alike: at look k each cell counts only
the seeds of look k (:mod:`ablate.report.judge.sequential`), judged at that look's share of alpha
(O'Brien–Fleming α-spending), and a check's verdict is the one of the first look that decided it.

* A ``tune`` check whose judging seeds include the seeds that chose (no fresh seeds: smoke, or
  ``max_seeds`` too small, or ``fresh_seeds: false``) is **exploratory**: judged once, at its first
  look, and never supported or contradicted (``python -m ablate.calibrate`` measures how often
  choosing and judging on the same seeds calls equal arms "supported"). It takes no part in Holm's
  correction.
* A look whose decision is borderline (:mod:`ablate.report.judge.robust`) does not end the check
  while it has looks to go: the next look decides instead (and the sweeper runs its seeds). A check
  is still called supported only at a look whose interval supports it, so this keeps the error rate.
* A look decides when its interval does (:func:`ablate.report.stats.decide`) and every run it
  reads has a record (a look with runs missing is shown, but decides nothing).
* Multiplicity: a clause (and the claim) is supported only when every check of it is
  (intersection-union: no correction needed). Every way a check can fail goes through one Holm
  correction over the claim's checks, after scaling each p by alpha / its look's alpha: a check is
  "not supported" (contradicted) or shows "no effect within ±δ" only when that adjusted p < alpha
  (and its interval says so); otherwise it stays inconclusive and its next look may tell.
* Controls (:mod:`ablate.report.judge.controls`): the claim's conditions for its checks to mean
  something, judged on all the records; a failed one makes the clauses it guards **not informative at
  this budget**. Checks keep their verdicts, so Holm's correction and the sweeper's seeds are unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from ablate.report.judge import robust, stats
from ablate.report.judge.controls import NO_RUN, apply_controls, judge_controls
from ablate.report.judge.look import judge_look, scope_of
from ablate.report.judge.results import CheckResult, ClaimResult, ClauseResult, LookEntry
from ablate.report.judge.sequential import METHOD, SeedPlan, fresh_seeds, look_alphas, looks, plan_of
from ablate.report.records.values import record_cell
from ablate.report.spec.claim import CheckSpec, ClaimSpec, parse_claim

# how a failure reads before Holm's correction has its say, by check kind
CONTRADICTS = {"events": "Fisher's test contradicts the claim"}
INTERVAL_CONTRADICTS = "the interval excludes the claim"
INSIDE_MARGIN = "the interval lies inside (−δ, δ)"


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


@dataclass
class _Replay:
    """One check while its looks are replayed."""

    spec: CheckSpec
    looks: list
    offset: int          # the round of its first look: 1 for fresh judging seeds (chosen after round 0)
    fresh: bool
    scope: Any
    alphas: tuple[float, ...]  # each look's alpha (α-spending over its looks)
    total: float
    result: CheckResult | None = None
    history: list = field(default_factory=list)
    done: bool = False   # decided, out of looks, or waiting for runs
    note: str | None = None

    @property
    def exploratory(self) -> bool:
        """A tune check whose choosing seeds also judge it."""
        return bool(self.spec.tune) and not self.fresh

    def p_family(self) -> float:
        """Its p of failing (against, or no effect), scaled by total alpha / its look's alpha (so that
        it is below alpha exactly when the look decides), for Holm over checks; 1 for an exploratory
        check, which cannot fail."""
        p = self.result.p_fail if self.result is not None and not self.exploratory else float("nan")
        return min(1.0, p * self.total / self.result.alpha) if math.isfinite(p) else 1.0


def _verdict_label(result: CheckResult) -> str:
    if result.verdict == stats.NO_EFFECT:
        return f"no effect within ±{stats.fmt(result.spec.margin)}"
    return result.verdict


def _look(state: _Replay, k: int, present: set) -> bool:
    """Judge look ``k`` of ``state``; True when every run it reads has a record. A look with runs
    missing decides nothing and ends the check's replay (its missing runs become ``need``)."""
    current, required = judge_look(state.scope, state.spec, state.looks[k], state.alphas[k])
    missing = frozenset(pair for pair in required if pair not in present)
    if missing and state.result is not None:  # a later look not run (yet): keep the last one
        state.result, state.done = replace(state.result, need=missing), True
        return False
    state.history.append(LookEntry(k, current, not missing, current.verdict))
    if missing:
        notes = current.notes
        if current.verdict != stats.INCONCLUSIVE:
            notes += (f"look {k} lacks {len(missing)} run(s): it decides nothing yet (it said {_verdict_label(current)})",)
        current = replace(current, verdict=stats.INCONCLUSIVE, contradicts=False, no_effect=False, notes=notes,
                          reason=f"look {k} is incomplete: {len(missing)} of its runs have no record yet")
        state.done = True
    state.result = replace(current, need=missing)
    if state.scope.problem:
        state.done = True
    return not missing


def _alphas(alpha: float, planned: Sequence[Any]) -> tuple[float, ...]:
    """Each planned look's alpha: O'Brien–Fleming spending over the looks' seeds per side."""
    if any(look.judge is None for look in planned):
        return (alpha,) * len(planned)
    return look_alphas(alpha, tuple(len(look.judge) for look in planned))


def _exploratory_reason(result: CheckResult) -> str:
    why = ("the claim sets fresh_seeds: false" if result.spec.fresh_seeds is False else
           "fresh judging seeds need budget.max_seeds ≥ budget.seeds + 2")
    return (f"exploratory: the seeds that chose each side's {result.spec.tune} also judge it ({why}), so it "
            f"is neither supported nor contradicted; its interval alone would say {_verdict_label(result)}: "
            f"{result.reason}")


def replay(records: Sequence[dict[str, Any]], specs: Sequence[CheckSpec], plan: SeedPlan,
           alpha: float = stats.ALPHA) -> list[CheckResult]:
    """Judge the checks round by round, as the sweep ran them: in round r every open check takes
    its next look (a check with fresh judging seeds takes its first in round 1, since its seeds are
    chosen from round 0). After each round, a check is decided when its interval supports the claim,
    or when it contradicts the claim or shows no effect with a Holm-adjusted p < alpha over the
    claim's checks (each p scaled by alpha / its look's alpha). A check whose look lacks runs waits (``need``)."""
    present = {(record_cell(r), r.get("seed")) for r in records}
    states = []
    for spec in specs:
        fresh, note = fresh_seeds(plan, spec.fresh_seeds) if spec.tune else (False, None)
        planned = looks(plan, spec.kind, fresh)
        states.append(_Replay(spec, planned, 1 if fresh else 0, fresh, scope_of(records, spec),
                              _alphas(alpha, planned), alpha, note=note))
    rounds = max((s.offset + len(s.looks) for s in states), default=0)
    for r in range(rounds):
        took = []
        for state in states:
            k = r - state.offset
            if state.done or k < 0:
                continue
            if k >= len(state.looks):
                state.done = True
                continue
            if _look(state, k, present):
                took.append(id(state))
        adjusted = stats.holm([s.p_family() for s in states], alpha)
        for state, adj in zip(states, adjusted):
            if id(state) not in took:
                continue
            result = state.result
            verdict = result.verdict
            if state.exploratory:
                state.done = True
                state.result = replace(result, verdict=stats.EXPLORATORY, p_holm=adj, reason=_exploratory_reason(result))
                state.history[-1] = replace(state.history[-1], verdict=stats.EXPLORATORY)
                continue
            if result.fails and adj < alpha:
                verdict, state.done = (stats.NOT_SUPPORTED if result.contradicts else stats.NO_EFFECT), True
            elif result.fails:  # failing by its interval, not after Holm: the next look may tell
                verdict = stats.INCONCLUSIVE
            elif verdict != stats.INCONCLUSIVE:
                state.done = True
            last = r - state.offset >= len(state.looks) - 1
            if state.done and not last and robust.is_borderline(verdict, result.room, result.one_seed_out,
                                                                count=result.spec.kind == "events"):
                state.done = False  # decided on a hair with looks to go: the next look decides instead
            if last:
                state.done = True
            state.result = replace(result, verdict=verdict, p_holm=adj)
            state.history[-1] = replace(state.history[-1], verdict=verdict)
    final = stats.holm([s.p_family() for s in states], alpha)
    out = []
    for state, adj in zip(states, final):
        result = state.result
        changes: dict[str, Any] = dict(fresh=state.fresh, history=tuple(state.history), looks_planned=len(state.looks),
                                       alpha_total=alpha, notes=result.notes + ((state.note,) if state.note else ()))
        if result.verdict not in (stats.NOT_SUPPORTED, stats.NO_EFFECT):
            changes["p_holm"] = adj
        if result.fails and result.verdict == stats.INCONCLUSIVE:
            what = INSIDE_MARGIN if result.no_effect else CONTRADICTS.get(result.spec.kind, INTERVAL_CONTRADICTS)
            changes["reason"] = (f"{result.reason}; {what} at α={result.alpha:.3g}, but after Holm's correction over "
                                 f"{len(states)} checks p={stats.fmt(adj, 2)} ≥ {alpha:g}")
        out.append(replace(result, **changes))
    return out


def _clauses(spec: ClaimSpec, checks: Sequence[CheckResult],
             not_applicable: dict[str, str] | None = None) -> tuple[ClauseResult, ...]:
    out = []
    for clause in spec.clauses:
        mine = tuple(c for c in checks if c.spec.clause == clause.name)
        if not mine and clause.name in (not_applicable or {}):
            out.append(ClauseResult(clause, stats.NOT_APPLICABLE, mine, reason=not_applicable[clause.name]))
            continue
        verdict = stats.combine([c.verdict for c in mine]) if mine else stats.NOT_TESTED
        out.append(ClauseResult(clause, verdict, mine))
    return tuple(out)


def judge_claim(records: Sequence[dict[str, Any]], claim: dict[str, Any], alpha: float = stats.ALPHA,
                applicability: Any = None) -> ClaimResult:
    """Judge every check of ``claim`` over ``records`` (any status) and combine the verdicts.
    ``applicability`` (an :class:`ablate.applicability.Applicability`: a model or data of the user's)
    leaves out the checks that do not apply; a clause none of whose checks applies is **not applicable**."""
    not_applicable: dict[str, str] = {}
    n_declared = len(claim.get("checks") or [])
    if applicability is not None:
        not_applicable = applicability.clause_reasons(claim)
        claim = applicability.apply(claim)
    spec, _ = parse_claim(claim)  # a claim that fails the config check never ran; its checks' problems say why
    plan, notes = plan_of(records)
    checks = tuple(replay(records, spec.checks, plan, alpha))
    clauses = _clauses(spec, checks, not_applicable)
    controls = judge_controls(records, spec.controls, alpha)
    if applicability is not None:  # on a user's model: a control none of whose cells ran there does not apply
        skipped = [c.spec.name for c in controls if not c.groups and c.reason == NO_RUN]
        controls = tuple(c for c in controls if c.spec.name not in skipped)
        notes = [*notes, *([f"control{'s' if len(skipped) > 1 else ''} {', '.join(skipped)}: no run of "
                            "its cells on this model and data, so it does not apply"] if skipped else [])]
    clauses = apply_controls(clauses, controls)
    failed = [c.spec.name for c in controls if not c.holds]
    tested = [c for c in clauses if c.verdict not in (stats.NOT_TESTED, stats.NOT_APPLICABLE) and not c.clause.explains]
    if clauses:
        verdict = stats.combine([c.verdict for c in tested])
    else:
        verdict = stats.combine([c.verdict for c in checks])
        if failed and checks:  # no clauses: a failed control guards the whole claim
            verdict = stats.NOT_INFORMATIVE
    if applicability is not None and not applicability.applies:
        verdict, reason = stats.NOT_APPLICABLE, str(applicability.reason)
    elif not checks:
        reason = "the claim declares no checks"
    else:
        counts = {v: sum(c.verdict == v for c in checks) for v in stats.VERDICTS}
        reason = ", ".join(f"{n} of {len(checks)} check(s) {v if v != stats.NO_EFFECT else 'no effect'}"
                           for v, n in counts.items() if n)
        untested = [c.clause.name for c in clauses if c.verdict == stats.NOT_TESTED]
        if untested:
            reason += f"; not tested: {', '.join(untested)}"
        if not_applicable:
            reason += f"; not applicable: {', '.join(n for n in not_applicable if n in {c.clause.name for c in clauses})}"
        if applicability is not None and len(checks) < n_declared:
            reason += f" ({n_declared - len(checks)} of {n_declared} checks do not apply to this model and data)"
        if failed:
            guarded = [c.clause.name for c in clauses if c.verdict == stats.NOT_INFORMATIVE]
            reason += (f"; not informative at this budget: control{'s' if len(failed) > 1 else ''} "
                       f"{', '.join(failed)} {'fail' if len(failed) > 1 else 'fails'}"
                       + (f" (clauses {', '.join(guarded)})" if guarded else ""))
    return ClaimResult(name=spec.name, statement=spec.statement, verdict=verdict, reason=reason, checks=checks,
                       plot=dict(spec.plot), claim=dict(claim), clauses=clauses, scope=dict(spec.scope), plan=plan,
                       budget=budget_text(records), alpha=alpha, notes=tuple(notes),
                       controls=controls)


def judge_check(records: Sequence[dict[str, Any]], check: dict[str, Any], alpha: float = stats.ALPHA) -> CheckResult:
    """One check on its own (a claim of one check): replayed and Holm-adjusted alike."""
    return judge_claim(records, {"name": "check", "statement": "", "checks": [check]}, alpha).checks[0]


SEQUENTIAL_METHOD = METHOD
