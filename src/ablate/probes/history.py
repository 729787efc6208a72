"""Callbacks every run carries: the per-epoch history the run record is made of, and throughput."""

from __future__ import annotations

import math
import time

import lightning as L
import torch

from ablate.data.datamodule import batch_rows


def _scalars(metrics: dict) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[key] = float(value)
        elif isinstance(value, (int, float)):
            out[key] = float(value)
    return out


class History(L.Callback):
    """One row per epoch: everything logged (``trainer.callback_metrics``), the module's own
    per-epoch metrics (``pl_module.epoch_values``: one value per member of a vectorized run, as a
    list) and the probes' ``epoch_metrics()``. The source of the run record's ``history`` and final
    ``metrics``. Put it after the probes in the callback list so their epoch-end values are ready."""

    def __init__(self, probes: list | None = None):
        self.probes = probes or []
        self.rows: list[dict] = []

    def on_train_epoch_end(self, trainer, pl_module):
        row: dict = {"epoch": trainer.current_epoch, "step": trainer.global_step, **_scalars(trainer.callback_metrics)}
        if hasattr(pl_module, "epoch_values"):
            stacked = getattr(pl_module, "stacked", False)
            for split in ("train", "val"):
                for name, value in pl_module.epoch_values(split).items():
                    values = value.reshape(-1).tolist()
                    row[name] = values if stacked else values[0]
        for probe in self.probes:
            if hasattr(probe, "epoch_metrics"):  # optional: any Lightning callback can be a probe
                row.update(probe.epoch_metrics())
        self.rows.append(row)

    def state_dict(self):
        return {"rows": self.rows}

    def load_state_dict(self, state_dict):
        self.rows = list(state_dict.get("rows", []))


class Throughput(L.Callback):
    """Training samples per second (of every member, for a vectorized run), validation time excluded."""

    def __init__(self):
        self.samples, self.seconds = 0, 0.0
        self.epoch_seconds: list[float] = []     # training seconds so far, at each epoch's end
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
        self.epoch_seconds.append(self.seconds)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.samples += batch_rows(batch) * trainer.world_size

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else math.nan

    def summary(self, member: int = 0) -> dict:
        return {"throughput": {"samples": self.samples, "seconds": self.seconds, "epoch_seconds": self.epoch_seconds}}

    # kept in checkpoints, so a resumed run's samples/s covers all of its training
    def state_dict(self) -> dict:
        return {"samples": self.samples, "seconds": self.seconds, "epoch_seconds": self.epoch_seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self.samples, self.seconds = state_dict["samples"], state_dict["seconds"]
        self.epoch_seconds = list(state_dict.get("epoch_seconds", []))


class Speed(Throughput):
    """:class:`Throughput` as metrics a check can compare (a probe, off unless configured): when training
    ends, ``speed/samples_per_s`` (one member's training samples per second of training, validation
    excluded: the record's ``samples_per_s``), ``speed/epoch_s`` (training seconds per epoch) and
    ``speed/step_ms`` (training milliseconds per optimizer step). A vectorized job's members share its
    time, so each gets the job's values. Wall-clock numbers: they depend on the hardware and its load."""

    batch_groups_ok = True      # counts the rows of a group of batches (steps_per_call) as well

    def __init__(self):
        super().__init__()
        self.members, self.steps = 1, 0

    def on_fit_start(self, trainer, pl_module):
        self.members = int(getattr(pl_module, "members", 1) or 1)

    def on_train_end(self, trainer, pl_module):
        self.steps = int(trainer.global_step)

    def final_metrics(self) -> dict:
        if self.seconds <= 0 or not self.epoch_seconds:
            return {}
        out = {"speed/samples_per_s": self.samples / self.members / self.seconds,
               "speed/epoch_s": self.seconds / len(self.epoch_seconds)}
        if self.steps:
            out["speed/step_ms"] = 1000.0 * self.seconds / self.steps
        return out
