"""Factor levels: how a level compares and prints, whether it came from the command line (``"true"``,
``"8"``) or from the resolved config (``True``, ``8``); and how numbers print.

The bottom of the report's stages: pure Python and numpy (Hydra's override parser, read lazily), so
the claim schema and the sweeper use it without pandas, SciPy or torch.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np


@functools.lru_cache(maxsize=1)
def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> Any:
    """Override text as Hydra's own parser reads it (``true``, ``8``, ``1e-3``, ``null``, quotes);
    text that is not one plain value (a sweep ``a,b``, a list, a parse error) stays text."""
    try:
        override = _parser().parse_override(f"k={text}")
    except Exception:  # noqa: BLE001 - Hydra's grammar errors: not a value, keep the text
        return text
    if override.is_sweep_override():
        return text
    value = override.value()
    return value if isinstance(value, (bool, int, float, str)) or value is None else text


def canonical(value: Any) -> Any:
    """The value a factor level compares by: ``"true"`` -> True, ``"8"`` -> 8, ``"1e-3"`` -> 0.001.

    Text is read by Hydra's override parser, as the command line is; integral floats become ints
    so that 8 and 8.0 are one level and print alike.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, str):
        parsed = _parse_text(value.strip())
        return parsed if isinstance(parsed, str) else canonical(parsed)
    return value


def same_level(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` name the same factor level (True is not the number 1 here)."""
    a, b = canonical(a), canonical(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
        return False
    return a == b


def sort_key(value: Any) -> tuple:
    """A total order over mixed level values: None, booleans, numbers, then text."""
    value = canonical(value)
    if value is None:
        return (0, 0, "")
    if isinstance(value, bool):
        return (1, int(value), "")
    if isinstance(value, (int, float)):
        return (2, value, "")
    return (3, 0, str(value))


def fmt_level(value: Any) -> str:
    """How a level prints: ``true``, ``8``, ``0.001``, ``adam`` (config spelling, not Python's)."""
    if isinstance(value, (tuple, list)):
        return "{" + ", ".join(fmt_level(v) for v in value) + "}"
    value = canonical(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def level_label(factor: str, level: Any) -> str:
    """``optimizer=adam``; a pooled side: ``optimizer.lr ∈ {0.3, 1, 3}``."""
    if isinstance(level, tuple):
        return f"{factor} ∈ {fmt_level(level)}"
    return f"{factor}={fmt_level(level)}"


def where_text(where: dict[str, Any], declared: dict[str, Any]) -> str:
    """``, where model.depth=32 (max)``: a check's resolved where-filter (``declared``: as written,
    ``min``/``max`` named), or nothing."""
    if not where:
        return ""
    conds = []
    for key, level in where.items():
        wanted = declared.get(key)
        extra = f" ({wanted})" if isinstance(wanted, str) and wanted.lower() in ("min", "max") else ""
        conds.append(f"{key}={fmt_level(level)}{extra}")
    return ", where " + ", ".join(conds)
