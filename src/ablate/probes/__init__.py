"""Lightning callbacks that measure. A probe may expose ``epoch_metrics()`` (scalars for this
epoch's history row), ``final_metrics()`` (merged into the record's ``metrics``) and ``summary()``
(merged into the record's ``probes``, e.g. per-layer profiles)."""

from ablate.probes.gradients import GradFlow, UnitStats, UpdateRatio
from ablate.probes.history import Diverged, Divergence, History, Throughput

__all__ = ["Diverged", "Divergence", "GradFlow", "History", "Throughput", "UnitStats", "UpdateRatio"]
