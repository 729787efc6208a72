"""Static checks of a composed config, run before anything is built, trained or written.

Hydra already rejects unknown group choices (``activation=relux``: it lists the available ones) and
unknown keys; this module catches values that compose fine but cannot run, and says which field,
what was wrong and what would work.
"""

from __future__ import annotations

import os
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from ablate.families import KINDS, READOUTS, builtin_family, supported_norms

PRECISIONS = ("64", "64-true", "32", "32-true", "16", "16-mixed", "16-true", "bf16", "bf16-mixed", "bf16-true")
CELLS = ("rnn", "lstm", "gru")
POOLS = ("max", "avg", "none")
POSITIONAL = ("sinusoidal", "learned", "none")


class ConfigError(ValueError):
    """A config that cannot run. The message names the field(s) and the valid values."""


def _get(cfg: DictConfig, path: str) -> Any:
    return OmegaConf.select(cfg, path, default=None)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def config_errors(cfg: DictConfig) -> list[str]:
    """Every problem found in ``cfg``, one message each (empty when it can run)."""
    errors: list[str] = []

    def positive_int(path: str, optional: bool = True) -> None:
        v = _get(cfg, path)
        if v is None and optional:
            return
        if not _is_int(v) or v < 1:
            errors.append(f"{path}={v!r} is invalid: it must be an integer >= 1")

    def positive_number(path: str) -> None:
        v = _get(cfg, path)
        if v is not None and (not _is_number(v) or v <= 0):
            errors.append(f"{path}={v!r} is invalid: it must be a number > 0")

    def in_range(path: str, low: float, high: float, high_open: bool = True) -> None:
        v = _get(cfg, path)
        if v is None:
            return
        ok = _is_number(v) and low <= v and (v < high if high_open else v <= high)
        if not ok:
            errors.append(f"{path}={v!r} is invalid: it must be in [{low}, {high}{')' if high_open else ']'}")

    def one_of(path: str, valid: tuple[str, ...]) -> None:
        v = _get(cfg, path)
        if v is not None and str(v) not in valid:
            errors.append(f"{path}={v!r} is invalid; valid values: {', '.join(valid)}")

    for path in ("model.residual", "model.pre_ln", "model.bidirectional", "trainer.deterministic",
                 "trainer.benchmark", "checkpoint", "report"):
        v = _get(cfg, path)
        if v is not None and not isinstance(v, bool):
            errors.append(f"{path}={v!r} is invalid; valid values: true, false")
    devices = _get(cfg, "trainer.devices")
    if devices is not None and not (devices == "auto" or devices == -1 or (_is_int(devices) and devices >= 1)
                                    or (OmegaConf.is_list(devices) and len(devices) > 0)):
        errors.append(f"trainer.devices={devices!r} is invalid: an integer >= 1, -1 (all), 'auto', or a list of ids")

    # model
    for key in ("depth", "width", "heads", "kernel_size", "mlp_ratio", "stem_stride", "hidden"):
        positive_int(f"model.{key}")
    one_of("model.readout", READOUTS)
    in_range("model.dropout", 0.0, 1.0)
    one_of("model.cell", CELLS)
    one_of("model.pool", POOLS)
    one_of("model.positional", POSITIONAL)
    width, heads = _get(cfg, "model.width"), _get(cfg, "model.heads")
    if _is_int(width) and _is_int(heads) and heads >= 1 and width % heads:
        errors.append(f"model.width={width} must be divisible by model.heads={heads} "
                      f"(e.g. model.heads={max(h for h in range(1, heads + 1) if width % h == 0)})")
    target, norm, kind = _get(cfg, "model._target_"), _get(cfg, "norm.name"), _get(cfg, "model.kind") or "encoder"
    family_name = builtin_family(target) if target else None
    if family_name:
        kinds = KINDS.get(family_name, ("encoder",))
        if str(kind) not in kinds:
            errors.append(f"model.kind={kind!r} is invalid for model={family_name.lower()}; valid values: {', '.join(kinds)}")
        elif kind == "encoder_decoder" and (_get(cfg, "model.readout") or "last") != "last":
            errors.append(f"model.readout={_get(cfg, 'model.readout')!r} is invalid with model.kind=encoder_decoder: "
                          "the decoder reads the encoder's final state; valid values: last")
    if _get(cfg, "data.source._target_") == "ablate.data.sources.seq2seq":
        one_of("data.source.task", ("copy", "reverse", "sort"))
        symbols = _get(cfg, "data.source.num_symbols")
        if symbols is not None and (not _is_int(symbols) or symbols < 2):
            errors.append(f"data.source.num_symbols={symbols!r} is invalid: it must be an integer >= 2")
        if family_name and kind not in ("decoder", "encoder_decoder"):
            valid = [k for k in KINDS.get(family_name, ()) if k != "encoder"]
            errors.append(f"data={_get(cfg, 'data.source.task') or 'seq2seq'} has one target per position: it needs a "
                          f"decoding model; model={family_name.lower()}"
                          + (f" model.kind={kind}" if _get(cfg, "model.kind") is not None else "") + " is a classifier"
                          + (f"; valid values for model.kind: {', '.join(valid)}" if valid
                             else "; use model=transformer or model=rnn with model.kind=encoder_decoder"))
    if target and norm:
        name, supported = family_name, None
        if name:                          # a built-in family: no need to import it (and torch)
            supported = supported_norms(name, str(kind))
        else:
            try:
                family = get_class(target)
            except Exception as e:  # noqa: BLE001 - any import failure is a config error here
                errors.append(f"model._target_={target!r} cannot be imported: {e}")
            else:
                name, supported = family.__name__, getattr(family, "supported_norms", None)
        if supported is not None and norm not in supported:
            errors.append(f"norm={norm} is not supported by model={name.lower()}; "
                          f"valid norms for it: {', '.join(supported)}")
    positive_int("norm.groups")
    for key in ("max_shift", "padding"):
        v = _get(cfg, f"augment.{key}")
        if v is not None and (not _is_int(v) or v < 0):
            errors.append(f"augment.{key}={v!r} is invalid: it must be an integer >= 0")
    v = _get(cfg, "augment.std")
    if v is not None and (not _is_number(v) or v < 0):
        errors.append(f"augment.std={v!r} is invalid: it must be a number >= 0")
    in_range("augment.p", 0.0, 1.0, high_open=False)
    errors.extend(_augment_layout_errors(cfg))

    # optimizer and schedule
    positive_number("optimizer.lr")
    for key in ("weight_decay", "eps"):
        v = _get(cfg, f"optimizer.{key}")
        if v is not None and (not _is_number(v) or v < 0):
            errors.append(f"optimizer.{key}={v!r} is invalid: it must be a number >= 0")
    in_range("optimizer.momentum", 0.0, 1.0)
    in_range("scheduler.warmup_fraction", 0.0, 1.0)
    in_range("scheduler.pct_start", 0.0, 1.0)
    positive_int("scheduler.step_size")
    in_range("loss.label_smoothing", 0.0, 1.0)

    # data, trainer, budget
    positive_int("data.batch_size", optional=False)
    positive_int("data.eval_batch_size")
    positive_int("data.train_size")
    positive_int("data.source.num_samples")
    positive_int("data.source.length")
    v = _get(cfg, "data.val_fraction")
    if v is not None and (not _is_number(v) or not 0 < v < 1):
        errors.append(f"data.val_fraction={v!r} is invalid: it must be in (0, 1); validation accuracy is "
                      "what sweeps optimise and reports compare")
    in_range("data.test_fraction", 0.0, 1.0)
    val, test = _get(cfg, "data.val_fraction"), _get(cfg, "data.test_fraction")
    if _is_number(val) and _is_number(test) and val + test >= 1:
        errors.append(f"data.val_fraction + data.test_fraction = {val + test} leaves no training data; keep it < 1")
    if _get(cfg, "data.source._target_") == "ablate.data.sources.vision":
        from ablate.data.sources import VISION, missing_vision_files

        name = _get(cfg, "data.source.name")
        if name not in VISION:
            errors.append(f"data.source.name={name!r} is invalid; valid values: {', '.join(VISION)}")
        elif problem := missing_vision_files(name, str(_get(cfg, "data.source.root"))):
            errors.append(problem)
    positive_int("trainer.max_epochs", optional=False)
    positive_int("trainer.num_nodes")
    one_of("trainer.precision", PRECISIONS)
    if str(_get(cfg, "trainer.accelerator")) == "cpu" and str(_get(cfg, "trainer.precision")) in ("16", "16-mixed"):
        errors.append(f"trainer.precision={_get(cfg, 'trainer.precision')!r} is invalid with trainer.accelerator=cpu: "
                      "float16 autocast needs a GPU; on a CPU use bf16-mixed, 32 or 64")
    for key in ("max_epochs", "num_samples"):
        positive_int(f"budget.{key}")
    positive_int("threads")
    positive_int("steps_per_call")
    seeds = _get(cfg, "seeds")
    if seeds is not None:
        values = list(seeds) if OmegaConf.is_list(seeds) else None
        if not values or not all(_is_int(s) and s >= 0 for s in values) or len(set(values)) != len(values):
            errors.append(f"seeds={seeds!r} is invalid: a list of distinct integers >= 0 (e.g. seeds=[0,1,2]), "
                          "or null for the one run of seed")
    for path, low in (("lrs", "> 0"), ("weight_decays", ">= 0")):
        values = _get(cfg, path)
        if values is None:
            continue
        items = list(values) if OmegaConf.is_list(values) else None
        ok = items and all(_is_number(v) and (v > 0 if low == "> 0" else v >= 0) for v in items)
        if not ok or len(set(items)) != len(items):
            errors.append(f"{path}={values!r} is invalid: a list of distinct numbers {low} (one member each), or null")
    for path in ("vectorize",):
        v = _get(cfg, path)
        if v is not None and not isinstance(v, bool):
            errors.append(f"{path}={v!r} is invalid; valid values: true, false")
    seed = _get(cfg, "seed")
    if not _is_int(seed) or seed < 0:
        errors.append(f"seed={seed!r} is invalid: it must be an integer >= 0")

    # logger
    if str(_get(cfg, "logger._target_")).endswith("WandbLogger") and _get(cfg, "logger.mode") == "online":
        if not _wandb_key_available():
            errors.append("logger=wandb with logger.mode=online needs a W&B API key: run `wandb login` or set "
                          "WANDB_API_KEY; or keep logger.mode=offline (the default) and `wandb sync` later")
    one_of("logger.mode", ("offline", "online", "disabled"))

    errors += claim_errors(_get(cfg, "claim"))
    return errors


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
    it: the schema and its checks live in :mod:`ablate.report.claims` (torch- and SciPy-free)."""
    from ablate.report.claims import claim_errors as errors_of

    if claim is None:
        return []
    if OmegaConf.is_config(claim):
        try:
            claim = OmegaConf.to_container(claim, resolve=True)
        except Exception as e:  # noqa: BLE001 - an interpolation that does not resolve
            return [f"claim cannot be read: {e}"]
    return errors_of(claim)


def validate(cfg: DictConfig) -> DictConfig:
    """Raise :class:`ConfigError` listing every problem in ``cfg``; return it unchanged when it can run."""
    errors = config_errors(cfg)
    if errors:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(errors))
    return cfg


def _augment_layout_errors(cfg: DictConfig) -> list[str]:
    """An augment transform made for another sample layout than the data's (crop on signals)."""
    target, source = _get(cfg, "augment._target_"), _get(cfg, "data.source._target_")
    if not target or not isinstance(source, str) or not source.startswith("ablate.data.sources."):
        return []
    from ablate.data.sources import SAMPLE_DIMS     # imports Lightning: only when an augment is set

    try:
        dims = getattr(get_class(target), "sample_dims", None)
    except Exception:                    # an unimportable target is reported where it is built
        return []
    have = SAMPLE_DIMS.get(source.rsplit(".", 1)[-1])
    if dims is None or have is None or dims == have:
        return []
    layouts = {1: "feature vectors", 2: "(C, L) signals", 3: "(C, H, W) images"}
    name = str(target).rsplit(".", 1)[-1].lower()
    data = _get(cfg, "data.source.task") or _get(cfg, "data.source.name") or source.rsplit(".", 1)[-1]
    return [f"augment={name} takes {layouts[dims]}; data={data} gives {layouts[have]}"]
