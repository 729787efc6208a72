"""The claim schema's vocabulary: tests, goals, transforms, the fields a check may have, and which
way a metric is better. Pure Python."""

from __future__ import annotations

from ablate.report.spec import derived

SUPERIORITY, NONINFERIORITY, EQUIVALENCE = "superiority", "noninferiority", "equivalence"
TESTS = (SUPERIORITY, NONINFERIORITY, EQUIVALENCE)
ON_DIVERGED = ("worst", "chance", "exclude")
STATISTICS = ("sd", "width")
GOALS = ("min", "max")
TRANSFORMS = ("log10",)
REQUIRED = ("metric", "goal", "factor", "treatment", "baseline")
KNOWN_CHECK_KEYS = (
    "name", "clause", "test", "margin", "metric", "goal", "factor", "treatment", "baseline", "where",
    "transform", "tune", "select_on", "fresh_seeds", "on_diverged", "spread", "statistic", "within",
    "metric_goal", "interaction", "event",
)

GOAL_ALIASES = {"min": "min", "minimize": "min", "lower": "min", "max": "max", "maximize": "max", "higher": "max"}
TRANSFORM_ALIASES = {None: None, "": None, "none": None, "log10": "log10", "log": "log10"}


def metric_direction(metric: str, declared: str | None = None) -> str | None:
    """Which way the *metric itself* is better (not the check's statistic): ``max`` for ``*/acc``,
    ``min`` for ``*/loss``, else the check's ``metric_goal``; None when unknown (a derived metric
    such as ``train_eval/acc - test/acc`` has no direction of its own)."""
    if declared:
        return GOAL_ALIASES.get(str(declared).lower())
    if derived.is_derived(metric):
        return None
    tail = str(metric).rsplit("/", 1)[-1]
    if tail == "acc":
        return "max"
    if tail == "loss":
        return "min"
    return None


def chance_applies(metric: str) -> bool:
    """``on_diverged: chance`` has a value only for accuracies (1/classes) and losses (ln classes)."""
    return not derived.is_derived(metric) and str(metric).rsplit("/", 1)[-1] in ("acc", "loss")


def default_select_on(metric: str) -> str:
    """``test/acc`` -> ``val/acc``: a tuned check chooses on validation data and is judged on test data."""
    split, sep, name = str(metric).partition("/")
    return f"val/{name}" if sep else str(metric)
