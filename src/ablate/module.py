"""The LightningModule: training logic only. Measuring lives in :mod:`ablate.probes`."""

from __future__ import annotations

from typing import Callable

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy


class AblationModule(L.LightningModule):
    """Wraps any family with a loss, accuracy (torchmetrics, synced under DDP), and the optimizer and
    schedule built from config (``optimizer`` and ``scheduler`` are partials awaiting their inputs)."""

    def __init__(self, model: nn.Module, loss: nn.Module, optimizer: Callable, scheduler: Callable | None,
                 num_classes: int):
        super().__init__()
        self.model, self.loss = model, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        # keyed "<split>_loss" / "<split>_acc" ("train" alone would clash with nn.Module.train)
        self.metrics = nn.ModuleDict()
        for split in ("train", "val", "test"):
            self.metrics[f"{split}_loss"] = MeanMetric()
            self.metrics[f"{split}_acc"] = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch, split: str) -> torch.Tensor:
        x, y = batch
        logits = self.model(x)
        loss = self.loss(logits, y)
        # Metric objects are updated per step and logged once per epoch (their compute syncs ranks).
        loss_metric, acc_metric = self.metrics[f"{split}_loss"], self.metrics[f"{split}_acc"]
        loss_metric.update(loss.detach(), len(y))
        acc_metric.update(logits.detach(), y)
        self.log(f"{split}/loss", loss_metric, on_step=False, on_epoch=True, prog_bar=split != "test")
        self.log(f"{split}/acc", acc_metric, on_step=False, on_epoch=True, prog_bar=split == "val")
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.model.parameters())
        if self.scheduler_factory is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        scheduler = self.scheduler_factory(optimizer, total_steps=total, steps_per_epoch=per_epoch)
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": scheduler}
