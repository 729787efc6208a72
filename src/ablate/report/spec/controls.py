"""A claim's controls: the conditions under which its checks mean something.

A check can only speak when its design reaches the effect it is about: "the gated cells beat the
plain RNN over 100 steps" says nothing when every cell stays at chance, and "skips let 32 blocks
train better than without" says nothing when the plain 32-block net has not degraded. A claim
declares such conditions as ``controls``; when one fails, every clause it guards is reported **not
informative at this budget**, with the control's numbers, instead of whatever its checks said::

    claim:
      controls:
        - name: lstm_learns
          text: "the LSTM learns the recall task over 20 steps"
          metric: test/acc
          where: {model.cell: lstm, data.source.length: 20}
          above: chance + 0.25          # a number, ``chance`` or ``chance ± x`` (1/classes for */acc, ln classes for */loss)
          clauses: [gates_fix_accuracy] # default: every clause of the claim
        - name: each_arm_learns
          metric: test/acc
          where: {data: mnist1d}
          each: arm                     # holds only when it holds at every level of arm
          tune: optimizer.lr            # each group read at its best level of optimizer.lr (on select_on)
          above: 0.5

Fields (:data:`CONTROL_FIELDS`): ``name`` (required, unique), ``text`` (what the condition means, in
words), ``metric`` (a record metric or a derived ``a - b``), ``where`` (key -> level, a list of
levels pooled, or ``min``/``max`` as in a check), ``above`` and/or ``below`` (at least one),
``clauses`` (the clauses it guards), ``each`` (a key, or a list of keys: the control is judged at
each of its levels, or each combination of their levels, among the runs ``where`` keeps (a list of
levels in ``where`` restricts them), and holds when it holds at all of them), ``tune`` (a key: each group
read only at its best level of that key, chosen on ``select_on``, default the metric's validation
twin as in a check, in the direction of the threshold: highest for ``above``, lowest for ``below``),
``transform`` (``log10``) and ``on_diverged`` (``chance``, the default for */acc and */loss: a run
that diverged did not learn; ``worst`` or ``exclude``, the default for other metrics).

**The decision rule** (:mod:`ablate.report.judge.controls`): over the ok runs of a group (diverged
runs scored by ``on_diverged``; failed runs left out), the mean and its one-sided (1 − α/2) = 97.5%
t confidence bound (n − 1 degrees of freedom). The control holds when the lower bound lies strictly
above ``above`` (and the upper bound strictly below ``below``). A group with fewer than 2 runs, or
a threshold it cannot resolve (``chance`` without the records' ``num_classes``), does not hold: a
control that cannot be shown to hold is not holding. Controls read the records the claim is
judged on (every look's seeds), take no part in Holm's correction or in the sweeper's seeds, and
change no check's verdict: only the clauses they guard.

Torch- and statistics-free, like the rest of the schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ablate.report.spec import derived
from ablate.report.spec.fields import THRESHOLD_FORMS, Threshold, level, parse_threshold  # noqa: F401 (re-exported)
from ablate.report.spec.levels import canonical, fmt_level
from ablate.report.spec.names import ON_DIVERGED, TRANSFORM_ALIASES, TRANSFORMS, chance_applies, default_select_on

CONTROL_FIELDS = ("name", "text", "metric", "where", "above", "below", "clauses", "each", "tune", "select_on",
                  "transform", "on_diverged")


@dataclass(frozen=True)
class ControlSpec:
    """One control as declared, with the defaults filled in (see the module docstring)."""

    name: str
    metric: str
    text: str = ""
    where: dict[str, Any] = field(default_factory=dict)
    above: Threshold | None = None
    below: Threshold | None = None
    clauses: tuple[str, ...] | None = None   # None: every clause of the claim
    each: tuple[str, ...] | None = None   # judged per level (combination of levels) of these keys
    tune: str | None = None
    select_on: str | None = None
    transform: str | None = None
    on_diverged: str = "exclude"
    problems: tuple[str, ...] = ()

    @property
    def goal(self) -> str:
        """Which way is better for the control: ``max`` when it has a lower threshold, else ``min``."""
        return "max" if self.above is not None else "min"

    def guards(self, clause: str) -> bool:
        return self.clauses is None or clause in self.clauses

    @property
    def threshold_text(self) -> str:
        """``> chance + 0.1``, ``< 1.5``, ``in (0.2, 0.8)``."""
        if self.above is not None and self.below is not None:
            return f"in ({self.above.text}, {self.below.text})"
        return f"> {self.above.text}" if self.above is not None else f"< {self.below.text if self.below else '?'}"


def _as_dict(node: Any) -> dict[str, Any]:
    return dict(node) if isinstance(node, Mapping) else {}


def control_errors(control: Mapping[str, Any], clauses: Sequence[str] = ()) -> list[str]:
    """What is wrong with one control, each message starting with its field (``above='high' is
    invalid; valid values: ...``). ``clauses``: the claim's declared clause names."""
    errors: list[str] = []
    unknown = sorted(set(control) - set(CONTROL_FIELDS))
    if unknown:
        errors.append(f"has unknown field(s) {', '.join(map(str, unknown))}; valid fields: {', '.join(CONTROL_FIELDS)}")
    for key in ("name", "metric"):
        if not control.get(key):
            errors.append(f"{key} is missing")
    metric = str(control.get("metric") or "")
    if metric and (why := derived.problem(metric)):
        errors.append(f"metric={metric!r} is invalid: {why}")
    if control.get("above") is None and control.get("below") is None:
        errors.append(f"above is missing: a control needs above: and/or below: ({THRESHOLD_FORMS})")
    bounds = {}
    for key in ("above", "below"):
        threshold, error = parse_threshold(control.get(key))
        if error:
            errors.append(key + error)
        elif threshold is not None and threshold.chance and metric and not chance_applies(metric):
            errors.append(f"{key}={control[key]!r} needs a metric */acc or */loss to know chance (got {metric!r}); "
                          "valid values here: a number")
        bounds[key] = threshold
    lo, hi = bounds.get("above"), bounds.get("below")
    if lo is not None and hi is not None and lo.chance == hi.chance and lo.value >= hi.value:
        errors.append(f"below={control['below']!r} must be larger than above={control['above']!r}")
    where = control.get("where")
    if where is not None and not isinstance(where, Mapping):
        errors.append("where must be a mapping of key -> level (a list of levels pools them)")
    guarded = control.get("clauses")
    if guarded is not None:
        if not isinstance(guarded, (list, tuple)) or not guarded:
            errors.append("clauses must be a non-empty list of clause names (leave it out to guard every clause)")
        else:
            for name in guarded:
                if str(name) not in clauses:
                    errors.append(f"clauses names {name!r}, not a declared clause; valid values: "
                                  f"{', '.join(clauses) or '(none: declare claim.clauses first)'}")
    transform = control.get("transform")
    if transform is not None and TRANSFORM_ALIASES.get(str(transform).lower(), "?") == "?":
        errors.append(f"transform={transform!r} is invalid; valid values: {', '.join(TRANSFORMS)}")
    on_diverged = control.get("on_diverged")
    if on_diverged is not None and on_diverged not in ON_DIVERGED:
        errors.append(f"on_diverged={on_diverged!r} is invalid; valid values: {', '.join(ON_DIVERGED)}")
    if on_diverged == "chance" and metric and not chance_applies(metric):
        errors.append(f"on_diverged=chance needs a metric */acc or */loss (got {metric!r}); valid values here: "
                      "worst, exclude")
    each = control.get("each")
    keys = list(each) if isinstance(each, (list, tuple)) else [each]
    if each is not None and (not keys or not all(isinstance(k, str) and k for k in keys)):
        errors.append(f"each={each!r} is invalid: it must be a config key (e.g. model.cell) or a list of keys")
        keys = []
    tune = control.get("tune")
    if tune is not None and (not isinstance(tune, str) or not tune):
        errors.append(f"tune={tune!r} is invalid: it must be a config key (e.g. optimizer.lr)")
    for key, value in [*(("each", k) for k in keys if each is not None), ("tune", tune)]:
        fixed = isinstance(where, Mapping) and value in where and not isinstance(where[value], (list, tuple))
        if isinstance(value, str) and fixed:
            errors.append(f"{key}={value!r} is fixed by where to one level; leave it out of where, or give "
                          "where a list of the levels to read")
    if each is not None and tune in keys:
        errors.append(f"each and tune both name {tune!r}")
    if control.get("select_on") is not None and not control.get("tune"):
        errors.append("select_on applies to controls with tune only")
    if control.get("tune") and metric and derived.is_derived(metric) and not control.get("select_on"):
        errors.append("select_on is missing: a tuned control on a derived metric must name the metric that "
                      "chooses each group's value")
    return errors


def controls_errors(raw: Any, clauses: Sequence[str] = ()) -> list[str]:
    """Every problem of a claim's ``controls:`` block, each under its place (``claim.controls[0].above=...``)."""
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        return [f"claim.controls must be a list of {{name, metric, where, above/below}} (got {type(raw).__name__})"]
    errors: list[str] = []
    names: list[str] = []
    for i, control in enumerate(raw):
        where = f"claim.controls[{i}]"
        if not isinstance(control, Mapping):
            errors.append(f"{where} must be a mapping with name, metric, where and above/below")
            continue
        for e in control_errors(control, clauses):
            errors.append(f"{where} {e}" if e.startswith("has ") else f"{where}.{e}")
        if control.get("name"):
            if str(control["name"]) in names:
                errors.append(f"{where}.name={control['name']!r} is declared twice")
            names.append(str(control["name"]))
    return errors


def parse_control(control: Mapping[str, Any], clauses: Sequence[str] = ()) -> ControlSpec:
    """A :class:`ControlSpec`; never raises: what is wrong lands in ``problems`` (then it does not hold)."""
    control = _as_dict(control)
    problems = tuple(control_errors(control, clauses))
    metric = str(control.get("metric") or "")
    raw_transform = control.get("transform")
    transform = TRANSFORM_ALIASES.get(str(raw_transform).lower() if raw_transform is not None else None, raw_transform)
    guarded = control.get("clauses")
    tune = str(control["tune"]) if control.get("tune") else None
    on_diverged = control.get("on_diverged") or ("chance" if chance_applies(metric) else "exclude")
    return ControlSpec(
        name=str(control.get("name") or metric or "control"), metric=metric, text=str(control.get("text") or ""),
        where={str(k): level(v) for k, v in _as_dict(control.get("where")).items()},
        above=parse_threshold(control.get("above"))[0], below=parse_threshold(control.get("below"))[0],
        clauses=tuple(str(c) for c in guarded) if isinstance(guarded, (list, tuple)) and guarded else None,
        each=_keys(control.get("each")), tune=tune,
        select_on=str(control.get("select_on") or default_select_on(metric)) if tune else None,
        transform=transform, on_diverged=str(on_diverged).lower(), problems=problems,
    )


def _keys(each: Any) -> tuple[str, ...] | None:
    if not each:
        return None
    return tuple(str(k) for k in each) if isinstance(each, (list, tuple)) else (str(each),)


def parse_controls(raw: Any, clauses: Sequence[str] = ()) -> tuple[ControlSpec, ...]:
    """The claim's controls (an absent or malformed block: none; a malformed control carries its problems)."""
    if not isinstance(raw, (list, tuple)):
        return ()
    return tuple(parse_control(c, clauses) for c in raw if isinstance(c, Mapping))


def where_label(where: Mapping[str, Any]) -> str:
    """``model.cell=lstm, data.source.length=20`` (a pooled key: ``key ∈ {a, b}``)."""
    return ", ".join(f"{k} ∈ {fmt_level(v)}" if isinstance(v, tuple) else f"{k}={fmt_level(canonical(v))}"
                     for k, v in where.items())
