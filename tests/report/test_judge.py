"""ablate.report.judge: verdicts over looks, Holm's correction, clauses, nulls at a budget, and every
shipped experiment's claim judged on made-up records."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from statsmodels.stats.multitest import multipletests

from ablate.report import build_report
from ablate.report.records import tables as collect
from ablate.report.spec import derived
from ablate.report.judge import stats
from ablate.report.judge.sequential import look_alphas
from ablate.report.judge.claim import judge_check, judge_claim
from ablate.report.present.text import text_of
from tests.report.records import NOISE, history, make_record, toy_claim, two_level_records, write_sweep
from tests.support import REPO, experiment_cells


def test_large_effect_in_claimed_direction_is_supported():
    records = two_level_records(0.1, 1.0)
    claim = judge_claim(records, records[0]["claim"])
    check = claim.checks[0]
    assert check.verdict == stats.SUPPORTED and claim.verdict == stats.SUPPORTED
    assert check.estimate.treatment.n == 5 and check.estimate.baseline.n == 5
    assert check.estimate.treatment.mean == pytest.approx(0.1) and check.estimate.baseline.mean == pytest.approx(1.0)
    assert check.estimate.p < 1e-6 and check.estimate.g > 50  # oriented: positive = the claimed way
    line = text_of(check).line()
    assert line.startswith("supported — model.a=true 0.100 ± ")
    assert "vs model.a=false 1.00 ± " in line and "n=5 each" in line and "Welch t=" in line and "p=" in line
    assert "Δ (baseline − treatment) 0.900, 95% CI" in line


def test_no_effect_is_inconclusive_and_reads_as_a_null_at_this_budget():
    noise_b = [-0.002, 0.006, 0.0, -0.008, 0.004]  # the same spread, shuffled
    records = two_level_records(0.5, 0.5, base_noise=noise_b, choices={"budget": "quick"})
    for r in records:
        r["config"]["trainer"] = {"max_epochs": 10}
    judged = judge_claim(records, records[0]["claim"])
    check, text = judged.checks[0], text_of(judged.checks[0], judged.budget)
    assert check.verdict == stats.INCONCLUSIVE and check.estimate.p > 0.05
    assert "which contains 0" in check.reason
    expected = f"not shown at budget=quick (5 seeds, 10 epochs; detectable effect ≥ {stats.fmt(check.detectable, 2)})"
    assert expected in text.reason and expected in text.line()


def test_effect_in_the_wrong_direction_is_not_supported():
    records = two_level_records(1.0, 0.1)
    claim = judge_claim(records, records[0]["claim"])
    assert claim.checks[0].verdict == stats.NOT_SUPPORTED and claim.verdict == stats.NOT_SUPPORTED
    assert "below 0" in claim.checks[0].reason and claim.checks[0].p_holm < 0.05


def test_goal_max_flips_the_direction():
    records = two_level_records(0.9, 0.5)
    assert judge_check(records, dict(toy_claim()["checks"][0], goal="max")).verdict == stats.SUPPORTED


def test_one_seed_a_side_is_inconclusive_and_says_why():
    records = two_level_records(0.1, 1.0, noise=[0.0])
    check = judge_claim(records, records[0]["claim"]).checks[0]
    assert check.verdict == stats.INCONCLUSIVE
    assert "n=1" in check.reason and "at least 2" in check.reason


@pytest.mark.parametrize("test, margin, treat, verdict", [
    ("noninferiority", 0.05, 0.52, stats.SUPPORTED),         # worse by 0.02 < δ (lower is better)
    ("noninferiority", 0.05, 0.70, stats.NOT_SUPPORTED),
    ("equivalence", 0.05, 0.51, stats.SUPPORTED),
    ("equivalence", 0.05, 0.90, stats.NOT_SUPPORTED),
    ("superiority", 0.05, 0.50, stats.NO_EFFECT),
])
def test_margin_checks_end_to_end(test, margin, treat, verdict):
    records = two_level_records(treat, 0.5, base_noise=[-0.002, 0.006, 0.0, -0.008, 0.004])
    claim = toy_claim(test=test, margin=margin)
    result = judge_claim(records, claim)
    assert result.checks[0].verdict == verdict
    if verdict == stats.NO_EFFECT:
        assert text_of(result.checks[0]).verdict_label == "no effect within ±0.0500"
        assert result.verdict == stats.NOT_SUPPORTED  # a finding against the claim as stated


def _moderate(delta_sign: int) -> list[float]:
    """Treatment values whose contradiction has 0.02 < p < 0.045 against NOISE-like baselines."""
    base = [0.5 + n for n in NOISE]
    for d in np.linspace(0.001, 0.02, 400):
        treat = [0.5 + delta_sign * d + n for n in NOISE[::-1]]
        if 0.02 < stats.compare(treat, base).p < 0.045:
            return treat
    raise AssertionError("no moderate difference found")


def test_holm_can_withdraw_a_contradiction_and_prints_raw_and_adjusted_p():
    """Two checks each contradicted at p≈0.03: alone each is not supported; together Holm's
    adjusted p is ≥ 0.05, so neither is."""
    treat = _moderate(+1)  # higher loss on the treatment side: against the claim (goal min)
    claim = {"name": "two", "statement": "s", "checks": [
        dict(toy_claim()["checks"][0], name="one"), dict(toy_claim()["checks"][0], name="two", metric="val/loss")]}
    records = []
    for seed in range(5):
        records.append(make_record(f"t{seed}", {"model.a": True}, seed,
                                   {"train/loss": treat[seed], "val/loss": treat[seed]}, claim=claim))
        records.append(make_record(f"b{seed}", {"model.a": False}, seed,
                                   {"train/loss": 0.5 + NOISE[seed], "val/loss": 0.5 + NOISE[seed]}, claim=claim))
    alone = judge_claim(records, dict(claim, checks=claim["checks"][:1])).checks[0]
    assert alone.verdict == stats.NOT_SUPPORTED and alone.p_holm == pytest.approx(alone.p_against)
    both = judge_claim(records, claim)
    raw = [c.p_against for c in both.checks]
    assert all(p < 0.05 for p in raw)
    assert [c.p_holm for c in both.checks] == pytest.approx(list(multipletests(raw, method="holm")[1]))
    for c in both.checks:
        assert c.verdict == stats.INCONCLUSIVE and c.p_holm >= 0.05
        assert "after Holm's correction over 2 checks" in c.reason


def test_holm_can_withdraw_a_no_effect_like_a_contradiction():
    """"No effect within ±δ" is a way to fail, so it passes Holm's correction too: two checks whose
    intervals each lie inside (−δ, δ) with 0.02 < p inside < 0.045 show no effect alone, and
    neither does together (and so neither makes the claim not supported)."""
    base = [0.5 + n for n in NOISE]
    treat = [0.5 + n for n in NOISE[::-1]]
    margin = next(m for m in np.linspace(0.005, 0.05, 2000)
                  if 0.02 < stats.compare(treat, base, "min").p_inside(m) < 0.045)
    check = dict(toy_claim()["checks"][0], margin=float(margin))
    claim = {"name": "two", "statement": "s", "checks": [dict(check, name="one"),
                                                         dict(check, name="two", metric="val/loss")]}
    records = []
    for seed in range(5):
        for arm, values in ((True, treat), (False, base)):
            records.append(make_record(f"{arm}{seed}", {"model.a": arm}, seed,
                                       {"train/loss": values[seed], "val/loss": values[seed]}, claim=claim))
    alone = judge_claim(records, dict(claim, checks=claim["checks"][:1]))
    assert alone.checks[0].verdict == stats.NO_EFFECT and alone.verdict == stats.NOT_SUPPORTED
    both = judge_claim(records, claim)
    raw = [c.p_fail for c in both.checks]
    assert raw == pytest.approx([c.p_inside for c in both.checks]) and all(p < 0.05 for p in raw)
    assert [c.p_holm for c in both.checks] == pytest.approx(list(multipletests(raw, method="holm")[1]))
    assert both.verdict == stats.INCONCLUSIVE
    for c in both.checks:
        assert c.verdict == stats.INCONCLUSIVE and c.p_holm >= 0.05
        assert "the interval lies inside (−δ, δ)" in c.reason and "after Holm's correction over 2 checks" in c.reason


SEQ = {"seeds": 2, "max_seeds": 3}


def _cells(claim, means, seeds, noise=(0.01, -0.01, 0.0)):
    records = []
    for (a, b), mean in means.items():
        for seed in seeds:
            records.append(make_record(f"a{a}-b{b}-s{seed}", {"model.a": a, "model.b": b}, seed,
                                       {"train/loss": mean + noise[seed] * (1 + b)}, claim=claim, budget=SEQ))
    return records


SEQ_CLAIM = {"name": "seq", "statement": "s", "checks": [
    {"name": "decided", "metric": "train/loss", "goal": "min", "factor": "model.a", "treatment": True,
     "baseline": False, "where": {"model.b": 0}},
    {"name": "open", "metric": "train/loss", "goal": "min", "factor": "model.a", "treatment": True,
     "baseline": False, "where": {"model.b": 1}},
]}
SEQ_MEANS = {(True, 0): 0.1, (False, 0): 5.0, (True, 1): 1.0, (False, 1): 1.0}


def test_a_decided_check_stops_and_an_open_one_asks_for_its_next_look():
    records = _cells(SEQ_CLAIM, SEQ_MEANS, seeds=(0, 1))
    result = judge_claim(records, SEQ_CLAIM)
    decided, open_ = result.checks
    assert decided.verdict == stats.SUPPORTED and decided.look == 0 and decided.looks_planned == 2
    assert decided.alpha == pytest.approx(look_alphas(0.05, (2, 3))[0]) and decided.need == set()
    assert open_.verdict == stats.INCONCLUSIVE and not open_.decided
    # its next look: seed 2 of the two cells it reads, and nothing for the decided check's cells
    assert {seed for _, seed in open_.need} == {2}
    assert {dict(cell)["model.b"] for cell, _ in result.needs()} == {"1"} and len(result.needs()) == 2
    # after that look ran, the replay judges it at look 2 and has nothing more to ask
    records += [r for r in _cells(SEQ_CLAIM, SEQ_MEANS, seeds=(2,)) if r["overrides"]["model.b"] == "1"]
    result = judge_claim(records, SEQ_CLAIM)
    decided, open_ = result.checks
    assert decided.look == 0 and text_of(decided).n("treatment") == 2          # stays decided at its first look
    assert open_.look == 1 and text_of(open_).n("treatment") == 3 and len(open_.history) == 2
    assert result.needs() == set()


def test_an_incomplete_look_decides_nothing():
    records = [r for r in _cells(SEQ_CLAIM, SEQ_MEANS, seeds=(0, 1)) if r["run_id"] != "aFalse-b0-s1"]
    decided = judge_claim(records, SEQ_CLAIM).checks[0]
    assert decided.verdict == stats.INCONCLUSIVE and "look 0 is incomplete" in decided.reason
    assert decided.need == {(tuple(sorted({"model.a": "false", "model.b": "0"}.items())), 1)}


def test_a_clause_that_explains_is_judged_but_not_combined_into_the_claim():
    records = two_level_records(0.1, 1.0)
    checks = [dict(toy_claim(clause="fast")["checks"][0]),
              dict(toy_claim(clause="why")["checks"][0], goal="max", name="the mechanism")]   # contradicted
    claim = {"name": "toy", "statement": "a is faster", "checks": checks,
             "clauses": [{"name": "fast", "text": "a is faster"},
                         {"name": "why", "text": "because of x", "explains": True}]}
    result = judge_claim(records, claim)
    assert [(c.clause.name, c.verdict) for c in result.clauses] == [("fast", stats.SUPPORTED),
                                                                     ("why", stats.NOT_SUPPORTED)]
    assert result.verdict == stats.SUPPORTED
    root = write_sweep(Path(tempfile.mkdtemp()) / "toy", two_level_records(0.1, 1.0, claim=claim))
    assert "(why it happens: shown, not part of the claim's verdict)" in build_report(root).read_text()
    claim["clauses"][1]["explains"] = False
    assert judge_claim(records, claim).verdict == stats.NOT_SUPPORTED


def test_clauses_and_the_claim_verdict():
    records = two_level_records(0.1, 1.0)
    claim = dict(toy_claim(clause="fast"), clauses=[{"name": "fast", "text": "a is faster"},
                                                     {"name": "cheap", "text": "a is cheaper", "not_tested": "no cost data"}],
                 scope={"hardware": "2-core CPU"})
    result = judge_claim(records, claim)
    assert [(c.clause.name, c.verdict) for c in result.clauses] == [("fast", stats.SUPPORTED),
                                                                     ("cheap", stats.NOT_TESTED)]
    assert result.verdict == stats.SUPPORTED and "not tested: cheap" in result.reason
    assert [c.clause.name for c in result.untested] == ["cheap"] and result.scope == {"hardware": "2-core CPU"}
    against = judge_claim(two_level_records(1.0, 0.1), claim)
    assert against.clauses[0].verdict == stats.NOT_SUPPORTED and against.verdict == stats.NOT_SUPPORTED


GROUPS = {p.name for p in (REPO / "conf").iterdir() if p.is_dir()}   # config groups: norm, optimizer, ...


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")))
def test_every_experiment_claim_can_be_judged(experiment, tmp_path):
    """The claims the experiment configs declare use only what the report understands: build the
    experiment's sweep grid with made-up metrics and check every check is evaluated."""
    conf = yaml.safe_load((REPO / "conf" / "experiment" / f"{experiment}.yaml").read_text())
    claim = conf["claim"]
    cells = experiment_cells(conf)
    metrics_named = sorted({m for c in claim["checks"] for key in ("metric", "select_on") if c.get(key)
                            for m in derived.operands(c[key])} | {"train/loss", "val/acc", "test/acc"})
    rng = np.random.default_rng(0)
    records = []
    for i, cell in enumerate(cells):
        for seed in range(3):
            factors = {k: collect.canonical(v) for k, v in cell.items() if "." in k or k not in GROUPS}
            metrics = {m: float(rng.uniform(0.1, 1.0)) for m in metrics_named}
            r = make_record(f"{experiment}-{i}-{seed}", factors, seed, metrics, claim=claim, experiment=experiment,
                            history=history(metrics["train/loss"]), choices={})
            for k, v in cell.items():
                if k in GROUPS:
                    r["config"][k] = {"_target_": f"x.{v}"}
                    r["choices"][k] = v
                    r["overrides"][k] = v
            records.append(r)
    result = judge_claim(records, claim)
    assert len(result.checks) == len(claim["checks"])
    assert [c.clause.name for c in result.clauses] == [c["name"] for c in claim["clauses"]]
    for check in result.checks:
        assert not check.spec.problems, check.reason
        assert text_of(check).n("treatment") >= 2 and text_of(check).n("baseline") >= 2, text_of(check).line()
    root = write_sweep(tmp_path / experiment, records)
    text = build_report(root).read_text()
    assert f"## Claim: {claim['name']}" in text


def test_a_contradiction_holm_withdraws_asks_for_the_next_look():
    """Both checks' intervals exclude the claim at look 1 (p below that look's α each), but Holm over
    the two (each p scaled by α / the look's α) does not confirm it: both stay open and ask for seed 2."""
    first = look_alphas(0.05, (2, 3))[0]
    noise = (0.01, -0.01)
    for d in np.linspace(0.01, 0.4, 4000):
        if 0.6 * first < stats.compare([1.0 + d + n for n in noise], [1.0 + n * 1.3 for n in noise]).p < 0.95 * first:
            break
    else:
        raise AssertionError("no such difference")
    means = {(True, 0): 1.0 + d, (False, 0): 1.0, (True, 1): 1.0 + d, (False, 1): 1.0}
    records = []
    for (a, b), mean in means.items():
        for seed in (0, 1):
            records.append(make_record(f"a{a}-b{b}-s{seed}", {"model.a": a, "model.b": b}, seed,
                                       {"train/loss": mean + noise[seed] * (1.3 if not a else 1.0)},
                                       claim=SEQ_CLAIM, budget=SEQ))
    result = judge_claim(records, SEQ_CLAIM)
    for check in result.checks:
        assert check.p_against < first and check.verdict == stats.INCONCLUSIVE and not check.decided
        assert check.history[0].verdict == stats.INCONCLUSIVE
        assert "after Holm's correction over 2 checks" in check.reason
    assert {seed for _, seed in result.needs()} == {2} and len(result.needs()) == 4
