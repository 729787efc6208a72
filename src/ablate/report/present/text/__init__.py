"""A check's result in words: one renderer per check kind, reading only the result's numbers.

``text_of(check, budget)`` gives the renderer of a check's kind: :class:`CheckText` (plain, ``tune``,
``spread``), :class:`InteractionText`, :class:`EventText`. The report's tables, check details,
W&B summary and ``verdict.json`` all print through it. Adding a check kind is one estimator in
:mod:`ablate.report.judge.look` and one renderer here.
"""

from __future__ import annotations

from ablate.report.judge.results import CheckResult
from ablate.report.present.text.events import EventText, describe  # noqa: F401
from ablate.report.present.text.interaction import InteractionText
from ablate.report.present.text.plain import CheckText

TEXTS: dict[str, type[CheckText]] = {"interaction": InteractionText, "events": EventText}


def text_of(check: CheckResult, budget: str = "") -> CheckText:
    """The renderer of ``check``'s kind (``budget``: what an inconclusive check is a null at)."""
    return TEXTS.get(check.spec.kind, CheckText)(check, budget)
