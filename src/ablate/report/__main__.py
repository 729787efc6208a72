"""``python -m ablate.report <sweep folder> [--out DIR] [--wandb]``.

Exit codes: 0 written; 2 the report could not be built (no such folder, no run records) or the W&B
Report could not be published (offline, no API key, server unreachable, runs not on W&B).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ablate.report.build import ReportError, analyse, load_records, sweep_label, write_report

EXIT_OK = 0
EXIT_ERROR = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ablate.report",
        description="Build the comparison report (report.md, report.html, runs.csv, cells.csv, figures/) "
                    "of a finished sweep, with a verdict on the experiment's claim.",
    )
    parser.add_argument("sweep_dir", type=Path, help="sweep folder holding <run_id>/record.json, "
                        "e.g. reports/residual_depth/2026-11-23_12-00-00")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: the sweep folder)")
    parser.add_argument("--wandb", action="store_true", help="also publish a W&B Report of the sweep's W&B runs")
    parser.add_argument("--wandb-entity", default=None, help="W&B entity (default: from the records)")
    parser.add_argument("--wandb-project", default=None, help="W&B project (default: from the records)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        records, problems = load_records(args.sweep_dir)
        if args.wandb:  # fail fast: before any work, and before any W&B network call
            from ablate.report.present.wandb_report import WandbUnavailable, check_wandb_ready, wandb_target

            try:
                wandb_target(records)
                check_wandb_ready()
            except WandbUnavailable as exc:
                print(f"error: cannot publish a W&B Report: {exc}", file=sys.stderr)
                return EXIT_ERROR
        report = analyse(records, sweep_label(args.sweep_dir), problems)
        out_dir = args.sweep_dir if args.out is None else args.out
        md = write_report(report, out_dir)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    verdict = f" (verdict: {report.verdict})" if report.verdict else ""
    print(f"report written to {md}{verdict}")
    print(f"                  {md.with_name('report.html')}")
    if args.wandb:
        from ablate.report.present.wandb_report import WandbUnavailable, build_wandb_report, publish

        try:
            entity = args.wandb_entity
            if not entity:
                import wandb

                entity = wandb_target(records).entity or wandb.Api().default_entity
            wr_report = build_wandb_report(records, report.claims, entity=entity, project=args.wandb_project,
                                           sweep_label=report.sweep_label)
            print(f"W&B report published: {publish(wr_report)}")
        except WandbUnavailable as exc:
            print(f"error: the local report is written, but the W&B Report is not: {exc}", file=sys.stderr)
            return EXIT_ERROR
        except Exception as exc:  # network errors from the W&B SDK
            print(f"error: the local report is written, but the W&B Report is not: {exc}", file=sys.stderr)
            return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
