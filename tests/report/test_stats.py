"""ablate.report.stats: intervals and tests against statsmodels/SciPy, every decision of every test
kind, p-values that agree with the interval, Holm, power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans

from ablate.report.judge import stats
from ablate.report.spec.claim import EQUIVALENCE, NONINFERIORITY, SUPERIORITY

A = [0.1, 0.12, 0.09, 0.11]
B = [1.0, 1.3, 0.8, 1.1, 0.95]


def test_summarize_matches_the_t_interval():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    s = stats.summarize(values)
    half = st.t.ppf(0.975, 4) * np.std(values, ddof=1) / math.sqrt(5)
    assert (s.n, s.mean) == (5, pytest.approx(3.0))
    assert s.std == pytest.approx(1.5811388, rel=1e-6)
    assert (s.ci_low, s.ci_high) == (pytest.approx(3.0 - half), pytest.approx(3.0 + half))
    assert stats.summarize([1.0, float("nan"), None]).n == 1
    assert math.isnan(stats.summarize([2.0]).ci_low)


def test_compare_is_welch_from_statsmodels_and_scipy():
    c = stats.compare(A, B, goal="max")
    ref = st.ttest_ind(A, B, equal_var=False)
    assert c.t == pytest.approx(ref.statistic) and c.p == pytest.approx(ref.pvalue)
    # The Welch–Satterthwaite interval, by hand once, and statsmodels' agrees
    va, vb = np.var(A, ddof=1) / 4, np.var(B, ddof=1) / 5
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 4)
    half = st.t.ppf(0.975, df) * math.sqrt(va + vb)
    diff = np.mean(A) - np.mean(B)
    assert c.df == pytest.approx(df) and c.diff == pytest.approx(diff)
    assert (c.diff_low, c.diff_high) == (pytest.approx(diff - half), pytest.approx(diff + half))
    assert (c.diff_low, c.diff_high) == pytest.approx(CompareMeans.from_data(A, B).tconfint_diff(usevar="unequal"))
    sp = math.sqrt((3 * np.var(A, ddof=1) + 4 * np.var(B, ddof=1)) / 7)
    assert c.g == pytest.approx(diff / sp * (1 - 3 / (4 * 9 - 9)))
    assert c.sd == pytest.approx(sp)


def test_goal_min_orients_the_difference():
    up, down = stats.compare(A, B, goal="max"), stats.compare(A, B, goal="min")
    assert down.diff == pytest.approx(-up.diff) and down.g == pytest.approx(-up.g)
    assert (down.diff_low, down.diff_high) == (pytest.approx(-up.diff_high), pytest.approx(-up.diff_low))
    assert down.p == pytest.approx(up.p)
    # the summaries stay the treatment's and the baseline's
    assert down.treatment.mean == pytest.approx(np.mean(A)) and down.baseline.mean == pytest.approx(np.mean(B))


def test_alpha_sets_the_interval_level():
    wide, narrow = stats.compare(A, B, alpha=0.01), stats.compare(A, B, alpha=0.2)
    assert wide.diff_low < narrow.diff_low < narrow.diff_high < wide.diff_high
    assert (wide.diff_low, wide.diff_high) == pytest.approx(
        CompareMeans.from_data(A, B).tconfint_diff(alpha=0.01, usevar="unequal"))


def test_undefined_without_two_seeds_or_without_variation():
    c = stats.compare([1.0], [2.0, 3.0])
    assert c.diff == pytest.approx(-1.5) and math.isnan(c.p) and not c.defined
    d = stats.decide(c)
    assert d.verdict == stats.INCONCLUSIVE and "n=1" in d.reason and "at least 2" in d.reason
    flat = stats.compare([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert not flat.defined and "no seed-to-seed variation" in stats.decide(flat).reason


def _sides(delta: float, sd: float = 0.01, n: int = 6):
    noise = np.linspace(-1, 1, n) * sd
    return list(1.0 + delta + noise), list(1.0 + noise[::-1])


@pytest.mark.parametrize("test, margin, delta, verdict, sd", [(*case, 0.01)[:5] for case in [
    (SUPERIORITY, None, 0.5, stats.SUPPORTED),
    (SUPERIORITY, None, -0.5, stats.NOT_SUPPORTED),
    (SUPERIORITY, None, 0.0, stats.INCONCLUSIVE),
    (SUPERIORITY, 0.2, 0.0, stats.NO_EFFECT),
    (SUPERIORITY, 0.2, 0.0, stats.INCONCLUSIVE, 0.3),   # noisy: the interval holds 0 and reaches past ±δ
    (SUPERIORITY, 0.2, 0.5, stats.SUPPORTED),
    (NONINFERIORITY, 0.2, -0.1, stats.SUPPORTED),   # worse, but by less than δ
    (NONINFERIORITY, 0.2, -0.5, stats.NOT_SUPPORTED),
    (NONINFERIORITY, 0.2, -0.2, stats.INCONCLUSIVE),
    (EQUIVALENCE, 0.2, 0.05, stats.SUPPORTED),
    (EQUIVALENCE, 0.2, 0.5, stats.NOT_SUPPORTED),
    (EQUIVALENCE, 0.2, -0.5, stats.NOT_SUPPORTED),
    (EQUIVALENCE, 0.2, 0.2, stats.INCONCLUSIVE),
]])
def test_every_branch_of_every_test(test, margin, delta, verdict, sd):
    treatment, baseline = _sides(delta, sd)
    c = stats.compare(treatment, baseline)
    d = stats.decide(c, test, margin)
    assert d.verdict == verdict, (c.diff_low, c.diff_high, d.reason)
    lo, hi = c.diff_low, c.diff_high
    if verdict == stats.SUPPORTED:
        assert (lo > 0) if test == SUPERIORITY else (lo > -margin) if test == NONINFERIORITY else (-margin < lo < hi < margin)
    if verdict == stats.NOT_SUPPORTED:
        assert (hi < 0) if test == SUPERIORITY else (hi < -margin) if test == NONINFERIORITY else (lo > margin or hi < -margin)


def test_p_values_agree_with_the_interval():
    """p for < alpha exactly when the interval supports, p against < alpha exactly when it
    contradicts, twice TOST's p < alpha exactly when it lies inside (−δ, δ): on random data."""
    rng = np.random.default_rng(1)
    margin = 0.3
    for _ in range(300):
        n1, n2 = rng.integers(2, 9, size=2)
        a = rng.normal(rng.normal(0, 0.4), rng.uniform(0.05, 0.5), n1)
        b = rng.normal(0, rng.uniform(0.05, 0.5), n2)
        alpha = float(rng.choice([0.05, 0.025, 0.0167]))
        c = stats.compare(a, b, alpha=alpha)
        lo, hi = c.diff_low, c.diff_high
        sup = stats.decide(c, SUPERIORITY, margin)
        assert (sup.p_support < alpha) == (lo > 0)
        assert (sup.p_against < alpha) == (hi < 0)
        assert (sup.p_inside < alpha) == (-margin < lo and hi < margin)
        ni = stats.decide(c, NONINFERIORITY, margin)
        assert (ni.p_support < alpha) == (lo > -margin) == (ni.verdict == stats.SUPPORTED)
        assert (ni.p_against < alpha) == (hi < -margin) == (ni.verdict == stats.NOT_SUPPORTED)
        eq = stats.decide(c, EQUIVALENCE, margin)
        assert (eq.p_support < alpha) == (eq.verdict == stats.SUPPORTED)
        assert (eq.p_against < alpha) == (eq.verdict == stats.NOT_SUPPORTED)


def test_equivalence_p_is_twice_statsmodels_tost():
    treatment, baseline = _sides(0.05, sd=0.05)
    c = stats.compare(treatment, baseline)
    tost = CompareMeans.from_data(treatment, baseline).ttost_ind(-0.2, 0.2, usevar="unequal")[0]
    assert stats.decide(c, EQUIVALENCE, 0.2).p_support == pytest.approx(min(1.0, 2 * tost))
    ni = CompareMeans.from_data(treatment, baseline).ttest_ind(usevar="unequal", value=-0.2)[1]
    assert stats.decide(c, NONINFERIORITY, 0.2).p_support == pytest.approx(ni)


def test_holm_is_statsmodels_holm():
    p = [0.01, 0.04, 0.03, 0.2]
    assert stats.holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    assert stats.holm([0.01, float("nan")]) == pytest.approx(list(multipletests([0.01, 1.0], method="holm")[1]))
    assert stats.holm([]) == []


def test_combine_is_intersection_union():
    S, N, I, E = stats.SUPPORTED, stats.NOT_SUPPORTED, stats.INCONCLUSIVE, stats.NO_EFFECT
    assert stats.combine([S, S]) == S
    assert stats.combine([S, I]) == I
    assert stats.combine([S, I, N]) == N
    assert stats.combine([S, E]) == N      # no effect is a finding against the claim
    assert stats.combine([]) == I


def test_fmt():
    assert stats.fmt(0.000123) == "1.23e-04" and stats.fmt(12.345) == "12.3" and stats.fmt(float("nan")) == "nan"
    assert stats.ci_label(0.05) == "95%" and stats.ci_label(0.025) == "97.5%"
