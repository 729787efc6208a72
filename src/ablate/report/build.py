"""Build a sweep's report: read records, aggregate, judge claims, draw, write md/html/csv/png.

``analyse`` and ``compose`` are pure (records in, objects out); ``build_report`` does the I/O. Every
file is written atomically, and the same folder always gives the same files (rows sorted, no
timestamps, deterministic figures), so rebuilding a report is safe at any time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ablate.report import collect, derived, figures, stats
from ablate.report.checks import CheckResult
from ablate.report.claims import EQUIVALENCE
from ablate.report.figures import FigureOut
from ablate.report.judge import SEQUENTIAL_METHOD, ClaimResult, judge_claim
from ablate.report.render import (
    Bullets, Code, CodeBlock, Document, Fig, Heading, Para, Plain, Quote, Table, Verdict, badge,
    to_html, to_markdown,
)
from ablate.report.values import fmt_level, get_value, is_numeric_key, short_names
from ablate.results import (
    RECORD_NAME,
    atomic_write_bytes,
    atomic_write_text,
    read_record,
    remove_stale_temps,
    validate_record,
)

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
RUNS_CSV = "runs.csv"
CELLS_CSV = "cells.csv"
FIGURES_DIR = "figures"
_STANDARD_METRICS = ("train/loss", "val/acc", "test/acc", "val/loss")
_MAX_TABLE_METRICS = 5
_MAX_ERROR_CHARS = 300
_MAX_LISTED_IDS = 6


class ReportError(ValueError):
    """The report cannot be built (no such folder, no run records); the message says why."""


@dataclass
class SweepReport:
    """Everything a report shows, computed from the records alone."""

    title: str
    sweep_label: str
    records: list[dict[str, Any]]
    factors: list[str]
    runs: pd.DataFrame
    cells: pd.DataFrame
    claims: list[ClaimResult]
    key_metrics: list[str]
    figures: list[FigureOut] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # record files that could not be read

    @property
    def verdict(self) -> str | None:
        """The overall verdict: the claim's, or the combination over several claims."""
        if not self.claims:
            return None
        return stats.combine([c.verdict for c in self.claims])


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def load_records(sweep_dir: str | os.PathLike) -> tuple[list[dict[str, Any]], list[str]]:
    """Every valid record below ``sweep_dir`` (sorted by path) and a note for each unreadable one.

    Unlike :func:`ablate.results.load_sweep` one broken file does not stop the report; it is listed
    in it instead. Raises :class:`ReportError` when the folder is missing or holds no valid record.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ReportError(f"sweep folder '{sweep_dir}' does not exist (expected the folder that holds "
                          f"<run_id>/{RECORD_NAME}, e.g. reports/<experiment>/<timestamp>)")
    records, problems = [], []
    for path in sorted(sweep_dir.rglob(RECORD_NAME)):
        try:
            records.append(validate_record(read_record(path)))
        except (OSError, ValueError) as exc:  # JSONDecodeError and RecordError are ValueErrors
            problems.append(f"{path.relative_to(sweep_dir).as_posix()}: {exc}")
    if not records:
        detail = f"; {len(problems)} record file(s) could not be read: {problems[0]}" if problems else ""
        raise ReportError(f"no run records (<run_id>/{RECORD_NAME}) found under '{sweep_dir}'{detail}. "
                          "Point the command at a sweep folder whose runs have finished.")
    return records, problems


def sweep_label(sweep_dir: str | os.PathLike) -> str:
    """``reports/<experiment>/<stamp>`` (or the folder's last two parts): the same text wherever
    the command runs from, so that rebuilding gives the same report."""
    parts = Path(os.path.abspath(sweep_dir)).parts
    keep = 3 if len(parts) >= 3 and parts[-3] == "reports" else 2
    return "/".join(parts[-keep:])


# ---------------------------------------------------------------------------------------------
# Analysis
# ---------------------------------------------------------------------------------------------


def analyse(records: Sequence[dict[str, Any]], sweep_label: str = "", problems: Sequence[str] = (),
            with_figures: bool = True) -> SweepReport:
    """Aggregate the records, judge every claim they declare, and (optionally) draw the figures."""
    records = list(records)
    if not records:
        raise ReportError("no run records to report on")
    factors = collect.swept_factors(records)
    claims = [judge_claim(records, c) for c in collect.claims(records)]
    present = set(collect.metric_names(records))
    key_metrics = [m for m in (*collect.claim_metrics(claims), *_STANDARD_METRICS)
                   if m in present or (derived.is_derived(m) and set(derived.operands(m)) <= present)]
    key_metrics = list(dict.fromkeys(key_metrics))[:_MAX_TABLE_METRICS]
    experiments = sorted({str(r.get("experiment")) for r in records if r.get("experiment")})
    subject = ", ".join(experiments) or (claims[0].name if claims else sweep_label or "sweep")
    report = SweepReport(
        title=f"ablate report: {subject}",
        sweep_label=sweep_label,
        records=records,
        factors=factors,
        runs=collect.runs_frame(records, factors),
        cells=collect.cells_frame(records, factors),
        claims=claims,
        key_metrics=key_metrics,
        problems=list(problems),
    )
    if with_figures:
        report.figures = make_figures(report)
    return report


def _default_x(records: Sequence[dict], factors: Sequence[str], avoid: set[str]) -> str | None:
    for f in factors:
        if f in avoid or f == figures.LR_KEY:
            continue
        if is_numeric_key(records, f):
            return f
    return None


def make_figures(report: SweepReport) -> list[FigureOut]:
    """The headline figure of each claim, one per further check, training curves, gradient-norm
    profiles and learning-rate sensitivity, each when the sweep has the data for it."""
    records, factors = report.records, report.factors
    out: list[FigureOut] = []
    seen: set[tuple] = set()

    def add(fig: FigureOut | None) -> None:
        if fig is None:
            return
        name, i = fig.name, 2
        while any(f.name == name for f in out):
            name = fig.name.replace(".png", f"_{i}.png")
            i += 1
        out.append(FigureOut(name, fig.title, fig.caption, fig.png))

    for claim in report.claims:
        plot = claim.plot
        first = claim.checks[0] if claim.checks else None
        # The headline (claim.plot's metric), then each check's own metric. The headline takes its
        # lines, filter, tuning and direction from the plot block (line, where, tune, goal) where it
        # sets them, else from the first check on its metric (a check on another metric would pick
        # each point's "best" rate in that check's direction: a test/acc headline at its lowest).
        headline = plot.get("metric") or (first.metric if first else None)
        lead = next((c for c in claim.checks if c.metric == headline), first)
        wanted = [(headline, lead, plot)]
        wanted += [(c.metric, c, {}) for c in claim.checks]
        for metric, check, spec in wanted:
            if not metric:
                continue
            line = spec["line"] if "line" in spec else check.factor if check and check.factor else None
            x = plot.get("x") or _default_x(records, factors, {line} if line else set())
            if line == x:  # a check across the plot's own axis (depth 2 vs 32): one line along it
                line = None
            where = dict(spec["where"] if "where" in spec else check.where if check else {})
            tune = spec["tune"] if "tune" in spec else check.tune if check else None
            goal = spec.get("goal") or (check.goal if check else "min")
            key = (metric, line, x)
            if key in seen:
                continue
            seen.add(key)
            if "logy" in plot and metric == plot.get("metric"):
                logy = bool(plot["logy"])
            else:
                logy = bool(check and check.transform)
            logx = bool(plot.get("logx")) if "logx" in plot else False
            title = f"{claim.name}: {metric} vs {x}" if x else f"{claim.name}: {metric} by {line}"
            add(figures.metric_vs_factor(
                records, factors, metric, line, x, logx=logx, logy=logy, where=where,
                tune=tune if tune != x else None,  # along x each point is one value
                goal=goal, title=title,
                name=f"{figures.slug(claim.name)}_{figures.slug(metric)}_vs_{figures.slug(x or line or 'all')}.png",
            ))

    if not report.claims:
        x = _default_x(records, factors, set())
        others = [f for f in factors if f != x]
        for metric in report.key_metrics[:2]:
            add(figures.metric_vs_factor(records, factors, metric, others[0] if others else None, x))

    color_by = next((c.factor for claim in report.claims for c in claim.checks if c.factor), None)
    add(figures.training_curves(records, factors, figures.history_metrics(records, report.key_metrics), color_by))
    add(figures.grad_norm_profiles(records, factors))

    if figures.LR_KEY in factors:
        first_check = next((c for claim in report.claims for c in claim.checks if c.metric), None)
        metric = first_check.metric if first_check else (report.key_metrics or [None])[0]
        line = figures.lr_line_factor(factors, first_check.factor if first_check else None)
        if metric and (metric, line, figures.LR_KEY) not in seen:  # else the claim's figure shows it
            add(figures.lr_sensitivity(records, factors, metric, line))
    return out


# ---------------------------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------------------------


def _num(x: float, sig: int = 3) -> str:
    return "—" if x != x else stats.fmt(x, sig)  # NaN: undefined (n < 2), not a number to read


def _p(x: float) -> str:
    """A p-value cell: ``—`` when undefined, ``1`` for a direction the estimate does not point to."""
    if x != x:
        return "—"
    return "1" if x >= 1 else stats.fmt(x, 2)


def _mean_cell(summary: stats.Summary) -> str:
    if summary.n == 0:
        return "—"
    if summary.n == 1:
        return f"{stats.fmt(summary.mean)} (n=1)"
    return f"{stats.fmt(summary.mean)} ± {stats.fmt(summary.half_width, 2)}"


def _side(c: CheckResult, side: str) -> list | str:
    cell = c.table_side(side)
    return "—" if cell is None else [Code(cell[0]), cell[1]]


def _levels_text(records: Sequence[dict], key: str) -> str:
    return ", ".join(fmt_level(v) for v in collect.levels(records, key))


def _ids(label: str, ids: Sequence[str]) -> list:
    parts: list = [f"{label} ({len(ids)}): "]
    for j, rid in enumerate(ids[:_MAX_LISTED_IDS]):
        parts += ([", "] if j else []) + [Code(rid)]
    if len(ids) > _MAX_LISTED_IDS:
        parts += [f" and {len(ids) - _MAX_LISTED_IDS} more (", Code(RUNS_CSV), ")"]
    return parts


def _summary(report: SweepReport) -> list:
    records = report.records
    summary: list = []
    if report.sweep_label:
        summary += ["Sweep ", Code(report.sweep_label), " · "]
    summary.append(f"**{len(records)} runs**: {collect.status_text(records)}")
    if report.factors:
        summary.append(" · swept: ")
        for i, f in enumerate(report.factors):
            summary += ([", "] if i else []) + [Code(f), f" ∈ {{{_levels_text(records, f)}}}"]
    seeds = collect.levels(records, "seed")
    summary.append(f" · seeds: {', '.join(fmt_level(s) for s in seeds)}")
    blocks: list = [Para(summary)]
    if report.verdict is not None:
        names = ", ".join(c.name for c in report.claims)
        blocks.append(Verdict(report.verdict, f"overall verdict on {names}" if len(report.claims) == 1
                              else f"overall verdict over {len(report.claims)} claims ({names})"))
    return blocks


def _clauses(claim: ClaimResult) -> list:
    """Each part of the statement with its verdict and the checks that test it; untested parts stay."""
    if not claim.clauses:
        return []
    items = []
    for c in claim.clauses:
        item: list = [badge(c.verdict), " ", Plain(c.clause.text or c.clause.name), " (", Code(c.clause.name), ")"]
        if c.checks:
            numbers = ", ".join(str(claim.checks.index(k) + 1) for k in c.checks)
            item.append(f": check{'s' if len(c.checks) > 1 else ''} {numbers}")
        elif c.clause.not_tested:
            item += [": ", Plain(c.clause.not_tested)]
        if c.clause.explains:
            item.append(" (why it happens: shown, not part of the claim's verdict)")
        items.append(item)
    return [Para(["**Clauses** (parts of the statement):"]), Bullets(items)]


def _scope(claim: ClaimResult) -> list:
    items: list = [[f"{key}: ", Plain(text)] for key, text in claim.scope.items()]
    if claim.budget:
        items.append([Plain(claim.budget)])
    plan = claim.plan.describe()
    m = len(claim.checks)
    items.append([f"seeds: {plan}; α = {claim.alpha:g} per check, split over its looks ({SEQUENTIAL_METHOD}); "
                  f"contradictions Holm-corrected over the claim's {m} check{'s' if m != 1 else ''}"])
    items += [["note: ", Plain(n)] for n in claim.notes]
    return [Para(["**Scope**: where this verdict holds."]), Bullets(items)]


def _checks_table(claim: ClaimResult) -> Table:
    rows = []
    for i, c in enumerate(claim.checks, 1):
        p_for = c.p_inside if c.test == EQUIVALENCE else c.p_support
        rows.append([
            str(i), Plain(c.name), Plain(c.clause or "—"), c.test_label, badge(c.verdict_label),
            _side(c, "treatment"), _side(c, "baseline"), c.diff_text(), _p(p_for), f"{_p(c.p_against)} / {_p(c.p_holm)}",
            f"≥ {_num(c.detectable, 2)}" if c.detectable == c.detectable else "—",
            f"{c.n_text()}, look {c.look + 1}/{c.looks_planned} (α={c.alpha:.3g})",
        ])
    return Table(["#", "check", "clause", "test", "verdict", "treatment (mean ± sd)", "baseline (mean ± sd)",
                  "Δ [CI]", "p for", "p against (raw / Holm)", "detectable |Δ|", "seeds per side"], rows,
                 numeric=[True, False, False, False, False, False, False, True, True, True, True, False])


def _look_line(c: CheckResult) -> list:
    parts = []
    for look in c.history:
        parts.append(f"look {look.index + 1}: {look.text} → {look.verdict if look.complete else 'incomplete'}")
    decided = ("decided at look " + str(c.look + 1) if c.decided and c.verdict != stats.INCONCLUSIVE
               else f"undecided after {len(c.history)} of {c.looks_planned} planned look(s)")
    return [f"looks ({decided}): ", Plain("; ".join(parts))]


def _check_details(i: int, c: CheckResult) -> list:
    blocks: list = [Heading(3, Plain(f"Check {i}: {c.name}")), Verdict(c.verdict_label, Plain(c.detail()))]
    items: list[list] = [["compared: ", Plain(c.setup())], ["test: ", Plain(c.test_label)]]
    if c.detail() == c.evidence():  # else the reason already closes the verdict line
        items.append(["why: ", Plain(c.reason)])
    items.append(["seeds: ", Plain(c.seeds_line())])
    items.append(_look_line(c))
    items.append(["power: ", Plain(c.power_text())])
    for side, counts in c.counts.items():
        shown = {k: v for k, v in counts.items() if v}
        if shown:
            items.append([Plain(f"{side}: "), Plain(", ".join(f"{v} {k}" for k, v in shown.items()))
                          + f" ({c.diverged_policy()})"])
    items += [["note: ", Plain(n)] for n in c.notes]
    for side, ids in c.run_ids.items():
        if ids:
            items.append(_ids(f"{side} runs", ids))
    blocks.append(Bullets(items))
    return blocks


def _claim_section(claim: ClaimResult) -> list:
    blocks: list = [Heading(2, f"Claim: {claim.name}", anchor=f"claim-{claim.name}")]
    if claim.statement:
        blocks.append(Quote(Plain(claim.statement)))
    blocks.append(Verdict(claim.verdict, claim.reason))
    blocks += _clauses(claim)
    blocks += _scope(claim)
    if claim.checks:
        blocks.append(_checks_table(claim))
    for i, c in enumerate(claim.checks, 1):
        blocks += _check_details(i, c)
    return blocks


def _cells_section(report: SweepReport) -> list:
    records = report.records
    blocks: list = [Heading(2, "Results per cell"), Para([
        "Mean ± 95% CI half-width (t-distribution, n−1 degrees of freedom) over the seeds of ok runs in each "
        "cell; **ok/runs** counts the runs that finished. Every metric of every cell: ", Code(CELLS_CSV),
        "; every run: ", Code(RUNS_CSV), "."])]
    names = short_names(report.factors)
    rows = []
    for cell, members in collect.group_cells(records, report.factors):
        ok = [r for r in members if r.get("status") == "ok"]
        row: list = [fmt_level(v) for v in cell]
        row.append(f"{len(ok)}/{len(members)}")
        for metric in report.key_metrics:
            row.append(_mean_cell(stats.summarize([collect.metric_value(r, metric) for r in ok])))
        rows.append(row)
    blocks.append(Table([*names, "ok/runs", *report.key_metrics], rows,
                        numeric=[False] * len(names) + [True] * (1 + len(report.key_metrics))))
    return blocks


def _error_text(record: dict) -> str:
    error = str(record.get("error") or "").strip()
    if error.startswith("Traceback"):  # the exception and its message, not the call stack
        error = error.splitlines()[-1]
    error = " ".join(error.split())
    return error[: _MAX_ERROR_CHARS - 1] + "…" if len(error) > _MAX_ERROR_CHARS else error


def _bad_runs_section(report: SweepReport) -> list:
    records = report.records
    bad = [r for r in collect.sort_records(records, report.factors) if r.get("status") != "ok"]
    blocks: list = [Heading(2, "Runs that did not finish")]
    if not bad:
        return blocks + [Para([f"None: all {len(records)} runs finished with status ok."])]
    blocks.append(Para([f"**{collect.status_text(bad, always=())}** of {len(records)} runs. Failed runs never "
                        "enter a mean, an interval or a test; diverged runs enter only checks with "
                        "`on_diverged: worst` or `chance` (each check says how many); full error text in ",
                        Code(RUNS_CSV), "."]))
    names = short_names(report.factors)
    with_seed = "seed" not in report.factors
    rows = [[Code(str(r.get("run_id"))), r.get("status", "?"), *[fmt_level(get_value(r, f)) for f in report.factors],
             *([fmt_level(r.get("seed"))] if with_seed else []), Code(_error_text(r))] for r in bad]
    blocks.append(Table(["run", "status", *names, *(["seed"] if with_seed else []), "error"], rows))
    return blocks


def _reading_guide() -> list:
    a = stats.ALPHA
    return [Heading(2, "How to read this report"), Bullets([
        ["Each check compares the seeds of a treatment with those of a baseline. Δ is the difference oriented so "
         "that positive is the way the claim says (treatment − baseline when higher is better, baseline − "
         "treatment when lower is better), with its two-sided Welch confidence interval (unequal variances) at "
         "the check's α."],
        ["Tests: **superiority** (the treatment is better), **non-inferiority** (it is not worse by more than "
         "the margin δ), **equivalence** (the two differ by less than δ). δ is in the metric's units (after "
         "log10 when the check transforms it)."],
        [badge(stats.SUPPORTED), ": the interval lies above 0 (superiority), above −δ (non-inferiority), or "
         "inside (−δ, δ) (equivalence). Exactly then **p for** < the check's α (the Welch p against that "
         "bound; for equivalence twice the TOST p)."],
        [badge(stats.NOT_SUPPORTED), f": the interval lies wholly on the wrong side (below 0, below −δ, or "
         f"outside (−δ, δ)) **and** Holm's correction over the claim's checks keeps it: the Holm-adjusted "
         f"**p against** (each raw p times its number of looks) is < {a:g}. The measurement contradicts the claim."],
        [badge("no effect within ±δ"), ": superiority checks with a margin only: the interval lies inside "
         "(−δ, δ), so any effect is smaller than δ. A finding in its own right, and it counts as not "
         "supported for the claim."],
        [badge(stats.INCONCLUSIVE), ": none of these at this budget (or a side has fewer than 2 ok seeds, or "
         "the check could not be evaluated; the reason is given). A null here reads \"not shown at "
         "budget=…\", with the smallest effect the seeds could have detected: it is not evidence against "
         "the claim."],
        [badge(stats.NOT_TESTED), ": a part of the statement no check measures (the reason is given); "
         "a claim is never supported on the strength of its tested parts alone without listing these."],
        ["A clause is supported when all its checks are, not supported when any is not supported or shows "
         "no effect, else inconclusive; the claim combines its tested clauses the same way "
         "(intersection-union: supporting needs no multiplicity correction)."],
        ["**Sequential seeds**: a sweep starts every cell at budget.seeds seeds and, while a check is "
         "undecided, adds seeds (about ×1.6 a look, up to budget.max_seeds) only to the cells that check "
         f"reads. α = {a:g} is split over a check's planned looks (Bonferroni: α/K each); the verdict is the "
         "one of the first look that decided, and the check says which look and how many seeds per side."],
        ["**Power**: *detectable |Δ|* is the smallest difference the check's seeds would find with 80% "
         "probability (two-sided, at the check's α; pooled sd); an inconclusive check also says about how "
         "many seeds per side its margin (or the observed |Δ|) would need."],
        ["With ", Code("tune"), ", each side is set to its own best value of the tuned key, chosen on ",
         Code("select_on"), " (validation data) over the selection seeds, and judged on the check's metric "
         "(test data) with fresh seeds that did not take part in the choice, when the budget's max_seeds "
         "allows; otherwise the same seeds choose and judge, which the check says is optimistic for both sides."],
        ["With ", Code("spread"), ", each seed contributes one number: the sd of the metric over the key's "
         "grid, or with ", Code("statistic: width"), " the width in decades of the range of the key where "
         "the metric stays within ", Code("within"), " of that seed's best (a width that reaches the end of "
         "the grid is censored: the true width is at least that)."],
        ["With ", Code("interaction"), ", Δ is a difference in differences: the effect of the check's factor "
         "(treatment − baseline) under one level of a second factor minus its effect under another, the "
         "interaction coefficient of an OLS fit to the four cells' seed values with HC3 (heteroskedasticity-"
         "robust) standard errors and t with N − 4 degrees of freedom; it is decided like any other interval, "
         "and every cell needs at least 2 ok seeds. The treatment and baseline columns then show each level's "
         "effect."],
        ["With ", Code("event"), ", the check counts the runs per side where the event happened (diverged, "
         "or the metric at or past a threshold) and tests the two fractions with Fisher's exact test, "
         "one-sided in the claimed direction: supported when **p for** < the look's α, not supported when "
         "**p against** < α and Holm keeps it. There is no interval and no detectable effect; the power line "
         "says instead the smallest p the run counts could reach at all. A side may pool several levels "
         "(", Code("treatment: [0.3, 1, 3]"), ")."],
        ["A metric written ", Code("a - b"), " (or ", Code("a + b"), ") is computed per run from two recorded "
         "metrics (e.g. ", Code("train_eval/acc - test/acc"), ", the generalisation gap) and is missing when "
         "either is."],
        ["Hedges' g is Δ in pooled standard deviations, small-sample corrected (|g| ≈ 0.2 small, 0.8 large)."],
        ["Failed runs never enter statistics; diverged runs are left out, or with ", Code("on_diverged"),
         " scored as the worst value of the check's ok runs (", Code("worst"), ", the default for tune and "
         "spread checks, where leaving them out would hide sensitivity) or as chance (", Code("chance"),
         "); each check counts them per side."],
    ])]


def compose(report: SweepReport) -> Document:
    """The report's content as a :class:`Document`, rendered to Markdown and to HTML alike."""
    doc = Document(report.title)
    doc.add(*_summary(report))
    if not report.claims:
        doc.add(Heading(2, "Claim"), Para(["These records declare no claim, so there is no verdict; "
                                           "the measurements follow."]))
    for claim in report.claims:
        doc.add(*_claim_section(claim))
    if report.figures:
        doc.add(Heading(2, "Figures"), *[Fig(f) for f in report.figures])
    doc.add(*_cells_section(report))
    doc.add(*_bad_runs_section(report))
    if report.problems:
        doc.add(Heading(2, "Record files that could not be read"), Bullets([[Code(p)] for p in report.problems]))
    doc.add(*_reading_guide())
    doc.add(Heading(2, "Rebuild"), CodeBlock(f"python -m ablate.report {report.sweep_label or '<sweep folder>'}"))
    return doc


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n", float_format="%.10g")


def _readable(path: Path) -> Path:
    """The atomic writers create files as 0600 (mkstemp); a report is meant to be shared: 0644."""
    try:
        os.chmod(path, 0o644)
    except OSError:  # pragma: no cover - e.g. a file system without modes
        pass
    return path


def _write_text(path: Path, text: str) -> Path:
    remove_stale_temps(path)  # left by a build that was killed mid-write
    return _readable(atomic_write_text(path, text))


def _write_bytes(path: Path, data: bytes) -> Path:
    remove_stale_temps(path)
    return _readable(atomic_write_bytes(path, data))


def write_report(report: SweepReport, out_dir: str | os.PathLike) -> Path:
    """Write report.md, report.html, runs.csv, cells.csv and figures/*.png (atomically)."""
    out_dir = Path(out_dir)
    fig_dir = out_dir / FIGURES_DIR
    names = {f.name for f in report.figures}
    for f in report.figures:
        _write_bytes(fig_dir / f.name, f.png)
    if fig_dir.is_dir():  # figures from an earlier build that this build no longer draws
        for stale in fig_dir.glob("*.png"):
            if stale.name not in names:
                stale.unlink()
    _write_text(out_dir / RUNS_CSV, _csv(report.runs))
    _write_text(out_dir / CELLS_CSV, _csv(report.cells))
    doc = compose(report)
    rel_fig = os.path.relpath(fig_dir, out_dir).replace(os.sep, "/")
    _write_text(out_dir / REPORT_HTML, to_html(doc))
    return _write_text(out_dir / REPORT_MD, to_markdown(doc, figures_dir=rel_fig))


def build_report(sweep_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Build the report of the sweep in ``sweep_dir`` into ``out_dir`` (default: ``sweep_dir``) and
    return the path of ``report.md``. Raises :class:`ReportError` (a ValueError) when the folder is
    missing or holds no run record."""
    records, problems = load_records(sweep_dir)
    report = analyse(records, sweep_label(sweep_dir), problems)
    return write_report(report, sweep_dir if out_dir is None else out_dir)
