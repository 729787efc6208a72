"""Callbacks every run carries: per-epoch history, divergence detection and throughput."""

from __future__ import annotations

import math
import time

import lightning as L
import torch

from ablate.data.datamodule import BatchGroup


def _scalars(metrics: dict) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[key] = float(value)
        elif isinstance(value, (int, float)):
            out[key] = float(value)
    return out


class History(L.Callback):
    """Keeps one row per epoch of everything logged (train aggregates, validation) and of the probes'
    ``epoch_metrics()``: the source of the run record's ``history`` and final ``metrics``. Put it
    after the probes in the callback list so their epoch-end values are ready."""

    def __init__(self, probes: list | None = None):
        self.probes = probes or []
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer, pl_module):
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step, **_scalars(trainer.callback_metrics)}
        for probe in self.probes:
            if hasattr(probe, "epoch_metrics"):  # optional: any Lightning callback can be a probe
                row.update(probe.epoch_metrics())
        self.rows.append(row)

    def state_dict(self):
        return {"rows": self.rows}

    def load_state_dict(self, state_dict):
        self.rows = list(state_dict.get("rows", []))


class Diverged(RuntimeError):
    """Raised to stop a run whose training loss is no longer finite."""


class Divergence(L.Callback):
    """Stops the run as soon as the training loss is NaN or infinite (checked every ``every_n_steps``
    steps: on a GPU each check waits for the device). The run record then says ``diverged``."""

    def __init__(self, every_n_steps: int = 1):
        self.every_n_steps = every_n_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.every_n_steps > 1 and trainer.global_step % self.every_n_steps:
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        # a scalar loss (the usual case) is read once: ~6x cheaper than isfinite().all() on a CPU
        finite = math.isfinite(loss.item()) if loss.numel() == 1 else bool(torch.isfinite(loss.detach()).all())
        if not finite:
            raise Diverged(f"training loss became {float(loss)} at epoch {trainer.current_epoch}, "
                           f"step {trainer.global_step}")


class Throughput(L.Callback):
    """Training samples per second, validation time excluded."""

    def __init__(self):
        self.samples, self.seconds = 0, 0.0
        self._t = None

    def _start(self):
        self._t = time.perf_counter()

    def _stop(self):
        if self._t is not None:
            self.seconds += time.perf_counter() - self._t
            self._t = None

    def on_train_epoch_start(self, trainer, pl_module):
        self._start()

    def on_validation_start(self, trainer, pl_module):
        self._stop()

    def on_validation_end(self, trainer, pl_module):
        if trainer.training:
            self._start()

    def on_train_epoch_end(self, trainer, pl_module):
        self._stop()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        rows = sum(len(y) for _, y in batch) if isinstance(batch, BatchGroup) else len(batch[1])
        self.samples += rows * trainer.world_size

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else math.nan

    def summary(self) -> dict:
        return {"throughput": {"samples": self.samples, "seconds": self.seconds}}

    # kept in checkpoints, so a resumed run's samples/s covers all of its training
    def state_dict(self) -> dict:
        return {"samples": self.samples, "seconds": self.seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self.samples, self.seconds = state_dict["samples"], state_dict["seconds"]
