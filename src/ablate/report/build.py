"""Build a sweep's report: the stages in order, and the files they write.

    records (load)  →  judge (tables, claims)  →  present (figures, document)  →  files

``analyse`` is pure (records in, a :class:`SweepReport` out); ``build_report`` does the I/O. Every
file is written atomically, and the same folder always gives the same files (rows sorted, no
timestamps, deterministic figures), so rebuilding a report is safe at any time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ablate import applicability
from ablate.report.judge.sweep import SweepReport, judge_sweep
from ablate.report.present.document import compose
from ablate.report.present.plan import make_figures
from ablate.report.present.render import to_html, to_markdown
from ablate.report.present.verdict import VERDICT_JSON, verdict_json
from ablate.report.records.tables import CELLS_CSV, RUNS_CSV
from ablate.results import RECORD_NAME, atomic_write_bytes, atomic_write_text, remove_stale_temps
from ablate.results import load_records as load_run_records

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FIGURES_DIR = "figures"

__all__ = ["CELLS_CSV", "REPORT_HTML", "REPORT_MD", "RUNS_CSV", "VERDICT_JSON", "ReportError", "SweepReport",
           "analyse", "build_report", "compose", "load_records", "make_figures", "sweep_label", "write_report"]


class ReportError(ValueError):
    """The report cannot be built (no such folder, no run records); the message says why."""


def load_records(sweep_dir: str | os.PathLike) -> tuple[list[dict[str, Any]], list[str]]:
    """Every valid record below ``sweep_dir`` (sorted by path) and a note for each unreadable one.

    Unlike :func:`ablate.results.load_sweep` one broken file does not stop the report; it is listed
    in it instead. Raises :class:`ReportError` when the folder is missing or holds no valid record.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ReportError(f"sweep folder '{sweep_dir}' does not exist (expected the folder that holds "
                          f"<run_id>/{RECORD_NAME}, e.g. reports/<experiment>/<timestamp>)")
    records, problems = load_run_records(sweep_dir)
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


def analyse(records: Sequence[dict[str, Any]], sweep_label: str = "", problems: Sequence[str] = (),
            with_figures: bool = True, applicability: Any = None) -> SweepReport:
    """Aggregate the records, judge every claim they declare (only what applies to a model or data
    of the user's: ``applicability``), and (optionally) draw the figures."""
    records = list(records)
    if not records:
        raise ReportError("no run records to report on")
    report = judge_sweep(records, sweep_label, problems, applicability)
    if with_figures:
        report.figures = make_figures(report)
    return report


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
    """Write report.md, report.html, verdict.json, runs.csv, cells.csv and figures/*.png (atomically)."""
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
    verdicts = verdict_json(report, [f"{rel_fig}/{f.name}" for f in report.figures])
    _write_text(out_dir / VERDICT_JSON, json.dumps(verdicts, indent=2, ensure_ascii=False) + "\n")
    _write_text(out_dir / REPORT_HTML, to_html(doc))
    return _write_text(out_dir / REPORT_MD, to_markdown(doc, figures_dir=rel_fig))


def build_report(sweep_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Build the report of the sweep in ``sweep_dir`` into ``out_dir`` (default: ``sweep_dir``) and
    return the path of ``report.md``. Raises :class:`ReportError` (a ValueError) when the folder is
    missing or holds no run record."""
    records, problems = load_records(sweep_dir)
    try:
        found = applicability.read(sweep_dir)
    except ValueError as e:
        raise ReportError(str(e)) from e
    report = analyse(records, sweep_label(sweep_dir), problems, applicability=found)
    return write_report(report, sweep_dir if out_dir is None else out_dir)
