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
(:mod:`ablate.report.derived`): ``metric: train_eval/acc - test/acc``, the generalisation gap,
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
standard errors (:mod:`ablate.report.interaction`). ``test``, ``margin``, ``where``,
``transform`` and ``on_diverged`` work as for a plain check; ``tune``/``spread``/``event`` do not
combine with it. The four cells need at least 2 ok seeds each.

**Event count** (``event:``): is an event more (``goal: max``) or less (``goal: min``) frequent
among the treatment's runs than among the baseline's? Fisher's exact test, one-sided in the claimed
direction, on the counts "k of n runs" (:mod:`ablate.report.events`)::

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

The compound fields (pooled sides, ``interaction``, ``event``) are parsed in
:mod:`ablate.report.claim_fields`; what the kinds do not combine with is checked here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ablate.report.spec import derived
from ablate.report.spec.fields import (
    EventSpec, InteractionSpec, level, number, parse_event, parse_interaction, side_errors,
)

SUPERIORITY, NONINFERIORITY, EQUIVALENCE = "superiority", "noninferiority", "equivalence"
TESTS = (SUPERIORITY, NONINFERIORITY, EQUIVALENCE)
ON_DIVERGED = ("worst", "chance", "exclude")
STATISTICS = ("sd", "width")
GOALS = ("min", "max")
TRANSFORMS = ("log10",)
REQUIRED = ("metric", "goal", "factor", "treatment", "baseline")
KNOWN_CHECK_KEYS = (
    "name", "clause", "test", "margin", "metric", "goal", "factor", "treatment", "baseline", "where",
    "transform", "tune", "select_on", "fresh_seeds", "on_diverged", "spread", "statistic", "within",
    "metric_goal", "interaction", "event",
)

_GOAL_ALIASES = {"min": "min", "minimize": "min", "lower": "min", "max": "max", "maximize": "max", "higher": "max"}
_TRANSFORM_ALIASES = {None: None, "": None, "none": None, "log10": "log10", "log": "log10"}


def metric_direction(metric: str, declared: str | None = None) -> str | None:
    """Which way the *metric itself* is better (not the check's statistic): ``max`` for ``*/acc``,
    ``min`` for ``*/loss``, else the check's ``metric_goal``; None when unknown (a derived metric
    such as ``train_eval/acc - test/acc`` has no direction of its own)."""
    if declared:
        return _GOAL_ALIASES.get(str(declared).lower())
    if derived.is_derived(metric):
        return None
    tail = str(metric).rsplit("/", 1)[-1]
    if tail == "acc":
        return "max"
    if tail == "loss":
        return "min"
    return None


def chance_applies(metric: str) -> bool:
    """``on_diverged: chance`` has a value only for accuracies (1/classes) and losses (ln classes)."""
    return not derived.is_derived(metric) and str(metric).rsplit("/", 1)[-1] in ("acc", "loss")


def default_select_on(metric: str) -> str:
    """``test/acc`` -> ``val/acc``: a tuned check chooses on validation data and is judged on test data."""
    split, sep, name = str(metric).partition("/")
    return f"val/{name}" if sep else str(metric)


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
        which seeds it reads (only ``tune`` differs there, see ablate.report.sequential)."""
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


def _as_dict(node: Any) -> dict[str, Any]:
    if isinstance(node, Mapping):
        return dict(node)
    return {}


def _kind_errors(check: Mapping[str, Any]) -> list[str]:
    """What the new check kinds and derived metrics do not combine with (field first)."""
    errors: list[str] = []
    metric = check.get("metric")
    interaction, event = check.get("interaction") is not None, check.get("event") is not None
    if metric is not None and (why := derived.problem(str(metric))):
        errors.append(f"metric={metric!r} is invalid: {why}")
    if metric is not None and derived.is_derived(str(metric)) and check.get("tune") and not check.get("select_on"):
        errors.append("select_on is missing: a tune check on a derived metric must name the metric that chooses "
                      "each side's value (e.g. select_on: val/acc)")
    inter = check.get("interaction")
    fixed = {str(k) for k in _as_dict(check.get("where"))}
    if isinstance(inter, Mapping) and inter.get("factor") is not None and str(inter["factor"]) in fixed:
        errors.append(f"interaction.factor={inter['factor']!r} is fixed by where; the interaction compares two of "
                      "its levels, so leave it out of where")
    for kind, on in (("interaction", interaction), ("event", event)):
        if not on:
            continue
        others = [k for k in ("tune", "spread", "interaction", "event") if k != kind and check.get(k) is not None]
        if others and not (kind == "event" and others == ["interaction"]):  # said once, under interaction
            errors.append(f"{kind} cannot be combined with {', '.join(others)}")
    if event:
        test = check.get("test")
        if test is not None and test != SUPERIORITY:
            errors.append(f"test={test!r} does not apply to an event check; valid values: superiority (Fisher's "
                          "exact test, one-sided in the claimed direction)")
        if check.get("margin") is not None:
            errors.append("margin does not apply to an event check (Fisher's exact test compares counts, with no margin)")
        spec, _ = parse_event(check.get("event"))
        if spec and spec.diverged and check.get("on_diverged") is not None:
            errors.append("on_diverged does not apply: with event.diverged true, a diverged run is the event")
        if spec and (spec.above is not None or spec.below is not None) and metric is None:
            errors.append("metric is missing: event.above/below is a threshold on the check's metric")
    worst = check.get("on_diverged") == "worst" and (interaction or event)
    if worst and metric is not None and metric_direction(str(metric), check.get("metric_goal")) is None:
        errors.append(f"on_diverged=worst needs to know which way {metric!r} is better: add metric_goal: min or max")
    return errors


def _required(check: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields a check must give: an event check needs a metric only for a threshold."""
    return tuple(k for k in REQUIRED if not (k == "metric" and check.get("event") is not None))


def parse_check(check: Mapping[str, Any]) -> CheckSpec:
    """A :class:`CheckSpec` from a check's mapping. Never raises: what is wrong lands in
    ``problems`` and the check is then reported inconclusive with that reason."""
    check = _as_dict(check)
    problems: list[str] = []
    missing = [k for k in _required(check) if check.get(k) is None]
    if missing:
        problems.append(f"the check is malformed: missing {', '.join(missing)}")
    goal_text = str(check.get("goal", "")).lower()
    goal = _GOAL_ALIASES.get(goal_text, goal_text)
    if check.get("goal") is not None and goal not in GOALS:
        problems.append(f"the check's goal is {check.get('goal')!r}; valid: min, max")
    raw_transform = check.get("transform")
    transform = _TRANSFORM_ALIASES.get(str(raw_transform).lower() if raw_transform is not None else None,
                                       raw_transform)
    if transform not in (None, *TRANSFORMS):
        problems.append(f"the check's transform is {raw_transform!r}; valid: log10")
    tune = str(check["tune"]) if check.get("tune") else None
    spread = str(check["spread"]) if check.get("spread") else None
    if tune and spread:
        problems.append("the check is malformed: 'tune' and 'spread' cannot be combined")
    test = str(check.get("test") or SUPERIORITY).lower()
    if test not in TESTS:
        problems.append(f"the check's test is {check.get('test')!r}; valid: {', '.join(TESTS)}")
    margin = number(check.get("margin"))
    if test in (NONINFERIORITY, EQUIVALENCE) and (margin is None or margin < 0):
        problems.append(f"a {test} check needs a margin >= 0 (got {check.get('margin')!r})")
    if margin is not None and margin < 0:
        margin = None
    metric = str(check.get("metric") or "")
    on_diverged = str(check.get("on_diverged") or ("worst" if tune or spread else "exclude")).lower()
    if on_diverged not in ON_DIVERGED:
        problems.append(f"the check's on_diverged is {check.get('on_diverged')!r}; valid: {', '.join(ON_DIVERGED)}")
    statistic = str(check.get("statistic") or "sd").lower()
    if statistic not in STATISTICS:
        problems.append(f"the check's statistic is {check.get('statistic')!r}; valid: {', '.join(STATISTICS)}")
    within = number(check.get("within"))
    if statistic == "width" and (within is None or within < 0):
        problems.append("statistic: width needs within: <how close to each seed's best, in the metric's units>")
    interaction, interaction_errors = parse_interaction(check.get("interaction"), check.get("factor"))
    event, event_errors = parse_event(check.get("event"))
    sides = side_errors("", check.get("treatment"), check.get("baseline"))
    problems += [f"the check's {e}" for e in (*sides, *interaction_errors, *event_errors, *_kind_errors(check))]
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


def parse_claim(claim: Mapping[str, Any]) -> ClaimSpec:
    """A :class:`ClaimSpec` from a claim's mapping (as the run records carry it)."""
    claim = _as_dict(claim)
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
    )


def claim_errors(claim: Any) -> list[str]:
    """Every problem of a claim block, in the config check's style: the field, what is wrong, what
    would work. ``claim`` is a plain mapping (or None: no claim, no errors)."""
    if claim is None:
        return []
    if not isinstance(claim, Mapping):
        return [f"claim={claim!r} is invalid: it must be a mapping with statement, clauses and checks"]
    errors: list[str] = []
    if not claim.get("statement"):
        errors.append("claim.statement is missing: say in one sentence what the experiment tests")
    clauses = claim.get("clauses")
    declared: list[str] = []
    if clauses is not None and not isinstance(clauses, (list, tuple)):
        errors.append("claim.clauses must be a list of {name, text} (optionally not_tested: <why>)")
        clauses = []
    for i, c in enumerate(clauses or []):
        if not isinstance(c, Mapping) or not c.get("name"):
            errors.append(f"claim.clauses[{i}] must be a mapping with a name and a text")
            continue
        if str(c["name"]) in declared:
            errors.append(f"claim.clauses[{i}].name={c['name']!r} is declared twice")
        declared.append(str(c["name"]))
    scope = claim.get("scope")
    if scope is not None and not isinstance(scope, Mapping):
        errors.append("claim.scope must be a mapping of key -> text (e.g. {hardware: 2-core CPU})")
    errors += _plot_errors(claim.get("plot"))
    checks = claim.get("checks")
    if not checks:
        errors.append("claim.checks is empty: list at least one {metric, goal, factor, treatment, baseline}")
        return errors
    named: set[str] = set()
    for i, check in enumerate(checks):
        where = f"claim.checks[{i}]"
        if not isinstance(check, Mapping):
            errors.append(f"{where} must be a mapping")
            continue
        for key in _required(check):
            if check.get(key) is None:
                errors.append(f"{where}.{key} is missing")
        unknown = sorted(set(check) - set(KNOWN_CHECK_KEYS))
        if unknown:
            errors.append(f"{where} has unknown field(s) {', '.join(unknown)}; valid fields: "
                          f"{', '.join(KNOWN_CHECK_KEYS)}")
        errors += _check_field_errors(where, check)
        clause = check.get("clause")
        if clause is not None:
            named.add(str(clause))
            if str(clause) not in declared:
                errors.append(f"{where}.clause={clause!r} is not a declared clause; valid values: "
                              f"{', '.join(declared) or '(none: declare claim.clauses first)'}")
        elif declared:
            errors.append(f"{where}.clause is missing; valid values: {', '.join(declared)}")
    for i, c in enumerate(clauses or []):
        if isinstance(c, Mapping) and c.get("name") and str(c["name"]) not in named and not c.get("not_tested"):
            errors.append(f"claim.clauses[{i}] ({c['name']}) is tested by no check: add a check with "
                          f"clause: {c['name']}, or not_tested: <why>")
    return errors


PLOT_FIELDS = ("x", "metric", "line", "where", "tune", "goal", "logx", "logy")


def _plot_errors(plot: Any) -> list[str]:
    """The headline figure's block: ``{x, metric, logx, logy}``, and optionally what its points are
    (``line``: one line per level of a factor, ``where``, ``tune`` with ``goal``: each point at its
    best value of ``tune``)."""
    if plot is None:
        return []
    if not isinstance(plot, Mapping):
        return [f"claim.plot must be a mapping with fields {', '.join(PLOT_FIELDS)}"]
    errors = []
    unknown = sorted(set(plot) - set(PLOT_FIELDS))
    if unknown:
        errors.append(f"claim.plot has unknown field(s) {', '.join(unknown)}; valid fields: {', '.join(PLOT_FIELDS)}")
    if plot.get("goal") is not None and plot["goal"] not in GOALS:
        errors.append(f"claim.plot.goal={plot['goal']!r} is invalid; valid values: {', '.join(GOALS)}")
    if plot.get("where") is not None and not isinstance(plot["where"], Mapping):
        errors.append("claim.plot.where must be a mapping of key -> level (as a check's where)")
    return errors


def _check_field_errors(where: str, check: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    goal = check.get("goal")
    if goal is not None and goal not in GOALS:
        errors.append(f"{where}.goal={goal!r} is invalid; valid values: {', '.join(GOALS)}")
    test = check.get("test", SUPERIORITY)
    if test not in TESTS:
        errors.append(f"{where}.test={test!r} is invalid; valid values: {', '.join(TESTS)}")
    margin = check.get("margin")
    if margin is not None and (number(margin) is None or margin < 0):
        errors.append(f"{where}.margin={margin!r} is invalid: it must be a number >= 0 (in the metric's "
                      "units, after transform)")
    elif margin is None and test in (NONINFERIORITY, EQUIVALENCE):
        errors.append(f"{where}.margin is missing: a {test} check needs a margin (a number >= 0, in the "
                      "metric's units after transform)")
    transform = check.get("transform")
    if transform is not None and _TRANSFORM_ALIASES.get(str(transform).lower(), "?") == "?":
        errors.append(f"{where}.transform={transform!r} is invalid; valid values: {', '.join(TRANSFORMS)}")
    if check.get("tune") and check.get("spread"):
        errors.append(f"{where}: tune and spread cannot be combined (tune compares each side at its best "
                      "value, spread compares how much the metric varies over the values)")
    on_diverged = check.get("on_diverged")
    if on_diverged is not None and on_diverged not in ON_DIVERGED:
        errors.append(f"{where}.on_diverged={on_diverged!r} is invalid; valid values: {', '.join(ON_DIVERGED)}")
    if on_diverged == "chance" and not chance_applies(str(check.get("metric", ""))):
        errors.append(f"{where}.on_diverged=chance needs a metric */acc or */loss (got "
                      f"{check.get('metric')!r}); valid values here: worst, exclude")
    statistic = check.get("statistic")
    if statistic is not None:
        if statistic not in STATISTICS:
            errors.append(f"{where}.statistic={statistic!r} is invalid; valid values: {', '.join(STATISTICS)}")
        if not check.get("spread"):
            errors.append(f"{where}.statistic needs spread: <the key whose grid the statistic is taken over>")
    if statistic == "width":
        within = check.get("within")
        if within is None:
            errors.append(f"{where}.within is missing: statistic: width needs within: <how close to each "
                          "seed's best counts as good, in the metric's units>")
        elif number(within) is None or within < 0:
            errors.append(f"{where}.within={within!r} is invalid: it must be a number >= 0")
    metric_goal = check.get("metric_goal")
    if metric_goal is not None and metric_goal not in GOALS:
        errors.append(f"{where}.metric_goal={metric_goal!r} is invalid; valid values: {', '.join(GOALS)}")
    needs_direction = check.get("spread") and (statistic == "width" or (on_diverged or "worst") == "worst")
    if needs_direction and metric_direction(str(check.get("metric", "")), metric_goal) is None:
        errors.append(f"{where}: which way is {check.get('metric')!r} better? A spread check "
                      "(on_diverged: worst, statistic: width) needs it: add metric_goal: min or max")
    fresh = check.get("fresh_seeds")
    if fresh is not None and not isinstance(fresh, bool):
        errors.append(f"{where}.fresh_seeds={fresh!r} is invalid; valid values: true, false")
    if fresh is not None and not check.get("tune"):
        errors.append(f"{where}.fresh_seeds applies to tune checks only (the seeds that chose the best "
                      "value are not the seeds that judge it)")
    if check.get("select_on") is not None and not check.get("tune"):
        errors.append(f"{where}.select_on applies to tune checks only")
    relative = [*side_errors("", check.get("treatment"), check.get("baseline")),
                *parse_interaction(check.get("interaction"), check.get("factor"))[1],
                *parse_event(check.get("event"))[1], *_kind_errors(check)]
    return errors + [f"{where}.{e}" for e in relative]
