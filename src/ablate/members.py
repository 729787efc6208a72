"""A job of several members (``seeds=[0,1,2]``, and ``lrs=[...]`` / ``weight_decays=[...]``): who
the members are, where each one's record goes, and each member's own logger.

The members are every combination of the job's ``seeds`` (else its ``seed``), ``lrs`` (else its
``optimizer.lr``) and ``weight_decays`` (else its ``optimizer.weight_decay``). Member ``k`` writes
its record in the folder the job of that one combination would have: in a sweep,
``<sweep dir>/<job id>`` where the job id hashes the ``override_dirname`` Hydra would give it (the
sorted ``key=value`` overrides, ``seeds=...`` replaced by ``seed=k``, ``lrs=...`` by
``optimizer.lr=...``); in a single run, the same name inside the run's folder. Reports, resume,
``runs.csv`` and W&B therefore see a vectorized job's records exactly as those of K jobs.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

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


class MemberLogging(L.Callback):
    """Each member's own logger (a CSVLogger in its folder, a W&B run of its own, ...): its row of
    the History at every epoch end, its test metrics, as a run of its own would log them (a W&B run
    gets its config when it starts, see ``ablate.run``). The Trainer of a vectorized job has no
    logger of its own; put this after the History."""

    def __init__(self, loggers: Sequence[Any], history):
        self.loggers, self.history = list(loggers), history

    def on_train_epoch_end(self, trainer, pl_module):
        row = self.history.rows[-1]
        for k, logger in enumerate(self.loggers):
            if k in pl_module.diverged:
                continue
            values = {name: (value[k] if isinstance(value, list) else value) for name, value in row.items()
                      if name not in ("epoch", "step")}
            logger.log_metrics({"epoch": row["epoch"], **{n: v for n, v in values.items() if isinstance(v, (int, float))}},
                               step=row["step"])
            logger.save()

    def log_test(self, metrics: Sequence[dict[str, float]], step: int) -> None:
        for logger, values in zip(self.loggers, metrics):
            if values:
                logger.log_metrics(values, step=step)
                logger.save()

    def finalize(self, statuses: Sequence[str]) -> None:
        for logger, status in zip(self.loggers, statuses):
            logger.finalize("success" if status == "ok" else "failed")
