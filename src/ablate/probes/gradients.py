"""Probes that explain *why* a configuration trains or not: gradient flow per layer, saturated and
dead units, and the update:weight ratio. Each logs per-epoch scalars through Lightning, hands the
same scalars to :class:`~ablate.probes.History`, and summarises per-layer profiles for the record."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import nn


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The network's weight matrices/kernels in forward order (input layer first, head last)."""
    return [(name.removesuffix(".weight"), p) for name, p in model.named_parameters()
            if p.requires_grad and p.dim() >= 2 and "weight" in name.rsplit(".", 1)[-1]]


def _mean(values: list[float]) -> float:
    values = [v for v in values if math.isfinite(v)]
    return sum(values) / len(values) if values else math.nan


class GradFlow(L.Callback):
    """L2 norm of each weight's gradient, averaged over an epoch's steps.

    Per epoch: ``grad/first_layer``, ``grad/last_layer`` and ``grad/first_last_ratio`` (first / last:
    orders of magnitude below 1 is a vanishing gradient). The record keeps the per-layer profile at
    the first step ("init") and over the last epoch ("final").
    """

    def __init__(self):
        self.layers: list[str] = []
        self.init: list[float] = []
        self.final: list[float] = []
        self.epoch: dict[str, float] = {}
        self._sum, self._n = None, 0

    def on_fit_start(self, trainer, pl_module):
        self._params = weight_layers(pl_module.model)
        self.layers = [name for name, _ in self._params]

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for _, p in self._params]
        norms = torch.stack(torch._foreach_norm(grads)).detach().float()
        if not self.init:
            self.init = norms.tolist()
        self._sum = norms if self._sum is None else self._sum + norms
        self._n += 1

    def on_train_epoch_end(self, trainer, pl_module):
        if not self._n:
            return
        self.final = (self._sum / self._n).tolist()
        self._sum, self._n = None, 0
        first, last = self.final[0], self.final[-1]
        self.epoch = {"grad/first_layer": first, "grad/last_layer": last,
                      "grad/first_last_ratio": first / last if last > 0 else math.nan}
        pl_module.log_dict(self.epoch, on_step=False, on_epoch=True)

    def epoch_metrics(self) -> dict[str, float]:
        return dict(self.epoch)

    def final_metrics(self) -> dict[str, float]:
        out = dict(self.epoch)
        if self.init:
            out["grad/first_layer_init"] = self.init[0]
            out["grad/first_last_ratio_init"] = self.init[0] / self.init[-1] if self.init[-1] > 0 else math.nan
        return out

    def summary(self) -> dict:
        return {"grad_norm": {"layers": self.layers, "init": self.init, "final": self.final}}

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
        self.init: dict[str, float] = {}
        self.epoch: dict[str, float] = {}
        self.profile: dict[str, list[float]] = {}

    def _measure(self, trainer, pl_module) -> tuple[dict[str, float], dict[str, list[float]]]:
        x, _ = trainer.datamodule.splits["val"]
        x = x[: self.batch_size].to(pl_module.device)
        saturated, dead, hooks = {}, {}, []

        def hook(name, module):
            def fn(_, __, y):
                y = y.detach().float()
                if type(module) in SATURATING:
                    saturated[name] = SATURATING[type(module)](y).float().mean().item()
                else:  # ReLU: a unit (channel × position / feature) is dead if it is 0 for all samples
                    dead[name] = (y <= 0).all(dim=0).float().mean().item()
            return fn

        for name, module in pl_module.model.named_modules():
            if type(module) in SATURATING or type(module) is nn.ReLU:
                hooks.append(module.register_forward_hook(hook(name, module)))
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            pl_module.model(x)
        pl_module.train(was_training)
        for h in hooks:
            h.remove()
        metrics = {}
        if saturated:
            metrics["act/saturated_frac"] = _mean(list(saturated.values()))
        if dead:
            metrics["act/dead_frac"] = _mean(list(dead.values()))
        self.layers = list(saturated or dead)
        return metrics, {"saturated": list(saturated.values()), "dead": list(dead.values())}

    def on_fit_start(self, trainer, pl_module):
        if not self.init:
            self.init, _ = self._measure(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module):
        self.epoch, self.profile = self._measure(trainer, pl_module)
        if self.epoch:
            pl_module.log_dict(self.epoch, on_step=False, on_epoch=True)

    def epoch_metrics(self) -> dict[str, float]:
        return dict(self.epoch)

    def final_metrics(self) -> dict[str, float]:
        return {**self.epoch, **{f"{k}_init": v for k, v in self.init.items()}}

    def summary(self) -> dict:
        return {"units": {"layers": self.layers, "init": self.init, **self.profile}}

    def state_dict(self) -> dict:
        return {"init": self.init, "epoch": self.epoch, "profile": self.profile, "layers": self.layers}

    def load_state_dict(self, state_dict: dict) -> None:
        self.init, self.epoch, self.profile = state_dict["init"], state_dict["epoch"], state_dict["profile"]
        self.layers = state_dict.get("layers", [])


class UpdateRatio(L.Callback):
    """‖Δw‖ / ‖w‖ per layer and optimizer step (healthy training sits near 1e-3), sampled every
    ``every_n_steps`` steps to keep the weight copies off most steps. ``update/ratio_mean`` is the
    layer mean for the epoch; ``update/ratio_first`` the input layer's."""

    def __init__(self, every_n_steps: int = 5):
        self.every_n_steps = every_n_steps
        self.layers: list[str] = []
        self.final: list[float] = []
        self.epoch: dict[str, float] = {}
        self._before = None
        self._sum, self._n = None, 0

    def on_fit_start(self, trainer, pl_module):
        self._params = weight_layers(pl_module.model)
        self.layers = [name for name, _ in self._params]

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self._measure()            # the step sampled last time has happened (several run per batch call)
        if trainer.global_step % self.every_n_steps == 0:
            self._before = torch._foreach_mul([p.detach() for _, p in self._params], 1.0)  # a copy

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._measure()

    def _measure(self) -> None:
        """Ratio of the update made by the step after the last snapshot, if there was one."""
        if self._before is None:
            return
        weights = [p.detach() for _, p in self._params]
        deltas = torch._foreach_sub(weights, self._before)
        ratio = torch.stack(torch._foreach_norm(deltas)) / torch.stack(torch._foreach_norm(weights)).clamp_min(1e-12)
        self._sum = ratio if self._sum is None else self._sum + ratio
        self._n += 1
        self._before = None

    def on_train_epoch_end(self, trainer, pl_module):
        if not self._n:
            return
        self.final = (self._sum / self._n).tolist()
        self._sum, self._n = None, 0
        self.epoch = {"update/ratio_mean": _mean(self.final), "update/ratio_first": self.final[0]}
        pl_module.log_dict(self.epoch, on_step=False, on_epoch=True)

    def epoch_metrics(self) -> dict[str, float]:
        return dict(self.epoch)

    def final_metrics(self) -> dict[str, float]:
        return dict(self.epoch)

    def summary(self) -> dict:
        return {"update_ratio": {"layers": self.layers, "final": self.final}}

    def state_dict(self) -> dict:
        return {"final": self.final, "epoch": self.epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.final, self.epoch = state_dict["final"], state_dict["epoch"]
