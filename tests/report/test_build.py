"""ablate.report.build: the written report (files, verdicts with their numbers, failed runs, cells,
determinism) on hand-made records."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from scipy import stats as st

from ablate.report import ReportError, build_report
from ablate.results import validate_record
from tests.report.records import (
    history, make_record, optimizer_records, residual_sweep_records, toy_claim, two_level_records, write_sweep,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = write_sweep(tmp_path_factory.mktemp("reports") / "residual_depth" / "2026-01-01_00-00-00",
                       residual_sweep_records())
    md = build_report(root)
    return root, md


def test_build_report_writes_every_file(built):
    root, md = built
    assert md == root / "report.md"
    for name in ("report.md", "report.html", "runs.csv", "cells.csv"):
        assert (root / name).stat().st_size > 0
    pngs = sorted(p.name for p in (root / "figures").glob("*.png"))
    assert "training_curves.png" in pngs and "grad_norm_profile.png" in pngs
    assert any(p.startswith("residual_depth_train_loss_vs_model_depth") for p in pngs)
    assert not list(root.rglob("*.tmp"))


def test_report_states_verdict_with_numbers(built):
    root, _ = built
    text = (root / "report.md").read_text()
    assert "# ablate report: residual_depth" in text
    assert "## Claim: residual_depth" in text
    assert "Residual connections let very deep networks train" in text
    assert "**supported** — model.residual=true " in text
    assert "n=3 each" in text and "Welch t=" in text and "Hedges' g=" in text
    assert "where model.depth=32 (max)" in text
    for fig in (root / "figures").glob("*.png"):
        assert f"](figures/{fig.name})" in text


def test_checks_table_shows_kind_margin_raw_and_adjusted_p_and_power(tmp_path):
    claim = {"name": "toy", "statement": "a is at least as good as b", "checks": [
        dict(toy_claim()["checks"][0], name="a not worse", test="noninferiority", margin=0.05)]}
    root = write_sweep(tmp_path / "s", two_level_records(0.52, 0.5, claim=claim))
    text = build_report(root).read_text()
    header = next(line for line in text.splitlines() if line.startswith("| # | check"))
    for column in ("test", "verdict", "Δ [CI]", "p for", "p against (raw / Holm)", "detectable \\|Δ\\|",
                   "seeds per side"):
        assert column in header, header
    row = next(line for line in text.splitlines() if line.startswith("| 1 | a not worse"))
    assert "non-inferiority, δ=0.0500" in row and "**supported**" in row and "≥ " in row
    assert "look 1/1 (α=0.05, one-sided 0.025)" in row
    assert "power: smallest |Δ| past the threshold these seeds find with 80% power (one-sided at α/2=0.025, Welch df=" in text
    assert "it rests on the sd estimated from these seeds, taken at its 60% upper confidence bound" in text


def test_failed_and_diverged_runs_are_counted_and_listed(built):
    root, _ = built
    text = (root / "report.md").read_text()
    assert "20 runs**: 18 ok, 1 diverged, 1 failed" in text
    section = text.split("## Runs that did not finish", 1)[1].split("\n## ", 1)[0]
    assert "**1 diverged, 1 failed** of 20 runs" in section
    assert "`d32-plain-s3` | diverged | 32 | false | 3 | `loss became nan at epoch 2 \\| step 40`" in section
    assert "`d8-res-s3` | failed | 8 | true | 3 | `RuntimeError: CUDA out of memory Traceback ...`" in section
    html = (root / "report.html").read_text()
    assert "d32-plain-s3" in html and "RuntimeError: CUDA out of memory" in html
    runs = pd.read_csv(root / "runs.csv", keep_default_na=False)
    assert len(runs) == 20
    assert list(runs.columns[:6]) == ["run_id", "status", "error", "seed", "model.depth", "model.residual"]
    bad = runs[runs["status"] != "ok"].set_index("run_id")
    assert bad.loc["d32-plain-s3", "status"] == "diverged"
    assert bad.loc["d8-res-s3", "error"].startswith("RuntimeError: CUDA out of memory\nTraceback")
    assert (runs["status"] == "ok").sum() == 18


def test_cells_csv_holds_ci_per_metric(built):
    root, _ = built
    cells = pd.read_csv(root / "cells.csv")
    row = cells[(cells["model.depth"] == 32) & (cells["model.residual"] == False)  # noqa: E712
                & (cells["metric"] == "train/loss")].iloc[0]
    assert (row["runs"], row["ok"], row["n"]) == (4, 3, 3)
    half = st.t.ppf(0.975, 2) * row["std"] / math.sqrt(3)
    assert row["ci_high"] - row["mean"] == pytest.approx(half, rel=1e-6)


def test_build_is_deterministic(built, tmp_path):
    root, _ = built
    first = {n: (root / n).read_bytes() for n in ("report.md", "report.html", "runs.csv", "cells.csv")}
    figs = {p.name: p.read_bytes() for p in (root / "figures").glob("*.png")}
    build_report(root)
    assert {n: (root / n).read_bytes() for n in first} == first
    assert {p.name: p.read_bytes() for p in (root / "figures").glob("*.png")} == figs
    # Into another folder: the same report (the figure links are relative).
    md = build_report(root, tmp_path / "out")
    assert md.read_bytes() == first["report.md"]
    assert (tmp_path / "out" / "runs.csv").read_bytes() == first["runs.csv"]


def test_clauses_scope_and_seeds_are_printed_beside_the_verdict(tmp_path):
    claim = dict(toy_claim(clause="fast"), scope={"hardware": "2-core CPU"},
                 clauses=[{"name": "fast", "text": "a is faster"},
                          {"name": "cheap", "text": "a is cheaper", "not_tested": "no cost data"}])
    budget = {"seeds": 3, "max_seeds": 5}
    records = two_level_records(0.1, 1.0, claim=claim, budget=budget, choices={"budget": "quick"})
    text = build_report(write_sweep(tmp_path / "s", records)).read_text()
    claim_part = text.split("## Claim: toy", 1)[1].split("| # |", 1)[0]
    assert "**supported** a is faster (`fast`): check 1" in claim_part
    assert "**not tested** a is cheaper (`cheap`): no cost data" in claim_part
    assert "- hardware: 2-core CPU" in claim_part and "- budget=quick" in claim_part
    assert ("3 seeds per cell, up to 5 in looks 3 → 5; α = 0.05 per check, spent over its looks (Lan–DeMets "
            "O'Brien–Fleming α-spending), each decision one-sided at α/2") in claim_part
    assert "looks (decided at look 1): look 1: n=3 vs 3, α=0.00762" in text


def test_the_reading_guide_explains_each_verdict(built):
    root, _ = built
    guide = (root / "report.md").read_text().split("## How to read this report", 1)[1]
    for words in ("**supported**", "**not supported**", "**no effect within ±δ**", "**inconclusive**",
                  "**not tested**", "Holm", "Sequential seeds", "detectable", "fresh seeds", "on_diverged"):
        assert words in guide, words
    assert "favours both sides alike" not in guide


def test_rebuild_removes_stale_figures(tmp_path):
    root = write_sweep(tmp_path / "s", two_level_records(0.1, 1.0))
    (root / "figures").mkdir()
    (root / "figures" / "old_figure.png").write_bytes(b"x")
    build_report(root)
    assert not (root / "figures" / "old_figure.png").exists()


def test_records_without_claim_still_report(tmp_path):
    records = [make_record(f"r{d}-{s}", {"model.depth": d}, s, {"train/loss": 1.0 / d + 0.01 * s},
                           history=history(1.0 / d)) for d in (2, 4) for s in range(2)]
    root = write_sweep(tmp_path / "noclaim", records)
    text = build_report(root).read_text()
    assert "declare no claim" in text and "Results per cell" in text


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="no run records"):
        build_report(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        build_report(tmp_path / "nope")


def test_unreadable_record_is_listed_not_fatal(tmp_path):
    root = write_sweep(tmp_path / "s", two_level_records(0.1, 1.0))
    (root / "broken").mkdir()
    (root / "broken" / "record.json").write_text("{not json")
    text = build_report(root).read_text()
    assert "Record files that could not be read" in text and "broken/record.json" in text


def test_records_round_trip_through_schema(tmp_path):
    root = write_sweep(tmp_path / "s", residual_sweep_records())
    for path in root.rglob("record.json"):
        validate_record(json.loads(path.read_text()))


def test_a_tuned_report_names_the_seeds_that_chose_and_judged(tmp_path):
    claim = {"name": "opt", "statement": "adam beats sgd", "checks": [{
        "name": "adam < sgd", "metric": "val/loss", "goal": "min", "factor": "optimizer",
        "treatment": "adam", "baseline": "sgd", "tune": "optimizer.lr"}]}
    means = {(o, lr): (0.2 if o == "adam" else 0.5) + lr for o in ("adam", "sgd") for lr in (0.001, 0.01, 0.1)}
    text = build_report(write_sweep(tmp_path / "opt", optimizer_records(means, claim=claim))).read_text()
    assert "seeds: every seed chose each side's optimizer.lr and every seed judged it" in text
    assert "**exploratory**" in text and "exploratory: judged once, on the seeds that chose" in text
    assert "optimistic for both sides" not in text


def test_verdict_json_carries_the_verdicts_and_the_numbers_behind_them(built):
    """verdict.json is what the catalogue (and anyone) reads instead of judging again or scraping
    report.md: the same verdicts and numbers as the judged claim, in plain JSON (no NaN)."""
    from ablate.report.judge.claim import judge_claim
    from ablate.report.present.text import text_of

    root, _ = built
    raw = (root / "verdict.json").read_text()
    assert "NaN" not in raw and "Infinity" not in raw
    verdicts = json.loads(raw)
    records = residual_sweep_records()
    judged = judge_claim(records, records[0]["claim"])
    assert verdicts["verdict"] == judged.verdict == "supported"
    assert verdicts["runs"] == len(records) and verdicts["status"]["ok"] == sum(r["status"] == "ok" for r in records)
    assert verdicts["headline_figure"].startswith("figures/residual_depth_train_loss_vs_model_depth")
    assert (root / verdicts["headline_figure"]).is_file()
    assert verdicts["headline_figure"] in (root / "report.md").read_text()
    (claim,) = verdicts["claims"]
    assert claim["name"] == judged.name and claim["statement"] == judged.statement
    assert claim["reason"] == judged.reason and claim["budget"] == judged.budget
    assert len(claim["checks"]) == len(judged.checks)
    for written, check in zip(claim["checks"], judged.checks):
        comparison = check.estimate
        assert written["verdict"] == check.verdict and written["name"] == check.spec.name
        assert written["reason"] == text_of(check, judged.budget).reason
        assert written["diff"] == pytest.approx(comparison.diff)
        assert [written["diff_low"], written["diff_high"]] == pytest.approx([comparison.diff_low, comparison.diff_high])
        assert written["p_against"] == pytest.approx(check.p_against) and written["look"] == check.look + 1
        assert written["n"] == {"treatment": comparison.treatment.n, "baseline": comparison.baseline.n}
    assert [c["verdict"] for c in claim["clauses"]] == [c.verdict for c in judged.clauses]
