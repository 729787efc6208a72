"""The claim schema's rules: what makes a claim block or one of its checks wrong, in words that name
the field and the valid values. One set of rules for the config check (before any run) and the
report (a check it cannot judge says why); the schema itself is :mod:`ablate.report.spec.claim`.
"""

from __future__ import annotations

from typing import Any, Mapping

from ablate.report.spec import derived
from ablate.report.spec.controls import controls_errors
from ablate.report.spec.fields import number, parse_event, parse_interaction, side_errors
from ablate.report.spec.names import (
    EQUIVALENCE, GOALS, KNOWN_CHECK_KEYS, NONINFERIORITY, ON_DIVERGED, REQUIRED, STATISTICS, SUPERIORITY, TESTS,
    TRANSFORM_ALIASES, TRANSFORMS, chance_applies, metric_direction,
)


def _as_dict(node: Any) -> dict[str, Any]:
    return dict(node) if isinstance(node, Mapping) else {}


def required(check: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields a check must give: an event check needs a metric only for a threshold."""
    return tuple(k for k in REQUIRED if not (k == "metric" and check.get("event") is not None))


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


def joined(where: str, error: str) -> str:
    """A check's error under its place: ``claim.checks[0].goal=...``, ``claim.checks[0] has unknown
    field(s) ...``, ``claim.checks[0]: tune and spread ...`` (an error about the check as a whole)."""
    if error.startswith(": "):
        return where + error
    return f"{where} {error}" if error.startswith("has ") else f"{where}.{error}"


def claim_errors(claim: Any) -> list[str]:
    """Every problem of a claim block, in the config check's style: the field, what is wrong, what
    would work. ``claim`` is a plain mapping (or None: no claim, no errors). Each check's own
    problems come from :func:`check_errors`."""
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
    errors += _needs_errors(claim.get("needs"))
    scope = claim.get("scope")
    if scope is not None and not isinstance(scope, Mapping):
        errors.append("claim.scope must be a mapping of key -> text (e.g. {hardware: 2-core CPU})")
    errors += _plot_errors(claim.get("plot"))
    errors += controls_errors(claim.get("controls"), declared)
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
        errors += [joined(where, e) for e in check_errors(check)]
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
NEEDS_KEYS = ("model", "data")   # claim.needs: what a design needs beyond what its grid shows (ablate.applicability)


def _needs_errors(needs: Any) -> list[str]:
    """``needs: {model: <why>, data: <why>}``: the design needs its own model family / data set."""
    if needs is None:
        return []
    if not isinstance(needs, Mapping):
        return [f"claim.needs={needs!r} is invalid: it must be a mapping of {' or '.join(NEEDS_KEYS)} -> why "
                "(e.g. {data: sized for its own generated data})"]
    errors = [f"claim.needs has unknown field {k!r}; valid fields: {', '.join(NEEDS_KEYS)}"
              for k in needs if k not in NEEDS_KEYS]
    errors += [f"claim.needs.{k} must say why, as text" for k, v in needs.items()
               if k in NEEDS_KEYS and (not isinstance(v, str) or not v.strip())]
    return errors


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


def check_errors(check: Mapping[str, Any]) -> list[str]:
    """What is wrong with one check, each message starting with the field it is about (``goal='up'
    is invalid; valid values: min, max``): the config check prefixes ``claim.checks[i].``, the report
    shows them as the reason a check cannot be judged."""
    errors: list[str] = []
    for key in required(check):
        if check.get(key) is None:
            errors.append(f"{key} is missing")
    unknown = sorted(set(check) - set(KNOWN_CHECK_KEYS))
    if unknown:
        errors.append(f"has unknown field(s) {', '.join(unknown)}; valid fields: {', '.join(KNOWN_CHECK_KEYS)}")
    goal = check.get("goal")
    if goal is not None and goal not in GOALS:
        errors.append(f"goal={goal!r} is invalid; valid values: {', '.join(GOALS)}")
    test = check.get("test", SUPERIORITY)
    if test not in TESTS:
        errors.append(f"test={test!r} is invalid; valid values: {', '.join(TESTS)}")
    margin = check.get("margin")
    if margin is not None and (number(margin) is None or margin < 0):
        errors.append(f"margin={margin!r} is invalid: it must be a number >= 0 (in the metric's "
                      "units, after transform)")
    elif margin is None and test in (NONINFERIORITY, EQUIVALENCE):
        errors.append(f"margin is missing: a {test} check needs a margin (a number >= 0, in the "
                      "metric's units after transform)")
    transform = check.get("transform")
    if transform is not None and TRANSFORM_ALIASES.get(str(transform).lower(), "?") == "?":
        errors.append(f"transform={transform!r} is invalid; valid values: {', '.join(TRANSFORMS)}")
    if check.get("tune") and check.get("spread"):
        errors.append(": tune and spread cannot be combined (tune compares each side at its best "
                      "value, spread compares how much the metric varies over the values)")
    on_diverged = check.get("on_diverged")
    if on_diverged is not None and on_diverged not in ON_DIVERGED:
        errors.append(f"on_diverged={on_diverged!r} is invalid; valid values: {', '.join(ON_DIVERGED)}")
    if on_diverged == "chance" and not chance_applies(str(check.get("metric", ""))):
        errors.append(f"on_diverged=chance needs a metric */acc or */loss (got "
                      f"{check.get('metric')!r}); valid values here: worst, exclude")
    statistic = check.get("statistic")
    if statistic is not None:
        if statistic not in STATISTICS:
            errors.append(f"statistic={statistic!r} is invalid; valid values: {', '.join(STATISTICS)}")
        if not check.get("spread"):
            errors.append("statistic needs spread: <the key whose grid the statistic is taken over>")
    if statistic == "width":
        within = check.get("within")
        if within is None:
            errors.append("within is missing: statistic: width needs within: <how close to each "
                          "seed's best counts as good, in the metric's units>")
        elif number(within) is None or within < 0:
            errors.append(f"within={within!r} is invalid: it must be a number >= 0")
    metric_goal = check.get("metric_goal")
    if metric_goal is not None and metric_goal not in GOALS:
        errors.append(f"metric_goal={metric_goal!r} is invalid; valid values: {', '.join(GOALS)}")
    needs_direction = check.get("spread") and (statistic == "width" or (on_diverged or "worst") == "worst")
    if needs_direction and metric_direction(str(check.get("metric", "")), metric_goal) is None:
        errors.append(f": which way is {check.get('metric')!r} better? A spread check "
                      "(on_diverged: worst, statistic: width) needs it: add metric_goal: min or max")
    fresh = check.get("fresh_seeds")
    if fresh is not None and not isinstance(fresh, bool):
        errors.append(f"fresh_seeds={fresh!r} is invalid; valid values: true, false")
    if fresh is not None and not check.get("tune"):
        errors.append("fresh_seeds applies to tune checks only (the seeds that chose the best "
                      "value are not the seeds that judge it)")
    if check.get("select_on") is not None and not check.get("tune"):
        errors.append("select_on applies to tune checks only")
    return [*errors, *side_errors("", check.get("treatment"), check.get("baseline")),
            *parse_interaction(check.get("interaction"), check.get("factor"))[1],
            *parse_event(check.get("event"))[1], *_kind_errors(check)]
