"""The LightningModule: training logic only. Measuring lives in :mod:`ablate.probes`."""

from __future__ import annotations

import functools
import os
import pickle
import tempfile
from typing import Any, Callable

import lightning as L
import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultMetric
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torchmetrics import Metric

from ablate.data.datamodule import BatchGroup


class MeanValue(Metric):
    """Weighted mean of per-batch values (``update(value, weight)``), summed over ranks under DDP.

    What torchmetrics' ``MeanMetric`` computes, minus its per-call input checks: those cost ~3x this
    update, and its NaN check waits for the GPU at every step. A NaN value makes the mean NaN (it is
    not dropped), so a loss that went NaN shows as NaN.
    """

    full_state_update = False

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.add_state("total", default=torch.zeros(()), dist_reduce_fx="sum")
        self.add_state("weight", default=torch.zeros(()), dist_reduce_fx="sum")

    def update(self, value: torch.Tensor, weight: int | float = 1) -> None:
        self.total.add_(value.detach().to(self.total.dtype) * weight)
        self.weight.add_(weight)

    def _wrap_update(self, update: Callable) -> Callable:
        """torchmetrics' bookkeeping around ``update`` (forget the cached result, count the call), kept
        lean: its own wrapper sets both through ``Module.__setattr__`` and enters a grad-mode context
        at every call, twice this metric's work. The updates detach their inputs: no grad context needed."""
        state = self.__dict__

        @functools.wraps(update)
        def wrapped(*args: Any, **kwargs: Any) -> None:
            state["_computed"] = None
            state["_update_count"] += 1
            update(*args, **kwargs)

        return wrapped

    def compute(self) -> torch.Tensor:
        return self.total / self.weight

    def to(self, *args: Any, **kwargs: Any) -> "MeanValue":
        # Lightning moves a logged metric to the device of its value at every `self.log` of it; the
        # move of a metric already there still walks all its states (~1 ms): skip it
        if len(args) == 1 and not kwargs and isinstance(args[0], (str, torch.device)) \
                and torch.device(args[0]) == self.total.device:
            return self
        return super().to(*args, **kwargs)


class Accuracy(MeanValue):
    """Share of samples whose highest-scoring class is the target: multiclass micro accuracy (what
    ``MulticlassAccuracy(average="micro")`` computes for ``(N, C, ...)`` scores), summed over ranks."""

    def update(self, scores: torch.Tensor, target: torch.Tensor) -> None:  # type: ignore[override]
        self.total.add_((scores.detach().argmax(dim=1) == target).sum())
        self.weight.add_(target.numel())


class _LoggedMetric(_ResultMetric):
    """Lightning's holder of a logged Metric object, minus a cost: at every ``self.log`` of a metric
    Lightning moves its holder to the value's device, walking every attribute of the holder (~0.5 ms
    on a CPU, four times an epoch here) even when nothing is to move. Holding a Metric (not a tensor),
    it has nothing of its own on a device: when the metric is already there, the move is skipped.
    :meth:`AblationModule._step` gives the holders of its own logs this class."""

    def to(self, *args: Any, **kwargs: Any) -> "_ResultMetric":
        value = self.__dict__.get("value")
        if (not self.is_tensor and isinstance(value, Metric) and len(args) == 1 and not kwargs
                and isinstance(args[0], (str, torch.device)) and torch.device(args[0]) == value.device):
            return self
        return super().to(*args, **kwargs)


class AblationModule(L.LightningModule):
    """Wraps any family with a loss, accuracy (torchmetrics, synced under DDP), and the optimizer and
    schedule built from config (``optimizer`` and ``scheduler`` are partials awaiting their inputs).

    ``compile``: ``True`` (or a dict of :func:`torch.compile` options, e.g. ``{"mode": "max-autotune"}``)
    compiles the model in place (``nn.Module.compile``: parameter names and checkpoints unchanged) when
    the trainer sets it up. Worth it on a GPU for the larger families; compiling costs seconds to
    minutes up front, so small CPU runs get slower.

    ``steps_per_call``: optimizer steps per call of :meth:`training_step` (Keras' ``steps_per_execution``).
    The data module hands over that many batches at once (:attr:`train_batches_per_call`) and the step
    takes them one after another: the same batches, in the same order, the same optimizer steps, so
    the same numbers, while Lightning's per-batch loop and hooks (~1 ms, a quarter of a small model's
    step on a CPU) run once per call. ``on_train_batch_start/end`` then see a group of batches;
    ``trainer.global_step`` still counts optimizer steps; the backward/optimizer-step hooks still run
    at every step.
    """

    # hooks inside an optimizer step: when no callback (and not the module) implements one of them, the
    # step skips Lightning's dispatch to them (see `_plain_steps`)
    STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")

    def __init__(self, model: nn.Module, loss: nn.Module, optimizer: Callable, scheduler: Callable | None,
                 num_classes: int, compile: bool | dict = False, steps_per_call: int = 1):
        super().__init__()
        self.model, self.loss = model, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.compile_options = (dict(compile) if isinstance(compile, dict) else {}) if compile else None
        # keyed "<split>_loss" / "<split>_acc" ("train" alone would clash with nn.Module.train)
        self.metrics = nn.ModuleDict()
        for split in ("train", "val", "test"):
            self.metrics[f"{split}_loss"] = MeanValue()
            self.metrics[f"{split}_acc"] = Accuracy()
        self._log_pending: set[str] = set()
        self._force_automatic = False
        self.steps_per_call = int(steps_per_call)
        self._plain = False        # set when training starts: see `_plain_steps`
        self._epoch_steps = 0      # optimizer steps taken in this epoch (schedules count them)

    @property
    def automatic_optimization(self) -> bool:
        """False (the fast path: :meth:`training_step` steps the optimizer itself, through Lightning's
        manual optimization) unless the run needs Lightning's automatic loop: gradient clipping,
        gradient accumulation or a ReduceLROnPlateau schedule, or it was set to True.

        Both do the same ``zero_grad`` → backward → ``step`` with the same hooks for the probes
        (``on_before/after_backward``, ``on_before_optimizer_step``), precision plugin (loss scaling
        for 16-mixed), DDP gradient sync and scheduler steps; the automatic loop's closure and its
        extra hook calls cost ~0.5 ms a step on a CPU, 10-15% of a small model's step.
        """
        trainer = self._trainer
        if getattr(self, "_force_automatic", False) or trainer is None:
            return True
        return bool(trainer.gradient_clip_val) or trainer.accumulate_grad_batches != 1

    @automatic_optimization.setter
    def automatic_optimization(self, automatic: bool) -> None:
        self._force_automatic = bool(automatic)

    @property
    def train_batches_per_call(self) -> int:
        """How many training batches :meth:`training_step` takes per call: ``steps_per_call`` on the
        fast path, 1 on Lightning's automatic loop (one batch, one closure, one step)."""
        return 1 if self.automatic_optimization else max(1, self.steps_per_call)

    def _plain_steps(self) -> bool:
        """Whether an optimizer step can be ``zero_grad`` → ``loss.backward()`` → ``optimizer.step()``
        as written, skipping Lightning's wrappers: true on one device, without loss scaling (``16-mixed``
        needs Lightning's scaler) and when nothing implements a hook inside the step (the gradient probes
        do: then every step goes through Lightning's ``manual_backward`` and optimizer wrapper).
        Dispatching those hooks to every callback costs ~0.2 ms a step on a CPU."""
        trainer = self.trainer
        plugin = trainer.precision_plugin
        plain_precision = (type(plugin) is Precision
                           or (type(plugin) is MixedPrecision and getattr(plugin, "scaler", None) is None))
        listening = any(is_overridden(hook, callback, L.Callback)
                        for callback in trainer.callbacks for hook in self.STEP_HOOKS)
        listening |= any(is_overridden(hook, self, L.LightningModule) for hook in self.STEP_HOOKS)
        return type(trainer.strategy) is SingleDeviceStrategy and plain_precision and not listening

    def on_train_start(self) -> None:
        self._plain = not self.automatic_optimization and self._plain_steps()

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets `_current_fx_name` before and after every hook, ~40 times a training step;
        # nn.Module.__setattr__'s Parameter/Module/buffer checks make that ~5% of a small model's step.
        if name in ("_current_fx_name", "_epoch_steps"):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def configure_model(self) -> None:
        if self.compile_options is not None and not getattr(self.model, "_compiled_call_impl", None):
            self.model.compile(**self.compile_options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch, split: str) -> torch.Tensor:
        x, y = batch
        # a family that decodes a sequence (teacher forcing in training, greedy in eval) reads the targets
        logits = self.model(x, targets=y) if getattr(self.model, "takes_targets", False) else self.model(x)
        loss = self.loss(logits, y)
        # Metric objects are updated every step and computed once per epoch (their compute syncs the
        # ranks under DDP). They are handed to `self.log` once per epoch, at its first step: Lightning
        # keeps the reference and computes, logs and resets the metric when the epoch ends. (Each
        # `self.log` call costs about as much as a small model's whole step.)
        loss_metric, acc_metric = self.metrics[f"{split}_loss"], self.metrics[f"{split}_acc"]
        loss_metric.update(loss, len(y))
        acc_metric.update(logits, y)
        if split in self._log_pending:
            self._log_pending.discard(split)
            self.log(f"{split}/loss", loss_metric, on_step=False, on_epoch=True, prog_bar=split != "test")
            self.log(f"{split}/acc", acc_metric, on_step=False, on_epoch=True, prog_bar=split == "val")
            for holder in self.trainer._results.values():   # the next epochs' logs skip the no-op move
                if type(holder) is _ResultMetric and not holder.is_tensor:
                    holder.__class__ = _LoggedMetric
        return loss

    # each loop's epoch (every validation run included) logs its metric objects at its first step
    def on_train_epoch_start(self) -> None:
        self._log_pending.add("train")
        self._epoch_steps = 0

    def on_validation_epoch_start(self) -> None:
        self._log_pending.add("val")

    def on_test_epoch_start(self) -> None:
        self._log_pending.add("test")

    def training_step(self, batch, batch_idx):
        if self.automatic_optimization:
            return self._step(batch, "train")          # Lightning's loop does backward and step
        batches = batch if isinstance(batch, BatchGroup) else [batch]
        trainer, last_call = self.trainer, self._last_call(batch_idx)
        losses = []
        for i, one in enumerate(batches):
            loss = self._step(one, "train")
            self._optimize(loss)
            self._epoch_steps += 1
            self._step_schedulers(epoch_end=last_call and i == len(batches) - 1)
            losses.append(loss.detach())
            if 0 <= trainer.max_steps <= trainer.global_step:
                break
        # what the callbacks see (Divergence checks it): NaN/inf if any step's loss was
        return losses[0] if len(losses) == 1 else torch.stack(losses).mean()

    def _optimize(self, loss: torch.Tensor) -> None:
        lightning_optimizer = self.optimizers()
        if not self._plain:
            lightning_optimizer.zero_grad()
            self.manual_backward(loss)
            lightning_optimizer.step()
            return
        optimizer = lightning_optimizer.optimizer
        optimizer.zero_grad()
        loss.backward()
        # the callbacks Lightning's manual loop attaches around a step: they count it (global_step)
        lightning_optimizer._on_before_step()
        optimizer.step()
        lightning_optimizer._on_after_step()

    def _last_call(self, batch_idx: int) -> bool:
        trainer = self.trainer
        return bool(trainer.is_last_batch) or batch_idx + 1 >= trainer.num_training_batches

    def _step_schedulers(self, epoch_end: bool) -> None:
        """What Lightning's automatic loop does after each step: step-interval schedules every
        ``frequency`` steps, epoch-interval ones after the epoch's last step."""
        trainer = self.trainer
        for config in trainer.lr_scheduler_configs:
            if config.interval == "step":
                index = self._epoch_steps
            elif config.interval == "epoch" and epoch_end:
                index = trainer.current_epoch + 1
            else:
                continue
            if index % config.frequency == 0:
                self.lr_scheduler_step(config.scheduler, None)

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def _optimizer_steps(self) -> tuple[int, int]:
        """(optimizer steps of the whole fit, per epoch), for schedules that need them (one-cycle,
        cosine). Lightning's estimate counts training_step calls; with ``steps_per_call`` > 1 a call
        takes several steps (the epoch's last call maybe fewer)."""
        trainer = self.trainer
        calls = int(trainer.estimated_stepping_batches)
        k = self.train_batches_per_call
        epochs = max(1, trainer.max_epochs or 1)
        if k == 1:
            return calls, max(1, calls // epochs)
        loader = trainer.train_dataloader
        batches = loader.num_batches() if hasattr(loader, "num_batches") else int(trainer.num_training_batches) * k
        per_epoch = min(batches, int(trainer.num_training_batches) * k)
        total = per_epoch * epochs
        return (min(total, trainer.max_steps) if trainer.max_steps >= 0 else total), per_epoch

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.model.parameters())
        if self.scheduler_factory is None:
            return optimizer
        total, per_epoch = self._optimizer_steps()
        scheduler = self.scheduler_factory(optimizer, total_steps=total, steps_per_epoch=per_epoch)
        if isinstance(scheduler.get("scheduler") if isinstance(scheduler, dict) else scheduler, ReduceLROnPlateau):
            self._force_automatic = True       # stepped on a monitored metric: Lightning's loop does that
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": scheduler}


def keep_callback_state(trainer: L.Trainer) -> L.Trainer:
    """Make rank 0's callback state come back from spawned workers (``strategy=ddp_spawn``, ``ddp_fork``,
    ``ddp_notebook``); a no-op for every other strategy. Returns ``trainer``.

    Under those strategies ``fit`` and ``test`` run in worker processes, and Lightning sends back only
    the weights, the trainer state and ``callback_metrics``: the callbacks of the calling process
    (History, Throughput, the probes: everything the run record is made of) would stay empty.
    """
    launcher = getattr(trainer.strategy, "launcher", None)
    if isinstance(launcher, _MultiProcessingLauncher) and not isinstance(launcher, _CallbackStateLauncher):
        launcher.__class__ = _CallbackStateLauncher
    return trainer


def _is_plain(value: Any) -> bool:
    """Data worth carrying back: not a reference to a callback, module, parameter or trainer, nor a
    function or method (Lightning binds ``callback.log`` to the module's)."""
    if callable(value) or isinstance(value, (L.Callback, nn.Module, nn.Parameter, L.Trainer,
                                             L.LightningDataModule)):
        return False
    if isinstance(value, (list, tuple, set)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_is_plain(k) and _is_plain(v) for k, v in value.items())
    return True


def _callback_state(callback: L.Callback) -> dict[str, Any]:
    state = {}
    for key, value in vars(callback).items():
        if not _is_plain(value):
            continue
        try:
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - locks, file handles, ...: they stay as they are in this process
            continue
        state[key] = value
    return state


class _CallbackStateLauncher(_MultiProcessingLauncher):
    """Lightning's spawn/fork launcher, also carrying each callback's plain attributes from rank 0 back
    to the main process. They travel in a temporary file, as Lightning's weights do: the result queue
    is a pipe that rank 0 fills before the main process reads it, so a payload over the pipe's buffer
    (64 KiB) would deadlock."""

    def get_extra_results(self, trainer: L.Trainer) -> dict[str, Any]:
        extra = super().get_extra_results(trainer)
        fd, path = tempfile.mkstemp(prefix="ablate-callbacks-", suffix=".pkl")
        with os.fdopen(fd, "wb") as f:
            pickle.dump([_callback_state(cb) for cb in trainer.callbacks], f)
        extra["ablate_callback_states"] = path
        return extra

    def update_main_process_results(self, trainer: L.Trainer, extra: dict[str, Any]) -> None:
        super().update_main_process_results(trainer, extra)
        path = extra.get("ablate_callback_states")
        if path is None:
            return
        try:
            with open(path, "rb") as f:
                states = pickle.load(f)  # written just now by our own rank 0
        finally:
            os.unlink(path)
        # the workers' trainer is a pickled copy of this one: same callbacks, same order
        for callback, state in zip(trainer.callbacks, states):
            vars(callback).update(state)
