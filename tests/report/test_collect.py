"""ablate.report.records.tables: sweep structure, status counts, and the per-cell table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from ablate.report.records import tables as collect
from ablate.report.judge.claim import judge_claim
from ablate.report.judge.sweep import claim_metrics
from tests.report.records import RESIDUAL_CLAIM, make_record, residual_sweep_records


def test_swept_factors_exclude_seed_and_constants():
    records = residual_sweep_records()
    for r in records:
        r["overrides"]["trainer.max_epochs"] = "3"  # the same everywhere: not a factor
    assert collect.swept_factors(records) == ["model.depth", "model.residual"]


def test_cell_ci_matches_hand_computation():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    records = [make_record(f"r{i}", {"model.depth": 4}, i, {"train/loss": v}) for i, v in enumerate(values)]
    records.append(make_record("other", {"model.depth": 8}, 0, {"train/loss": 9.0}))
    cells = collect.cells_frame(records)
    row = cells[(cells["model.depth"] == "4") & (cells["metric"] == "train/loss")].iloc[0]
    s = np.std(values, ddof=1)
    half = st.t.ppf(0.975, 4) * s / math.sqrt(5)
    assert row["n"] == 5 and row["mean"] == pytest.approx(3.0)
    assert row["std"] == pytest.approx(1.5811388, rel=1e-6)
    assert half == pytest.approx(1.963243, rel=1e-5)  # 2.776445 * 1.581139 / 2.236068
    assert row["ci_low"] == pytest.approx(3.0 - half) and row["ci_high"] == pytest.approx(3.0 + half)
    single = cells[(cells["model.depth"] == "8") & (cells["metric"] == "train/loss")].iloc[0]
    assert single["n"] == 1 and math.isnan(single["ci_low"])


def test_status_counts_have_one_home():
    records = residual_sweep_records()
    assert collect.status_counts(records) == {"ok": 18, "diverged": 1, "failed": 1}
    assert collect.status_text(records) == "18 ok, 1 diverged, 1 failed"
    assert collect.status_text([r for r in records if r["status"] != "ok"], always=()) == "1 diverged, 1 failed"
    assert collect.status_text(records[:2]) == "2 ok"
    assert collect.status_text([r for r in records if r["status"] == "failed"]) == "0 ok, 1 failed"


def test_claim_metrics_are_the_headline_then_each_checks():
    claim = dict(RESIDUAL_CLAIM, checks=[*RESIDUAL_CLAIM["checks"], dict(RESIDUAL_CLAIM["checks"][0], metric="val/acc")])
    judged = judge_claim(residual_sweep_records(), claim)
    assert claim_metrics([judged]) == ["train/loss", "val/acc"]
