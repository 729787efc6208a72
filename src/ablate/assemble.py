"""Building a trial's parts from config: the DataModule and the :class:`~ablate.module.AblationModule`
around its model (or the stacked models of a vectorized job's members)."""

from __future__ import annotations

from typing import Sequence

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ablate.members import Member
from ablate.module import AblationModule
from ablate.vectorize import Stacked


def steps_per_call(cfg: DictConfig) -> int:
    """Optimizer steps per ``training_step`` call, the one value the DataModule (batch groups) and
    the module (steps) are built with: ``cfg.steps_per_call``, or 1 where a run needs Lightning's
    automatic loop (gradient clipping, gradient accumulation)."""
    trainer = cfg.trainer
    if trainer.get("gradient_clip_val") or (trainer.get("accumulate_grad_batches") or 1) != 1:
        return 1
    return max(1, int(cfg.get("steps_per_call") or 1))


def _model(cfg: DictConfig, datamodule, activation) -> torch.nn.Module:
    model = instantiate(cfg.model, input_shape=datamodule.input_shape, num_classes=datamodule.num_classes,
                        activation=activation, norm=instantiate(cfg.norm))
    instantiate(cfg.init)(model, activation)
    return model


def build(cfg: DictConfig, members: Sequence[Member] | None = None) -> tuple[L.LightningDataModule, AblationModule]:
    """Instantiate the data and the module from config. The model never sees Hydra: it receives its
    input shape, class count, an activation factory and a :class:`~ablate.nn.Norm`.

    With ``members``, K models are built, each exactly as a run with that seed builds it (seeded,
    then initialised), and stacked into one (:class:`~ablate.vectorize.Stacked`); the DataModule then
    serves each member the batches its own seed orders, and members with their own learning rate or
    weight decay get them through :class:`~ablate.optim.MemberRates`."""
    k = steps_per_call(cfg)
    augment = instantiate(cfg.augment) if cfg.get("augment") else None
    extra = {"seed": [m.seed for m in members]} if members else {}
    datamodule = instantiate(cfg.data, batches_per_call=k, augment=augment, **extra)
    activation = instantiate(cfg.activation)
    optimizer, rates, decays = instantiate(cfg.optimizer), None, None
    if members:
        models = []
        for member in members:
            L.seed_everything(member.seed, workers=True, verbose=False)
            models.append(_model(cfg, datamodule, activation))
        model = Stacked(models)
        if any(m.lr is not None for m in members):
            rates = [float(m.lr) for m in members]
            optimizer = instantiate(cfg.optimizer, lr=max(rates))
        if any(m.weight_decay is not None for m in members):
            decays = [float(m.weight_decay) for m in members]
            rates = rates or [float(cfg.optimizer.lr)] * len(members)
            optimizer = instantiate(cfg.optimizer, lr=max(rates), weight_decay=0.0)
    else:
        model = _model(cfg, datamodule, activation)
    compile_ = cfg.get("compile", False)  # true, or torch.compile options such as {mode: max-autotune}
    if OmegaConf.is_config(compile_):
        compile_ = OmegaConf.to_container(compile_, resolve=True)
    module = AblationModule(model, loss=instantiate(cfg.loss), optimizer=optimizer,
                            scheduler=instantiate(cfg.scheduler), compile=compile_, steps_per_call=k,
                            sequence_targets=bool(datamodule.target_shape), member_rates=rates,
                            member_decays=decays)
    return datamodule, module

