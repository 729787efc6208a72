"""ablate.report.events: counting events per side (diverged, a threshold, both), pooled levels,
Fisher's exact test one-sided both ways, Holm, sequential needs, the power line and the report."""

from __future__ import annotations

import math

import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from ablate.report import build_report
from ablate.report.judge import stats
from ablate.report.judge.events import fisher
from ablate.report.judge.sequential import look_alphas
from ablate.report.judge.claim import judge_check, judge_claim
from ablate.report.present.text import text_of
from tests.report.records import make_record, write_sweep

CHANCE = math.log(10)
LARGE, SMALL = [0.3, 1.0, 3.0], [0.001, 0.003, 0.01]
CHECK = {"name": "the largest learning rates fail to train more often", "metric": "train/loss", "goal": "max",
         "event": {"diverged": True, "above": CHANCE}, "factor": "optimizer.lr", "treatment": LARGE, "baseline": SMALL}


def claim(*checks: dict) -> dict:
    return {"name": "lr", "statement": "s", "checks": list(checks or [CHECK])}


def lr_records(outcomes: dict[float, list], claim_=None, **kwargs) -> list[dict]:
    """One run per seed of each learning rate; an outcome is a train/loss, None (recorded NaN in an
    ok run), "diverged", "failed" or "absent" (an ok run without train/loss)."""
    records = []
    for lr, runs in outcomes.items():
        for seed, outcome in enumerate(runs):
            status = outcome if outcome in ("diverged", "failed") else "ok"
            metrics = {} if outcome in ("absent", "failed") else {
                "train/loss": None if outcome in (None, "diverged") else outcome}
            records.append(make_record(f"lr{lr}-s{seed}", {"optimizer.lr": lr}, seed, metrics, status=status,
                                       claim=claim_ or claim(), **kwargs))
    return records


# The large rates: 7 of 12 runs fail (3 diverge, 4 end at or above chance); the small ones: none.
OUTCOMES = {0.3: [0.5, 0.6, 2.4, 0.4], 1.0: ["diverged", 2.31, CHANCE, 0.7], 3.0: ["diverged", "diverged", 2.5, 0.9],
            0.001: [0.8, 0.9, 1.0, 0.85], 0.003: [0.5, 0.6, 0.55, 0.5], 0.01: [0.3, 0.4, 0.35, 0.3]}


def test_pooled_sides_count_events_and_fisher_decides_one_sided():
    check = judge_claim(lr_records(OUTCOMES), claim()).checks[0]
    assert check.spec.kind == "events" and check.spec.treatment == (0.3, 1, 3)
    assert check.estimate.k == {"treatment": 7, "baseline": 0} and check.estimate.n == {"treatment": 12, "baseline": 12}
    table = [[7, 5], [0, 12]]
    # p for / against: twice Fisher's one-sided p (capped at 1), so that below α decides as for intervals
    assert check.p_support == pytest.approx(2 * st.fisher_exact(table, alternative="greater").pvalue)
    assert check.p_against == pytest.approx(min(1.0, 2 * st.fisher_exact(table, alternative="less").pvalue))
    assert check.verdict == stats.SUPPORTED and check.p_support < 0.05
    assert text_of(check).treatment_label == "optimizer.lr ∈ {0.3, 1, 3}"
    line = text_of(check).line()
    assert line.startswith("supported — optimizer.lr ∈ {0.3, 1, 3} 7/12 runs vs optimizer.lr ∈ {0.001, 0.003, 0.01} "
                           "0/12 with the event; event: train/loss ≥ 2.30259 or the run diverged (status diverged, "
                           "or train/loss NaN/inf); ")
    assert "difference of fractions (treatment − baseline) 0.583; Fisher's exact test, one-sided p=" in line
    assert check.counts["treatment"] == {"diverged": 3, "failed": 0, "missing": 0}
    assert text_of(check).setup().startswith("the fraction of runs where train/loss ≥ 2.30259 or the run diverged")


def test_goal_min_and_the_opposite_direction():
    fewer = dict(CHECK, goal="min")  # "the large rates fail less often": contradicted
    result = judge_check(lr_records(OUTCOMES, claim_=claim(fewer)), fewer)
    assert result.verdict == stats.NOT_SUPPORTED and result.p_holm < 0.05
    assert result.p_support == pytest.approx(min(1.0, 2 * st.fisher_exact([[7, 5], [0, 12]], alternative="less").pvalue))
    assert "the treatment has the event more often" in result.reason
    swapped = dict(CHECK, treatment=SMALL, baseline=LARGE, goal="min")  # the same claim, the sides swapped
    assert judge_check(lr_records(OUTCOMES, claim_=claim(swapped)), swapped).verdict == stats.SUPPORTED


def test_the_threshold_is_inclusive_and_diverged_runs_follow_on_diverged():
    only = {"metric": "train/loss", "event": {"above": CHANCE}}
    excluded = judge_check(lr_records(OUTCOMES), dict(CHECK, **only))
    # diverged runs left out: 4 of 9 at or above ln(10) (ln(10) itself counts)
    assert excluded.estimate.k["treatment"] == 4 and excluded.estimate.n["treatment"] == 9
    assert any("3 diverged run(s) left out" in n for n in excluded.notes)
    chance = judge_check(lr_records(OUTCOMES), dict(CHECK, on_diverged="chance", **only))
    assert chance.estimate.k["treatment"] == 7 and chance.estimate.n["treatment"] == 12  # chance loss is ln(10)
    below = judge_check(lr_records(OUTCOMES), dict(CHECK, event={"below": 0.5}, goal="min"))
    assert below.estimate.k == {"treatment": 2, "baseline": 6}


def test_diverged_counts_nan_metrics_and_leaves_out_absent_ones_and_failures():
    outcomes = {0.3: ["diverged", None, "absent", "failed", 0.5], 0.001: [0.5, 0.4, 0.3, 0.2, 0.1]}
    spec = dict(CHECK, event="diverged", treatment=0.3, baseline=0.001)
    result = judge_check(lr_records(outcomes, claim_=claim(spec)), spec)
    assert result.estimate.k["treatment"] == 2 and result.estimate.n["treatment"] == 3
    assert result.counts["treatment"] == {"diverged": 1, "failed": 1, "missing": 1}
    assert result.run_ids["treatment"] == ["lr0.3-s0", "lr0.3-s1", "lr0.3-s4"]  # the runs counted
    assert text_of(result).metric_label == "the run diverged (status diverged, or train/loss NaN/inf)"
    no_metric = {k: v for k, v in spec.items() if k != "metric"}
    bare = judge_check(lr_records(outcomes, claim_=claim(no_metric)), no_metric)
    assert bare.estimate.k["treatment"] == 1 and bare.estimate.n["treatment"] == 4  # NaN and absent: no event
    assert text_of(bare).metric_label == "the run diverged (status diverged)"


def test_few_runs_cannot_decide_and_the_power_line_says_so():
    outcomes = {1.0: ["diverged", "diverged"], 0.01: [0.3, 0.4]}
    spec = dict(CHECK, treatment=1.0, baseline=0.01)
    result = judge_check(lr_records(outcomes, claim_=claim(spec)), spec)
    assert result.estimate.min_p == pytest.approx(1 / math.comb(4, 2))
    assert result.verdict == stats.INCONCLUSIVE and result.p_support == pytest.approx(2 / 6)
    assert "not below α/2=0.025: this check cannot decide with these runs" in text_of(result).power_text()
    assert "2 vs 2 runs cannot reach a one-sided p < 0.025 at all" in text_of(result).reason
    assert math.isnan(result.detectable)


def test_fisher_counts_and_empty_sides():
    e = fisher({"treatment": 3, "baseline": 1}, {"treatment": 4, "baseline": 4})
    assert e.fraction("treatment") == 0.75 and e.p_greater == pytest.approx(
        st.fisher_exact([[3, 1], [1, 3]], alternative="greater").pvalue)
    assert math.isnan(fisher({"treatment": 0, "baseline": 0}, {"treatment": 0, "baseline": 3}).p_greater)
    missing = judge_check(lr_records(OUTCOMES), dict(CHECK, baseline=[0.5]))
    assert missing.verdict == stats.INCONCLUSIVE and "no run to count with optimizer.lr ∈ {0.5}" in missing.reason


def test_holm_and_the_sequential_needs_cover_every_pooled_cell():
    budget = {"seeds": 2, "max_seeds": 3}
    outcomes = {lr: [2.5 if lr in LARGE and s == 0 else 0.5 for s in range(2)] for lr in [*LARGE, *SMALL]}
    records = lr_records(outcomes, budget=budget)
    result = judge_claim(records, claim())
    check = result.checks[0]
    assert check.verdict == stats.INCONCLUSIVE and check.looks_planned == 2
    assert {seed for _, seed in result.needs()} == {2}
    assert {float(dict(cell)["optimizer.lr"]) for cell, _ in result.needs()} == set(LARGE + SMALL)
    first = look_alphas(0.05, (2, 3))[0]  # O'Brien–Fleming's share of α at look 1 of 2 (seeds 2, then 3)
    assert text_of(check.history[0].result).look_text() == f"3/6 vs 0/6 runs with the event, α={first:.3g}, p for " + stats.fmt(check.p_support, 2)
    # Holm over an event check and a second, contradicted one
    fewer = dict(CHECK, name="fewer", goal="min")
    both = claim(dict(CHECK, goal="min", name="one"), fewer)
    result = judge_claim(lr_records(OUTCOMES, claim_=both), both)
    raw = [c.p_against for c in result.checks]
    assert [c.p_holm for c in result.checks] == pytest.approx(list(multipletests(raw, method="holm")[1]))


def test_the_report_prints_counts_and_fishers_test(tmp_path):
    text = build_report(write_sweep(tmp_path / "s", lr_records(OUTCOMES))).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| 1 | the largest learning rates"))
    assert "event count (Fisher's exact test, one-sided)" in row and "**supported**" in row
    assert "`optimizer.lr ∈ {0.3, 1, 3}`: 7/12 runs with the event" in row
    assert "0.583 (fractions)" in row and "12 vs 12 runs, look 1/1" in row
    assert "power: n/a for event checks (Fisher's exact test); the smallest one-sided p 12 vs 12 runs can reach" in text
    assert "treatment: 3 diverged (a diverged run is the event)" in text
    assert "look 1: 7/12 vs 0/12 runs with the event, α=0.05, p for " in text
    assert "With `event`, the check counts the runs per side" in text


def test_a_threshold_at_chance_is_read_from_the_runs_num_classes(tmp_path):
    """``above: chance`` is ln k for a loss, k the records' num_classes: on 10 classes the same count as
    ``above: ln 10``; on 3 classes (chance ln 3 = 1.0986) the runs stuck near ln 3 count too."""
    at_chance = dict(CHECK, event={"diverged": True, "above": "chance"})
    ten = judge_check(lr_records(OUTCOMES, claim_=claim(at_chance)), at_chance)
    assert ten.estimate.k == {"treatment": 7, "baseline": 0} and ten.verdict == stats.SUPPORTED
    assert "the event's threshold is train/loss ≥ 2.30259: chance is 2.30259 from the runs' num_classes" in ten.notes
    assert text_of(ten).metric_label == "train/loss ≥ chance or the run diverged (status diverged, or train/loss NaN/inf)"
    three = {0.3: [1.2, 1.1, 0.4, 1.3], 1.0: ["diverged", 1.15, 1.0986123, 0.7], 3.0: ["diverged", 1.2, 1.25, 0.9],
             0.001: [0.8, 0.9, 1.0, 0.85], 0.003: [0.5, 0.6, 0.55, 0.5], 0.01: [0.3, 0.4, 0.35, 0.3]}
    check = judge_check(lr_records(three, claim_=claim(at_chance), num_classes=3), at_chance)
    assert check.estimate.k == {"treatment": 9, "baseline": 0}
    fixed = judge_check(lr_records(three, claim_=claim(CHECK), num_classes=3), CHECK)   # ln 10 misses them
    assert fixed.estimate.k == {"treatment": 2, "baseline": 0}
    unknown = judge_check(lr_records(OUTCOMES, claim_=claim(at_chance), num_classes=None), at_chance)
    assert unknown.verdict == stats.INCONCLUSIVE and "relative to chance, but chance needs one num_classes" in unknown.reason
    offset = dict(CHECK, event={"above": "chance + 0.1"})
    assert judge_check(lr_records(OUTCOMES, claim_=claim(offset)), offset).estimate.k["treatment"] == 1   # 2.5 ≥ 2.40259
