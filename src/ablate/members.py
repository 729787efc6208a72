"""A job with ``seeds=[...]``: where each seed's record goes, and each member's own logger.

Member ``k`` of a ``seeds=[...]`` job writes its record in the folder a ``seed=k`` job with the same
other overrides would have: in a sweep, ``<sweep dir>/<job id>`` where the job id hashes the
``override_dirname`` Hydra would give that job (the sorted ``key=value`` overrides, ``seeds=...``
replaced by ``seed=k``); in a single run, the same name inside the run's folder. Reports, resume,
``runs.csv`` and W&B therefore see the records of a vectorized job exactly as those of K jobs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

import ablate


def member_dirname(task_overrides: Sequence[str], seed: int, exclude_keys: Sequence[str] = (),
                   item_sep: str = ",", kv_sep: str = "=") -> str:
    """Hydra's ``override_dirname`` of the job that has ``task_overrides`` with ``seeds=...`` (and
    any ``seed=...``) replaced by ``seed=<seed>``: its sorted override lines, ``=`` as ``kv_sep``."""
    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    lines = [o.input_line for o in parsed if o.key_or_group not in ("seed", "seeds", *exclude_keys)]
    if "seed" not in exclude_keys:
        lines.append(f"seed={seed}")
    return re.sub("=", kv_sep, item_sep.join(sorted(lines)))


def member_folders(cfg: DictConfig, seeds: Sequence[int]) -> list[Path]:
    """Where each member's record goes (see the module docstring)."""
    run_dir = Path(cfg.run_dir)
    if not HydraConfig.initialized():          # composed outside a Hydra app (tests, the bench)
        return [run_dir / f"seed={seed}" for seed in seeds]
    hydra = HydraConfig.get()
    dirname = hydra.job.config.override_dirname
    multirun = str(hydra.mode) == "RunMode.MULTIRUN"
    base = Path(hydra.sweep.dir) if multirun else run_dir
    return [base / ablate.job_id(member_dirname(hydra.overrides.task, seed, list(dirname.exclude_keys),
                                                dirname.item_sep, dirname.kv_sep)) for seed in seeds]


class MemberLogging(L.Callback):
    """Each member's own logger (a CSVLogger in its folder, a W&B run of its own, ...): its row of
    the History at every epoch end, its test metrics, as a run of its own would log them (a W&B run
    gets its config when it starts, see ``ablate.run``). The Trainer of a vectorized job has no
    logger of its own; put this after the History."""

    def __init__(self, loggers: Sequence[Any], history):
        self.loggers, self.history = list(loggers), history

    def on_train_epoch_end(self, trainer, pl_module):
        row = self.history.rows[-1]
        for k, logger in enumerate(self.loggers):
            if k in pl_module.diverged:
                continue
            values = {name: (value[k] if isinstance(value, list) else value) for name, value in row.items()
                      if name not in ("epoch", "step")}
            logger.log_metrics({"epoch": row["epoch"], **{n: v for n, v in values.items() if isinstance(v, (int, float))}},
                               step=row["step"])
            logger.save()

    def log_test(self, metrics: Sequence[dict[str, float]], step: int) -> None:
        for logger, values in zip(self.loggers, metrics):
            if values:
                logger.log_metrics(values, step=step)
                logger.save()

    def finalize(self, statuses: Sequence[str]) -> None:
        for logger, status in zip(self.loggers, statuses):
            logger.finalize("success" if status == "ok" else "failed")
