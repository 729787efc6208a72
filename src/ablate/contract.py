"""The model contract (docs/models.md): a model is any ``nn.Module`` class or factory that
``model._target_`` names. ablate passes it ``input_shape`` and ``num_classes``; the parts it can swap
(``activation``, ``norm``, ``init``) and the fields of the ``model`` node (``depth``, ``width``, ...)
only where its signature takes them (``**kwargs`` takes everything): what it does not take is never
passed. A user's model is then built once and given two samples of the data, so that one that
cannot take them (wrong input size, wrong output shape) stops before any job trains, its shapes named.

Torch-free at import, like the config check that reads it (:mod:`ablate.validate`, in the process that
launches a sweep); only :func:`batch_errors` imports torch, and only for a model outside ablate (whose
import has brought torch in already).
"""

from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("ablate")

REQUIRED = ("input_shape", "num_classes")     # what every model is passed
PARTS = ("activation", "norm", "init")        # what ablate swaps, passed where the model takes it
HYDRA_KEYS = ("_target_", "_partial_", "_args_", "_convert_", "_recursive_")
PROBE_SAMPLES = 2


@dataclass(frozen=True)
class Signature:
    """The keyword arguments a model takes: ``names``, or anything (``any``: ``**kwargs``, or a
    callable whose signature cannot be read)."""

    names: tuple[str, ...]
    any: bool = False

    @classmethod
    def of(cls, target: Callable) -> "Signature":
        try:
            parameters = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):      # a builtin without a readable signature: ask nothing of it
            return cls((), any=True)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return cls(tuple(p.name for p in parameters if p.kind in kinds),
                   any=any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters))

    def takes(self, name: str) -> bool:
        return self.any or name in self.names

    def split(self, fields: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """The keys of a ``model`` node it takes (Hydra's own keys always) and those it does not."""
        keys = [k for k in fields if k not in HYDRA_KEYS]
        return [k for k in fields if k in HYDRA_KEYS or self.takes(k)], [k for k in keys if not self.takes(k)]

    def describe(self) -> str:
        return "**kwargs" if self.any and not self.names else ", ".join(self.names) + (", **kwargs" if self.any else "")


def target_of(model: Any) -> Callable:
    """The class or factory ``model._target_`` names (imported)."""
    from hydra.utils import get_object

    return get_object(str(model.get("_target_")))


def signature_errors(target: str, signature: Signature, norm: str | None) -> list[str]:
    """What a model outside ablate must take: ``input_shape`` and ``num_classes`` always, ``norm`` when
    the config asks for one."""
    found = []
    missing = [name for name in REQUIRED if not signature.takes(name)]
    if missing:
        found.append(f"model._target_={target} must take {' and '.join(REQUIRED)} (ablate passes both); "
                     f"it takes no {', '.join(missing)} (its parameters: {signature.describe() or 'none'})")
    if norm not in (None, "none") and not signature.takes("norm"):
        found.append(f"norm={norm} needs a model that takes norm; model._target_={target} takes no norm "
                     f"(its parameters: {signature.describe() or 'none'}); use norm=none")
    return found


def set_field_errors(model: Any, overrides: Sequence[str]) -> list[str]:
    """A ``model.<key>`` that the command line or a sweep sets, on a model of the user's own whose
    signature does not take it: never passed, the runs would differ only in their labels (a sweep of
    ``model.depth`` over a model without ``depth`` compares a model with itself)."""
    from ablate.families import builtin_family

    target = model.get("_target_") if model is not None else None
    if not target or builtin_family(str(target)) is not None:
        return []
    from hydra.core.override_parser.overrides_parser import OverridesParser

    signature = Signature.of(target_of(model))
    found = []
    for override in OverridesParser.create().parse_overrides([str(o) for o in overrides]):
        key = override.key_or_group
        field = key[len("model."):] if key.startswith("model.") else None
        if override.is_delete() or not field or "." in field or field in HYDRA_KEYS or signature.takes(field):
            continue
        found.append(f"{key}={override.get_value_element_as_str()} is set, but model._target_={target} takes no "
                     f"{field} (its parameters: {signature.describe() or 'none'}): it would never reach the model, and "
                     f"runs that differ in it would differ only in their labels; give the model a {field} parameter, "
                     "or leave it out")
    return found


def model_builder(model: DictConfig, input_shape: tuple[int, ...], num_classes: int,
                  parts: Mapping[str, Callable[[], Any]], report: bool = True) -> Callable[[], Any]:
    """A function building the ``model`` node's model: with ``input_shape``, ``num_classes``, the
    ``parts`` (name -> a function giving it) its signature takes, and only the node's fields it takes;
    the others are left out, said once in the log (``report``)."""
    from hydra.utils import instantiate

    signature = Signature.of(target_of(model))
    kept, dropped = signature.split(model)
    if dropped and report:
        log.info("model._target_=%s takes no %s: not passed (its parameters: %s)", model._target_,
                 ", ".join(dropped), signature.describe())
    node = OmegaConf.masked_copy(model, kept) if dropped else model
    taken = [name for name in parts if signature.takes(name)]
    shape, classes = tuple(int(n) for n in input_shape), int(num_classes)  # plain values, not Hydra's containers
    return lambda: instantiate(node, _partial_=True)(input_shape=shape, num_classes=classes,
                                                     **{name: parts[name]() for name in taken})


def _shape(t: Any) -> str:
    return "(" + ", ".join(str(n) for n in t) + ("," if len(t) == 1 else "") + ")"


def _key(cfg: DictConfig) -> str | None:
    try:
        nodes = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("model", "data", "activation", "norm")
                 if cfg.get(k) is not None}
    except Exception:  # noqa: BLE001 - an interpolation that does not resolve here: no probe
        return None
    return OmegaConf.to_yaml(nodes)


def batch_errors(cfg: DictConfig) -> list[str]:
    """Build ``cfg.model`` once (a model outside ablate: the built-in families take any input) and run
    it on :data:`PROBE_SAMPLES` training samples on the CPU; a message naming ``model._target_`` and
    the shapes when it cannot take them or gives another output than ``(batch, num_classes)``
    (``(batch, num_classes, L)`` for one target a position). Once per model and data in a process."""
    from ablate.families import builtin_family

    target = OmegaConf.select(cfg, "model._target_", default=None)
    if not target or builtin_family(target) is not None or (key := _key(cfg)) is None:
        return []
    message = _probe(key)
    return [message] if message else []


@functools.lru_cache(maxsize=16)
def _probe(key: str) -> str | None:
    import torch
    from hydra.utils import instantiate

    cfg = OmegaConf.create(key)
    try:
        datamodule = instantiate(cfg.data)
        x, y = next(iter(datamodule.train_dataloader()))
        x, y = x[:PROBE_SAMPLES].cpu(), y[:PROBE_SAMPLES].cpu()
        input_shape, num_classes = tuple(datamodule.input_shape), int(datamodule.num_classes)
    except Exception:  # noqa: BLE001 - the data's own errors are the run's to report, not the model's
        return None
    target = cfg.model._target_
    parts = {"activation": lambda: instantiate(cfg.activation), "norm": lambda: instantiate(cfg.norm),
             "init": lambda: instantiate(cfg.init) if cfg.get("init") is not None else None}
    with torch.random.fork_rng(devices=[]):     # the run's seeding is not disturbed
        try:
            model = model_builder(cfg.model, input_shape, num_classes, parts, report=False)()
        except Exception as e:  # noqa: BLE001 - whatever the constructor raises, said with its arguments
            return (f"model._target_={target} cannot be built with input_shape={_shape(input_shape)}, "
                    f"num_classes={num_classes}: {type(e).__name__}: {e}")
        model.eval()
        try:
            with torch.no_grad():
                out = model(x, targets=y) if getattr(model, "takes_targets", False) else model(x)
        except Exception as e:  # noqa: BLE001
            return (f"model._target_={target} cannot take a batch of the data: input {_shape(x.shape)} "
                    f"(batch, *input_shape={_shape(input_shape)}) raised {type(e).__name__}: {e}")
    expected = (len(x), num_classes, *y.shape[1:])
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    if got != expected:
        what = "(batch, num_classes" + (", L) for one target a position" if y.dim() > 1 else ")")
        return (f"model._target_={target} gives the wrong output for the data: input {_shape(x.shape)} gave "
                f"{_shape(got) if got is not None else type(out).__name__}; ablate expects {_shape(expected)}, "
                f"{what}, num_classes={num_classes}")
    return None
