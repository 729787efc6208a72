"""Figures for a report: matplotlib on the Agg canvas (no display, no pyplot global state), PNG bytes.

Every function takes records and returns a :class:`FigureOut` (or ``None`` when the sweep has nothing
to show for it); writing files is the caller's job. Only ``ok`` runs are drawn as data; where runs
diverged or failed at a plotted point, a red × on the top edge says so.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from ablate.report.judge import stats
from ablate.report.records.tables import cell_label, group_cells
from ablate.report.records.values import best_level, fmt_level, is_numeric_key, levels, matching, metric_value, short_names

DPI = 100
_HISTORY_PREFERRED = ("train/loss", "val/loss", "val/acc", "train/acc")


@dataclass(frozen=True)
class FigureOut:
    name: str  # file name under figures/, e.g. "train_loss_vs_depth.png"
    title: str
    caption: str
    png: bytes


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_").lower() or "x"


def to_png(fig: Figure) -> bytes:
    """PNG bytes of ``fig``; no timestamp metadata, so the same data gives the same bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _ok(records: Sequence[dict]) -> list[dict]:
    return [r for r in records if r.get("status") == "ok"]


def _mark_failures(ax, xs: Sequence[float], counts: Sequence[int], color, row: int = 0) -> bool:
    """A × (in the line's colour, one row per line) along the top edge at each x where runs
    diverged or failed: they have no value to plot, and leaving them out would flatter the line."""
    pts = [x for x, c in zip(xs, counts) if c]
    if pts:
        ax.scatter(pts, [0.97 - 0.035 * row] * len(pts), marker="x", color=color, s=42, zorder=5,
                   transform=ax.get_xaxis_transform(), clip_on=False)
    return bool(pts)


def _legend(ax, marked: bool, **kwargs) -> None:
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    if marked:
        handles.append(Line2D([], [], marker="x", color="0.3", linestyle="none"))
        labels.append("runs diverged / failed (top edge)")
    if handles:
        ax.legend(handles, labels, **kwargs)


def _apply_where(records: Sequence[dict], where: dict[str, Any], skip: set[str]) -> list[dict]:
    rows = list(records)
    for key, level in where.items():
        if key not in skip:
            rows = matching(rows, key, level)
    return rows


def _best_tuned(rows: Sequence[dict], tune: str | None, metric: str, goal: str,
                everything: Sequence[dict] | None = None) -> tuple[list[dict], list[dict]]:
    """The ok ``rows`` at the value of ``tune`` with the best mean metric (:func:`best_level`, the
    checks' own choice), and those of ``everything`` (all statuses) at that value; without
    ``tune``, the rows as they are."""
    everything = list(rows if everything is None else everything)
    if not tune:
        return list(rows), everything
    best, best_mean = best_level(rows, tune, lambda at: [metric_value(r, metric) for r in at], goal)
    if best_mean is None:
        return [], everything
    return matching(rows, tune, best), matching(everything, tune, best)


def _pooled(rows: Sequence[dict], fixed: set[str], factors: Sequence[str]) -> list[str]:
    return [f for f in factors if f not in fixed and len(levels(rows, f)) > 1]


# ---------------------------------------------------------------------------------------------
# Metric vs a swept factor
# ---------------------------------------------------------------------------------------------


def metric_vs_factor(records: Sequence[dict], factors: Sequence[str], metric: str, line_factor: str | None,
                     x: str | None, *, logx: bool = False, logy: bool = False, where: dict | None = None,
                     tune: str | None = None, goal: str = "min", name: str | None = None,
                     title: str | None = None, lead: str | None = None) -> FigureOut | None:
    """Mean ``metric`` against ``x`` with a 95% t-interval band, one line per level of
    ``line_factor``. Without a numeric ``x`` the levels of ``line_factor`` are the x axis."""
    where = dict(where or {})
    skip = {k for k in (x, line_factor) if k}
    everything = _apply_where(records, where, skip)
    ok = _ok(everything)
    if not any(np.isfinite(metric_value(r, metric)) for r in ok):
        return None
    # On a log axis, average in log space: a geometric mean with a multiplicative interval, the
    # scale that log10-transformed checks are tested on (an arithmetic band would dip below zero).
    geometric = logy and all(metric_value(r, metric) > 0 for r in ok if np.isfinite(metric_value(r, metric)))

    def summary(rows: Sequence[dict]) -> stats.Summary:
        vals = np.array([metric_value(r, metric) for r in rows], dtype=float)
        if not geometric:
            return stats.summarize(vals)
        s = stats.summarize(np.log10(vals[np.isfinite(vals)]))
        return stats.Summary(s.n, 10**s.mean, s.std, s.sem, 10**s.ci_low, 10**s.ci_high)

    fig = Figure(figsize=(7.5, 4.6), dpi=DPI)
    ax = fig.add_subplot()
    marked = False
    line_levels = levels(everything, line_factor) if line_factor else [None]
    colors = _colors(len(line_levels))
    if x and is_numeric_key(everything, x):
        xs_all = levels(everything, x)
        for row, (color, level) in enumerate(zip(colors, line_levels)):
            side = matching(everything, line_factor, level) if line_factor else everything
            means, lo, hi, xs, fails = [], [], [], [], []
            for xv in xs_all:
                point_all = matching(side, x, xv)
                if not point_all:
                    continue
                point, point_all = _best_tuned(_ok(point_all), tune, metric, goal, point_all)
                s = summary(point)
                xs.append(float(xv))
                means.append(s.mean)
                lo.append(s.ci_low if s.n >= 2 else s.mean)
                hi.append(s.ci_high if s.n >= 2 else s.mean)
                fails.append(sum(r.get("status") != "ok" for r in point_all))
            label = f"{short_names([line_factor])[0]}={fmt_level(level)}" if line_factor else metric
            ax.plot(xs, means, marker="o", color=color, label=label)
            ax.fill_between(xs, lo, hi, color=color, alpha=0.2, linewidth=0)
            marked |= _mark_failures(ax, xs, fails, color, row)
        ax.set_xlabel(x + (" (log scale)" if logx else ""))
        if logx:
            ax.set_xscale("log")
        if len(xs_all) <= 12:  # label the swept levels themselves, not 2×10⁰
            ax.set_xticks([float(v) for v in xs_all], [fmt_level(v) for v in xs_all])
            ax.minorticks_off()
    else:
        x = None
        positions = list(range(len(line_levels)))
        for pos, color, level in zip(positions, colors, line_levels):
            side_all = matching(everything, line_factor, level) if line_factor else everything
            side, side_all = _best_tuned(_ok(side_all), tune, metric, goal, side_all)
            s = summary(side)
            err = [[s.mean - s.ci_low], [s.ci_high - s.mean]] if s.n >= 2 else None
            ax.errorbar([pos], [s.mean], yerr=err, fmt="o", color=color, capsize=6, markersize=8)
            vals = [metric_value(r, metric) for r in side]
            ax.scatter([pos] * len(vals), vals, color=color, alpha=0.35, s=14)
            marked |= _mark_failures(ax, [pos], [sum(r.get("status") != "ok" for r in side_all)], color)
        ax.set_xticks(positions, [fmt_level(v) for v in line_levels])
        ax.set_xlabel(line_factor or "")
    logy = logy and _all_positive(ax)  # a log axis cannot show zero or negative means
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(metric + (" (log scale)" if logy else ""))
    subject = f"{metric} vs {x}" if x else (f"{metric} by {line_factor}" if line_factor else metric)
    ax.set_title((title or subject) + (f"\n(each point at its best {tune})" if tune else ""))
    ax.grid(True, alpha=0.3, which="both")
    _legend(ax, marked, fontsize=9)
    caption = lead or (f"{'Geometric mean' if geometric else 'Mean'} {metric} over seeds (ok runs) with its "
                       f"95% t-interval{' (computed on log10)' if geometric else ''}"
                       + (" (band)" if x else " (error bar; dots are single seeds)"))
    if where:
        shown = {k: v for k, v in where.items() if k not in skip}
        if shown:
            caption += "; " + ", ".join(f"{k}={fmt_level(v)}" for k, v in shown.items())
    if tune:
        caption += f"; each point at its best {tune} (the {'highest' if goal == 'max' else 'lowest'} mean {metric})"
    pooled = _pooled(_ok(everything), {x, line_factor, tune, *where}, factors)
    if pooled:
        caption += f"; pooled over {', '.join(pooled)}"
    caption += "."
    png = to_png(fig)
    fname = name or f"{slug(metric)}_vs_{slug(x or line_factor or 'all')}.png"
    return FigureOut(fname, title or subject, caption, png)


# ---------------------------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------------------------


def history_metrics(records: Sequence[dict], wanted: Sequence[str] = ()) -> list[str]:
    keys: set[str] = set()
    for r in _ok(records):
        for row in r.get("history") or []:
            keys.update(k for k, v in row.items() if k != "epoch" and isinstance(v, (int, float)))
    order = [m for m in (*wanted, *_HISTORY_PREFERRED) if m in keys]
    return list(dict.fromkeys(order))[:4]


MAX_CELL_LINES = 16  # beyond this a legend per cell is unreadable: colour by one factor instead


def training_curves(records: Sequence[dict], factors: Sequence[str], metrics: Sequence[str],
                    color_by: str | None = None) -> FigureOut | None:
    """Per-epoch ``metrics`` from each run's history, mean over the seeds of each cell. With more
    than :data:`MAX_CELL_LINES` cells, lines are coloured by the levels of ``color_by``."""
    ok = _ok(records)
    metrics = [m for m in metrics if m]
    if not metrics or not ok:
        return None
    groups = group_cells(ok, factors)
    by_factor = color_by if len(groups) > MAX_CELL_LINES and color_by in factors else None
    if by_factor:
        factor_levels = levels(ok, by_factor)
        palette = _colors(len(factor_levels))
        index = list(factors).index(by_factor)
        colors = [palette[next(i for i, lv in enumerate(factor_levels) if matching([m[0]], by_factor, lv))]
                  for _, m in groups]
        labels = [f"{short_names([by_factor])[0]}={fmt_level(cell[index])}" for cell, _ in groups]
    else:
        colors = _colors(len(groups))
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
        if ("loss" in metric or metric.startswith("grad/")) and _all_positive(ax):
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


def _all_positive(ax) -> bool:
    ys = np.array([y for line in ax.get_lines() for y in line.get_ydata()], dtype=float)
    ys = ys[np.isfinite(ys)]
    return bool(ys.size) and float(ys.min()) > 0


# ---------------------------------------------------------------------------------------------
# Per-layer gradient norms
# ---------------------------------------------------------------------------------------------


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
    ok = [r for r in _ok(records) if _profile(r, "final") is not None or _profile(r, "init") is not None]
    if not ok:
        return None
    phases = [p for p in ("init", "final") if any(_profile(r, p) is not None for r in ok)]
    groups = group_cells(ok, factors)
    colors = _colors(len(groups))
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

LR_KEY = "optimizer.lr"


def lr_line_factor(factors: Sequence[str], fallback: str | None = None) -> str | None:
    """The key naming the optimizer (``optimizer``, ``optimizer.name``, ...) if it is swept."""
    for f in factors:
        if f != LR_KEY and f.split(".")[0] == "optimizer":
            return f
    return fallback if fallback != LR_KEY else None


def lr_sensitivity(records: Sequence[dict], factors: Sequence[str], metric: str,
                   line_factor: str | None) -> FigureOut | None:
    """``metric`` against ``optimizer.lr`` (log x), one line per optimizer, 95% t-interval bands."""
    if LR_KEY not in factors or not is_numeric_key(records, LR_KEY):
        return None
    lead = (f"Final {metric} against the learning rate (log scale), mean over the seeds of ok runs with "
            f"its 95% t-interval band, one line per {line_factor or 'sweep'}; a flat curve means the "
            "result is insensitive to the learning rate")
    return metric_vs_factor(records, factors, metric, line_factor, LR_KEY, logx=True, logy=False,
                            name=f"lr_sensitivity_{slug(metric)}.png",
                            title=f"Learning-rate sensitivity: {metric}", lead=lead)
