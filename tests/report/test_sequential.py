"""ablate.report.sequential: the look schedule, which seeds each look reads, the seed plan of records."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from ablate.report.judge.sequential import SeedPlan, fresh_seeds, look_alphas, looks, plan_of, schedule, seeds_text, spent
from tests.report.records import make_record


@pytest.mark.parametrize("start, cap, sizes", [
    (3, 8, (3, 5, 8)), (2, 3, (2, 3)), (5, 20, (5, 8, 13, 20)), (1, 4, (1, 2, 3, 4)),
    (3, 3, (3,)), (3, None, (3,)),
])
def test_schedule_grows_by_about_1_6_and_at_least_one_seed(start, cap, sizes):
    assert schedule(start, cap) == sizes
    assert all(b > a for a, b in zip(sizes, sizes[1:]))


def test_plain_and_spread_looks_read_the_first_n_seeds():
    plan = SeedPlan(3, 8)
    assert [lk.judge for lk in looks(plan, "plain", False)] == [(0, 1, 2), (0, 1, 2, 3, 4), tuple(range(8))]
    assert looks(plan, "spread", False) == looks(plan, "plain", False)
    assert all(lk.select is None for lk in looks(plan, "plain", False))


def test_tune_looks_choose_on_the_budget_seeds_and_judge_on_fresh_ones():
    plan = SeedPlan(3, 8)
    fresh = looks(plan, "tune", True)
    assert [lk.select for lk in fresh] == [(0, 1, 2)] * 2
    assert [lk.judge for lk in fresh] == [(3, 4, 5), (3, 4, 5, 6, 7)]  # never beyond max_seeds in all
    assert not any(lk.chooses_with_judging_seeds for lk in fresh)
    same = looks(plan, "tune", False)
    assert [lk.judge for lk in same] == [(0, 1, 2), (0, 1, 2, 3, 4), tuple(range(8))]
    assert all(lk.chooses_with_judging_seeds for lk in same)
    assert [lk.judge for lk in looks(SeedPlan(5, 20), "tune", True)][-1] == tuple(range(5, 20))


def test_fresh_seeds_need_two_per_side():
    assert fresh_seeds(SeedPlan(3, 8), None) == (True, None)
    assert fresh_seeds(SeedPlan(3, 8), False) == (False, None)
    assert fresh_seeds(SeedPlan(2, 3), None) == (False, None)          # smoke: one fresh seed only
    on, note = fresh_seeds(SeedPlan(2, 3), True)
    assert not on and "fewer than 2 fresh seeds" in note
    assert fresh_seeds(SeedPlan(3, None), None) == (False, None)


def test_off_when_max_seeds_is_null_or_equal():
    for plan in (SeedPlan(3, None), SeedPlan(3, 3)):
        assert not plan.sequential
        assert [lk.judge for lk in looks(plan, "plain", False)] == [(0, 1, 2)]
    assert looks(SeedPlan(), "tune", True)[0].judge is None  # unknown plan: every seed, once


def _records(seeds, budget):
    return [make_record(f"r{s}", {"model.a": True}, s, {"train/loss": 1.0}, budget=budget) for s in seeds]


def test_plan_of_reads_the_budget_from_the_records():
    assert plan_of(_records(range(5), {"seeds": 3, "max_seeds": 8})) == (SeedPlan(3, 8), [])
    assert plan_of(_records(range(3), {"seeds": 3, "max_seeds": None}))[0] == SeedPlan(3, None)
    assert plan_of(_records(range(3), None))[0] == SeedPlan()                         # hand-made
    assert plan_of(_records(range(3), {"seeds": "0,1,2"}))[0] == SeedPlan()           # the old list
    plan, notes = plan_of(_records(range(10), {"seeds": 3, "max_seeds": 8}))        # seeds swept by hand
    assert plan == SeedPlan() and "beyond the budget's 8" in notes[0]
    plan, notes = plan_of(_records([0, 1], {"seeds": 3, "max_seeds": 8}))
    assert plan == SeedPlan() and "no cell ran the budget's seeds 0-2" in notes[0]


def test_seeds_text():
    assert seeds_text((0, 1, 2)) == "0-2" and seeds_text((3, 5)) == "3, 5" and seeds_text(None) == "every seed"
    assert SeedPlan(3, 8).describe() == "3 seeds per cell, up to 8 in looks 3 → 5 → 8"


def test_looks_spend_alpha_by_obrien_fleming():
    """Each direction errs at most α/2 over all looks, with most of it left for the last look; the
    bounds agree with SciPy's multivariate normal (the looks' z statistics correlate as sqrt(t_j/t_k))."""
    assert look_alphas(0.05, (8,)) == (0.05,)
    alphas = look_alphas(0.05, (3, 5, 8))
    assert alphas == pytest.approx((0.000504, 0.00899, 0.0471), rel=2e-3)
    assert alphas[0] < alphas[1] < alphas[2] < 0.05 and sum(alphas) > 0.05  # more than Bonferroni's 0.05/3 each
    assert spent(0.05, 1.0) == pytest.approx(0.025)
    t = np.array([3, 5, 8]) / 8
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    bounds = st.norm.isf(np.array(alphas) / 2)
    stay = st.multivariate_normal.cdf(bounds, mean=np.zeros(3), cov=corr, rng=np.random.default_rng(0))
    assert 1 - stay == pytest.approx(0.025, abs=2e-4)
