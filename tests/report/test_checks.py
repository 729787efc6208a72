"""ablate.report.judge (plain, tune and spread checks): what one check reads and compares: where-filters, tuning on one metric and
judging on another, spreads (sd and width, with censoring), diverged and failed runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ablate.report.judge import stats
from ablate.report.judge.look import judge_look, scope_of
from ablate.report.judge.plain import interval_width
from ablate.report.spec.claim import parse_check
from ablate.report.judge.claim import judge_check, judge_claim
from ablate.report.judge.sequential import Look
from ablate.report.present.text import text_of
from tests.report.records import (
    NOISE, RESIDUAL_CLAIM, make_record, optimizer_records, residual_sweep_records, toy_claim, two_level_records,
)


def test_where_max_filters_to_the_deepest_level():
    records = residual_sweep_records()
    check = judge_claim(records, RESIDUAL_CLAIM).checks[0]
    assert check.where == {"model.depth": 32}
    # Three ok seeds a side at depth 32 (the diverged plain seed is not one of them).
    assert check.estimate.treatment.n == 3 and check.estimate.baseline.n == 3
    assert all(rid.startswith("d32-res") for rid in check.run_ids["treatment"])
    assert all(rid.startswith("d32-plain") for rid in check.run_ids["baseline"])
    assert check.estimate.baseline.mean == pytest.approx(1.7, abs=0.05)
    assert check.verdict == stats.SUPPORTED
    assert check.counts["baseline"]["diverged"] == 1
    assert any("baseline: 1 diverged run(s) left out" in n for n in check.notes)
    # At the shallowest depth the two are alike: inconclusive.
    shallow = dict(RESIDUAL_CLAIM["checks"][0], where={"model.depth": "min"})
    assert judge_check(records, shallow).verdict == stats.INCONCLUSIVE
    # A literal level works as well, spelled as text.
    literal = dict(RESIDUAL_CLAIM["checks"][0], where={"model.depth": "8"})
    assert judge_check(records, literal).where == {"model.depth": 8}


def test_transform_log10_compares_orders_of_magnitude():
    check = {"name": "gradients reach the first layer", "metric": "grad/first_layer", "goal": "max",
             "factor": "model.residual", "treatment": True, "baseline": False,
             "where": {"model.depth": "max"}, "transform": "log10"}
    result = judge_check(residual_sweep_records(), check)
    assert result.verdict == stats.SUPPORTED
    assert result.estimate.treatment.mean == pytest.approx(-32 / 4, abs=0.2)
    assert text_of(result).metric_label == "log10(grad/first_layer)"


def test_only_ok_runs_count_and_a_side_without_any_says_so():
    records = two_level_records(0.1, 1.0)
    for r in records:  # the baseline's seeds all diverge: nothing left to compare
        if r["run_id"].startswith("b"):
            r["status"], r["error"], r["metrics"] = "diverged", "nan loss", {"train/loss": None}
    check = judge_check(records, records[0]["claim"]["checks"][0])
    assert check.verdict == stats.INCONCLUSIVE and check.estimate.baseline.n == 0
    assert "no ok run with model.a=false" in check.reason
    assert check.counts["baseline"]["diverged"] == 5 and any("5 diverged" in n for n in check.notes)


def test_missing_level_lists_the_levels_present():
    check = judge_check(two_level_records(0.1, 1.0), dict(toy_claim()["checks"][0], baseline="maybe"))
    assert "no ok run with model.a=maybe (levels present: false, true)" in check.reason


def test_malformed_check_is_inconclusive_with_reason():
    records = two_level_records(0.1, 1.0)
    result = judge_check(records, {"name": "broken", "metric": "train/loss"})
    assert result.verdict == stats.INCONCLUSIVE and "missing" in result.reason
    assert "valid values: min, max" in judge_check(records, dict(toy_claim()["checks"][0], goal="smaller")).reason
    assert "transform='sqrt' is invalid; valid values: log10" in judge_check(
        records, dict(toy_claim()["checks"][0], transform="sqrt")).reason


TUNE = {"name": "adam beats sgd at their best lr", "metric": "val/loss", "goal": "min", "factor": "optimizer",
        "treatment": "adam", "baseline": "sgd", "tune": "optimizer.lr", "select_on": "val/loss"}
MEANS = {("adam", 0.001): 0.20, ("adam", 0.01): 0.50, ("adam", 0.1): 2.0,
         ("sgd", 0.001): 1.50, ("sgd", 0.01): 0.60, ("sgd", 0.1): 0.30}


def test_tune_picks_each_sides_best_learning_rate():
    # adam is best at lr=0.001, sgd at lr=0.1; compared there, adam (0.20) beats sgd (0.30).
    claim = {"name": "opt", "statement": "adam beats sgd when each is tuned", "checks": [TUNE]}
    check = judge_claim(optimizer_records(MEANS, claim=claim), claim).checks[0]
    assert check.tuned == {"treatment": 0.001, "baseline": 0.1}
    assert check.estimate.treatment.mean == pytest.approx(0.20 + np.mean(NOISE[:4]))
    assert check.estimate.baseline.mean == pytest.approx(0.30 + np.mean(NOISE[:4]))
    assert sorted(check.run_ids["treatment"]) == [f"adam-0.001-{s}" for s in range(4)]
    assert sorted(check.run_ids["baseline"]) == [f"sgd-0.1-{s}" for s in range(4)]
    # the same seeds chose and judge: exploratory, whatever its interval says, and so is its claim's verdict
    assert check.verdict == stats.EXPLORATORY and check.decided and not check.need
    assert "its interval alone would say supported" in check.reason and "also judge it" in check.reason
    assert stats.combine([check.verdict]) == stats.INCONCLUSIVE
    assert "each side at its own best optimizer.lr (treatment at 0.001, baseline at 0.1" in text_of(check).setup()
    assert "the same seeds choose and judge, so the check is exploratory" in text_of(check).seeds_line()


def test_tune_chooses_each_value_in_the_direction_of_select_on_not_of_the_checks_goal():
    """A speed check (loss AUC, lower is better) at each side's best rate on validation accuracy
    (higher is better): the rate chosen is the one with the highest accuracy."""
    records = []
    for lr, acc, auc in ((0.01, 0.9, 1.5), (0.1, 0.5, 0.5)):       # the accurate rate is the slower one
        for seed in range(3):
            for arm in ("a", "b"):
                records.append(make_record(f"{arm}-{lr}-{seed}", {"arm": arm, "optimizer.lr": lr}, seed,
                                           {"val/acc": acc + 0.01 * seed, "train/loss_auc": auc + 0.01 * seed}))
    check = judge_check(records, {"metric": "train/loss_auc", "select_on": "val/acc", "goal": "min",
                                  "factor": "arm", "treatment": "a", "baseline": "b", "tune": "optimizer.lr"})
    assert check.tuned == {"treatment": 0.01, "baseline": 0.01}


def test_tune_chooses_on_select_on_and_judges_on_fresh_seeds():
    """budget seeds 3, max_seeds 8: seeds 0-2 choose on val/acc, seeds 3-5 at the chosen value judge
    on test/acc. val/acc picks adam's lr 0.01 although test/acc would prefer 0.001."""
    budget = {"seeds": 3, "max_seeds": 8}
    check_spec = {"name": "adam beats sgd", "metric": "test/acc", "goal": "max", "factor": "optimizer",
                  "treatment": "adam", "baseline": "sgd", "tune": "optimizer.lr"}
    claim = {"name": "opt", "statement": "s", "checks": [check_spec]}
    val = {("adam", 0.001): 0.80, ("adam", 0.01): 0.90, ("sgd", 0.001): 0.50, ("sgd", 0.01): 0.60}
    test = {("adam", 0.001): 0.95, ("adam", 0.01): 0.85, ("sgd", 0.001): 0.99, ("sgd", 0.01): 0.55}
    records = []
    for (opt, lr) in val:
        for seed in range(3):  # selection seeds: every cell
            records += optimizer_records({(opt, lr): 0.0}, seeds=[seed], claim=claim, metric=("val/acc", "test/acc"),
                                         budget=budget)
    for r in records:
        opt, lr = r["overrides"]["optimizer"], float(r["overrides"]["optimizer.lr"])
        r["metrics"] = {"val/acc": val[(opt, lr)] + NOISE[r["seed"]], "test/acc": test[(opt, lr)] + NOISE[r["seed"]]}
    for opt, lr in (("adam", 0.01), ("sgd", 0.01)):  # judging seeds, at the chosen values only
        for seed in (3, 4, 5):
            r = optimizer_records({(opt, lr): test[(opt, lr)]}, seeds=[seed], claim=claim, metric="test/acc",
                                  budget=budget)[0]
            r["metrics"]["val/acc"] = val[(opt, lr)]
            records.append(r)
    check = judge_claim(records, claim).checks[0]
    assert check.spec.select_on == "val/acc" and check.fresh
    assert check.tuned == {"treatment": 0.01, "baseline": 0.01}
    assert check.seeds_chose == (0, 1, 2) and check.seeds_judged == (3, 4, 5)
    assert sorted(check.run_ids["treatment"]) == [f"adam-0.01-{s}" for s in (3, 4, 5)]
    assert check.estimate.treatment.mean == pytest.approx(0.85 + np.mean([NOISE[s % 5] for s in (3, 4, 5)]))
    assert check.verdict == stats.SUPPORTED and check.look == 0 and check.looks_planned == 2
    assert text_of(check).seeds_line() == "seeds 0-2 chose each side's optimizer.lr; fresh seeds 3-5 judged it"


def _spread_records(claim, acc, grid=(0.001, 0.01, 0.1, 1.0), seeds=range(4)):
    records = []
    for opt, values in acc.items():
        for seed in seeds:
            for lr, a in zip(grid, values):
                status = "ok" if a is not None else "diverged"
                r = make_record(f"{opt}-{lr}-{seed}", {"optimizer.lr": lr}, seed,
                                {"val/acc": (a + 0.004 * seed) if a is not None else None},
                                status=status, claim=claim, choices={"optimizer": opt})
                r["config"]["optimizer"]["_target_"] = f"torch.optim.{opt}"
                records.append(r)
    return records


SPREAD = {"name": "adam varies less over the lr grid", "metric": "val/acc", "goal": "min",
          "factor": "optimizer", "treatment": "adam", "baseline": "sgd", "spread": "optimizer.lr"}


def test_spread_with_exclude_compares_sensitivity_on_common_levels():
    # adam: flat over the lr grid (sd ~0.01); sgd: steep (sd ~0.3). adam diverges at lr=1, so lr=1
    # is left out for both sides: a divergence must not make a side look *less* sensitive.
    claim = {"name": "opt", "statement": "adam is less sensitive to the lr", "checks": [dict(SPREAD, on_diverged="exclude")]}
    records = _spread_records(claim, {"adam": [0.90, 0.91, 0.89, None], "sgd": [0.20, 0.50, 0.85, 0.10]})
    check = judge_claim(records, claim).checks[0]
    assert check.spread_grid == [0.001, 0.01, 0.1]
    assert any("optimizer.lr=1 left out of the spread: no run to count for treatment" in n for n in check.notes)
    assert check.estimate.treatment.n == 4 and check.estimate.baseline.n == 4
    assert check.estimate.treatment.mean == pytest.approx(np.std([0.90, 0.91, 0.89], ddof=1))
    assert check.estimate.baseline.mean == pytest.approx(np.std([0.20, 0.50, 0.85], ddof=1))
    assert check.verdict == stats.INCONCLUSIVE  # identical spreads on every seed: no variance
    # Seed-to-seed variation in the spread: now the test is defined, and adam's spread is smaller.
    for r in records:
        if r["status"] == "ok" and r["run_id"].startswith("sgd-0.001"):
            r["metrics"]["val/acc"] -= 0.02 * r["seed"]
    check = judge_claim(records, claim).checks[0]
    assert check.verdict == stats.SUPPORTED
    assert text_of(check).metric_label == "sd of val/acc over optimizer.lr"
    assert "sd over the optimizer.lr grid (0.001, 0.01, 0.1)" in text_of(check).setup()
    assert len(check.run_ids["treatment"]) == 12


def test_on_diverged_worst_scores_a_diverged_run_as_the_worst_ok_value():
    """The spread default: adam's divergence at lr=1 counts as the worst accuracy any ok run of
    the check reached (sgd's 0.10 + seed jitter), so adam's spread grows instead of hiding."""
    claim = {"name": "opt", "statement": "s", "checks": [SPREAD]}
    records = _spread_records(claim, {"adam": [0.90, 0.91, 0.89, None], "sgd": [0.20, 0.50, 0.85, 0.10]})
    check = judge_claim(records, claim).checks[0]
    assert check.spec.on_diverged == "worst" and check.spread_grid == [0.001, 0.01, 0.1, 1.0]
    assert check.counts["treatment"]["diverged"] == 4
    assert any("4 diverged run(s) scored as worst (0.100)" in n for n in check.notes)
    assert check.estimate.treatment.mean == pytest.approx(
        np.mean([np.std([0.90 + 0.004 * s, 0.91 + 0.004 * s, 0.89 + 0.004 * s, 0.10], ddof=1) for s in range(4)]))


def test_on_diverged_chance_and_exclude_on_a_plain_check():
    records = two_level_records(0.80, 0.70, metric="test/acc", num_classes=10)
    records[0]["status"], records[0]["error"], records[0]["metrics"] = "diverged", "nan", {"test/acc": None}
    base = {"metric": "test/acc", "goal": "max"}
    excluded = judge_check(records, dict(toy_claim()["checks"][0], **base))
    assert text_of(excluded).n("treatment") == 4 and excluded.counts["treatment"]["diverged"] == 1
    chance = judge_check(records, dict(toy_claim()["checks"][0], on_diverged="chance", **base))
    assert text_of(chance).n("treatment") == 5
    assert chance.estimate.treatment.mean == pytest.approx((0.1 + sum(0.8 + n for n in NOISE[1:])) / 5)
    loss = two_level_records(0.5, 0.6, metric="val/loss", num_classes=10)
    loss[0]["status"], loss[0]["error"] = "diverged", "nan"
    scored = judge_check(loss, dict(toy_claim()["checks"][0], metric="val/loss", on_diverged="chance"))
    assert scored.estimate.treatment.mean == pytest.approx((math.log(10) + sum(0.5 + n for n in NOISE[1:])) / 5)
    worst = judge_check(records, dict(toy_claim()["checks"][0], on_diverged="worst", **base))
    assert worst.estimate.treatment.mean == pytest.approx((0.70 - 0.008 + sum(0.8 + n for n in NOISE[1:])) / 5)


def test_chance_without_num_classes_falls_back_to_exclude():
    records = two_level_records(0.80, 0.70, metric="test/acc", num_classes=None)
    records[0]["status"], records[0]["error"] = "diverged", "nan"
    check = judge_check(records, dict(toy_claim()["checks"][0], metric="test/acc", goal="max", on_diverged="chance"))
    assert text_of(check).n("treatment") == 4 and any("needs the records' num_classes" in n for n in check.notes)


def test_failed_runs_are_always_left_out_and_counted():
    records = two_level_records(0.1, 1.0)
    records[1]["status"], records[1]["error"], records[1]["metrics"] = "failed", "RuntimeError: x", {}
    check = judge_check(records, dict(toy_claim()["checks"][0], on_diverged="worst"))
    assert check.counts["baseline"]["failed"] == 1 and text_of(check).n("baseline") == 4
    assert any("baseline: 1 failed run(s) left out" in n for n in check.notes)


def test_interval_width_interpolates_and_flags_censoring():
    # best 1.0 at x=1; within 0.1 -> threshold 0.9; crossings halfway between grid points
    width, censored = interval_width([0, 1, 2, 3], [0.8, 1.0, 0.95, 0.85], 0.1, "max")
    assert width == pytest.approx((2 + 0.5) - 0.5) and not censored
    width, censored = interval_width([0, 1, 2], [0.95, 1.0, 0.5], 0.1, "max")
    assert censored and width == pytest.approx((1 + 0.2) - 0)           # reaches the first point
    width, censored = interval_width([0, 1, 2], [2.0, 1.0, 1.05], 0.1, "min")  # losses
    assert censored and width == pytest.approx(2 - 0.9)


def test_width_statistic_on_each_sides_own_grid():
    """adam stays near its best over three decades of its own grid (censored at both ends), sgd
    over less than one decade of a different grid."""
    check = dict(SPREAD, goal="max", statistic="width", within=0.05, metric="test/acc")
    claim = {"name": "opt", "statement": "s", "checks": [check]}
    records = []
    for opt, grid, accs in (("adam", (1e-4, 1e-3, 1e-2, 1e-1), (0.90, 0.92, 0.91, 0.90)),
                            ("sgd", (1e-2, 1e-1, 1.0, 10.0), (0.30, 0.80, 0.60, 0.10))):
        for seed in range(4):
            for lr, acc in zip(grid, accs):
                r = make_record(f"{opt}-{lr}-{seed}", {"optimizer.lr": lr}, seed,
                                {"test/acc": acc + 0.01 * seed * (opt == "sgd") * (lr == 1.0)},
                                claim=claim, choices={"optimizer": opt})
                records.append(r)
    result = judge_claim(records, claim).checks[0]
    assert result.side_grids["treatment"] == [1e-4, 1e-3, 1e-2, 1e-1]
    assert result.side_grids["baseline"] == [1e-2, 0.1, 1.0, 10.0]
    assert result.estimate.treatment.mean == pytest.approx(3.0)          # the whole grid: censored
    assert result.counts["treatment"]["censored"] == 4 and result.counts["baseline"]["censored"] == 0
    assert any("censored widths" in n and "lower bound" in n for n in result.notes)
    # sgd seed 0: best 0.80 at 0.1, threshold 0.75: 0.1 - 0.9 decades (to 0.3->0.8) and +0.25 (0.8->0.6)
    assert result.estimate.baseline.mean < 0.6
    assert result.verdict == stats.SUPPORTED
    assert text_of(result).metric_label.startswith("width (decades of optimizer.lr) where test/acc is within 0.0500")


def test_judge_look_reports_the_runs_a_look_reads():
    records = two_level_records(0.1, 1.0)
    spec = parse_check(toy_claim()["checks"][0])
    result, required = judge_look(scope_of(records, spec), spec, Look(0, None, (0, 1)), 0.05)
    assert text_of(result).n("treatment") == 2 and result.seeds_judged == (0, 1)
    assert {seed for _, seed in required} == {0, 1} and len(required) == 4  # 2 cells x 2 seeds


def test_a_side_may_pool_several_levels():
    records = []
    for depth in (2, 4, 8, 16):
        for seed, noise in enumerate(NOISE):
            records.append(make_record(f"d{depth}-s{seed}", {"model.depth": depth}, seed,
                                       {"train/loss": (0.1 if depth <= 4 else 1.0) + noise}))
    check = {"name": "shallow beats deep", "metric": "train/loss", "goal": "min", "factor": "model.depth",
             "treatment": [2, 4], "baseline": ["8", 16]}
    result = judge_check(records, check)
    assert text_of(result).n("treatment") == 10 and text_of(result).n("baseline") == 10 and result.verdict == stats.SUPPORTED
    assert sorted(result.run_ids["baseline"]) == sorted(f"d{d}-s{s}" for d in (8, 16) for s in range(5))
    assert text_of(result).setup().startswith("train/loss (lower is better): model.depth ∈ {2, 4} vs model.depth ∈ {8, 16}")
