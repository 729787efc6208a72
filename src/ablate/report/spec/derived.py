"""Derived metrics: a check's ``metric`` may be the difference (or sum) of two record metrics.

``metric: train_eval/acc - test/acc`` (the generalisation gap) is computed per run as the first
metric minus the second, and NaN when either is missing or not finite; it is labelled as written.
The grammar is exactly one binary operator, ``-`` or ``+``, with spaces around it (metric names
themselves may hold ``-``): ``a - b``, ``a + b``. Nothing is evaluated: no other operator, no
constants, no parentheses.

Pure Python: the claim schema (imported before any run) uses it.
"""

from __future__ import annotations

import re

OPERATORS = ("-", "+")
_EXPRESSION = re.compile(r"^\s*(\S+)\s+([-+])\s+(\S+)\s*$")


def parse(metric: str) -> tuple[str, str, str] | None:
    """``"a - b"`` -> ``("a", "-", "b")``; None for a plain metric name (or text that is neither)."""
    match = _EXPRESSION.match(str(metric))
    return (match.group(1), match.group(2), match.group(3)) if match else None


def is_derived(metric: str) -> bool:
    return parse(metric) is not None


def problem(metric: str) -> str | None:
    """Why ``metric`` is neither a metric name nor ``a - b`` / ``a + b``; None when it is one."""
    text = str(metric)
    if not text.strip() or parse(text) or not any(c.isspace() for c in text.strip()):
        return None
    return ("it is neither a metric name nor a derived metric; a derived metric is `a - b` or `a + b` of two "
            "record metrics, with spaces around the operator")


def operands(metric: str) -> tuple[str, ...]:
    """The record metrics ``metric`` reads: both operands of an expression, else itself."""
    parsed = parse(metric)
    return (parsed[0], parsed[2]) if parsed else (str(metric),)


def combine(left: float, op: str, right: float) -> float:
    return left - right if op == "-" else left + right
