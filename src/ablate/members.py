"""A job of several members (``seeds=[0,1,2]``, and ``lrs=[...]`` / ``weight_decays=[...]``): who
the members are, where each one's record goes, each one's config, and whether they can train as
one stacked model (:func:`vectorize_refusal`). Each member's own logger is
:class:`ablate.loggers.MemberLogging`.

This module reads only the config and never imports torch or Lightning: the ablate sweeper asks
:func:`vectorize_refusal` in the process that launches a sweep, and with a parallel launcher
(joblib, submitit) that process never trains.

The members are every combination of the job's ``seeds`` (else its ``seed``), ``lrs`` (else its
``optimizer.lr``) and ``weight_decays`` (else its ``optimizer.weight_decay``). Member ``k`` writes
its record in the folder the job of that one combination would have: in a sweep,
``<sweep dir>/<job id>`` where the job id hashes the ``override_dirname`` Hydra would give it (the
sorted ``key=value`` overrides, ``seeds=...`` replaced by ``seed=k``, ``lrs=...`` by
``optimizer.lr=...``); in a single run, the same name inside the run's folder. Reports, resume,
``runs.csv`` and W&B therefore see a vectorized job's records exactly as those of K jobs.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_class
from omegaconf import DictConfig, open_dict

import ablate

# a list key of the job -> the config key each member sets from it
MEMBER_KEYS = {"seeds": "seed", "lrs": "optimizer.lr", "weight_decays": "optimizer.weight_decay"}


@dataclass(frozen=True)
class Member:
    """One run of a several-member job: its seed and, when they vary, its rate and decay."""

    seed: int
    lr: float | None = None            # None: the job's optimizer.lr
    weight_decay: float | None = None  # None: the job's optimizer.weight_decay

    def overrides(self) -> dict[str, str]:
        """``key -> value text`` as a one-run job of this member would have them (Hydra writes a
        number as Python's ``str`` does)."""
        out = {"seed": str(self.seed)}
        if self.lr is not None:
            out["optimizer.lr"] = str(self.lr)
        if self.weight_decay is not None:
            out["optimizer.weight_decay"] = str(self.weight_decay)
        return out


def job_members(cfg: DictConfig) -> list[Member] | None:
    """The members of ``cfg``'s job, or None for a one-run job (none of the list keys set)."""
    if not any(cfg.get(key) for key in MEMBER_KEYS):
        return None
    seeds = list(cfg.seeds) if cfg.get("seeds") else [cfg.seed]
    lrs = list(cfg.lrs) if cfg.get("lrs") else [None]
    decays = list(cfg.weight_decays) if cfg.get("weight_decays") else [None]
    return [Member(int(s), lr, wd) for s, lr, wd in itertools.product(seeds, lrs, decays)]


def member_dirname(task_overrides: Sequence[str], member: Member | int, exclude_keys: Sequence[str] = (),
                   item_sep: str = ",", kv_sep: str = "=") -> str:
    """Hydra's ``override_dirname`` of the one-run job of ``member`` (a seed alone stands for
    ``Member(seed)``): the job's sorted override lines with the member keys replaced."""
    member = Member(member) if isinstance(member, int) else member
    own = member.overrides()
    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    drop = {*MEMBER_KEYS, *own, *exclude_keys}
    lines = [o.input_line for o in parsed if o.key_or_group not in drop]
    lines += [f"{key}={value}" for key, value in own.items() if key not in exclude_keys]
    return re.sub("=", kv_sep, item_sep.join(sorted(lines)))


def member_folders(cfg: DictConfig, members: Sequence[Member]) -> list[Path]:
    """Where each member's record goes (see the module docstring)."""
    run_dir = Path(cfg.run_dir)
    if not HydraConfig.initialized():          # composed outside a Hydra app (tests, the bench)
        return [run_dir / ",".join(f"{k}={v}" for k, v in m.overrides().items()) for m in members]
    hydra = HydraConfig.get()
    dirname = hydra.job.config.override_dirname
    multirun = str(hydra.mode) == "RunMode.MULTIRUN"
    base = Path(hydra.sweep.dir) if multirun else run_dir
    return [base / ablate.job_id(member_dirname(hydra.overrides.task, m, list(dirname.exclude_keys),
                                                dirname.item_sep, dirname.kv_sep)) for m in members]


def member_config(cfg: DictConfig, member: Member, folder: Path) -> DictConfig:
    """The config the one-run job of ``member`` in ``folder`` would have."""
    return set_member(copy.deepcopy(cfg), member, folder)


def set_member(config: DictConfig, member: Member, folder: Path) -> DictConfig:
    """``config`` (a job's copy, changed in place) made the config of ``member`` in ``folder``."""
    with open_dict(config):
        config.seed = member.seed
        if member.lr is not None:
            config.optimizer.lr = member.lr
        if member.weight_decay is not None:
            config.optimizer.weight_decay = member.weight_decay
        for key in MEMBER_KEYS:
            config[key] = None
        config.run_dir = str(folder)
    return config


# ---------------------------------------------------------------------------------------------
# Whether the members can be one stacked model, from the config alone
# ---------------------------------------------------------------------------------------------

# A built-in family (ablate.models.<name>) -> why it cannot be stacked, None when it can: the
# families' own ``vectorizable`` / ``not_vectorizable_because`` attributes (tests/test_members.py
# checks they agree), readable here without importing the families and torch. Another family is
# imported and asked.
NOT_VECTORIZABLE: dict[str, str | None] = {
    "MLP": None,
    "CNN": None,
    "VGG": None,
    "ResNet": None,
    "Transformer": "vmap runs scaled_dot_product_attention through a per-sample fallback: 4 stacked seeds "
                   "took 1.9x as long as 4 runs one by one here",
    "RNN": "torch.func.vmap has no batching rule for the fused nn.RNN/LSTM/GRU kernels",
}

# The optimizers that take a learning rate per member (ablate.optim.ELEMENTWISE, by class name; tests
# check they agree), and the targets that name them. Another target is imported and asked.
ELEMENTWISE_NAMES = ("SGD", "Adam", "AdamW", "RMSprop")
_ELEMENTWISE_TARGETS = frozenset(f"torch.optim.{path}{name}" for name in ELEMENTWISE_NAMES
                                 for path in ("", f"{name.lower()}."))


def _family_refusal(target: str) -> str | None:
    module, _, name = str(target).rpartition(".")
    if name in NOT_VECTORIZABLE and module in ("ablate.models", f"ablate.models.{name.lower()}"):
        why = NOT_VECTORIZABLE[name]
    else:
        family = get_class(target)
        name = family.__name__
        why = None if getattr(family, "vectorizable", False) else \
            getattr(family, "not_vectorizable_because", "it does not declare itself vectorizable")
    return None if why is None else f"model={name.lower()} cannot be vectorized ({why})"


def _takes_member_rates(target: str) -> tuple[bool, str]:
    """Whether optimizer ``target`` takes a learning rate per member, and its class name."""
    if target in _ELEMENTWISE_TARGETS:
        return True, target.rpartition(".")[2]
    from ablate.optim import ELEMENTWISE        # imports torch: an optimizer outside torch.optim's four

    optimizer = get_class(target)
    return issubclass(optimizer, ELEMENTWISE), optimizer.__name__


def vectorize_refusal(cfg: DictConfig, members: Sequence[Member] = ()) -> str | None:
    """Why a several-member job cannot train as one stacked model here (None when it can)."""
    if not cfg.get("vectorize", True):
        return "vectorize=false"
    refusal = _family_refusal(cfg.model._target_)
    if refusal is not None:
        return refusal
    trainer = cfg.trainer
    if str(trainer.get("strategy", "auto")) not in ("auto", "single_device") or trainer.get("num_nodes", 1) != 1 \
            or (trainer.get("devices") not in (1, "1", None)):
        return "vectorized seeds train on one device (trainer.strategy/devices ask for several)"
    if trainer.get("gradient_clip_val"):
        return ("trainer.gradient_clip_val clips the norm of all members' gradients together, not each "
                "member's own")
    if "plateau" in str(cfg.scheduler.get("_target_", "")):
        return "scheduler=plateau follows one monitored metric, and each member has its own"
    if any(m.lr is not None or m.weight_decay is not None for m in members):
        elementwise, name = _takes_member_rates(str(cfg.optimizer._target_))
        if not elementwise:
            return (f"optimizer={name} takes no per-member learning rate (ablate.optim.MemberRates "
                    f"needs {', '.join(ELEMENTWISE_NAMES)})")
    return None
