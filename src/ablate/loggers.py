"""A run's logger (``cfg.logger``: CSV, TensorBoard, W&B, or none) and, in a vectorized job, each
member's own (:class:`MemberLogging`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from ablate.provenance import multirun


def _wandb(cfg: DictConfig) -> bool:
    return bool(cfg.get("logger")) and issubclass(get_class(cfg.logger.get("_target_", "builtins.object")),
                                                  WandbLogger)


def make_logger(cfg: DictConfig, run_dir: Path, **extra):
    """The logger of the run in ``run_dir`` (None for ``logger=none``): a W&B run is grouped by
    experiment (and sweep), tagged, named after the run folder and given the resolved config."""
    if not cfg.get("logger") or "_target_" not in cfg.logger:
        return None
    if _wandb(cfg):
        experiment = cfg.get("experiment") or "ablate"
        sweep = HydraConfig.get().sweep.dir if HydraConfig.initialized() else None
        if cfg.logger.get("group") is None:
            extra["group"] = f"{experiment}-{Path(sweep).name}" if sweep and multirun() else experiment
        extra["tags"] = [*cfg.logger.get("tags", []), experiment]
        extra["name"] = run_dir.name
        extra["config"] = OmegaConf.to_container(cfg, resolve=True)
    if "save_dir" in cfg.logger:
        extra["save_dir"] = str(run_dir)
    # a partial, then called: `config` (W&B's run config) is also the name of instantiate's own argument
    return instantiate(cfg.logger, _partial_=True)(**extra)


def member_logger(cfg: DictConfig, run_dir: Path):
    """A member's own logger: :func:`make_logger`, with a W&B run per member, several in one process."""
    return make_logger(cfg, run_dir, **({"reinit": "create_new"} if _wandb(cfg) else {}))


def wandb_info(logger) -> dict | None:
    """Where a run's W&B run is, for its record (None without W&B)."""
    if isinstance(logger, WandbLogger):
        run = logger.experiment
        return {"project": run.project, "entity": run.entity, "group": run.group, "id": run.id}
    return None


class MemberLogging(L.Callback):
    """Each member's own logger (a CSVLogger in its folder, a W&B run of its own, ...): its row of
    the History at every epoch end, its test metrics, as a run of its own would log them (a W&B run
    gets its config when it starts, :func:`make_logger`). The Trainer of a vectorized job has no
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
