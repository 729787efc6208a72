"""Reading a dotted key from a run record, and comparing factor levels robustly.

Override values arrive as command-line text (``"true"``, ``"8"``) while the resolved config holds
typed values (``True``, ``8``); both must name the same level of a factor. A check's side may pool
several levels (``treatment: [0.3, 1, 3]``): such a side is a tuple of levels, and a record is on it
when its value is any of them. Metrics may be derived (``a - b``, :mod:`ablate.report.spec.derived`).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from ablate.report.spec import derived
from ablate.report.spec.levels import canonical, fmt_level, same_level, sort_key  # noqa: F401 (re-exported)

_MISSING = object()


def _lookup(tree: Any, dotted: str) -> Any:
    node = tree
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def get_value(record: dict[str, Any], key: str) -> Any:
    """The value of dotted ``key`` for a run: from the resolved config, else from the run's config
    group choices (``record["choices"]``), else from its overrides.

    A config *group* (``optimizer=adam``) resolves to a whole dict in the config; its level is then
    the group choice or the override text (``adam``), or the node's ``name`` / ``_target_``.
    """
    if key == "seed" and "seed" in record:
        return canonical(record["seed"])
    value = _lookup(record.get("config") or {}, key)
    if value is not _MISSING and not isinstance(value, (dict, list)):
        return canonical(value)
    for source in ("choices", "overrides"):
        named = record.get(source) or {}
        if isinstance(named, dict) and key in named and not isinstance(named[key], (dict, list)):
            return canonical(named[key])
    if isinstance(value, dict):
        for name_key in ("name", "_name_"):
            if isinstance(value.get(name_key), (str, int, float, bool)):
                return canonical(value[name_key])
        if isinstance(value.get("_target_"), str):
            return value["_target_"].rsplit(".", 1)[-1]
    if value is _MISSING:
        return None
    return str(value)


def short_names(keys: Sequence[str]) -> list[str]:
    """``model.depth`` -> ``depth`` unless two keys would then share a name."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return [s if last.count(s) == 1 else k for s, k in zip(last, keys)]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _stored_value(record: dict[str, Any], metric: str) -> float:
    value = (record.get("metrics") or {}).get(metric)
    if not _is_number(value):
        return float("nan")
    return float(value)


def metric_value(record: dict[str, Any], metric: str) -> float:
    """A final metric as a float; NaN when absent or not finite (JSON null). A derived metric
    ``a - b`` (or ``a + b``) is computed from the record's two metrics, NaN if either is NaN."""
    metrics = record.get("metrics") or {}
    parsed = None if metric in metrics else derived.parse(metric)
    if parsed is None:
        return _stored_value(record, metric)
    left, op, right = parsed
    return derived.combine(_stored_value(record, left), op, _stored_value(record, right))


def metric_recorded(record: dict[str, Any], metric: str) -> bool:
    """Whether the run wrote ``metric`` (every operand of a derived one), finite or not: a
    recorded NaN/inf (JSON null) is a value that diverged, an absent key is no value at all."""
    metrics = record.get("metrics") or {}
    return metric in metrics or all(m in metrics for m in derived.operands(metric))


def levels(records: Iterable[dict[str, Any]], key: str) -> list[Any]:
    """The distinct values of ``key`` among ``records``, sorted."""
    found: list[Any] = []
    for record in records:
        value = get_value(record, key)
        if not any(same_level(value, f) for f in found):
            found.append(value)
    return sorted(found, key=sort_key)


def at_level(value: Any, level: Any) -> bool:
    """Whether ``value`` is ``level``, or one of the levels of a pooled side (a tuple or list)."""
    if isinstance(level, (tuple, list)):
        return any(same_level(value, one) for one in level)
    return same_level(value, level)


def matching(records: Iterable[dict[str, Any]], key: str, level: Any) -> list[dict[str, Any]]:
    """The records whose ``key`` is at ``level`` (any of them, for a tuple of levels)."""
    return [r for r in records if at_level(get_value(r, key), level)]


def is_numeric_key(records: Sequence[dict[str, Any]], key: str) -> bool:
    """Whether every level of ``key`` is a number (booleans are not)."""
    found = levels(records, key)
    return bool(found) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in found)


def best_level(rows: Sequence[dict[str, Any]], key: str, values_of, goal: str) -> tuple[Any, float | None]:
    """The level of ``key`` among ``rows`` whose mean of ``values_of(rows at that level)`` (finite
    values only) is best for ``goal`` (min or max), and that mean; ``(None, None)`` when no level has
    a finite value. Ties go to the first level in sorted order. The one tuning loop: checks choose
    each side's value with it, figures draw each point at it."""
    best, best_mean = None, None
    for level in levels(rows, key):
        values = np.asarray(values_of(matching(rows, key, level)), dtype=float)
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        mean = float(values.mean())
        if best_mean is None or (mean < best_mean if goal == "min" else mean > best_mean):
            best, best_mean = level, mean
    return best, best_mean


def cell_key(overrides: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """A sweep cell's identity: the job's own overrides other than ``seed``, as sorted ``(key, text)``
    pairs. The sweeper names a job's cell with it, the report a record's (``record["overrides"]``)."""
    return tuple(sorted((str(k), "" if v is None else str(v)) for k, v in (overrides or {}).items() if k != "seed"))


def record_cell(record: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return cell_key(record.get("overrides"))


def chance_level(rows: Sequence[dict], metric: str) -> tuple[float | None, str | None]:
    """The task's chance level of ``metric`` (1/k for */acc, ln k for */loss) from the records' num_classes."""
    classes = {r.get("num_classes") for r in rows if isinstance(r.get("num_classes"), int)}
    if len(classes) != 1 or not all(k and k > 1 for k in classes):
        found = ", ".join(map(str, sorted(classes))) or "none"
        return None, f"chance needs one num_classes among the runs' records (found: {found})"
    (k,) = classes
    tail = metric.rsplit("/", 1)[-1]
    return (1.0 / k if tail == "acc" else math.log(k)), None
