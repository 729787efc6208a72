"""Figures for a report: matplotlib on the Agg canvas (no display, no pyplot global state), PNG bytes.

Every function takes records and returns a :class:`FigureOut` (or ``None`` when the sweep has nothing
to show for it); writing files is the caller's job. Only ``ok`` runs are drawn as data; where runs
diverged or failed at a plotted point, a red × on the top edge says so.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from ablate.report.judge import stats
from ablate.report.records.tables import cell_label, group_cells
from ablate.report.records.values import best_level, fmt_level, is_numeric_key, levels, matching, metric_value, short_names
from ablate.results import is_ok

DPI = 100


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


def palette(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def ok_runs(records: Sequence[dict]) -> list[dict]:
    return [r for r in records if is_ok(r)]


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
    ok = ok_runs(everything)
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
    colors = palette(len(line_levels))
    if x and is_numeric_key(everything, x):
        xs_all = levels(everything, x)
        for row, (color, level) in enumerate(zip(colors, line_levels)):
            side = matching(everything, line_factor, level) if line_factor else everything
            means, lo, hi, xs, fails = [], [], [], [], []
            for xv in xs_all:
                point_all = matching(side, x, xv)
                if not point_all:
                    continue
                point, point_all = _best_tuned(ok_runs(point_all), tune, metric, goal, point_all)
                s = summary(point)
                xs.append(float(xv))
                means.append(s.mean)
                lo.append(s.ci_low if s.n >= 2 else s.mean)
                hi.append(s.ci_high if s.n >= 2 else s.mean)
                fails.append(sum(not is_ok(r) for r in point_all))
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
            side, side_all = _best_tuned(ok_runs(side_all), tune, metric, goal, side_all)
            s = summary(side)
            err = [[s.mean - s.ci_low], [s.ci_high - s.mean]] if s.n >= 2 else None
            ax.errorbar([pos], [s.mean], yerr=err, fmt="o", color=color, capsize=6, markersize=8)
            vals = [metric_value(r, metric) for r in side]
            ax.scatter([pos] * len(vals), vals, color=color, alpha=0.35, s=14)
            marked |= _mark_failures(ax, [pos], [sum(not is_ok(r) for r in side_all)], color)
        ax.set_xticks(positions, [fmt_level(v) for v in line_levels])
        ax.set_xlabel(line_factor or "")
    logy = logy and all_positive(ax)  # a log axis cannot show zero or negative means
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
    pooled = _pooled(ok_runs(everything), {x, line_factor, tune, *where}, factors)
    if pooled:
        caption += f"; pooled over {', '.join(pooled)}"
    caption += "."
    png = to_png(fig)
    fname = name or f"{slug(metric)}_vs_{slug(x or line_factor or 'all')}.png"
    return FigureOut(fname, title or subject, caption, png)


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


def all_positive(ax) -> bool:
    ys = np.array([y for line in ax.get_lines() for y in line.get_ydata()], dtype=float)
    ys = ys[np.isfinite(ys)]
    return bool(ys.size) and float(ys.min()) > 0


# ---------------------------------------------------------------------------------------------
# Per-layer gradient norms
# ---------------------------------------------------------------------------------------------
