"""The claim schema's compound fields: sides that pool levels, ``interaction:`` and ``event:``.

Each parser returns the field's value and what is wrong with it, every message starting with the
field it is about relative to the check (``interaction.factor is missing: ...``), so that the
config check (:func:`ablate.report.spec.rules.claim_errors`) and the report (a check's ``problems``)
say the same. Torch- and statistics-free, like :mod:`ablate.report.spec.claim`, which documents the
fields.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from ablate.report.spec.levels import canonical, fmt_level, same_level

INTERACTION_KEYS = ("factor", "treatment", "baseline")
EVENT_KEYS = ("diverged", "above", "below")
EVENTS = ("diverged",)


@dataclass(frozen=True)
class InteractionSpec:
    """``interaction: {factor, treatment, baseline}``: the second factor, the level where the check's
    effect is claimed larger (for ``goal: max``; smaller for ``min``) and the level it is compared with."""

    factor: str
    treatment: Any
    baseline: Any


@dataclass(frozen=True)
class EventSpec:
    """``event:``: what counts as the event in one run (any of those given). ``above``/``below`` may be
    an offset from the task's chance level (``chance``: ``above: chance`` is ln k for a loss, 1/k for an
    accuracy, k the records' num_classes), resolved when the check is judged."""

    diverged: bool = False
    above: float | None = None   # an ok run's metric >= above (+ chance)
    below: float | None = None   # an ok run's metric <= below (+ chance)
    chance: bool = False         # above/below are offsets from the task's chance level


THRESHOLD_FORMS = "a number, chance, chance + x or chance - x"
_CHANCE = re.compile(r"^\s*chance\s*(?:([+-])\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Threshold:
    """``above:``/``below:`` as written: a number, or an offset from the task's chance level."""

    value: float                 # the number, or the offset from chance
    chance: bool = False

    @property
    def text(self) -> str:
        if not self.chance:
            return f"{self.value:g}"
        if self.value == 0:
            return "chance"
        return f"chance {'+' if self.value > 0 else '-'} {abs(self.value):g}"


def parse_threshold(value: Any) -> tuple[Threshold | None, str | None]:
    """A :class:`Threshold` from ``above:``/``below:``, or the error (after the field's name)."""
    if value is None:
        return None, None
    x = number(value)
    if x is not None:
        return Threshold(x), None
    if isinstance(value, str) and (m := _CHANCE.match(value)):
        offset = float(m.group(2)) if m.group(2) else 0.0
        return Threshold(-offset if m.group(1) == "-" else offset, chance=True), None
    return None, f"={value!r} is invalid; valid values: {THRESHOLD_FORMS}"


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def level(value: Any) -> Any:
    """A side's level, canonical; a list of levels -> a tuple of them (a side that pools them)."""
    if isinstance(value, (list, tuple)):
        return tuple(canonical(v) for v in value)
    return canonical(value)


def side_errors(prefix: str, treatment: Any, baseline: Any) -> list[str]:
    """Each side is a level or a non-empty list of levels, and the two share no level."""
    errors = []
    for name, value in (("treatment", treatment), ("baseline", baseline)):
        if isinstance(value, (list, tuple)) and not value:
            errors.append(f"{prefix}{name}=[] is invalid: name a level, or a non-empty list of levels to pool")
        elif isinstance(value, Mapping) or (isinstance(value, (list, tuple))
                                            and any(isinstance(v, (list, tuple, Mapping)) for v in value)):
            errors.append(f"{prefix}{name}={value!r} is invalid: name a level, or a list of levels to pool")
    if errors or treatment is None or baseline is None:
        return errors
    t, b = level(treatment), level(baseline)
    t, b = (t if isinstance(t, tuple) else (t,)), (b if isinstance(b, tuple) else (b,))
    shared = [v for v in t if any(same_level(v, w) for w in b)]
    if shared:
        errors.append(f"{prefix}treatment and {prefix}baseline share the level(s) "
                      f"{', '.join(fmt_level(v) for v in shared)}: a run cannot be on both sides")
    return errors


def parse_interaction(raw: Any, factor: Any = None) -> tuple[InteractionSpec | None, list[str]]:
    """``interaction:`` as an :class:`InteractionSpec`, and what is wrong with it (each message
    starts with the field it is about, relative to the check)."""
    if raw is None:
        return None, []
    if not isinstance(raw, Mapping):
        return None, [f"interaction={raw!r} is invalid: it must be a mapping {{factor, treatment, baseline}} "
                      "(a second factor, the level where the effect is claimed larger, the level it is compared with)"]
    errors = []
    unknown = sorted(str(k) for k in set(raw) - set(INTERACTION_KEYS))
    if unknown:
        errors.append(f"interaction has unknown field(s) {', '.join(unknown)}; valid fields: {', '.join(INTERACTION_KEYS)}")
    for key in INTERACTION_KEYS:
        if raw.get(key) is None:
            errors.append(f"interaction.{key} is missing: interaction needs {{factor, treatment, baseline}} (a second "
                          "factor, the level where the effect is claimed larger, the level it is compared with)")
    if raw.get("factor") is not None and factor is not None and str(raw["factor"]) == str(factor):
        errors.append(f"interaction.factor={raw['factor']!r} is the check's own factor; the interaction needs a "
                      "second factor")
    errors += side_errors("interaction.", raw.get("treatment"), raw.get("baseline"))
    spec = InteractionSpec(str(raw.get("factor", "")), level(raw.get("treatment")), level(raw.get("baseline")))
    return spec, errors


def parse_event(raw: Any) -> tuple[EventSpec | None, list[str]]:
    """``event:`` as an :class:`EventSpec`, and what is wrong with it (field first, as above)."""
    if raw is None:
        return None, []
    invalid = (f"event={raw!r} is invalid; valid values: {', '.join(EVENTS)}, or a mapping "
               f"{{{', '.join(EVENT_KEYS)}}} (e.g. {{diverged: true, above: 2.302585}})")
    if isinstance(raw, str):
        return (EventSpec(diverged=True), []) if raw.strip().lower() in EVENTS else (EventSpec(), [invalid])
    if not isinstance(raw, Mapping):
        return EventSpec(), [invalid]
    errors = []
    unknown = sorted(str(k) for k in set(raw) - set(EVENT_KEYS))
    if unknown:
        errors.append(f"event has unknown field(s) {', '.join(unknown)}; valid fields: {', '.join(EVENT_KEYS)}")
    diverged = raw.get("diverged", False)
    if not isinstance(diverged, bool):
        errors.append(f"event.diverged={diverged!r} is invalid; valid values: true, false")
        diverged = False
    bounds, chance = {}, False
    for key in ("above", "below"):
        if raw.get(key) is not None:
            threshold, _ = parse_threshold(raw[key])
            bounds[key] = threshold.value if threshold is not None else None
            chance = chance or (threshold is not None and threshold.chance)
            if threshold is None:
                errors.append(f"event.{key}={raw[key]!r} is invalid: it must be a number (in the metric's units, "
                              f"after transform), chance, chance + x or chance - x")
    if len(bounds) == 2:
        errors.append("event.above and event.below cannot both be given: an event check counts one threshold")
    if not diverged and not bounds:
        errors.append("event names no event: give diverged: true, above: <x> or below: <x>")
    return EventSpec(diverged, bounds.get("above"), bounds.get("below"), chance), errors
