"""Lightning callbacks that measure. A probe may expose ``epoch_metrics()`` (scalars for this
epoch's history row), ``final_metrics()`` (merged into the record's ``metrics``) and
``summary(member=0)`` (merged into the record's ``probes``, e.g. per-layer profiles). In a vectorized
run (K seeds stacked into one model) the values of ``epoch_metrics``/``final_metrics`` are lists of K
(one per member) and ``summary`` is asked once per member."""

from ablate.probes.gradients import GradFlow, UnitStats, UpdateRatio
from ablate.probes.history import History, Speed, Throughput
from ablate.probes.training import (
    ActivationScale, BatchStatsAccuracy, Convergence, EarlySpike, EvalTrainAccuracy, ShiftedAccuracy, TimeGradient,
)

__all__ = ["ActivationScale", "BatchStatsAccuracy", "Convergence", "EarlySpike", "EvalTrainAccuracy", "GradFlow",
           "History", "ShiftedAccuracy", "Speed", "Throughput", "TimeGradient", "UnitStats", "UpdateRatio"]
