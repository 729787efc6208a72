"""Building a trial's parts from config: the DataModule and the :class:`~ablate.module.AblationModule`
around its model (or the stacked models of a vectorized job's members)."""

from __future__ import annotations

from typing import Callable, Sequence

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ablate.contract import Signature, model_builder, target_of
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


def _model_builder(cfg: DictConfig, datamodule, activation) -> Callable[[], torch.nn.Module]:
    """A function building one model of ``cfg.model`` by the contract (:mod:`ablate.contract`), then
    initialised by ``cfg.init`` unless the model takes ``init`` and applies it itself."""
    init = instantiate(cfg.init)
    parts = {"activation": lambda: activation, "norm": lambda: instantiate(cfg.norm), "init": lambda: init}
    make = model_builder(cfg.model, datamodule.input_shape, datamodule.num_classes, parts)
    applies_init = Signature.of(target_of(cfg.model)).takes("init")

    def one() -> torch.nn.Module:
        model = make()
        return model if applies_init else init(model, activation)

    return one


def build(cfg: DictConfig, members: Sequence[Member] | None = None) -> tuple[L.LightningDataModule, AblationModule]:
    """Instantiate the data and the module from config. The model never sees Hydra: it receives its
    input shape and class count, and, where its signature takes them, an activation factory, a
    :class:`~ablate.nn.Norm`, the :class:`~ablate.nn.Init` and the ``model`` node's fields.

    With ``members``, K models are built, each exactly as a run with that seed builds it (seeded,
    then initialised), and stacked into one (:class:`~ablate.vectorize.Stacked`); the DataModule then
    serves each member the batches its own seed orders, and members with their own learning rate or
    weight decay get them through :class:`~ablate.optim.MemberRates`."""
    k = steps_per_call(cfg)
    augment = instantiate(cfg.augment) if cfg.get("augment") else None
    extra = {"seed": [m.seed for m in members]} if members else {}
    datamodule = instantiate(cfg.data, batches_per_call=k, augment=augment, **extra)
    activation = instantiate(cfg.activation)
    make = _model_builder(cfg, datamodule, activation)
    optimizer, rates, decays = instantiate(cfg.optimizer), None, None
    if members:
        models = []
        for member in members:
            L.seed_everything(member.seed, workers=True, verbose=False)
            models.append(make())
        model = Stacked(models)
        if any(m.lr is not None for m in members):
            rates = [float(m.lr) for m in members]
            optimizer = instantiate(cfg.optimizer, lr=max(rates))
        if any(m.weight_decay is not None for m in members):
            decays = [float(m.weight_decay) for m in members]
            rates = rates or [float(cfg.optimizer.lr)] * len(members)
            optimizer = instantiate(cfg.optimizer, lr=max(rates), weight_decay=0.0)
    else:
        model = make()
    compile_ = cfg.get("compile", False)  # true, or torch.compile options such as {mode: max-autotune}
    if OmegaConf.is_config(compile_):
        compile_ = OmegaConf.to_container(compile_, resolve=True)
    module = AblationModule(model, loss=instantiate(cfg.loss), optimizer=optimizer,
                            scheduler=instantiate(cfg.scheduler), compile=compile_, steps_per_call=k,
                            sequence_targets=bool(datamodule.target_shape), member_rates=rates,
                            member_decays=decays)
    return datamodule, module

