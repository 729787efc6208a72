"""The claim schema: what an experiment's ``claim:`` block may say, its defaults, and its errors.

Torch-free and statistics-free (no SciPy, no statsmodels): the config check imports it before any
run, in the process that launches a sweep.

A claim lists its ``clauses`` (the statement's parts) and ``checks``; each check tests one clause::

    claim:
      name: optimizer_adam_vs_sgd
      statement: ...
      clauses:
        - {name: momentum, text: "SGD with momentum converges faster than plain SGD"}
        - {name: adamw, text: "...", not_tested: "why"}
        - {name: mechanism, text: "why it happens", explains: true}   # judged, not in the claim's verdict
      scope: {optimizer: "...", hardware: "2-core CPU"}
      checks:
        - {name: ..., clause: momentum, test: superiority, metric: test/acc, goal: max,
           factor: optimizer, treatment: momentum, baseline: sgd, tune: optimizer.lr}

See :class:`CheckSpec` for every field of a check and its default.

``treatment`` and ``baseline`` are one level each, or a list of levels that the side pools
(``treatment: [0.3, 1.0, 3.0]``: every run at any of them); the two sides share no level.

``metric`` is a record metric or a derived one, ``a - b`` / ``a + b`` of two record metrics
(:mod:`ablate.report.spec.derived`): ``metric: train_eval/acc - test/acc``, the generalisation gap,
computed per run. Its direction is unknown, so a check that needs one says ``metric_goal``.

Besides the plain, ``tune`` and ``spread`` checks, two kinds compare something else:

**Interaction** (``interaction:``): does the effect of ``factor`` (treatment vs baseline) differ
between two levels of a second factor? The check's Δ is the difference of the two effects (a
difference in differences)::

    - name: batch size hurts batch norm more than layer norm
      metric: val/acc
      goal: max                 # the effect is claimed larger at interaction.treatment
      factor: data.batch_size   # the effect: mean at 32 − mean at 4 (treatment − baseline) ...
      treatment: 32
      baseline: 4
      interaction: {factor: norm, treatment: batch, baseline: layer}   # ... at norm=batch vs layer

Δ = (mean[32, batch] − mean[4, batch]) − (mean[32, layer] − mean[4, layer]) for ``goal: max`` (the
effect is larger at ``interaction.treatment``), its negative for ``goal: min`` (smaller there), from
the OLS fit of the four cells' seed values on both factors and their interaction term, with HC3
standard errors and Satterthwaite degrees of freedom (:mod:`ablate.report.judge.interaction`). ``test``, ``margin``, ``where``,
``transform`` and ``on_diverged`` work as for a plain check; ``tune``/``spread``/``event`` do not
combine with it. The four cells need at least 2 ok seeds each.

**Event count** (``event:``): is an event more (``goal: max``) or less (``goal: min``) frequent
among the treatment's runs than among the baseline's? Fisher's exact test, one-sided in the claimed
direction, on the counts "k of n runs" (:mod:`ablate.report.judge.events`)::

    - name: the largest learning rates fail to train more often
      event: {diverged: true, above: 2.302585}   # diverged, or train/loss at or above ln(10)
      metric: train/loss
      goal: max
      factor: optimizer.lr
      treatment: [0.3, 1.0, 3.0]
      baseline: [0.001, 0.003, 0.01]

``event: diverged`` (short for ``{diverged: true}``): status ``diverged``, or (when the check names a
``metric``) that metric recorded as NaN/inf. ``above: x`` / ``below: x``: an ok run whose ``metric``
(after ``transform``) is at or above / at or below ``x``; diverged runs then follow ``on_diverged``
(left out by default; ``worst``/``chance`` score them first). ``diverged: true`` with a threshold
counts either. Failed runs, and ok runs without the metric, are left out. An event check takes no
``margin`` and no test but ``superiority``.

**Controls** (``controls:``, a list beside ``checks``): the conditions under which the checks mean
something ("the arm the claim favours learns the task above chance"); a failed control makes every
clause it guards **not informative at this budget**. Schema and decision rule:
:mod:`ablate.report.spec.controls`.

The compound fields (pooled sides, ``interaction``, ``event``) are parsed in
:mod:`ablate.report.spec.fields`; every rule lives in :mod:`ablate.report.spec.rules`; the vocabulary
(tests, goals, fields) in :mod:`ablate.report.spec.names`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ablate.report.spec.controls import ControlSpec, parse_controls
from ablate.report.spec.fields import EventSpec, InteractionSpec, level, number, parse_event, parse_interaction
from ablate.report.spec.names import (  # noqa: F401 (the vocabulary, re-exported with the schema)
    EQUIVALENCE, GOAL_ALIASES, GOALS, KNOWN_CHECK_KEYS, NONINFERIORITY, ON_DIVERGED, REQUIRED, STATISTICS,
    SUPERIORITY, TESTS, TRANSFORM_ALIASES, TRANSFORMS, chance_applies, default_select_on, metric_direction,
)
from ablate.report.spec.rules import check_errors, claim_errors, joined


@dataclass(frozen=True)
class CheckSpec:
    """One check as declared, with the defaults filled in (see the module docstring)."""

    name: str
    metric: str
    goal: str                       # min | max: which way the compared statistic is claimed to go
    factor: str
    treatment: Any
    baseline: Any
    clause: str | None = None
    test: str = SUPERIORITY
    margin: float | None = None     # δ in the metric's units after `transform`
    where: dict[str, Any] = field(default_factory=dict)
    transform: str | None = None
    tune: str | None = None
    select_on: str | None = None    # tune checks: the metric that picks each side's best value
    fresh_seeds: bool | None = None  # None: on when budget.max_seeds leaves >= 2 fresh seeds per side
    on_diverged: str = "exclude"
    spread: str | None = None
    statistic: str = "sd"
    within: float | None = None
    metric_goal: str | None = None  # spread checks: which way the metric itself is better
    interaction: InteractionSpec | None = None
    event: EventSpec | None = None
    problems: tuple[str, ...] = ()  # why the check cannot be judged as written (shown as its reason)

    @property
    def kind(self) -> str:
        """``tune``, ``spread``, ``interaction``, ``events`` or ``plain``: how a look is judged, and
        which seeds it reads (only ``tune`` differs there, see ablate.report.judge.sequential)."""
        if self.tune:
            return "tune"
        if self.spread:
            return "spread"
        if self.interaction:
            return "interaction"
        return "events" if self.event else "plain"


@dataclass(frozen=True)
class Clause:
    name: str
    text: str = ""
    not_tested: str | None = None
    explains: bool = False   # a clause about *why* (a mechanism), not part of the statement: judged and
                             # shown, but not combined into the claim's verdict


@dataclass(frozen=True)
class ClaimSpec:
    name: str
    statement: str
    checks: list[CheckSpec]
    clauses: list[Clause] = field(default_factory=list)
    scope: dict[str, str] = field(default_factory=dict)
    plot: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    controls: tuple[ControlSpec, ...] = ()


def _as_dict(node: Any) -> dict[str, Any]:
    if isinstance(node, Mapping):
        return dict(node)
    return {}


def parse_check(check: Mapping[str, Any]) -> CheckSpec:
    """A :class:`CheckSpec` from a check's mapping. Never raises: what is wrong lands in
    ``problems`` and the check is then reported inconclusive with that reason."""
    check = _as_dict(check)
    problems = [joined("the check", e).replace("the check.", "the check's ", 1) for e in check_errors(check)]
    goal_text = str(check.get("goal", "")).lower()
    goal = GOAL_ALIASES.get(goal_text, goal_text)
    raw_transform = check.get("transform")
    transform = TRANSFORM_ALIASES.get(str(raw_transform).lower() if raw_transform is not None else None,
                                       raw_transform)
    tune = str(check["tune"]) if check.get("tune") else None
    spread = str(check["spread"]) if check.get("spread") else None
    test = str(check.get("test") or SUPERIORITY).lower()
    margin = number(check.get("margin"))
    if margin is not None and margin < 0:
        margin = None
    metric = str(check.get("metric") or "")
    on_diverged = str(check.get("on_diverged") or ("worst" if tune or spread else "exclude")).lower()
    statistic = str(check.get("statistic") or "sd").lower()
    within = number(check.get("within"))
    interaction, _ = parse_interaction(check.get("interaction"), check.get("factor"))
    event, _ = parse_event(check.get("event"))
    fresh = check.get("fresh_seeds")
    name = check.get("name") or f"{check.get('factor')}: {check.get('treatment')} vs {check.get('baseline')}"
    return CheckSpec(
        name=str(name), metric=metric, goal=goal, factor=str(check.get("factor", "")),
        treatment=level(check.get("treatment")), baseline=level(check.get("baseline")),
        clause=str(check["clause"]) if check.get("clause") is not None else None, test=test, margin=margin,
        where=_as_dict(check.get("where")), transform=transform, tune=tune,
        select_on=str(check.get("select_on") or default_select_on(metric)) if tune else None,
        fresh_seeds=None if fresh is None else bool(fresh), on_diverged=on_diverged, spread=spread,
        statistic=statistic, within=within,
        metric_goal=str(check["metric_goal"]) if check.get("metric_goal") else None,
        interaction=interaction, event=event, problems=tuple(problems),
    )


def parse_claim(raw: Any) -> tuple[ClaimSpec, list[str]]:
    """The one parser of a ``claim:`` block: a :class:`ClaimSpec` (what can be judged; a check that
    cannot carries its ``problems``) and every error, as the config check prints them (empty for a
    valid claim). The config check and the sweeper refuse a claim with errors before any run; the
    report judges what it can and says why it cannot judge the rest."""
    errors = claim_errors(raw)
    claim = _as_dict(raw)
    clauses = []
    for c in claim.get("clauses") or []:
        c = _as_dict(c)
        if c.get("name"):
            clauses.append(Clause(str(c["name"]), str(c.get("text") or ""),
                                  str(c["not_tested"]) if c.get("not_tested") else None,
                                  bool(c.get("explains", False))))
    scope = {str(k): str(v) for k, v in _as_dict(claim.get("scope")).items()}
    return ClaimSpec(
        name=str(claim.get("name") or "claim"), statement=str(claim.get("statement") or ""),
        checks=[parse_check(c) for c in (claim.get("checks") or []) if isinstance(c, Mapping)],
        clauses=clauses, scope=scope, plot=_as_dict(claim.get("plot")), raw=claim,
        controls=parse_controls(claim.get("controls"), [c.name for c in clauses]),
    ), errors
