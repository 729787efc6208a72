"""Probes that explain *why* a configuration trains or not: gradient flow per layer, saturated and
dead units, and the update:weight ratio. Each logs per-epoch scalars through Lightning, hands the
same values to :class:`~ablate.probes.History`, and summarises per-layer profiles for the record.

Every measurement is per member: a vectorized run (``pl_module.stacked``: K seeds stacked into one
model, parameters ``(K, ...)``) gets one value per member, a plain run one value."""

from __future__ import annotations

import math
from typing import Sequence

import lightning as L
import torch
from torch import nn


def weight_layers(pl_module) -> list[tuple[str, torch.Tensor]]:
    """The network's weight matrices/kernels in forward order (input layer first, head last); for a
    vectorized run, the stacked ``(K, ...)`` ones."""
    stacked = getattr(pl_module, "stacked", False)
    model = pl_module.model.net if stacked else pl_module.model
    lead = 1 if stacked else 0
    return [(name.removesuffix(".weight"), p) for name, p in model.named_parameters()
            if p.requires_grad and p.dim() - lead >= 2 and "weight" in name.rsplit(".", 1)[-1]]


def member_norms(tensors: Sequence[torch.Tensor], stacked: bool) -> torch.Tensor:
    """L2 norm of each tensor, per member: ``(len(tensors), K)`` (K = 1 for unstacked tensors)."""
    return torch.stack([t.detach().float().reshape(len(t) if stacked else 1, -1).norm(dim=1) for t in tensors])


def log_slope(norms: torch.Tensor) -> torch.Tensor:
    """Least-squares slope of log10(norm) against layer index (input layer 0), per member, for
    ``(layers, K)`` norms: decades per layer. Positive: the norm rises from the input layer to the
    output layer, i.e. the gradient shrinks towards the input (vanishes); negative: it grows towards
    the input (explodes). NaN where a norm is 0 (underflowed) or not finite."""
    logs = torch.log10(norms.double())
    index = torch.arange(len(norms), dtype=torch.float64)[:, None] - (len(norms) - 1) / 2
    slope = (index * (logs - logs.mean(dim=0))).sum(dim=0) / (index ** 2).sum().clamp_min(1e-12)
    return torch.where(torch.isfinite(logs).all(dim=0), slope, torch.full_like(slope, math.nan))


def _mean(values) -> float:
    values = [v for v in values if math.isfinite(v)]
    return sum(values) / len(values) if values else math.nan


def _per_member(values: torch.Tensor, stacked: bool):
    """A ``(K,)`` tensor as the probes hand it on: a list per member when stacked, else a float."""
    values = values.reshape(-1).tolist()
    return values if stacked else values[0]


class GradFlow(L.Callback):
    """L2 norm of each weight's gradient, averaged over an epoch's steps.

    Per epoch: ``grad/first_layer``, ``grad/last_layer`` and ``grad/first_last_ratio`` (first / last:
    orders of magnitude below 1 is a vanishing gradient). The record keeps the per-layer profile at
    the first step ("init") and over the last epoch ("final").
    """

    def __init__(self):
        self.layers: list[str] = []
        self.init: list[list[float]] = []      # [layer][member]
        self.final: list[list[float]] = []
        self.epoch: dict = {}
        self._sum, self._n = None, 0

    def on_fit_start(self, trainer, pl_module):
        self._params = weight_layers(pl_module)
        self._stacked = getattr(pl_module, "stacked", False)
        self.layers = [name for name, _ in self._params]

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for _, p in self._params]
        norms = member_norms(grads, self._stacked)
        if not self.init:
            self.init = norms.tolist()
        self._sum = norms if self._sum is None else self._sum + norms
        self._n += 1

    def on_train_epoch_end(self, trainer, pl_module):
        if not self._n:
            return
        final = self._sum / self._n
        self.final = final.tolist()
        self._sum, self._n = None, 0
        first, last = final[0], final[-1]
        ratio = torch.where(last > 0, first / last.clamp_min(1e-30), torch.full_like(first, math.nan))
        self.epoch = {"grad/first_layer": _per_member(first, self._stacked),
                      "grad/last_layer": _per_member(last, self._stacked),
                      "grad/first_last_ratio": _per_member(ratio, self._stacked)}
        pl_module.log_dict({k: torch.tensor(v).nanmean() if self._stacked else v for k, v in self.epoch.items()},
                           on_step=False, on_epoch=True)

    def epoch_metrics(self) -> dict:
        return dict(self.epoch)

    def final_metrics(self) -> dict:
        out = dict(self.epoch)
        if self.init:
            first, last = torch.tensor(self.init[0]), torch.tensor(self.init[-1])
            ratio = torch.where(last > 0, first / last.clamp_min(1e-30), torch.full_like(first, math.nan))
            out["grad/first_layer_init"] = _per_member(first, self._stacked)
            out["grad/first_last_ratio_init"] = _per_member(ratio, self._stacked)
            out["grad/slope_init"] = _per_member(log_slope(torch.tensor(self.init)), self._stacked)
        if self.final:
            out["grad/slope"] = _per_member(log_slope(torch.tensor(self.final)), self._stacked)
        return out

    def summary(self, member: int = 0) -> dict:
        return {"grad_norm": {"layers": self.layers, "init": [v[member] for v in self.init],
                              "final": [v[member] for v in self.final]}}

    # kept in checkpoints, so a resumed run still reports the profile measured at its first step
    def state_dict(self) -> dict:
        return {"init": self.init, "final": self.final, "epoch": self.epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.init, self.final, self.epoch = state_dict["init"], state_dict["final"], state_dict["epoch"]


SATURATING = {nn.Sigmoid: lambda y: (y < 0.05) | (y > 0.95),   # σ' = σ(1-σ) < 0.048
              nn.Tanh: lambda y: y.abs() > 0.95}               # tanh' = 1 - tanh² < 0.098


class UnitStats(L.Callback):
    """Saturated units (sigmoid/tanh outputs where the derivative is under ~0.1) and dead ReLU units
    (zero for every input of a probe batch), measured on a fixed validation batch at the start of
    training and at the end of every epoch, in eval mode so BatchNorm statistics are untouched.

    ``act/saturated_frac``: share of (sample, unit) outputs in the saturated range, averaged over
    sigmoid/tanh layers. ``act/dead_frac``: share of ReLU units that never fire on the batch.
    """

    def __init__(self, batch_size: int = 256):
        self.batch_size = batch_size
        self.layers: list[str] = []
        self.init: dict = {}
        self.epoch: dict = {}
        self.profile: dict[str, list[list[float]]] = {}     # kind -> [member][layer]

    def _measure_one(self, forward, model: nn.Module, x: torch.Tensor) -> tuple[dict, dict]:
        saturated, dead, hooks = {}, {}, []

        def hook(name, module):
            def fn(_, __, y):
                y = y.detach().float()
                if type(module) in SATURATING:
                    saturated[name] = SATURATING[type(module)](y).float().mean().item()
                else:  # ReLU: a unit (channel × position / feature) is dead if it is 0 for all samples
                    dead[name] = (y <= 0).all(dim=0).float().mean().item()
            return fn

        for name, module in model.named_modules():
            if type(module) in SATURATING or type(module) is nn.ReLU:
                hooks.append(module.register_forward_hook(hook(name, module)))
        try:
            with torch.no_grad():
                forward(x)
        finally:
            for h in hooks:
                h.remove()
        self.layers = list(saturated or dead)
        return saturated, dead

    def _measure(self, trainer, pl_module) -> tuple[dict, dict]:
        x, _ = trainer.datamodule.splits["val"]
        x = x[: self.batch_size].to(pl_module.device)
        stacked = getattr(pl_module, "stacked", False)
        model = pl_module.model.net if stacked else pl_module.model
        forwards = [pl_module.model.member(k) for k in range(pl_module.members)] if stacked else [pl_module.model]
        was_training = pl_module.training
        pl_module.eval()
        try:
            measured = [self._measure_one(f, model, x) for f in forwards]
        finally:
            pl_module.train(was_training)
        metrics: dict = {}
        for key, index in (("act/saturated_frac", 0), ("act/dead_frac", 1)):
            values = [_mean(list(m[index].values())) for m in measured]
            if any(m[index] for m in measured):
                metrics[key] = values if stacked else values[0]
        self._stacked = stacked
        return metrics, {"saturated": [list(m[0].values()) for m in measured],
                         "dead": [list(m[1].values()) for m in measured]}

    def on_fit_start(self, trainer, pl_module):
        if not self.init:
            self.init, _ = self._measure(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module):
        self.epoch, self.profile = self._measure(trainer, pl_module)
        if self.epoch:
            pl_module.log_dict({k: _mean(v) if isinstance(v, list) else v for k, v in self.epoch.items()},
                               on_step=False, on_epoch=True)

    def epoch_metrics(self) -> dict:
        return dict(self.epoch)

    def final_metrics(self) -> dict:
        return {**self.epoch, **{f"{k}_init": v for k, v in self.init.items()}}

    def summary(self, member: int = 0) -> dict:
        init = {k: v[member] if isinstance(v, list) else v for k, v in self.init.items()}
        profile = {k: v[member] for k, v in self.profile.items() if v}
        return {"units": {"layers": self.layers, "init": init, **profile}}

    def state_dict(self) -> dict:
        return {"init": self.init, "epoch": self.epoch, "profile": self.profile, "layers": self.layers}

    def load_state_dict(self, state_dict: dict) -> None:
        self.init, self.epoch, self.profile = state_dict["init"], state_dict["epoch"], state_dict["profile"]
        self.layers = state_dict.get("layers", [])


class UpdateRatio(L.Callback):
    """‖Δw‖ / ‖w‖ per layer and optimizer step (healthy training sits near 1e-3), sampled every
    ``every_n_steps`` steps to keep the weight copies off most steps. ``update/ratio_mean`` is the
    layer mean for the epoch; ``update/ratio_first`` the input layer's. Sees every step of a call
    (``steps_per_call``) through the optimizer-step hook."""

    batch_groups_ok = True

    def __init__(self, every_n_steps: int = 5):
        self.every_n_steps = every_n_steps
        self.layers: list[str] = []
        self.final: list[list[float]] = []     # [layer][member]
        self.epoch: dict = {}
        self._before = None
        self._sum, self._n = None, 0

    def on_fit_start(self, trainer, pl_module):
        self._params = weight_layers(pl_module)
        self._stacked = getattr(pl_module, "stacked", False)
        self.layers = [name for name, _ in self._params]

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self._measure()            # the step sampled last time has happened (several run per batch call)
        if trainer.global_step % self.every_n_steps == 0:
            self._before = [p.detach().clone() for _, p in self._params]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._measure()

    def _measure(self) -> None:
        """Ratio of the update made by the step after the last snapshot, if there was one."""
        if self._before is None:
            return
        weights = [p.detach() for _, p in self._params]
        deltas = [w - b for w, b in zip(weights, self._before)]
        ratio = member_norms(deltas, self._stacked) / member_norms(weights, self._stacked).clamp_min(1e-12)
        self._sum = ratio if self._sum is None else self._sum + ratio
        self._n += 1
        self._before = None

    def on_train_epoch_end(self, trainer, pl_module):
        if not self._n:
            return
        final = self._sum / self._n                     # (layers, K)
        self.final = final.tolist()
        self._sum, self._n = None, 0
        self.epoch = {"update/ratio_mean": _per_member(final.nanmean(dim=0), self._stacked),
                      "update/ratio_first": _per_member(final[0], self._stacked)}
        pl_module.log_dict({k: torch.tensor(v).nanmean() if self._stacked else v for k, v in self.epoch.items()},
                           on_step=False, on_epoch=True)

    def epoch_metrics(self) -> dict:
        return dict(self.epoch)

    def final_metrics(self) -> dict:
        return dict(self.epoch)

    def summary(self, member: int = 0) -> dict:
        return {"update_ratio": {"layers": self.layers, "final": [v[member] for v in self.final]}}

    def state_dict(self) -> dict:
        return {"final": self.final, "epoch": self.epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.final, self.epoch = state_dict["final"], state_dict["epoch"]
