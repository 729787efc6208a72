"""ablate.report.judge.power: power for the test each check runs (one-sided at α/2, Welch df;
equivalence as two one-sided tests), at the upper confidence bound of the estimated sd."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.weightstats import CompareMeans

from ablate.report.judge import power
from ablate.report.spec.claim import EQUIVALENCE, NONINFERIORITY


def test_welch_is_statsmodels_welch():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 4), rng.normal(0, 3, 7)
    se, df = power.welch([a.var(ddof=1), b.var(ddof=1)], [4, 7])
    ref = CompareMeans.from_data(a, b)
    assert se == pytest.approx(ref.std_meandiff_separatevar)
    assert df == pytest.approx(ref.ttest_ind(usevar="unequal")[2])
    assert math.isnan(power.welch([1.0, 1.0], [1, 5])[0])


@pytest.mark.parametrize("n, effect", [(3, 2.0), (5, 1.0), (20, 0.5)])
def test_power_is_the_one_sided_t_test_at_half_alpha(n, effect):
    """Equal variances and sides: Welch's df is n1 + n2 − 2 and the power is statsmodels' one-sided
    t-test power at α/2 (the decision is the lower bound of a two-sided (1 − α) interval)."""
    se, df = power.welch([1.0, 1.0], [n, n])
    assert df == pytest.approx(2 * n - 2)
    ref = TTestIndPower().power(effect_size=effect, nobs1=n, ratio=1.0, alpha=0.025, alternative="larger")
    assert power.power(effect, se, df, 0.05) == pytest.approx(ref, abs=1e-8)
    assert power.power(effect, se, df, 0.05, NONINFERIORITY) == pytest.approx(ref, abs=1e-8)


def test_equivalence_power_is_two_one_sided_tests_at_zero():
    se, df = 0.5, 8.0
    crit = st.t.ppf(0.975, df)
    assert power.power(2.0, se, df, 0.05, EQUIVALENCE) == pytest.approx(2 * st.t.cdf(2.0 / se - crit, df) - 1)
    assert power.power(0.5, se, df, 0.05, EQUIVALENCE) == 0.0  # δ inside the interval's half-width: never
    # equivalence needs a larger δ than superiority needs an effect
    assert power.detectable([1.0, 1.0], [5, 5], 0.05, EQUIVALENCE) > power.detectable([1.0, 1.0], [5, 5], 0.05)


def test_detectable_and_seeds_needed_use_the_upper_confidence_bound_of_the_sd():
    variances, ns = [0.04, 0.09], [3, 4]
    se, df = power.welch(variances, ns)
    inflation = power.sd_inflation(df)
    assert inflation == pytest.approx(df / st.chi2.ppf(0.4, df)) and inflation > 1
    d = power.detectable(variances, ns, 0.05)
    assert power.power(d, se * math.sqrt(inflation), df, 0.05) == pytest.approx(power.POWER, abs=1e-6)
    assert power.power(d, se, df, 0.05) > power.POWER  # the plug-in sd would print a smaller effect
    n = power.seeds_needed(0.1, variances, df, 0.05)
    at = lambda k: power.power(0.1, *power.welch([v * inflation for v in variances], [k, k]), 0.05)  # noqa: E731
    assert at(n) >= power.POWER > at(n - 1)
    assert power.seeds_needed(100.0, variances, df, 0.05) == 2
    assert power.seeds_needed(0.0, variances, df, 0.05) is None
    assert power.seeds_needed(0.1, [math.nan, 1.0], df, 0.05) is None
    assert math.isnan(power.detectable(variances, [1, 4], 0.05))
