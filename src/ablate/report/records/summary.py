"""Summaries of seed values: the mean with its t interval, and how numbers print.

Used by the tables (records) and by the judging stage (:mod:`ablate.report.judge.stats`, which
re-exports them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from scipy import stats as st

CONFIDENCE = 0.95


def fmt(x: float | None, sig: int = 3) -> str:
    """``sig`` significant digits, plain notation for everyday magnitudes, scientific otherwise."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    a = abs(x)
    if a == 0:
        return "0"
    if 1e-3 <= a < 1e5:
        decimals = max(0, sig - 1 - math.floor(math.log10(a)))
        return f"{x:.{decimals}f}"
    return f"{x:.{sig - 1}e}"


def ci_label(alpha: float) -> str:
    """``95%`` for alpha 0.05, ``97.5%`` for 0.025."""
    return f"{100 * (1 - alpha):.3g}%"


def finite(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values if v is not None], dtype=float)
    return arr[np.isfinite(arr)]


@dataclass(frozen=True)
class Summary:
    """Mean of ``n`` finite values with the t-distribution confidence interval of the mean."""

    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); NaN when n < 2
    sem: float
    ci_low: float
    ci_high: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def summarize(values: Iterable[float], confidence: float = CONFIDENCE) -> Summary:
    """``mean ± t_{(1+c)/2, n-1} * s / sqrt(n)`` (``scipy.stats.t.interval``); NaN/inf values are
    dropped first."""
    arr = finite(values)
    n = int(arr.size)
    nan = float("nan")
    if n == 0:
        return Summary(0, nan, nan, nan, nan, nan)
    mean = float(arr.mean())
    if n == 1:
        return Summary(1, mean, nan, nan, nan, nan)
    std = float(arr.std(ddof=1))
    sem = std / math.sqrt(n)
    if sem == 0:
        return Summary(n, mean, std, sem, mean, mean)
    low, high = st.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return Summary(n, mean, std, sem, float(low), float(high))
