"""Learning-rate schedules. Each takes the optimizer and the run's length and returns Lightning's
``lr_scheduler`` dict, so the schedule is stepped at its own interval (per step or per epoch)."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, OneCycleLR, ReduceLROnPlateau, StepLR


def constant(optimizer: Optimizer, total_steps: int, steps_per_epoch: int) -> None:
    return None


def step(optimizer: Optimizer, total_steps: int, steps_per_epoch: int, step_size: int = 10,
         gamma: float = 0.1) -> dict:
    """Divide the rate by 1/gamma every ``step_size`` epochs."""
    return {"scheduler": StepLR(optimizer, step_size=step_size, gamma=gamma), "interval": "epoch"}


def cosine(optimizer: Optimizer, total_steps: int, steps_per_epoch: int, min_lr_ratio: float = 0.0) -> dict:
    base = optimizer.param_groups[0]["lr"]
    return {"scheduler": CosineAnnealingLR(optimizer, T_max=max(total_steps, 1), eta_min=base * min_lr_ratio),
            "interval": "step"}


def warmup_cosine(optimizer: Optimizer, total_steps: int, steps_per_epoch: int, warmup_fraction: float = 0.05,
                  min_lr_ratio: float = 0.0) -> dict:
    """Linear warm-up from 0 over ``warmup_fraction`` of training, then cosine decay."""
    warmup = max(1, round(warmup_fraction * total_steps))

    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / warmup
        progress = min(1.0, (i - warmup) / max(1, total_steps - warmup))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return {"scheduler": LambdaLR(optimizer, factor), "interval": "step"}


def onecycle(optimizer: Optimizer, total_steps: int, steps_per_epoch: int, pct_start: float = 0.3,
             div_factor: float = 25.0) -> dict:
    """Smith's one-cycle policy peaking at the optimizer's configured rate. Momentum (Adam's beta1) is
    cycled only where the optimizer uses it: a momentum-free optimizer (plain SGD, RMSprop with
    momentum 0) stays momentum-free, as its config says."""
    max_lr = [g["lr"] for g in optimizer.param_groups]
    cycle_momentum = "betas" in optimizer.defaults or bool(optimizer.defaults.get("momentum"))
    return {"scheduler": OneCycleLR(optimizer, max_lr=max_lr, total_steps=max(total_steps, 1), pct_start=pct_start,
                                    div_factor=div_factor, cycle_momentum=cycle_momentum), "interval": "step"}


def plateau(optimizer: Optimizer, total_steps: int, steps_per_epoch: int, monitor: str = "val/loss",
            mode: str = "min", factor: float = 0.1, patience: int = 3, threshold: float = 1e-4) -> dict:
    """Divide the rate by 1/factor when ``monitor`` has not improved (by ``threshold``, relative) for
    ``patience`` epochs; stepped after each epoch's validation, on the value logged there."""
    scheduler = ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience, threshold=threshold)
    return {"scheduler": scheduler, "interval": "epoch", "monitor": monitor}
