"""ablate.report.interaction: the difference in differences (OLS with an interaction term, HC3
errors) against statsmodels' formula API, its decisions, Holm, sequential needs, diverged runs,
power, and the report's lines."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from ablate.report import build_report
from ablate.report.judge import interaction, power
from ablate.report.judge import stats
from ablate.report.judge.sequential import look_alphas
from ablate.report.judge.claim import judge_check, judge_claim
from ablate.report.present.text import text_of
from tests.report.records import NOISE, make_record, write_sweep

# BatchNorm loses 0.30 of accuracy from batch 32 to batch 2, LayerNorm 0.03.
MEANS = {("batch", 32): 0.90, ("batch", 2): 0.60, ("layer", 32): 0.88, ("layer", 2): 0.85}
SCALE = {("batch", 32): 1.0, ("batch", 2): 2.0, ("layer", 32): 0.5, ("layer", 2): 1.5}  # unequal spreads
CHECK = {"name": "batch size hurts batch norm more than layer norm", "metric": "val/acc", "goal": "max",
         "factor": "data.batch_size", "treatment": 32, "baseline": 2,
         "interaction": {"factor": "norm", "treatment": "batch", "baseline": "layer"}}


def claim(*checks: dict) -> dict:
    return {"name": "norm", "statement": "s", "checks": list(checks or [CHECK])}


def cell_records(means=MEANS, seeds=range(5), claim_=None, scale=SCALE, metric="val/acc", **kwargs) -> list[dict]:
    records = []
    for (norm, bs), mean in means.items():
        for seed in seeds:
            value = mean + NOISE[seed % len(NOISE)] * scale[(norm, bs)] * (1 + 0.3 * (seed // len(NOISE)))
            records.append(make_record(f"{norm}-{bs}-s{seed}", {"norm": norm, "data.batch_size": bs}, seed,
                                       {metric: value}, claim=claim_ or claim(), **kwargs))
    return records


def _cell_values(records, metric="val/acc"):
    out = {}
    for r in records:
        key = ("t" if r["config"]["data"]["batch_size"] == 32 else "b") + ("A" if r["config"]["norm"] == "batch" else "B")
        out.setdefault(key, []).append(r["metrics"][metric])
    return out


def test_estimate_is_the_ols_interaction_coefficient_with_hc3_se_and_satterthwaite_df():
    rng = np.random.default_rng(1)
    values = {"tA": rng.normal(1.0, 0.1, 4), "bA": rng.normal(0.5, 0.3, 6),
              "tB": rng.normal(0.9, 0.05, 3), "bB": rng.normal(0.8, 0.2, 5)}
    e = interaction.estimate(values, "max", 0.05)
    means = {k: np.mean(v) for k, v in values.items()}
    assert e.diff == pytest.approx((means["tA"] - means["bA"]) - (means["tB"] - means["bB"]))
    # HC3 on this saturated design: the variance of each cell mean is s² / (n − 1)
    parts = [np.var(v, ddof=1) / (len(v) - 1) for v in values.values()]
    assert e.se == pytest.approx(math.sqrt(sum(parts)))
    frame = pd.DataFrame([{"y": y, "f": int(k[0] == "t"), "g": int(k[1] == "A")} for k, v in values.items() for y in v])
    ref = smf.ols("y ~ f * g", frame).fit(cov_type="HC3", use_t=True)
    assert e.diff == pytest.approx(ref.params["f:g"]) and e.se == pytest.approx(ref.bse["f:g"])
    # Satterthwaite's degrees of freedom, not N − 4
    df = sum(parts) ** 2 / sum(p ** 2 / (len(v) - 1) for p, v in zip(parts, values.values()))
    assert e.df == pytest.approx(df) and e.df < 18 - 4
    half = st.t.ppf(0.975, df) * e.se
    assert (e.diff_low, e.diff_high) == pytest.approx((e.diff - half, e.diff + half))
    assert e.p == pytest.approx(2 * st.t.sf(abs(e.diff / e.se), df))
    # goal min: Δ is the negative difference, the interval mirrored
    down = interaction.estimate(values, "min", 0.05)
    assert down.diff == pytest.approx(-e.diff) and (down.diff_low, down.diff_high) == pytest.approx((-e.diff_high, -e.diff_low))
    assert down.p_at(0.1) == pytest.approx(2 * st.t.sf(abs((down.diff - 0.1) / e.se), df))


@pytest.mark.parametrize("margin", [0.05, 0.2, 0.5, 1.0])
def test_p_values_agree_with_the_interval(margin):
    rng = np.random.default_rng(2)
    values = {k: rng.normal(m, 0.2, 5) for k, m in (("tA", 1.0), ("bA", 0.7), ("tB", 0.9), ("bB", 0.8))}
    e = interaction.estimate(values, "max", 0.05)
    assert (e.p < 0.05) == (e.diff_low > 0 or e.diff_high < 0)
    assert (e.p_inside(margin) < 0.05) == (-margin < e.diff_low and e.diff_high < margin)
    assert (e.p_at(-margin) < 0.05) == (e.diff_low > -margin or e.diff_high < -margin)


def test_the_larger_drop_under_batch_norm_is_supported_and_printed():
    check = judge_claim(cell_records(), claim()).checks[0]
    assert check.verdict == stats.SUPPORTED and check.spec.kind == "interaction"
    assert check.estimate.effects == pytest.approx({"A": 0.30, "B": 0.03}, abs=0.01)
    assert check.estimate.diff == pytest.approx(0.27, abs=0.01)
    assert [text_of(check).n(c) for c in interaction.CELLS] == [5, 5, 5, 5]
    line = text_of(check).line()
    assert line.startswith("supported — under norm=batch the effect of data.batch_size=32 vs data.batch_size=2 is 0.300")
    assert "Δ (effect under norm=batch − effect under norm=layer) 0.270, 95% CI [" in line
    assert "HC3 se=" in line and "Satterthwaite df=" in line
    assert "claimed larger under norm=batch than under norm=layer" in text_of(check).setup()
    assert set(check.run_ids) == {"data.batch_size=32, norm=batch", "data.batch_size=2, norm=batch",
                                  "data.batch_size=32, norm=layer", "data.batch_size=2, norm=layer"}
    # the same claim phrased the other way round: the drop (2 − 32) is smaller (goal min) under batch norm
    flipped = dict(CHECK, treatment=2, baseline=32, goal="min")
    other = judge_check(cell_records(claim_=claim(flipped)), flipped)
    assert other.verdict == stats.SUPPORTED and other.estimate.diff == pytest.approx(check.estimate.diff)
    assert "effect under norm=layer − effect under norm=batch" in text_of(other).line()


def test_the_opposite_interaction_is_not_supported_and_equal_effects_show_no_effect():
    swapped = dict(CHECK, interaction={"factor": "norm", "treatment": "layer", "baseline": "batch"})
    result = judge_check(cell_records(claim_=claim(swapped)), swapped)
    assert result.verdict == stats.NOT_SUPPORTED and result.p_holm < 0.05 and "below 0" in result.reason
    same = {k: m + (0.0 if k[1] == 32 else -0.3) for k, m in {("batch", 32): 0.9, ("batch", 2): 0.9,
                                                                ("layer", 32): 0.88, ("layer", 2): 0.88}.items()}
    alike = dict(CHECK, margin=0.1)
    result = judge_check(cell_records(same, claim_=claim(alike)), alike)
    assert result.verdict == stats.NO_EFFECT and text_of(result).verdict_label == "no effect within ±0.100"


def test_equivalence_and_noninferiority_use_the_same_interval():
    same = {("batch", 32): 0.9, ("batch", 2): 0.6, ("layer", 32): 0.88, ("layer", 2): 0.58}
    check = dict(CHECK, test="equivalence", margin=0.1)
    result = judge_check(cell_records(same, claim_=claim(check)), check)
    assert result.verdict == stats.SUPPORTED and result.p_inside < 0.05
    assert text_of(result).test_label == "interaction, equivalence, δ=0.100"


def test_a_cell_with_one_seed_is_inconclusive_and_names_it():
    records = [r for r in cell_records() if not (r["run_id"].startswith("layer-2-") and r["seed"] > 0)]
    result = judge_check(records, CHECK)
    assert result.verdict == stats.INCONCLUSIVE
    assert "data.batch_size=2, norm=layer has n=1" in result.reason and "each of its four cells" in result.reason
    missing = [r for r in cell_records() if not r["run_id"].startswith("layer-2-")]
    assert "no ok run with data.batch_size=2, norm=layer" in judge_check(missing, CHECK).reason


def test_holm_spans_interaction_and_plain_checks():
    plain = {"name": "batch norm is worse at batch 2", "metric": "val/acc", "goal": "max", "factor": "data.batch_size",
             "treatment": 2, "baseline": 32, "where": {"norm": "batch"}}  # wrong way round: contradicted
    swapped = dict(CHECK, interaction={"factor": "norm", "treatment": "layer", "baseline": "batch"})
    both = claim(swapped, plain)
    result = judge_claim(cell_records(claim_=both), both)
    raw = [c.p_against for c in result.checks]
    assert [c.p_holm for c in result.checks] == pytest.approx(list(multipletests(raw, method="holm")[1]))
    assert all(c.verdict == stats.NOT_SUPPORTED for c in result.checks)


def test_an_open_interaction_check_asks_for_the_next_seed_of_its_four_cells():
    budget = {"seeds": 2, "max_seeds": 3}
    small = {("batch", 32): 0.90, ("batch", 2): 0.89, ("layer", 32): 0.88, ("layer", 2): 0.88}
    records = cell_records(small, seeds=range(2), budget=budget)
    records += [make_record(f"none-32-s{s}", {"norm": "none", "data.batch_size": 32}, s, {"val/acc": 0.5},
                            claim=claim(), budget=budget) for s in range(2)]  # a cell the check does not read
    result = judge_claim(records, claim())
    check = result.checks[0]
    assert check.verdict == stats.INCONCLUSIVE and check.looks_planned == 2 and check.alpha == pytest.approx(look_alphas(0.05, (2, 3))[0])
    assert {seed for _, seed in result.needs()} == {2}
    assert {(dict(cell)["norm"], dict(cell)["data.batch_size"]) for cell, _ in result.needs()} == {
        ("batch", "32"), ("batch", "2"), ("layer", "32"), ("layer", "2")}
    assert {c: text_of(check.history[0].result).n(c) for c in interaction.CELLS} == {"tA": 2, "bA": 2, "tB": 2, "bB": 2}
    reason = text_of(check, result.budget).reason
    assert "not shown" in reason and "2 seeds per cell" in reason


def test_diverged_runs_are_left_out_or_scored_as_chance():
    records = cell_records(num_classes=10)
    bad = next(r for r in records if r["run_id"] == "batch-2-s0")
    bad["status"], bad["error"], bad["metrics"] = "diverged", "nan loss", {"val/acc": None}
    excluded = judge_check(records, CHECK)
    assert text_of(excluded).n("bA") == 4 and excluded.counts["data.batch_size=2, norm=batch"]["diverged"] == 1
    assert any("data.batch_size=2, norm=batch: 1 diverged run(s) left out" in n for n in excluded.notes)
    chance = judge_check(records, dict(CHECK, on_diverged="chance"))
    assert text_of(chance).n("bA") == 5
    assert chance.estimate.cells["bA"].mean == pytest.approx((0.1 + sum(0.6 + 2 * n for n in NOISE[1:])) / 5)


def test_power_is_the_hc3_satterthwaite_power_over_the_four_cells():
    check = judge_check(cell_records(), CHECK)
    e = check.estimate
    variances = [e.cells[c].std ** 2 for c in interaction.CELLS]
    assert check.detectable == pytest.approx(power.detectable(variances, [5] * 4, 0.05, hc3=True))
    assert "Satterthwaite df=" in text_of(check).power_text()


def test_the_report_prints_the_interaction(tmp_path):
    text = build_report(write_sweep(tmp_path / "s", cell_records())).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| 1 | batch size hurts"))
    assert "interaction, superiority" in row and "**supported**" in row
    assert "`under norm=batch`: effect 0.300" in row and "`under norm=layer`: effect 0.0300" in row
    assert "5, 5, 5, 5 per cell, look 1/1" in row
    assert "**supported** — under norm=batch the effect of data.batch_size=32 vs data.batch_size=2" in text
    assert "power: smallest |Δ| past the threshold these seeds find with 80% power (one-sided at α/2=0.025" in text
    assert "look 1: n=5, 5, 5, 5 per cell, α=0.05, Δ [" in text
    assert "With `interaction`, Δ is a difference in differences" in text
