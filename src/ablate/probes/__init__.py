"""Lightning callbacks that measure. Each may expose ``summary() -> dict`` (merged into the run
record's ``probes``) and ``final_metrics() -> dict`` (merged into the record's ``metrics``)."""

from ablate.probes.history import Diverged, Divergence, History, Throughput

__all__ = ["Diverged", "Divergence", "History", "Throughput"]
