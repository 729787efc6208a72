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

from ablate.report import stats
from ablate.report.collect import cell_label, group_cells
from ablate.report.values import fmt_level, get_value, metric_value, same_level, short_names, sort_key

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


def _levels(records: Sequence[dict], key: str) -> list[Any]:
    found: list[Any] = []
    for r in records:
        v = get_value(r, key)
        if not any(same_level(v, f) for f in found):
            found.append(v)
    return sorted(found, key=sort_key)


def _match(records: Sequence[dict], key: str, level: Any) -> list[dict]:
    return [r for r in records if same_level(get_value(r, key), level)]


def _is_numeric_key(records: Sequence[dict], key: str) -> bool:
    lv = _levels(records, key)
    return bool(lv) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in lv)


def _ok(records: Sequence[dict]) -> list[dict]:
    return [r for r in records if r.get("status") == "ok"]


def _mark_failures(ax, xs: Sequence[float], counts: Sequence[int], label_once: list[bool]) -> None:
    """A red × on the top edge at each x where runs diverged or failed (they have no value to plot)."""
    pts = [(x, c) for x, c in zip(xs, counts) if c]
    if not pts:
        return
    label = None if label_once[0] else "runs diverged / failed here"
    label_once[0] = True
    ax.scatter([x for x, _ in pts], [0.97] * len(pts), marker="x", color="red", s=40, zorder=5,
               transform=ax.get_xaxis_transform(), label=label, clip_on=False)


def _apply_where(records: Sequence[dict], where: dict[str, Any], skip: set[str]) -> list[dict]:
    rows = list(records)
    for key, level in where.items():
        if key not in skip:
            rows = _match(rows, key, level)
    return rows


def _best_tuned(rows: Sequence[dict], tune: str | None, metric: str, goal: str) -> list[dict]:
    """Keep the rows at the tuning value with the best mean metric (the check's ``tune``)."""
    if not tune:
        return list(rows)
    best, best_mean = None, None
    for value in _levels(rows, tune):
        vals = np.array([metric_value(r, metric) for r in _match(rows, tune, value)])
        vals = vals[np.isfinite(vals)]
        if vals.size:
            m = float(vals.mean())
            if best_mean is None or (m < best_mean if goal == "min" else m > best_mean):
                best, best_mean = value, m
    return _match(rows, tune, best) if best_mean is not None else []


def _pooled(rows: Sequence[dict], fixed: set[str], factors: Sequence[str]) -> list[str]:
    return [f for f in factors if f not in fixed and len(_levels(rows, f)) > 1]


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
    fig = Figure(figsize=(7.5, 4.6), dpi=DPI)
    ax = fig.add_subplot()
    marked = [False]
    line_levels = _levels(everything, line_factor) if line_factor else [None]
    colors = _colors(len(line_levels))
    used_tune = []
    if x and _is_numeric_key(everything, x):
        xs_all = _levels(everything, x)
        for color, level in zip(colors, line_levels):
            side = _match(everything, line_factor, level) if line_factor else everything
            means, lo, hi, xs, fails = [], [], [], [], []
            for xv in xs_all:
                point_all = _match(side, x, xv)
                if not point_all:
                    continue
                point = _best_tuned(_ok(point_all), tune, metric, goal)
                if tune and point:
                    used_tune.append(get_value(point[0], tune))
                s = stats.summarize([metric_value(r, metric) for r in point])
                xs.append(float(xv))
                means.append(s.mean)
                lo.append(s.ci_low if s.n >= 2 else s.mean)
                hi.append(s.ci_high if s.n >= 2 else s.mean)
                fails.append(sum(r.get("status") != "ok" for r in point_all))
            label = f"{short_names([line_factor])[0]}={fmt_level(level)}" if line_factor else metric
            ax.plot(xs, means, marker="o", color=color, label=label)
            ax.fill_between(xs, lo, hi, color=color, alpha=0.2, linewidth=0)
            _mark_failures(ax, xs, fails, marked)
        ax.set_xlabel(x + (" (log scale)" if logx else ""))
        if logx:
            ax.set_xscale("log")
    else:
        x = None
        positions = list(range(len(line_levels)))
        for pos, color, level in zip(positions, colors, line_levels):
            side_all = _match(everything, line_factor, level) if line_factor else everything
            side = _best_tuned(_ok(side_all), tune, metric, goal)
            s = stats.summarize([metric_value(r, metric) for r in side])
            err = [[s.mean - s.ci_low], [s.ci_high - s.mean]] if s.n >= 2 else None
            ax.errorbar([pos], [s.mean], yerr=err, fmt="o", color=color, capsize=6, markersize=8)
            vals = [metric_value(r, metric) for r in side]
            ax.scatter([pos] * len(vals), vals, color=color, alpha=0.35, s=14)
            _mark_failures(ax, [pos], [sum(r.get("status") != "ok" for r in side_all)], marked)
        ax.set_xticks(positions, [fmt_level(v) for v in line_levels])
        ax.set_xlabel(line_factor or "")
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(metric + (" (log scale)" if logy else ""))
    subject = f"{metric} vs {x}" if x else (f"{metric} by {line_factor}" if line_factor else metric)
    ax.set_title(title or subject)
    ax.grid(True, alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title=None, fontsize=9)
    caption = lead or f"Mean {metric} over seeds (ok runs) with its 95% t-interval" + (
        " (band)" if x else " (error bar; dots are single seeds)")
    if where:
        shown = {k: v for k, v in where.items() if k not in skip}
        if shown:
            caption += "; " + ", ".join(f"{k}={fmt_level(v)}" for k, v in shown.items())
    if tune:
        caption += f"; each point at its best {tune}"
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


def training_curves(records: Sequence[dict], factors: Sequence[str], metrics: Sequence[str]) -> FigureOut | None:
    """Per-epoch ``metrics`` from each run's history, mean over the seeds of each cell."""
    ok = _ok(records)
    metrics = [m for m in metrics if m]
    if not metrics or not ok:
        return None
    groups = [(cell, members) for cell, members in group_cells(ok, factors)]
    colors = _colors(len(groups))
    cols = min(2, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig = Figure(figsize=(6.2 * cols, 3.8 * rows), dpi=DPI)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(len(metrics))]
    for ax, metric in zip(axes, metrics):
        for color, (cell, members) in zip(colors, groups):
            by_epoch: dict[int, list[float]] = {}
            for r in members:
                for row in r.get("history") or []:
                    v = row.get(metric)
                    if isinstance(v, (int, float)) and math.isfinite(v) and "epoch" in row:
                        by_epoch.setdefault(int(row["epoch"]), []).append(float(v))
            if not by_epoch:
                continue
            epochs = sorted(by_epoch)
            ax.plot(epochs, [np.mean(by_epoch[e]) for e in epochs], color=color,
                    label=cell_label(cell, factors), marker="." if len(epochs) < 30 else None)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        if "loss" in metric and _all_positive(ax):
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        return None
    fig.suptitle("Training curves per cell (mean over seeds)")
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               title=", ".join(short_names(factors)) or None)
    fig.tight_layout()
    caption = ("Per-epoch history of ok runs, mean over the seeds of each cell"
               + ("; loss axes are logarithmic." if any("loss" in m for m in metrics) else "."))
    return FigureOut("training_curves.png", "Training curves per cell", caption, to_png(fig))


def _all_positive(ax) -> bool:
    ys = [y for line in ax.get_lines() for y in line.get_ydata()]
    return bool(ys) and min(ys) > 0


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
    if LR_KEY not in factors or not _is_numeric_key(records, LR_KEY):
        return None
    lead = (f"Final {metric} against the learning rate (log scale), mean over the seeds of ok runs with "
            f"its 95% t-interval band, one line per {line_factor or 'sweep'}; a flat curve means the "
            "result is insensitive to the learning rate")
    return metric_vs_factor(records, factors, metric, line_factor, LR_KEY, logx=True, logy=False,
                            name=f"lr_sensitivity_{slug(metric)}.png",
                            title=f"Learning-rate sensitivity: {metric}", lead=lead)
