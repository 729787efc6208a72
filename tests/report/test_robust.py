"""ablate.report.judge.robust: the room a verdict was decided by, whether one seed undoes it, and
the borderline mark in the report and verdict.json."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ablate.report import build_report
from ablate.report.judge import robust, stats
from ablate.report.judge.claim import judge_check
from ablate.report.present.text import text_of
from ablate.report.spec.claim import EQUIVALENCE, NONINFERIORITY, SUPERIORITY
from tests.report.records import toy_claim, two_level_records, write_sweep

CHECK = toy_claim()["checks"][0]  # train/loss, lower is better


@pytest.mark.parametrize("test, margin", [(SUPERIORITY, None), (SUPERIORITY, 0.5), (NONINFERIORITY, 0.5),
                                          (EQUIVALENCE, 0.5)])
def test_interval_verdict_is_the_decisions_and_contrast_is_welchs_interval(test, margin):
    rng = np.random.default_rng(4)
    for _ in range(200):
        a, b = rng.normal(rng.normal(0, 0.5), 0.3, 5), rng.normal(0, 0.3, 4)
        c = stats.compare(a, b, "max", 0.05)
        low, high = robust.contrast({"a": a, "b": b}, {"a": 1.0, "b": -1.0}, 0.05)
        assert (low, high) == pytest.approx((c.diff_low, c.diff_high), abs=1e-12)
        assert stats.interval_verdict(low, high, test, margin) == stats.decide(c, test, margin).verdict


def test_room_is_the_deciding_bounds_distance_in_half_widths():
    assert robust.room(0.1, 0.5, SUPERIORITY, None, stats.SUPPORTED) == pytest.approx(0.5)
    assert robust.room(-0.5, -0.1, SUPERIORITY, None, stats.NOT_SUPPORTED) == pytest.approx(0.5)
    # the main job's case: [−0.251, 0.071] against −0.25: short by 0.006 half-widths
    short = robust.room(-0.251, 0.071, NONINFERIORITY, 0.25, stats.INCONCLUSIVE)
    assert short == pytest.approx(-0.001 / 0.161) and short < 0
    assert robust.room(-0.1, 0.3, EQUIVALENCE, 0.5, stats.SUPPORTED) == pytest.approx(0.2 / 0.2)
    assert robust.room(-0.1, 0.3, SUPERIORITY, 0.5, stats.NO_EFFECT) == pytest.approx(1.0)
    assert robust.room(0.6, 1.0, EQUIVALENCE, 0.5, stats.NOT_SUPPORTED) == pytest.approx(0.5)
    assert robust.is_borderline(stats.SUPPORTED, 0.1, True) and robust.is_borderline(stats.SUPPORTED, 2.0, False)
    assert not robust.is_borderline(stats.SUPPORTED, 2.0, None) and not robust.is_borderline(stats.INCONCLUSIVE, 0.0, False)


def test_one_seed_out_finds_the_seed_that_carries_a_verdict():
    steady = {"a": np.array([1.0, 1.1, 0.9, 1.05, 0.95]), "b": np.array([0.0, 0.1, -0.1, 0.05, -0.05])}
    signs = {"a": 1.0, "b": -1.0}
    assert robust.one_seed_out(steady, signs, 0.05, SUPERIORITY, None, stats.SUPPORTED) is True
    carried = {"a": np.array([0.0, 0.1, -0.1, 0.05, 3.0]), "b": np.array([0.0, 0.1, -0.1, 0.05, -0.05])}
    low, high = robust.contrast(carried, signs, 0.05)
    assert stats.interval_verdict(low, high, SUPERIORITY, None) == stats.INCONCLUSIVE
    assert robust.one_seed_out({"a": steady["a"][:2], "b": steady["b"]}, signs, 0.05, SUPERIORITY, None,
                               stats.SUPPORTED) is None


def test_a_clear_check_is_not_borderline_and_a_close_one_is(tmp_path):
    clear = judge_check(two_level_records(0.1, 1.0), CHECK)
    assert clear.verdict == stats.SUPPORTED and clear.room > 5 and clear.one_seed_out is True
    assert not clear.borderline
    assert text_of(clear).robustness_text().startswith("the deciding bound sits ")
    undecided = judge_check(two_level_records(0.5, 0.5), CHECK)
    assert undecided.verdict == stats.INCONCLUSIVE and undecided.room < 0 and not undecided.borderline
    assert text_of(undecided).robustness_text().startswith("the bound that would support the claim falls ")
    # treatment lower by just enough that the interval clears 0 by a hair
    base = two_level_records(0.5, 0.5)
    c0 = stats.compare([r["metrics"]["train/loss"] for r in base if r["run_id"][0] == "t"],
                       [r["metrics"]["train/loss"] for r in base if r["run_id"][0] == "b"], "min")
    half = (c0.diff_high - c0.diff_low) / 2
    records = two_level_records(0.5 - 1.05 * half, 0.5)
    close = judge_check(records, CHECK)
    assert close.verdict == stats.SUPPORTED and 0 < close.room < robust.BORDERLINE_ROOM and close.borderline
    assert text_of(close).robustness_text().startswith("borderline: the deciding bound sits 0.05")
    root = write_sweep(tmp_path / "s", records)
    text = build_report(root).read_text()
    assert "**supported** (borderline)" in text and "robustness: borderline: " in text
    verdicts = json.loads((root / "verdict.json").read_text())
    check = verdicts["claims"][0]["checks"][0]
    assert check["borderline"] is True and check["room"] == pytest.approx(close.room)
    assert verdicts["claims"][0]["borderline"] == [check["name"]]
    assert math.isfinite(check["room"])


def test_the_catalogue_marks_a_claim_with_borderline_checks():
    from ablate.catalogue import _borderline

    assert _borderline({"borderline": ["a", "b"]}) == " (borderline: 2 checks)"
    assert _borderline({"borderline": []}) == "" and _borderline({}) == ""  # an older verdict.json


def test_a_borderline_look_does_not_end_the_check_while_looks_remain():
    """Look 1 (3 seeds) supports by a hair: the check asks for look 2's seeds instead of stopping,
    and with them look 2 decides."""
    budget = {"seeds": 3, "max_seeds": 5}
    base = [0.004, -0.008, 0.0, 0.006, -0.002]
    treat = [-0.002, 0.006, -0.004, 0.001, 0.003]
    for d in np.linspace(0.001, 0.2, 4000):
        records = two_level_records(0.5 - d, 0.5, noise=treat, base_noise=base, budget=budget)
        first = [r for r in records if r["seed"] < 3]
        check = judge_check(first, CHECK)
        if check.verdict == stats.SUPPORTED:
            break
    assert check.verdict == stats.SUPPORTED and check.borderline and check.look == 0
    assert {seed for _, seed in check.need} == {3, 4}  # the sweeper runs look 2's seeds
    from ablate.report.judge.claim import judge_claim

    result = judge_claim(first, toy_claim())
    assert result.open_checks and {seed for _, seed in result.needs()} == {3, 4}
    full = judge_check(records, CHECK)
    assert full.look == 1 and len(full.history) == 2 and full.history[0].verdict == stats.SUPPORTED
    assert full.verdict == stats.SUPPORTED and not full.need
