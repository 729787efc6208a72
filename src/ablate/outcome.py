"""What a fit + test left (:class:`Outcome`), and the run record made of it: one per run, or one per
member of a vectorized job (:func:`make_record`); written by rank 0 only (:func:`write`)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from ablate.members import Member
from ablate.provenance import group_choices, job_overrides, member_overrides, versions
from ablate.results import RECORD_NAME, RunRecord, is_ok, read_record, write_record

if TYPE_CHECKING:
    from ablate.loggers import MemberLogging
    from ablate.module import AblationModule
    from ablate.probes import History, Throughput

log = logging.getLogger("ablate")

OBJECTIVE = ("val/acc", "max")  # what a sweeper (Optuna) optimises; failed or diverged runs get the worst value


def objective(metrics: dict[str, Any]) -> float:
    """A run's value for a sweeper (:data:`OBJECTIVE`)."""
    metric, goal = OBJECTIVE
    value = metrics.get(metric)
    if value is None or not math.isfinite(value):
        return -math.inf if goal == "max" else math.inf
    return float(value)


def finished(run_dir: Path) -> dict[str, Any] | None:
    """The record of a run that already finished (status ok), else None: such runs are not redone."""
    path = run_dir / RECORD_NAME
    if not path.exists():
        return None
    try:
        record = read_record(path)
    except (OSError, ValueError):
        return None
    return record if is_ok(record) else None


@dataclass
class Outcome:
    """What a fit + test left: status, error, test metrics per member, the callbacks that measured."""

    status: str = "ok"
    error: str | None = None
    test: list[dict[str, float]] = field(default_factory=list)
    callbacks: list = field(default_factory=list)
    history: History | None = None
    throughput: Throughput | None = None
    trainer: L.Trainer | None = None
    member_logging: MemberLogging | None = None


def _pick(value: Any, member: int | None) -> Any:
    """Member ``member``'s entry of a per-member list (History rows, probe metrics)."""
    return value[member] if member is not None and isinstance(value, list) else value


def _summaries(callbacks: Sequence, member: int | None) -> dict[str, Any]:
    summaries: dict[str, Any] = {}
    for callback in callbacks:
        if hasattr(callback, "summary"):
            summaries.update(callback.summary(member=member or 0))
    return summaries


def make_record(cfg: DictConfig, outcome: Outcome, module: AblationModule, run_dir: Path, who: Member | int,
                member: int | None, num_classes: int, started: datetime, wall_time_s: float,
                extra: dict | None = None) -> RunRecord:
    """The record of one run (``who`` its seed), or of member ``member`` (``who``) of a vectorized job."""
    seed = who.seed if isinstance(who, Member) else int(who)
    status, error = outcome.status, outcome.error
    stop_epoch = None
    if member is not None and member in module.diverged and status != "failed":
        status, error, stop_epoch = "diverged", module.diverged[member]["error"], module.diverged[member]["epoch"]
    elif member is not None and status == "diverged":
        status = "diverged"
    rows = [{k: _pick(v, member) for k, v in row.items()} for row in outcome.history.rows
            if stop_epoch is None or row["epoch"] < stop_epoch]
    metrics = {**(rows[-1] if rows else {})}
    if status == "ok":
        metrics.update(outcome.test[member or 0] if outcome.test else {})
    metrics.pop("epoch", None), metrics.pop("step", None)
    for callback in outcome.callbacks:
        if hasattr(callback, "final_metrics") and stop_epoch is None:
            metrics.update({k: _pick(v, member) for k, v in callback.final_metrics().items()})
    members = module.members if member is not None else 1
    trainer = outcome.trainer
    per_rank = int(cfg.data.batch_size)
    config = OmegaConf.to_container(cfg, resolve=True)
    record = RunRecord(
        run_id=run_dir.name, status=status, error=error, experiment=cfg.get("experiment"), seed=int(seed),
        overrides=member_overrides(who) if isinstance(who, Member) else job_overrides(),
        choices=group_choices(), config=config,
        claim=OmegaConf.to_container(cfg.claim, resolve=True) if cfg.get("claim") else None,
        metrics=metrics, history=rows, probes=_summaries(outcome.callbacks, member),
        params=sum(p.numel() for p in module.model.parameters()) // members,
        num_classes=int(num_classes),
        wall_time_s=wall_time_s / members, samples_per_s=outcome.throughput.samples_per_s / members,
        epochs_completed=len(rows),
        batch_size={"per_rank": per_rank, "world_size": trainer.world_size,
                    "effective": per_rank * trainer.world_size * trainer.accumulate_grad_batches},
        versions=versions(), threads=torch.get_num_threads(),
        started_at=started.isoformat(timespec="seconds"),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    )
    return record


def write(trainer: L.Trainer, run_dir: Path, record: RunRecord) -> None:
    if trainer.is_global_zero:  # under DDP only rank 0 writes
        write_record(run_dir, record)
        log.info("%s: %s; %s", run_dir, record.status,
                 ", ".join(f"{k}={v:.4g}" for k, v in sorted(record.metrics.items())
                           if k.endswith(("/acc", "/loss")) and isinstance(v, float)))
