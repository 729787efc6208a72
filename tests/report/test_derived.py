"""ablate.report.derived: ``a - b`` / ``a + b`` metrics computed per run, their schema, a check and
the report on one (the generalisation gap)."""

from __future__ import annotations

import math

import pytest

from ablate.report import build_report
from ablate.report.spec import derived
from ablate.report.judge import stats
from ablate.report.spec.claim import chance_applies, claim_errors, metric_direction
from ablate.report.judge.claim import judge_check
from ablate.report.records.values import metric_recorded, metric_value
from ablate.report.present.text import text_of
from tests.report.records import NOISE, make_record, write_sweep

GAP = "train_eval/acc - test/acc"


def test_parse_is_one_binary_operator_with_spaces():
    assert derived.parse(GAP) == ("train_eval/acc", "-", "test/acc")
    assert derived.parse(" a/x + b/y ") == ("a/x", "+", "b/y")
    assert derived.parse("val/top-1") is None and derived.parse("a-b") is None  # names may hold '-'
    assert derived.parse("a - b - c") is None and derived.parse("a * b") is None
    assert derived.problem("a - b - c") and derived.problem("a * b") and derived.problem("2 * a")
    assert derived.problem(GAP) is None and derived.problem("test/acc") is None
    assert derived.operands(GAP) == ("train_eval/acc", "test/acc") and derived.operands("x") == ("x",)


def test_metric_value_computes_per_run_and_is_nan_when_an_operand_is_missing():
    r = make_record("x", {}, 0, {"train_eval/acc": 0.95, "test/acc": 0.80, "a - b": 7.0, "a": 1.0, "b": 2.0})
    assert metric_value(r, GAP) == pytest.approx(0.15)
    assert metric_value(r, "train_eval/acc + test/acc") == pytest.approx(1.75)
    assert metric_value(r, "a - b") == 7.0  # a recorded metric of that very name wins
    assert math.isnan(metric_value(r, "train_eval/acc - val/acc"))
    r["metrics"]["test/acc"] = None  # recorded NaN
    assert math.isnan(metric_value(r, GAP)) and metric_recorded(r, GAP)
    assert not metric_recorded(r, "train_eval/acc - val/acc")
    assert math.isnan(metric_value(r, "a - b - c"))


def test_a_derived_metric_has_no_direction_of_its_own():
    assert metric_direction(GAP) is None and metric_direction(GAP, "min") == "min"
    assert not chance_applies(GAP)
    base = {"name": "x", "statement": "s", "checks": [{"metric": GAP, "goal": "min", "factor": "f", "treatment": 1,
                                                        "baseline": 2}]}
    assert claim_errors(base) == []
    errors = claim_errors({**base, "checks": [dict(base["checks"][0], metric="a - b - c")]})
    assert any("claim.checks[0].metric='a - b - c' is invalid: it is neither a metric name nor a derived metric"
               in e for e in errors), errors
    errors = claim_errors({**base, "checks": [dict(base["checks"][0], tune="optimizer.lr")]})
    assert any("claim.checks[0].select_on is missing: a tune check on a derived metric" in e for e in errors), errors
    errors = claim_errors({**base, "checks": [dict(base["checks"][0], on_diverged="chance")]})
    assert any("on_diverged=chance needs a metric */acc or */loss" in e for e in errors), errors
    errors = claim_errors({**base, "checks": [dict(base["checks"][0], spread="optimizer.lr")]})
    assert any("add metric_goal: min or max" in e for e in errors), errors


def _gap_records(claim):
    records = []
    for aug, gap in ((True, 0.02), (False, 0.10)):
        for seed, noise in enumerate(NOISE):
            records.append(make_record(f"aug{aug}-s{seed}", {"data.augment": aug}, seed,
                                       {"train_eval/acc": 0.95 + noise, "test/acc": 0.95 - gap + noise / 2},
                                       claim=claim))
    return records


def test_a_check_on_the_generalisation_gap_and_its_report(tmp_path):
    check = {"name": "augmentation narrows the generalisation gap", "metric": GAP, "goal": "min",
             "factor": "data.augment", "treatment": True, "baseline": False}
    claim = {"name": "gap", "statement": "s", "checks": [check]}
    records = _gap_records(claim)
    result = judge_check(records, check)
    assert result.verdict == stats.SUPPORTED and text_of(result).metric_label == GAP
    assert result.estimate.treatment.mean == pytest.approx(0.02 + sum(NOISE) / 2 / len(NOISE))
    assert text_of(result).setup().startswith(f"{GAP} (lower is better): data.augment=true vs data.augment=false")
    text = build_report(write_sweep(tmp_path / "s", records)).read_text()
    assert f"in {GAP}'s units" in text
    header = next(line for line in text.splitlines() if line.startswith("| augment | ok/runs"))
    assert GAP in header  # the cells table shows the derived metric as a column
