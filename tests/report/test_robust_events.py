"""Robustness of event checks (ablate.report.judge.events): room on an interval's scale from the
deciding one-sided Fisher p, the runs that would have to change outcome (flips), one run out, and
the borderline mark (only when one run undoes the decision), in the report, verdict.json and the sweep."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats as st

from ablate.report import build_report
from ablate.report.judge import robust, stats
from ablate.report.judge.claim import judge_check, judge_claim
from ablate.report.judge.events import flips, one_sided, room
from ablate.report.present.text import text_of
from tests.report.records import write_sweep
from tests.report.test_events import CHECK, LARGE, OUTCOMES, SMALL, claim, lr_records

ONE = dict(CHECK, event="diverged", treatment=1.0, baseline=0.01)  # one level a side


def counts(kt: int, nt: int, kb: int, nb: int) -> tuple[dict, dict]:
    return {"treatment": kt, "baseline": kb}, {"treatment": nt, "baseline": nb}


def diverging(kt: int, nt: int, kb: int, nb: int) -> list[dict]:
    """``kt`` of ``nt`` runs at lr 1.0 diverge, ``kb`` of ``nb`` at lr 0.01."""
    return lr_records({1.0: ["diverged"] * kt + [0.5] * (nt - kt), 0.01: ["diverged"] * kb + [0.5] * (nb - kb)},
                      claim_=claim(ONE))


def test_one_sided_is_fishers_exact_test():
    rng = np.random.default_rng(0)
    for _ in range(300):
        nt, nb = (int(x) for x in rng.integers(1, 25, 2))
        kt, kb = int(rng.integers(0, nt + 1)), int(rng.integers(0, nb + 1))
        table = [[kt, nt - kt], [kb, nb - kb]]
        for greater, alternative in ((True, "greater"), (False, "less")):
            assert one_sided(*counts(kt, nt, kb, nb), greater) == pytest.approx(
                st.fisher_exact(table, alternative=alternative).pvalue, rel=1e-12)


def test_room_is_an_intervals_room_for_the_same_one_sided_p():
    # an interval decides by t / t(1 − α/2) − 1 half-widths; a one-sided p by z(p) / z(α/2) − 1
    z = st.norm.isf(0.025)
    assert room(0.025, 0.05) == pytest.approx(0.0, abs=1e-12)
    assert room(st.norm.sf(1.25 * z), 0.05) == pytest.approx(robust.BORDERLINE_ROOM)
    assert room(0.001, 0.05) == pytest.approx(st.norm.isf(0.001) / z - 1) and room(0.001, 0.05) > 0
    assert room(0.2, 0.05) < 0 and math.isnan(room(1.0, 0.05))
    # the same as an interval's room: a normal interval at z(p) standard errors from 0
    low, high = 1 - z / st.norm.isf(0.001), 1 + z / st.norm.isf(0.001)  # Δ = 1, se = 1 / z(0.001)
    assert robust.room(low, high, "superiority", None, stats.SUPPORTED) == pytest.approx(room(0.001, 0.05))


def test_flips_is_the_fewest_runs_whose_outcome_undoes_the_decision():
    level = 0.025
    for kt, nt, kb, nb in itertools.product(range(7), [6], range(7), [6]):
        k, n = counts(kt, nt, kb, nb)
        found = flips(k, n, True, level)
        if one_sided(k, n, True) >= level:
            assert found is None
            continue
        # brute force: every table of the same n, its distance in changed runs
        best = min(abs(kt - a) + abs(kb - b) for a in range(nt + 1) for b in range(nb + 1)
                   if one_sided(*counts(a, nt, b, nb), True) >= level)
        assert found == best
    assert flips(*counts(7, 12, 0, 12), True, level) == 2
    assert flips(*counts(0, 12, 7, 12), False, level) == 2  # "less often": the mirror image


def test_a_clear_event_check_has_room_and_is_not_borderline(tmp_path):
    check = judge_claim(lr_records(OUTCOMES), claim()).checks[0]  # 7/12 vs 0/12, p = 0.0023
    assert check.verdict == stats.SUPPORTED
    assert check.room == pytest.approx(st.norm.isf(check.p_support / 2) / st.norm.isf(0.025) - 1)
    assert check.room == pytest.approx(0.447, abs=1e-3)
    assert check.estimate.flips == 2 and check.one_seed_out is True and not check.borderline
    line = text_of(check).robustness_text()
    assert line.startswith("the one-sided p=0.0023 clears α/2=0.025 by 0.45 (normal quantiles 2.84 against 1.96")
    assert "2 runs would have to change outcome (event or not) to undo it" in line
    assert line.endswith("the verdict survives leaving out any one run of either side")
    contradicted = judge_check(lr_records(OUTCOMES, claim_=claim(dict(CHECK, goal="min"))), dict(CHECK, goal="min"))
    assert contradicted.verdict == stats.NOT_SUPPORTED and contradicted.room == pytest.approx(check.room)
    root = write_sweep(tmp_path / "s", lr_records(OUTCOMES))
    assert "robustness: the one-sided p=0.0023 clears α/2=0.025 by 0.45" in build_report(root).read_text()
    saved = json.loads((root / "verdict.json").read_text())["claims"][0]["checks"][0]
    assert saved["room"] == pytest.approx(check.room) and saved["borderline"] is False


def test_an_event_check_decided_on_a_hair_is_borderline(tmp_path):
    # 5/8 vs 0/8: p = 56/4368 = 0.0128 < 0.025, room 0.14
    close = judge_check(diverging(5, 8, 0, 8), ONE)
    assert close.verdict == stats.SUPPORTED and close.p_support == pytest.approx(2 * 56 / 4368)
    assert 0 < close.room < robust.BORDERLINE_ROOM and close.borderline
    assert text_of(close).robustness_text().startswith("borderline: the one-sided p=0.013 clears α/2=0.025 by 0.14")
    root = write_sweep(tmp_path / "s", diverging(5, 8, 0, 8))
    text = build_report(root).read_text()
    assert "**supported** (borderline)" in text and "robustness: borderline: the one-sided p=0.013" in text
    saved = json.loads((root / "verdict.json").read_text())["claims"][0]
    assert saved["checks"][0]["borderline"] is True and saved["borderline"] == [ONE["name"]]
    # undecided: how far short, negative
    short = judge_check(diverging(2, 8, 0, 8), ONE)
    assert short.verdict == stats.INCONCLUSIVE and short.room < 0 and not short.borderline
    assert text_of(short).robustness_text().startswith("the one-sided p for the claim, 0.23, falls ")
    assert math.isnan(judge_check(diverging(0, 8, 0, 8), ONE).room)  # no event at all: p = 1


def test_one_run_changing_outcome_makes_it_borderline_even_with_room():
    # 3/3 vs 0/10: p = 1/286, room 0.38 and no single run left out undoes it, but one treatment run
    # not diverging (2/3 vs 0/10, p = 0.038) does: a last-bit difference on a threshold event
    check = judge_check(diverging(3, 3, 0, 10), ONE)
    assert check.verdict == stats.SUPPORTED and check.room > robust.BORDERLINE_ROOM
    assert check.estimate.flips == 1 and check.one_seed_out is False and check.borderline
    assert text_of(check).robustness_text().endswith("changing one run's outcome undoes the verdict")


def test_a_borderline_event_look_does_not_end_the_check_while_looks_remain():
    # budget seeds 2 → 3: look 1 (α = 0.012) is 6/6 vs 0/6 over the pooled levels, p = 1/924 < 0.006 by
    # 0.22 of room, and one run not failing (5/6 vs 0/6) would undo it: the sweep asks for look 2's seeds
    outcomes = {lr: [2.5 if lr in LARGE else 0.5 for _ in range(2)] for lr in [*LARGE, *SMALL]}
    result = judge_claim(lr_records(outcomes, budget={"seeds": 2, "max_seeds": 3}), claim())
    check = result.checks[0]
    assert check.verdict == stats.SUPPORTED and check.look == 0 and check.borderline
    assert 0 < check.room < robust.BORDERLINE_ROOM and check.estimate.flips == 1
    assert check in result.open_checks and {seed for _, seed in result.needs()} == {2}


def test_a_clean_first_look_that_two_runs_would_have_to_undo_is_not_borderline():
    # seeds 3 → 5 → 8: look 1 (α = 0.0005) is 9/9 vs 0/9, p = 1/48620, only 0.18 of room (a count's room
    # is capped by its runs) but two runs would have to change outcome: decided, no more seeds
    outcomes = {lr: [2.5 if lr in LARGE else 0.5 for _ in range(3)] for lr in [*LARGE, *SMALL]}
    result = judge_claim(lr_records(outcomes, budget={"seeds": 3, "max_seeds": 8}), claim())
    check = result.checks[0]
    assert check.verdict == stats.SUPPORTED and check.look == 0 and check.alpha == pytest.approx(0.000504, rel=1e-3)
    assert 0 < check.room < robust.BORDERLINE_ROOM and check.estimate.flips == 2 and check.one_seed_out
    assert not check.borderline and not result.open_checks and not result.needs()
