"""Static checks of a composed config, run before anything is built, trained or written.

Hydra already rejects unknown group choices (``activation=relux``: it lists the available ones) and
unknown keys; this module catches values that compose fine but cannot run, and says which field,
what was wrong and what would work.
"""

from __future__ import annotations

import os
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ablate.checks import (BOOLEAN, FRACTION, POSITIVE, Check, distinct_list, field_errors, integer, is_int, is_number,
                           number, one_of, required)
from ablate.contract import Signature, batch_errors, signature_errors, target_of
from ablate.families import ANY_FAMILY, DECODING, Family, builtin_family, family_of
from ablate.inputs import augment_errors, data_errors, source_of

PRECISIONS = ("64", "64-true", "32", "32-true", "16", "16-mixed", "16-true", "bf16", "bf16-mixed", "bf16-true")

# the run's own fields and those of the parts ablate takes from torch and Lightning (the model, the data
# and the augment transform say what they accept: ablate.families, ablate.inputs)
RUN: dict[str, Check] = {
    "seed": required(integer(0)),
    "seeds": distinct_list(lambda v: is_int(v) and v >= 0, ": a list of distinct integers >= 0 (e.g. seeds=[0,1,2]), "
                                                            "or null for the one run of seed"),
    "lrs": distinct_list(lambda v: is_number(v) and v > 0,
                         ": a list of distinct numbers > 0 (one member each), or null"),
    "weight_decays": distinct_list(lambda v: is_number(v) and v >= 0,
                                   ": a list of distinct numbers >= 0 (one member each), or null"),
    **dict.fromkeys(("vectorize", "checkpoint", "report", "trainer.deterministic", "trainer.benchmark"), BOOLEAN),
    **dict.fromkeys(("threads", "steps_per_call", "budget.max_epochs", "budget.num_samples", "trainer.num_nodes",
                     "norm.groups", "scheduler.step_size"), POSITIVE),
    "trainer.max_epochs": required(POSITIVE),
    "trainer.devices": Check(lambda v: v == "auto" or v == -1 or (is_int(v) and v >= 1)
                             or (OmegaConf.is_list(v) and len(v) > 0),
                             ": an integer >= 1, -1 (all), 'auto', or a list of ids"),
    "trainer.precision": one_of(*PRECISIONS),
    "optimizer.lr": number(above=0),
    "optimizer.weight_decay": number(at_least=0),
    "optimizer.eps": number(at_least=0),
    **dict.fromkeys(("optimizer.momentum", "scheduler.warmup_fraction", "scheduler.pct_start",
                     "loss.label_smoothing"), FRACTION),
    "logger.mode": one_of("offline", "online", "disabled"),
}


class ConfigError(ValueError):
    """A config that cannot run. The message names the field(s) and the valid values."""


def _get(cfg: DictConfig, path: str) -> Any:
    return OmegaConf.select(cfg, path, default=None)


def config_errors(cfg: DictConfig) -> list[str]:
    """Every problem found in ``cfg``, one message each (empty when it can run)."""
    errors = field_errors(cfg, RUN)
    model, data, augment = _get(cfg, "model"), _get(cfg, "data"), _get(cfg, "augment")
    if model is not None:
        errors += _model_errors(model, _get(cfg, "norm.name"), data)
    if data is not None:
        errors += data_errors(data)
    if augment is not None:
        errors += augment_errors(augment, data)
    errors += _trainer_errors(cfg) + _logger_errors(cfg)
    errors += claim_errors(_get(cfg, "claim"))
    return errors


def _model_errors(model: Any, norm: str | None, data: Any) -> list[str]:
    """The family's own checks, and whether it can learn the data's targets."""
    target, errors = model.get("_target_"), []
    try:
        family = family_of(target) if target else ANY_FAMILY
        if target and builtin_family(target) is None:    # a model of the user's own: the contract's checks
            errors += signature_errors(target, Signature.of(target_of(model)), norm)
    except Exception as e:  # noqa: BLE001 - any import failure is a config error here
        family = ANY_FAMILY
        errors.append(f"model._target_={target!r} cannot be imported: {e}")
    errors += family.errors(model, norm)
    source = source_of(OmegaConf.select(data, "source._target_", default=None)) if data is not None else None
    if source is not None and source.per_position:
        errors += _decoding_errors(family, model.get("kind"), data)
    return errors


def _decoding_errors(family: Family, kind: Any, data: Any) -> list[str]:
    """Data with one target per position needs a built-in family of a decoding kind."""
    if family.kinds is None or (kind or "encoder") in DECODING:
        return []
    valid = [k for k in family.kinds if k != "encoder"]
    return [f"data={data.source.get('task') or 'seq2seq'} has one target per position: it needs a decoding model; "
            f"model={family.name.lower()}" + (f" model.kind={kind}" if kind is not None else "") + " is a classifier"
            + (f"; valid values for model.kind: {', '.join(valid)}" if valid
               else "; use model=transformer or model=rnn with model.kind=encoder_decoder")]


def _trainer_errors(cfg: DictConfig) -> list[str]:
    precision = str(_get(cfg, "trainer.precision"))
    if str(_get(cfg, "trainer.accelerator")) == "cpu" and precision in ("16", "16-mixed"):
        return [f"trainer.precision={_get(cfg, 'trainer.precision')!r} is invalid with trainer.accelerator=cpu: "
                "float16 autocast needs a GPU; on a CPU use bf16-mixed, 32 or 64"]
    return []


def _logger_errors(cfg: DictConfig) -> list[str]:
    """W&B online needs a key (any other logger: nothing outside the config to check)."""
    wandb = str(_get(cfg, "logger._target_")).rsplit(".", 1)[-1] == "WandbLogger"
    if wandb and _get(cfg, "logger.mode") == "online" and not _wandb_key_available():
        return ["logger=wandb with logger.mode=online needs a W&B API key: run `wandb login` or set "
                "WANDB_API_KEY; or keep logger.mode=offline (the default) and `wandb sync` later"]
    return []


def _wandb_key_available() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import netrc

        hosts = netrc.netrc().hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any("wandb" in host for host in hosts)


def claim_errors(claim: Any) -> list[str]:
    """The experiment's claim block must say what to compare and how, or its report cannot judge
    it: the schema and its checks live in :mod:`ablate.report.spec.claim` (torch- and SciPy-free)."""
    from ablate.report.spec.claim import claim_errors as errors_of

    if claim is None:
        return []
    if OmegaConf.is_config(claim):
        try:
            claim = OmegaConf.to_container(claim, resolve=True)
        except Exception as e:  # noqa: BLE001 - an interpolation that does not resolve
            return [f"claim cannot be read: {e}"]
    return errors_of(claim)


def validate(cfg: DictConfig) -> DictConfig:
    """Raise :class:`ConfigError` listing every problem in ``cfg``; return it unchanged when it can run.
    A config without such problems and with a model of the user's own is then asked whether that model
    takes a batch of the data (:func:`ablate.contract.batch_errors`: it builds both)."""
    errors = config_errors(cfg) or batch_errors(cfg)
    if errors:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(errors))
    return cfg

