"""Run records -> tables: one row per run, and mean / std / 95% CI per cell of the sweep.

A *cell* is one combination of the swept factors (the override keys other than ``seed`` whose value
varies across the sweep's records); the seeds inside a cell are the repeated measurements that
statistics are computed over. Only ``ok`` runs feed statistics; diverged and failed runs are kept in
the per-run table with their error text so that the report can list them.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import pandas as pd

from ablate.report.records.summary import summarize
from ablate.results import STATUSES, is_ok
from ablate.report.records.values import (
    _is_number, canonical, fmt_level, get_value, levels, metric_value, same_level, short_names, sort_key,
)

__all__ = [
    "canonical", "claims", "claim_keys", "cell_label", "cell_of", "cells_frame", "fmt_level",
    "get_value", "group_cells", "levels", "metric_names", "metric_value", "runs_frame", "same_level",
    "short_names", "sort_key", "sort_records", "status_counts", "status_text", "swept_factors",
]

RUNS_CSV = "runs.csv"     # the per-run table, as the report writes it
CELLS_CSV = "cells.csv"   # the per-cell table

# Keys that are run identity or bookkeeping, never factors.
NOT_FACTORS = {"seed"}


# ---------------------------------------------------------------------------------------------
# Sweep structure
# ---------------------------------------------------------------------------------------------


def claims(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct claims declared by the records, in first-seen order (usually exactly one)."""
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        claim = record.get("claim")
        if isinstance(claim, dict) and claim:
            name = str(claim.get("name") or record.get("experiment") or "claim")
            seen.setdefault(name, claim)
    return list(seen.values())


def status_counts(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """``{"ok": n, "diverged": n, "failed": n}`` (every status present, the schema's first)."""
    counts = {s: 0 for s in STATUSES}
    for record in records:
        status = str(record.get("status", "?"))
        counts[status] = counts.get(status, 0) + 1
    return counts


def status_text(records: Iterable[dict[str, Any]], always: Sequence[str] = ("ok",)) -> str:
    """``18 ok, 1 diverged, 1 failed``: the statuses present (and those in ``always``, even at 0)."""
    return ", ".join(f"{n} {s}" for s, n in status_counts(records).items() if n or s in always) or "no runs"


def claim_keys(claim: dict[str, Any]) -> list[str]:
    """Every dotted key a claim mentions (factors, interaction factors, where-filters, tuning keys, plot axis)."""
    keys: list[str] = []
    plot = claim.get("plot") or {}
    if isinstance(plot, dict) and plot.get("x"):
        keys.append(str(plot["x"]))
    for check in claim.get("checks") or []:
        if not isinstance(check, dict):
            continue
        for field in ("factor", "tune", "spread"):
            if check.get(field):
                keys.append(str(check[field]))
        interaction = check.get("interaction")
        if isinstance(interaction, dict) and interaction.get("factor"):
            keys.append(str(interaction["factor"]))
        keys.extend(str(k) for k in (check.get("where") or {}))
    return list(dict.fromkeys(keys))


def swept_factors(records: Sequence[dict[str, Any]]) -> list[str]:
    """Override keys (other than ``seed``) whose value varies across the records, plus any key a
    claim names that varies (a level set inside the experiment config still counts), sorted."""
    candidates: set[str] = set()
    for record in records:
        candidates.update(k for k in (record.get("overrides") or {}) if k not in NOT_FACTORS)
    for claim in claims(records):
        candidates.update(k for k in claim_keys(claim) if k not in NOT_FACTORS)
    return sorted(k for k in candidates if len(levels(records, k)) > 1)


def cell_of(record: dict[str, Any], factors: Sequence[str]) -> tuple:
    return tuple(get_value(record, f) for f in factors)


def cell_label(cell: Sequence[Any], factors: Sequence[str], short: bool = True) -> str:
    names = short_names(factors) if short else list(factors)
    return ", ".join(f"{n}={fmt_level(v)}" for n, v in zip(names, cell)) or "all runs"


def sort_records(records: Iterable[dict[str, Any]], factors: Sequence[str]) -> list[dict[str, Any]]:
    """Records in report order: by factor levels, then seed, then run id."""
    return sorted(
        records,
        key=lambda r: (
            tuple(sort_key(v) for v in cell_of(r, factors)),
            sort_key(r.get("seed")),
            str(r.get("run_id")),
        ),
    )


def metric_names(records: Iterable[dict[str, Any]]) -> list[str]:
    names: set[str] = set()
    for record in records:
        names.update(k for k, v in (record.get("metrics") or {}).items() if _is_number(v) or v is None)
    return sorted(names)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def runs_frame(records: Sequence[dict[str, Any]], factors: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per run: run_id, status, error, seed, every swept factor, every metric, cost."""
    factors = list(swept_factors(records) if factors is None else factors)
    metrics = metric_names(records)
    rows = []
    for record in sort_records(records, factors):
        row: dict[str, Any] = {
            "run_id": record.get("run_id"),
            "status": record.get("status"),
            "error": record.get("error") or "",
            "seed": record.get("seed"),
        }
        for factor in factors:
            row[factor] = fmt_level(get_value(record, factor))
        for metric in metrics:
            row[metric] = metric_value(record, metric)
        row["epochs_completed"] = record.get("epochs_completed")
        row["params"] = record.get("params")
        row["wall_time_s"] = record.get("wall_time_s")
        row["samples_per_s"] = record.get("samples_per_s")
        row["experiment"] = record.get("experiment") or ""
        rows.append(row)
    columns = ["run_id", "status", "error", "seed", *factors, *metrics,
               "epochs_completed", "params", "wall_time_s", "samples_per_s", "experiment"]
    return pd.DataFrame(rows, columns=columns)


def group_cells(records: Sequence[dict[str, Any]], factors: Sequence[str]) -> list[tuple[tuple, list[dict]]]:
    """``[(cell, records in that cell), ...]`` in sorted cell order (all statuses)."""
    groups: list[tuple[tuple, list[dict]]] = []
    for record in sort_records(records, factors):
        cell = cell_of(record, factors)
        if groups and all(same_level(a, b) for a, b in zip(groups[-1][0], cell)):
            groups[-1][1].append(record)
        else:
            groups.append((cell, [record]))
    return groups


def cells_frame(records: Sequence[dict[str, Any]], factors: Sequence[str] | None = None,
                metrics: Sequence[str] | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Long table, one row per (cell, metric): runs, ok, n (finite ok values), mean, std, sem and
    the t-distribution confidence interval ``mean ± t_{(1+c)/2, n-1} * std / sqrt(n)``."""
    factors = list(swept_factors(records) if factors is None else factors)
    metrics = list(metric_names(records) if metrics is None else metrics)
    rows = []
    for cell, members in group_cells(records, factors):
        ok = [r for r in members if is_ok(r)]
        for metric in metrics:
            summary = summarize([metric_value(r, metric) for r in ok], confidence)
            row = {f: fmt_level(v) for f, v in zip(factors, cell)}
            row.update(
                metric=metric, runs=len(members), ok=len(ok), n=summary.n, mean=summary.mean,
                std=summary.std, sem=summary.sem, ci_low=summary.ci_low, ci_high=summary.ci_high,
            )
            rows.append(row)
    columns = [*factors, "metric", "runs", "ok", "n", "mean", "std", "sem", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns)
