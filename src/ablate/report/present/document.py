"""The report as a document: summary, each claim (clauses, scope, checks table, check details),
figures, results per cell, runs that did not finish, the reading guide. Rendered to Markdown and
HTML alike by :mod:`ablate.report.present.render`.
"""

from __future__ import annotations

from typing import Sequence

from ablate.report.judge import stats
from ablate.report.judge.claim import SEQUENTIAL_METHOD
from ablate.report.judge.results import CheckResult, ClaimResult
from ablate.report.judge.sweep import CELLS_CSV, RUNS_CSV, SweepReport
from ablate.report.present.guide import reading_guide
from ablate.report.present.render import (
    Bullets, Code, CodeBlock, Document, Fig, Heading, Para, Plain, Quote, Table, Verdict, badge,
)
from ablate.report.present.text import CheckText, text_of
from ablate.report.present.text.controls import ControlText
from ablate.report.spec.controls import where_label
from ablate.report.records import tables as collect
from ablate.report.records.values import fmt_level, get_value, short_names
from ablate.report.spec.claim import EQUIVALENCE

_MAX_ERROR_CHARS = 300
_MAX_LISTED_IDS = 6


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


def _side(c: CheckText, side: str) -> list | str:
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
            if c.failed_controls:
                n = len(c.failed_controls)
                item += [f"; control{'s' if n > 1 else ''} ", Plain(", ".join(c.failed_controls)),
                         f" {'fail' if n > 1 else 'fails'}, so it cannot speak here (its checks said: {c.judged})"]
        elif c.reason:
            item += [": ", Plain(c.reason)]
        elif c.clause.not_tested:
            item += [": ", Plain(c.clause.not_tested)]
        if c.clause.explains:
            item.append(" (why it happens: shown, not part of the claim's verdict)")
        items.append(item)
    return [Para(["**Clauses** (parts of the statement):"]), Bullets(items)]


def _controls(claim: ClaimResult) -> list:
    """Each control with its numbers: the conditions under which the checks mean something."""
    if not claim.controls:
        return []
    rows = []
    for control in claim.controls:
        text = ControlText(control)
        head = [Code(control.spec.name), *([" ", Plain(control.spec.text)] if control.spec.text else [])]
        guards = Plain(text.guards(claim.clauses))
        status = "holds" if control.holds else "**fails**"
        if not control.groups:
            rows.append([head, guards, Plain(f"{text.metric_label} {text.threshold()}"), Plain(text.where()),
                         "—", "—", "—", [status, ": ", Plain(control.reason)]])
            continue
        for j, g in enumerate(control.groups):
            label = text.group_label(g)
            fixed = {k: v for k, v in (control.where or control.spec.where).items() if k not in (control.spec.each or ())}
            where = "; ".join(w for w in (where_label(fixed), label) if w) or "every run"
            result = "holds" if g.holds else "**fails**"
            if g.problem:
                result = [result, " (", Plain(g.problem), ")"]
            counts = ", ".join(f"{v} {k}" for k, v in g.counts.items() if v)
            rows.append([head if j == 0 else "", guards if j == 0 else "",
                         Plain(f"{text.metric_label} {text.threshold()}") if j == 0 else "", Plain(where),
                         f"{g.n}" + (f" ({counts})" if counts else ""), _num(g.mean), text.bound(g), result])
    held = sum(c.holds for c in claim.controls)
    return [Para([f"**Controls**: the conditions under which the checks mean something ({held} of "
                  f"{len(claim.controls)} hold{'s' if held == 1 else ''}). A control holds when the one-sided "
                  f"{100 * (1 - claim.alpha / 2):g}% bound of the mean of its runs clears its threshold (in every "
                  "group); a clause a failed control guards is ", badge(stats.NOT_INFORMATIVE), ", whatever its "
                  "checks said."]),
            Table(["control", "guards clauses", "metric, threshold", "runs", "n", "mean", "bound", "result"], rows,
                  numeric=[False, False, False, False, True, True, True, False])]


def _scope(claim: ClaimResult) -> list:
    items: list = [[f"{key}: ", Plain(text)] for key, text in claim.scope.items()]
    if claim.budget:
        items.append([Plain(claim.budget)])
    plan = claim.plan.describe()
    m = len(claim.checks)
    items.append([f"seeds: {plan}; α = {claim.alpha:g} per check, spent over its looks ({SEQUENTIAL_METHOD}), each "
                  f"decision one-sided at α/2; contradictions and \"no effect\" Holm-corrected over the claim's "
                  f"{m} check{'s' if m != 1 else ''}"])
    items += [["note: ", Plain(n)] for n in claim.notes]
    return [Para(["**Scope**: where this verdict holds."]), Bullets(items)]


def _checks_table(claim: ClaimResult) -> Table:
    rows = []
    for i, check in enumerate(claim.checks, 1):
        c, text = check, text_of(check, claim.budget)
        p_for = c.p_inside if c.spec.test == EQUIVALENCE else c.p_support
        rows.append([
            str(i), Plain(c.spec.name), Plain(c.spec.clause or "—"), text.test_label,
            [badge(text.verdict_label), " (borderline)"] if c.borderline else badge(text.verdict_label),
            _side(text, "treatment"), _side(text, "baseline"), text.diff_text(), _p(p_for),
            f"{_p(c.p_against)} / {_p(c.p_holm)}",
            f"≥ {_num(c.detectable, 2)}" if c.detectable == c.detectable else "—",
            f"{text.n_text()}, look {c.look + 1}/{c.looks_planned} (α={c.alpha:.3g}, one-sided {c.alpha / 2:.3g})",
        ])
    return Table(["#", "check", "clause", "test", "verdict", "treatment (mean ± sd)", "baseline (mean ± sd)",
                  "Δ [CI]", "p for", "p against (raw / Holm)", "detectable |Δ|", "seeds per side"], rows,
                 numeric=[True, False, False, False, False, False, False, True, True, True, True, False])


def _look_line(c: CheckResult) -> list:
    parts = []
    for look in c.history:
        parts.append(f"look {look.index + 1}: {text_of(look.result).look_text()} → "
                     f"{look.verdict if look.complete else 'incomplete'}")
    if c.verdict == stats.EXPLORATORY:
        decided = "exploratory: judged once, on the seeds that chose"
    elif c.decided:
        decided = f"decided at look {c.look + 1}"
    else:
        decided = f"undecided after {len(c.history)} of {c.looks_planned} planned look(s)"
    return [f"looks ({decided}): ", Plain("; ".join(parts))]


def _check_details(i: int, c: CheckResult, budget: str) -> list:
    text = text_of(c, budget)
    blocks: list = [Heading(3, Plain(f"Check {i}: {c.spec.name}")), Verdict(text.verdict_label, Plain(text.detail()))]
    items: list[list] = [["compared: ", Plain(text.setup())], ["test: ", Plain(text.test_label)]]
    if text.detail() == text.evidence():  # else the reason already closes the verdict line
        items.append(["why: ", Plain(text.reason)])
    items.append(["seeds: ", Plain(text.seeds_line())])
    items.append(_look_line(c))
    items.append(["power: ", Plain(text.power_text())])
    items.append(["robustness: ", Plain(text.robustness_text())])
    for side, counts in c.counts.items():
        shown = {k: v for k, v in counts.items() if v}
        if shown:
            items.append([Plain(f"{side}: "), Plain(", ".join(f"{v} {k}" for k, v in shown.items()))
                          + f" ({text.diverged_policy()})"])
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
    blocks += _controls(claim)
    blocks += _scope(claim)
    if claim.checks:
        blocks.append(_checks_table(claim))
    for i, c in enumerate(claim.checks, 1):
        blocks += _check_details(i, c, claim.budget)
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
    doc.add(*reading_guide())
    doc.add(Heading(2, "Rebuild"), CodeBlock(f"python -m ablate.report {report.sweep_label or '<sweep folder>'}"))
    return doc
