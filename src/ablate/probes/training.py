"""Probes of how training went and what the trained model does, beyond loss and accuracy: how fast
the loss fell, early loss spikes, accuracy on the training set in eval mode, BatchNorm's train-mode
vs eval-mode accuracy, accuracy on shifted inputs, gradients through time, activation scale at
initialisation. Each is a Lightning callback switched on by config (``conf/probes/``), and every
value is per member for a vectorized run (a list of K), a float otherwise."""

from __future__ import annotations

import math
from typing import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn


def _stacked(pl_module) -> bool:
    return bool(getattr(pl_module, "stacked", False))


def _out(values: torch.Tensor, stacked: bool):
    values = values.reshape(-1).tolist()
    return values if stacked else values[0]


def _family(pl_module) -> nn.Module:
    return pl_module.model.net if _stacked(pl_module) else pl_module.model


@torch.no_grad()
def _logits(pl_module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """``(K, N, C, ...)`` scores of every member for the shared inputs ``x`` (K = 1 unstacked)."""
    outs = []
    for start in range(0, len(x), batch_size):
        out = pl_module(x[start : start + batch_size].to(pl_module.device))
        outs.append(out if _stacked(pl_module) else out.unsqueeze(0))
    return torch.cat(outs, dim=1)


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per member: share of right predictions (every position of a sequence output)."""
    right = logits.argmax(dim=2) == y.to(logits.device)
    return right.flatten(1).float().mean(dim=1)


def _eval(pl_module):
    """Context: the module in eval mode, restored afterwards."""
    class _Ctx:
        def __enter__(self):
            self.was = pl_module.training
            pl_module.eval()

        def __exit__(self, *exc):
            pl_module.train(self.was)
    return _Ctx()


class Convergence(L.Callback):
    """How fast the training loss fell: ``train/loss_auc``, the mean of the per-epoch training loss
    over the run (the area under its curve, per epoch: lower converged faster), and with ``target``,
    ``train/epochs_to_target``: the first epoch (1-based) whose training loss is at or below it
    (``max_epochs + 1`` when never reached: a censored value, counted as the slowest)."""

    def __init__(self, target: float | None = None):
        self.target = target
        self.losses: list[list[float]] = []        # [epoch][member]

    def on_train_epoch_end(self, trainer, pl_module):
        value = pl_module.epoch_values("train").get("train/loss")
        if value is not None:
            self.losses.append(value.reshape(-1).tolist())
        self._stacked = _stacked(pl_module)
        self._max_epochs = trainer.max_epochs

    def final_metrics(self) -> dict:
        if not self.losses:
            return {}
        losses = torch.tensor(self.losses, dtype=torch.float64)   # (epochs, K)
        out = {"train/loss_auc": _out(losses.mean(dim=0), self._stacked)}
        if self.target is not None:
            reached = losses <= self.target
            first = torch.where(reached.any(dim=0), reached.float().argmax(dim=0) + 1.0,
                                torch.full_like(losses[0], float(self._max_epochs + 1)))
            out["train/epochs_to_target"] = _out(first, self._stacked)
        return out

    def state_dict(self) -> dict:
        return {"losses": self.losses}

    def load_state_dict(self, state_dict: dict) -> None:
        self.losses = state_dict["losses"]


class EarlySpike(L.Callback):
    """The largest training loss of the first ``steps`` optimizer steps relative to the first step's:
    ``train/early_spike`` (1 = the loss never rose above where it started; warmup is meant to remove
    spikes above 1 at high learning rates). Reads every step of a call (``steps_per_call``)."""

    batch_groups_ok = True

    def __init__(self, steps: int = 100):
        self.steps = steps
        self.first: list[float] | None = None
        self.peak: list[float] | None = None
        self.seen = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.seen >= self.steps:
            return
        losses = getattr(pl_module, "last_call_losses", None)     # (steps of this call, K)
        if losses is None:
            return
        losses = losses[: self.steps - self.seen].detach().double().cpu()
        losses = torch.nan_to_num(losses, nan=math.inf)
        if self.first is None:
            self.first = losses[0].tolist()
            self.peak = losses[0].tolist()
        self.peak = torch.maximum(torch.tensor(self.peak, dtype=torch.float64), losses.max(dim=0).values).tolist()
        self.seen += len(losses)
        self._stacked = _stacked(pl_module)

    def final_metrics(self) -> dict:
        if self.first is None:
            return {}
        ratio = torch.tensor(self.peak) / torch.tensor(self.first).clamp_min(1e-12)
        return {"train/early_spike": _out(ratio, self._stacked)}

    def state_dict(self) -> dict:
        return {"first": self.first, "peak": self.peak, "seen": self.seen}

    def load_state_dict(self, state_dict: dict) -> None:
        self.first, self.peak, self.seen = state_dict["first"], state_dict["peak"], state_dict["seen"]


class EvalTrainAccuracy(L.Callback):
    """Loss and accuracy on (up to ``max_samples`` of) the training set in **eval mode** (dropout off,
    BatchNorm on its running statistics) when training ends: ``train_eval/acc``, ``train_eval/loss``.
    The logged ``train/acc`` is measured during training, with dropout on: the generalisation gap is
    ``train_eval/acc − test/acc``."""

    def __init__(self, max_samples: int = 2000):
        self.max_samples = max_samples
        self.values: dict = {}

    def on_train_end(self, trainer, pl_module):
        x, y = trainer.datamodule.splits["train"]
        x, y = x[: self.max_samples], y[: self.max_samples]
        with _eval(pl_module):
            logits = _logits(pl_module, x)
        stacked = _stacked(pl_module)
        y = y.to(logits.device)
        targets = y.expand(logits.shape[0], *y.shape)
        losses = torch.stack([F.cross_entropy(logits[k], targets[k]) for k in range(len(logits))])
        self.values = {"train_eval/acc": _out(_accuracy(logits, y), stacked),
                       "train_eval/loss": _out(losses, stacked)}

    def final_metrics(self) -> dict:
        return dict(self.values)


class BatchStatsAccuracy(L.Callback):
    """Validation accuracy with the norm layers in **train mode** (BatchNorm normalising each batch
    by its own statistics, at the training batch size; everything else in eval mode; running
    statistics left untouched) at every epoch end: ``val/acc_batch_stats``. Beside ``val/acc``
    (running statistics) it shows whether a small-batch BatchNorm fails in training or only at
    evaluation (running statistics estimated from batches of two are noise)."""

    NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)

    def __init__(self):
        self.epoch: dict = {}

    def on_train_epoch_end(self, trainer, pl_module):
        family = _family(pl_module)
        norms = [m for m in family.modules() if isinstance(m, self.NORMS)]
        if not norms:
            return
        x, y = trainer.datamodule.splits["val"]
        batch = min(int(trainer.datamodule.batch_size), len(x))
        saved = {k: v.clone() for k, v in family.named_buffers()}
        with _eval(pl_module):
            for m in norms:
                m.train()
            n = (len(x) // batch) * batch             # whole batches only: BN needs >= 2 samples a batch
            logits = _logits(pl_module, x[:n], batch_size=batch)
        with torch.no_grad():
            for k, v in family.named_buffers():
                v.copy_(saved[k])
        self.epoch = {"val/acc_batch_stats": _out(_accuracy(logits, y[:n]), _stacked(pl_module))}

    def epoch_metrics(self) -> dict:
        return dict(self.epoch)

    def final_metrics(self) -> dict:
        return dict(self.epoch)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epoch = state_dict["epoch"]


class ShiftedAccuracy(L.Callback):
    """Test accuracy when every input is shifted by ``k`` samples along its last axis (circularly),
    for each ``k`` in ``shifts``, once training ends: ``test/acc_shift<k>``. Against ``test/acc`` it
    shows how much a shift of the input costs the model (translation robustness)."""

    def __init__(self, shifts: Sequence[int] = (1, 2, 4, 8)):
        self.shifts = [int(s) for s in shifts]
        self.values: dict = {}

    def on_train_end(self, trainer, pl_module):
        x, y = trainer.datamodule.splits["test"]
        with _eval(pl_module):
            for k in self.shifts:
                logits = _logits(pl_module, torch.roll(x, k, dims=-1))
                self.values[f"test/acc_shift{k}"] = _out(_accuracy(logits, y), _stacked(pl_module))

    def final_metrics(self) -> dict:
        return dict(self.values)


class TimeGradient(L.Callback):
    """How much of the loss's gradient reaches each time step of a sequence input: the norm of
    ∂loss/∂x_t over a validation batch, for every step t, at initialisation and when training ends.
    ``grad/time_first_last_init`` and ``grad/time_first_last`` are step 0's over the last step's: a
    plain RNN's vanishing gradient through time shows as orders of magnitude below 1."""

    def __init__(self, batch_size: int = 256):
        self.batch_size = batch_size
        self.profiles: dict[str, list[list[float]]] = {}      # phase -> [member][step]

    def _measure(self, trainer, pl_module) -> list[list[float]]:
        x, y = trainer.datamodule.splits["val"]
        x, y = x[: self.batch_size].to(pl_module.device), y[: self.batch_size].to(pl_module.device)
        forwards = ([pl_module.model.member(k) for k in range(pl_module.members)] if _stacked(pl_module)
                    else [pl_module.model])
        profiles = []
        with _eval(pl_module), torch.enable_grad():
            for forward in forwards:
                inputs = x.detach().clone().requires_grad_(True)
                logits = forward(inputs)
                (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), inputs)
                # (N, C, L) signals / sequences: steps on the last axis. The norm in float64: the
                # squares of a vanished gradient (~1e-25 at step 0 of a 100-step RNN) underflow float32
                grad = grad.double()
                profiles.append(grad.transpose(0, -1).reshape(grad.shape[-1], -1).norm(dim=1).tolist())
        return profiles

    def on_fit_start(self, trainer, pl_module):
        if "init" not in self.profiles:
            self.profiles["init"] = self._measure(trainer, pl_module)
        self._stacked = _stacked(pl_module)

    def on_train_end(self, trainer, pl_module):
        self.profiles["final"] = self._measure(trainer, pl_module)

    def final_metrics(self) -> dict:
        out = {}
        for phase, suffix in (("init", "_init"), ("final", "")):
            if phase in self.profiles:
                ratios = torch.tensor([p[0] / p[-1] if p[-1] > 0 else math.nan for p in self.profiles[phase]])
                out[f"grad/time_first_last{suffix}"] = _out(ratios, self._stacked)
        return out

    def summary(self, member: int = 0) -> dict:
        return {"time_grad": {phase: p[member] for phase, p in self.profiles.items()}}

    def state_dict(self) -> dict:
        return {"profiles": self.profiles}

    def load_state_dict(self, state_dict: dict) -> None:
        self.profiles = state_dict["profiles"]


class ActivationScale(L.Callback):
    """Standard deviation of every Linear/Conv layer's output (the pre-activations) on a validation
    batch at initialisation: ``act/std_first``, ``act/std_last`` and ``act/std_ratio_init`` (last /
    first: an init that keeps the signal's scale through depth stays near 1; PyTorch's default
    shrinks it layer after layer in a deep ReLU stack)."""

    def __init__(self, batch_size: int = 256):
        self.batch_size = batch_size
        self.init: list[list[float]] = []                    # [member][layer]

    def on_fit_start(self, trainer, pl_module):
        if self.init:
            return
        x, _ = trainer.datamodule.splits["val"]
        x = x[: self.batch_size].to(pl_module.device)
        family = _family(pl_module)
        layers = [m for m in family.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
        forwards = ([pl_module.model.member(k) for k in range(pl_module.members)] if _stacked(pl_module)
                    else [pl_module.model])
        for forward in forwards:
            stds: list[float] = []
            hooks = [m.register_forward_hook(lambda _, __, out: stds.append(float(out.detach().float().std())))
                     for m in layers]
            try:
                with _eval(pl_module), torch.no_grad():
                    forward(x)
            finally:
                for h in hooks:
                    h.remove()
            self.init.append(stds)
        self._stacked = _stacked(pl_module)

    def final_metrics(self) -> dict:
        if not self.init or not self.init[0]:
            return {}
        first = torch.tensor([s[0] for s in self.init])
        last = torch.tensor([s[-2] if len(s) > 1 else s[-1] for s in self.init])   # the last hidden layer, not the head
        return {"act/std_first": _out(first, self._stacked), "act/std_last": _out(last, self._stacked),
                "act/std_ratio_init": _out(last / first.clamp_min(1e-30), self._stacked)}

    def summary(self, member: int = 0) -> dict:
        return {"activation_std": {"init": self.init[member] if self.init else []}}

    def state_dict(self) -> dict:
        return {"init": self.init}

    def load_state_dict(self, state_dict: dict) -> None:
        self.init = state_dict["init"]
