"""The figures along training and along depth: per-epoch training curves (mean over each cell's
seeds) and gradient-norm profiles per layer. The shared drawing helpers are in
:mod:`ablate.report.present.figures`."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from ablate.report.present.figures import DPI, FigureOut, all_positive, ok_runs, palette, to_png
from ablate.report.records.tables import cell_label, group_cells
from ablate.report.records.values import fmt_level, levels, matching, short_names

_HISTORY_PREFERRED = ("train/loss", "val/loss", "val/acc", "train/acc")

# ---------------------------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------------------------


def history_metrics(records: Sequence[dict], wanted: Sequence[str] = ()) -> list[str]:
    keys: set[str] = set()
    for r in ok_runs(records):
        for row in r.get("history") or []:
            keys.update(k for k, v in row.items() if k != "epoch" and isinstance(v, (int, float)))
    order = [m for m in (*wanted, *_HISTORY_PREFERRED) if m in keys]
    return list(dict.fromkeys(order))[:4]


MAX_CELL_LINES = 16  # beyond this a legend per cell is unreadable: colour by one factor instead


def training_curves(records: Sequence[dict], factors: Sequence[str], metrics: Sequence[str],
                    color_by: str | None = None) -> FigureOut | None:
    """Per-epoch ``metrics`` from each run's history, mean over the seeds of each cell. With more
    than :data:`MAX_CELL_LINES` cells, lines are coloured by the levels of ``color_by``."""
    ok = ok_runs(records)
    metrics = [m for m in metrics if m]
    if not metrics or not ok:
        return None
    groups = group_cells(ok, factors)
    by_factor = color_by if len(groups) > MAX_CELL_LINES and color_by in factors else None
    if by_factor:
        factor_levels = levels(ok, by_factor)
        shades = palette(len(factor_levels))
        index = list(factors).index(by_factor)
        colors = [shades[next(i for i, lv in enumerate(factor_levels) if matching([m[0]], by_factor, lv))]
                  for _, m in groups]
        labels = [f"{short_names([by_factor])[0]}={fmt_level(cell[index])}" for cell, _ in groups]
    else:
        colors = palette(len(groups))
        labels = [cell_label(cell, factors) for cell, _ in groups]
    cols = min(2, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig = Figure(figsize=(6.2 * cols, 3.8 * rows), dpi=DPI)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(len(metrics))]
    log_axes = False
    for ax, metric in zip(axes, metrics):
        for color, label, (cell, members) in zip(colors, labels, groups):
            by_epoch: dict[int, list[float]] = {}
            for r in members:
                for row in r.get("history") or []:
                    v = row.get(metric)
                    if isinstance(v, (int, float)) and math.isfinite(v) and "epoch" in row:
                        by_epoch.setdefault(int(row["epoch"]), []).append(float(v))
            if not by_epoch:
                continue
            epochs = sorted(by_epoch)
            ax.plot(epochs, [np.mean(by_epoch[e]) for e in epochs], color=color, label=label,
                    marker="." if len(epochs) < 30 and not by_factor else None,
                    alpha=0.7 if by_factor else 1.0, linewidth=1.0 if by_factor else 1.5)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        if ("loss" in metric or metric.startswith("grad/")) and all_positive(ax):
            ax.set_yscale("log")
            log_axes = True
        ax.grid(True, alpha=0.3, which="both")
    legend: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if not legend:
        return None
    fig.suptitle("Training curves per cell (mean over seeds)")
    title = by_factor and short_names([by_factor])[0] or ", ".join(short_names(factors)) or None
    fig.legend(list(legend.values()), list(legend), loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=8, title=title)
    fig.tight_layout()
    caption = "Per-epoch history of ok runs, mean over the seeds of each cell"
    if by_factor:
        caption += f" ({len(groups)} cells, coloured by {by_factor})"
    caption += "; loss and gradient axes are logarithmic." if log_axes else "."
    return FigureOut("training_curves.png", "Training curves per cell", caption, to_png(fig))


def _profile(record: dict, which: str) -> np.ndarray | None:
    probe = (record.get("probes") or {}).get("grad_norm") or {}
    values = probe.get(which)
    if not isinstance(values, list) or not values:
        return None
    arr = np.array([v if isinstance(v, (int, float)) else np.nan for v in values], dtype=float)
    arr[arr <= 0] = np.nan
    return arr


def grad_norm_profiles(records: Sequence[dict], factors: Sequence[str]) -> FigureOut | None:
    """Gradient norm per layer (input side first) at init and at the end, log scale, one line per
    cell: the geometric mean over seeds, because norms spread over orders of magnitude."""
    ok = [r for r in ok_runs(records) if _profile(r, "final") is not None or _profile(r, "init") is not None]
    if not ok:
        return None
    phases = [p for p in ("init", "final") if any(_profile(r, p) is not None for r in ok)]
    groups = group_cells(ok, factors)
    colors = palette(len(groups))
    fig = Figure(figsize=(6.2 * len(phases), 4.2), dpi=DPI)
    axes = [fig.add_subplot(1, len(phases), i + 1) for i in range(len(phases))]
    for ax, phase in zip(axes, phases):
        for color, (cell, members) in zip(colors, groups):
            profiles = [p for p in (_profile(r, phase) for r in members) if p is not None]
            if not profiles:
                continue
            width = max(len(p) for p in profiles)
            stack = np.full((len(profiles), width), np.nan)
            for i, p in enumerate(profiles):
                stack[i, : len(p)] = p
            with np.errstate(all="ignore"):
                geo = 10 ** np.nanmean(np.log10(stack), axis=0)
            ax.plot(np.arange(width), geo, color=color, marker="." if width <= 40 else None,
                    label=cell_label(cell, factors))
        ax.set_yscale("log")
        ax.set_xlabel("layer (0 = input side)")
        ax.set_ylabel("gradient norm (log scale)")
        ax.set_title(f"at {'initialisation' if phase == 'init' else 'end of training'}")
        ax.grid(True, alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        return None
    fig.suptitle("Per-layer gradient norm (geometric mean over seeds)")
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               title=", ".join(short_names(factors)) or None)
    fig.tight_layout()
    caption = ("Gradient norm of each layer's weights from the grad_norm probe, input side on the left; "
               "a profile that falls steeply towards layer 0 means gradients vanish before reaching the "
               "first layers.")
    return FigureOut("grad_norm_profile.png", "Per-layer gradient norm", caption, to_png(fig))


# ---------------------------------------------------------------------------------------------
# Learning-rate sensitivity
# ---------------------------------------------------------------------------------------------

