"""The LightningModule: training logic only. Measuring lives in :mod:`ablate.probes`, the metric
objects in :mod:`ablate.metrics`, stacking K seeds into one model in :mod:`ablate.vectorize`."""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

import lightning as L
import torch
from torch import nn
from torch.func import vmap

from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden

from ablate.data.datamodule import BatchGroup
from ablate.metrics import MemberAccuracy, MemberMean
from ablate.optim import MemberRates
from ablate.vectorize import Stacked

SPLITS = ("train", "val", "test")
# hooks inside an optimizer step: when no callback (nor the module) implements one, a step of the
# fast path skips Lightning's dispatch to them (see `AblationModule._plain_steps`)
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")


class Diverged(RuntimeError):
    """Raised to stop a run whose training loss is no longer finite (every member's, when vectorized)."""


class AblationModule(L.LightningModule):
    """Wraps any family with a loss, loss and accuracy metrics (summed over ranks under DDP), and the
    optimizer and schedule built from config (``optimizer`` and ``scheduler`` are partials awaiting
    their inputs).

    ``model`` is a family, or a :class:`~ablate.vectorize.Stacked` of K copies (K seeds trained as
    one model): then every training batch is ``(K, N, ...)``, one per member, evaluation batches
    are shared, the members' losses are summed (each member's gradient is its own), and every metric
    has one value per member. A member whose training loss goes NaN/inf is recorded as diverged
    (:attr:`diverged`) and left out of the loss while the others go on; when no member is left the
    run stops with :class:`Diverged`.

    ``steps_per_call``: optimizer steps per call of :meth:`training_step` (Keras'
    ``steps_per_execution``). The data module is built with the same value (``ablate.run.build``) and
    hands over that many batches at once (a :class:`~ablate.data.BatchGroup`); the step takes them one
    after another with Lightning's manual optimization: the same batches, in the same order, the same
    optimizer steps, so the same numbers, while Lightning's per-batch loop (~1 ms, a quarter of a small
    model's step on a CPU) runs once per call. ``on_train_batch_start/end`` hooks then see groups
    (``ablate.run`` warns about other callbacks that implement them); ``trainer.global_step`` still
    counts optimizer steps. ``steps_per_call=1`` is Lightning's automatic optimization, which gradient
    clipping and accumulation need.

    ``compile``: ``True`` (or a dict of :func:`torch.compile` options) compiles the model in place
    (``nn.Module.compile``: parameter names and checkpoints unchanged) when the trainer sets it up.
    """

    def __init__(self, model: nn.Module, loss: nn.Module, optimizer: Callable, scheduler: Callable | None,
                 compile: bool | dict = False, steps_per_call: int = 1, sequence_targets: bool = False,
                 member_rates: list[float] | None = None, member_decays: list[float] | None = None):
        super().__init__()
        self.model, self.loss = model, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        # a vectorized job whose members learn at their own rates / decays (ablate.optim.MemberRates)
        self.member_rates, self.member_decays = member_rates, member_decays
        self.compile_options = (dict(compile) if isinstance(compile, dict) else {}) if compile else None
        self.stacked = isinstance(model, Stacked)
        self.members = model.members if self.stacked else 1
        self.takes_targets = bool(getattr(model, "takes_targets", False))
        self.member_loss = member_loss(loss) if self.stacked else None
        self.steps_per_call = max(1, int(steps_per_call))
        self.automatic_optimization = self.steps_per_call == 1
        # keyed "<split>_<name>" ("train" alone would clash with nn.Module.train)
        self.metrics = nn.ModuleDict()
        for split in SPLITS:
            self.metrics[f"{split}_loss"] = MemberMean(self.members)
            self.metrics[f"{split}_acc"] = MemberAccuracy(self.members, member_dim=self.stacked)
            if sequence_targets:   # (N, L) targets: also the share of sequences right at every position
                self.metrics[f"{split}_seq_acc"] = MemberAccuracy(self.members, member_dim=self.stacked,
                                                                  whole_sequence=True)
        # the same objects by split, for the step (a plain dict: ModuleDict lookups cost ~µs each)
        self._split_metrics = {split: [m for k, m in self.metrics.items() if k.startswith(f"{split}_")]
                               for split in SPLITS}
        self.alive = torch.ones(self.members, dtype=torch.bool)
        self.diverged: dict[int, dict] = {}     # member -> {"epoch", "step", "error"}: why it stopped
        self._epoch_values: dict[str, dict[str, torch.Tensor]] = {}
        self.last_call_losses: torch.Tensor | None = None   # the last training_step call's losses, (steps, K)
        self._epoch_steps = 0                   # optimizer steps taken in this epoch (schedules count them)
        self._plain = False                     # set when training starts: see `_plain_steps`
        self._step_schedules = False            # set when training starts: any schedule stepped per step
        self._monitors: dict[int, str | None] = {}   # id(schedule) -> the metric it steps on

    def _plain_steps(self) -> bool:
        """Whether a fast-path step can be ``zero_grad`` → ``backward()`` → ``optimizer.step()`` as
        written: on one device, without loss scaling (``16-mixed``), and when nothing implements a hook
        inside the step (the gradient probes do: then every step goes through Lightning's
        ``manual_backward`` and optimizer wrapper, which dispatch those hooks to every callback)."""
        trainer = self.trainer
        listening = any(is_overridden(hook, callback, L.Callback) for callback in trainer.callbacks for hook in STEP_HOOKS)
        listening |= any(is_overridden(hook, self, L.LightningModule) for hook in STEP_HOOKS)
        return (isinstance(trainer.strategy, SingleDeviceStrategy) and str(trainer.precision) != "16-mixed"
                and not listening)

    def on_train_start(self) -> None:
        self._plain = not self.automatic_optimization and self._plain_steps()
        self._step_schedules = any(c.interval == "step" for c in self.trainer.lr_scheduler_configs)

    def _optimize(self, objective: torch.Tensor) -> None:
        lightning_optimizer = self.optimizers()
        if not self._plain:
            lightning_optimizer.zero_grad()
            self.manual_backward(objective)
            lightning_optimizer.step()
            return
        optimizer = lightning_optimizer.optimizer
        optimizer.zero_grad()
        objective.backward()
        # PRIVATE (lightning==2.6.6, pinned): the two callbacks Lightning's manual loop attaches to its
        # optimizer wrapper to count a step (trainer.global_step). Going through the wrapper's public
        # step() instead dispatches the step hooks to every callback: the bench's ratio 1.13 -> 1.22
        # (2026-12-03, 3 lockstep repeats). tests/test_module.py fails loudly if they change.
        lightning_optimizer._on_before_step()
        optimizer.step()
        lightning_optimizer._on_after_step()

    def configure_model(self) -> None:
        if self.compile_options is not None and not getattr(self.model, "_compiled_call_impl", None):
            self.model.compile(**self.compile_options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, shared=True) if self.stacked else self.model(x)

    # ------------------------------------------------------------------------------------------
    # one batch

    def _step(self, batch, split: str) -> torch.Tensor:
        """Forward, per-member losses ``(K,)`` (a scalar for one unstacked model), metric updates."""
        x, y = batch
        targets = y if self.takes_targets else None
        if self.stacked:
            shared = split != "train"             # evaluation: every member reads the same batch
            logits = self.model(x, targets, shared=shared)
            if shared:
                y = y.expand(self.members, *y.shape)
            losses, samples = self.member_loss(logits, y), y.shape[1]
        else:
            logits = self.model(x, targets=targets) if self.takes_targets else self.model(x)
            losses, samples = self.loss(logits, y), y.shape[0]
        loss_metric, *accuracies = self._split_metrics[split]
        loss_metric.update(losses, samples)
        for accuracy in accuracies:
            accuracy.update(logits, y)
        return losses

    def _objective(self, losses: torch.Tensor) -> torch.Tensor:
        """The loss to differentiate: the members' sum (each gradient is its member's own), without
        the members that diverged (their NaN stays in their own parameters)."""
        if not self.stacked:
            return losses
        alive = self.alive.to(losses.device)
        return torch.where(alive, losses, torch.zeros_like(losses)).sum()

    def training_step(self, batch, batch_idx):
        if self.automatic_optimization:            # Lightning's loop does backward and step
            losses = self._step(batch, "train")
            self.last_call_losses = losses.detach().reshape(1, -1)
            self._check_finite(self.last_call_losses)
            return self._objective(losses)
        trainer = self.trainer
        step_schedules, max_steps = self._step_schedules, trainer.max_steps
        steps = []
        for one in (batch if isinstance(batch, BatchGroup) else [batch]):
            losses = self._step(one, "train")
            self._optimize(self._objective(losses))
            self._epoch_steps += 1
            if step_schedules:
                self._step_schedulers("step")
            steps.append(losses.detach())
            if 0 <= max_steps <= trainer.global_step:
                break
        per_step = torch.stack(steps)
        self.last_call_losses = per_step           # (steps, K): what per-step probes (EarlySpike) read
        self._check_finite(per_step)
        return per_step.mean(dim=0).sum()          # what a callback sees as this call's loss

    def _check_finite(self, losses: torch.Tensor) -> None:
        """Record the members whose loss (``(steps, K)`` or ``(steps,)``) stopped being finite; stop
        the run when none is left. One device sync per call."""
        finite = torch.isfinite(losses.reshape(len(losses), -1)).all(dim=0).cpu()
        if bool(finite.all()):
            return
        trainer = self.trainer
        for member in torch.nonzero(self.alive & ~finite).flatten().tolist():
            bad = losses.reshape(len(losses), -1)[:, member]
            value = float(bad[~torch.isfinite(bad)][0])
            self.diverged[member] = {"epoch": trainer.current_epoch, "step": trainer.global_step,
                                     "error": f"training loss became {value} at epoch {trainer.current_epoch}, "
                                              f"step {trainer.global_step}"}
        self.alive &= finite
        if not bool(self.alive.any()):
            errors = {k: v["error"] for k, v in sorted(self.diverged.items())}
            raise Diverged(errors[0] if self.members == 1 else
                           "every member diverged: " + "; ".join(f"member {k}: {v}" for k, v in errors.items()))

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    # ------------------------------------------------------------------------------------------
    # epochs: metrics are computed once per epoch (their compute syncs the ranks under DDP)

    def epoch_values(self, split: str) -> dict[str, torch.Tensor]:
        """This epoch's ``{"<split>/loss": (K,), "<split>/acc": (K,), ...}``, computed once (on the
        first call: the History callback calls it before this module's own epoch-end hooks)."""
        if split not in self._epoch_values:
            values = {}
            for key, metric in self.metrics.items():
                prefix, _, name = key.partition("_")
                if prefix == split and metric.update_count:
                    values[f"{split}/{name}"] = metric.compute().reshape(-1)   # (K,): torchmetrics squeezes K=1
            self._epoch_values[split] = values
        return self._epoch_values[split]

    def _log_epoch(self, split: str) -> None:
        """Hand the epoch's values to Lightning (progress bar, loggers, monitored metrics): a plain
        run's own values; a vectorized run's mean over the members still training."""
        alive = self.alive.to(self.device)
        for name, value in self.epoch_values(split).items():
            scalar = value[0] if not self.stacked else value[alive].mean() if bool(alive.any()) else value.mean()
            self.log(name, scalar.float(), prog_bar=name in ("train/loss", "val/acc"))

    def _start_epoch(self, split: str) -> None:
        self._epoch_values.pop(split, None)
        for key, metric in self.metrics.items():
            if key.startswith(f"{split}_"):
                metric.reset()

    def on_train_epoch_start(self) -> None:
        self._start_epoch("train")
        self._epoch_steps = 0

    def on_validation_epoch_start(self) -> None:
        self._start_epoch("val")

    def on_test_epoch_start(self) -> None:
        self._start_epoch("test")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")
        if not self.automatic_optimization:
            self._step_schedulers("epoch")         # after validation, as Lightning's own loop does

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    # ------------------------------------------------------------------------------------------
    # optimizer and schedule

    def _step_schedulers(self, interval: str) -> None:
        """What Lightning's automatic loop does: step-interval schedules every ``frequency`` steps,
        epoch-interval ones once the epoch (and its validation) is over, with their monitored metric."""
        trainer = self.trainer
        for config in trainer.lr_scheduler_configs:
            if config.interval != interval:
                continue
            index = self._epoch_steps if interval == "step" else trainer.current_epoch + 1
            if index % config.frequency:
                continue
            metric = None
            monitor = self._monitors.get(id(config.scheduler))
            if monitor:
                metric = trainer.callback_metrics.get(monitor)
                if metric is None:
                    raise RuntimeError(f"the schedule monitors {monitor!r}, which was not logged this "
                                       f"epoch; logged: {', '.join(sorted(trainer.callback_metrics))}")
            self.lr_scheduler_step(config.scheduler, metric)

    def _optimizer_steps(self) -> tuple[int, int]:
        """(optimizer steps of the whole fit, per epoch), for schedules that need them (one-cycle,
        cosine). Lightning's estimate counts training_step calls; with ``steps_per_call`` > 1 a call
        takes several steps (the epoch's last call maybe fewer): ablate's loader says how many
        batches an epoch has (``num_batches()``)."""
        trainer = self.trainer
        calls = int(trainer.estimated_stepping_batches)
        epochs = max(1, trainer.max_epochs or 1)
        if self.steps_per_call == 1:
            return calls, max(1, calls // epochs)
        loader = trainer.train_dataloader
        batches = loader.num_batches() if hasattr(loader, "num_batches") else int(trainer.num_training_batches) * self.steps_per_call
        per_epoch = min(batches, int(trainer.num_training_batches) * self.steps_per_call)
        total = per_epoch * epochs
        return (min(total, trainer.max_steps) if trainer.max_steps >= 0 else total), per_epoch

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.model.parameters())
        if self.member_rates is not None:
            MemberRates(optimizer, self.member_rates, self.member_decays)
        if self.scheduler_factory is None:
            return optimizer
        total, per_epoch = self._optimizer_steps()
        scheduler = self.scheduler_factory(optimizer, total_steps=total, steps_per_epoch=per_epoch)
        # Lightning drops a schedule's `monitor` under manual optimization (the fast path steps the
        # schedules itself, see `_step_schedulers`): keep it
        self._monitors = {id(scheduler["scheduler"]): scheduler.get("monitor")} if isinstance(scheduler, dict) else {}
        if scheduler is not None and not self.automatic_optimization and isinstance(scheduler, dict):
            scheduler = {k: v for k, v in scheduler.items() if k != "monitor"}
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": scheduler}

    # ------------------------------------------------------------------------------------------
    # checkpoints: which members are still training travels with the weights

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["ablate_members"] = {"alive": self.alive.tolist(), "diverged": dict(self.diverged)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("ablate_members")
        if state:
            self.alive = torch.tensor(state["alive"], dtype=torch.bool)
            self.diverged = {int(k): v for k, v in state["diverged"].items()}


def member_loss(loss: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(logits (K, N, C, ...), targets (K, N, ...)) -> (K,)``: each member's own mean loss.

    A torch loss with ``reduction="mean"`` and no class weights is computed once over all members'
    samples with ``reduction="none"`` and averaged per member (vmap would run cross-entropy through
    its slower decomposition); any other loss module is vmapped."""
    if getattr(loss, "reduction", None) == "mean" and getattr(loss, "weight", None) is None:
        per_sample = copy.copy(loss)
        per_sample.reduction = "none"

        def fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            values = per_sample(logits.flatten(0, 1), target.flatten(0, 1))
            return values.reshape(len(logits), -1).mean(dim=1)
        return fn
    return vmap(loss)
