"""One trial: check the config, build the parts, fit, test, write the run record.

config → instantiate → DataModule + AblationModule(model) → Trainer(+probes) → fit/test → record.json

Every job, one run or several members, takes the same path (:func:`run_job`): skip what is done →
check → threads → build (:mod:`ablate.assemble`) → logger(s) (:mod:`ablate.loggers`) → train →
record(s) (:mod:`ablate.outcome`) → write → clean up.

``seeds=[0,1,2]`` trains those seeds of the trial as one vectorized model (:mod:`ablate.vectorize`)
in one fit and writes one ordinary record per seed (:mod:`ablate.members`); a family that cannot be
vectorized runs them one after another, and says so.
"""

from __future__ import annotations

import copy
import logging
import shutil
import sys
import time
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig

from ablate.assemble import build, steps_per_call  # noqa: F401  (ablate.run.build/steps_per_call: public)
from ablate.checkpointing import LocalCheckpointIO
from ablate.loggers import MemberLogging, make_logger, member_logger, wandb_info
from ablate.members import Member, job_members, member_config, member_folders, set_member, vectorize_refusal
from ablate.module import AblationModule, Diverged
from ablate.outcome import OBJECTIVE, Outcome, finished, make_record, objective, write  # noqa: F401
from ablate.probes import History, Throughput
from ablate.provenance import multirun
from ablate.results import RECORD_NAME
from ablate.spawned import CarryState
from ablate.validate import ConfigError, validate

log = logging.getLogger("ablate")
# Lightning's start-up banner (devices, tips) repeats for every run of a sweep; warnings still show.
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def _resumable(checkpoint: Path, members: int = 1) -> str | None:
    """The checkpoint a killed run left behind, if it can be read (a kill can land mid-write) and
    holds the same number of members (a vectorized job relaunched for fewer seeds starts afresh)."""
    if not checkpoint.exists():
        return None
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        found = len(state.get("ablate_members", {}).get("alive", [None]))
        if found != members:
            raise ValueError(f"it holds {found} member(s), this job trains {members}")
    except Exception as e:  # noqa: BLE001 - unreadable for whatever reason: start the run afresh
        log.warning("ignoring unusable checkpoint %s (%s); starting %s from scratch", checkpoint, e,
                    checkpoint.parent.parent)
        checkpoint.unlink()
        return None
    log.info("resuming %s from %s", checkpoint.parent.parent, checkpoint)
    return str(checkpoint)


def _warn_batch_hooks(callbacks: Sequence[L.Callback], k: int) -> None:
    if k == 1:
        return
    for callback in callbacks:
        if getattr(callback, "batch_groups_ok", False):
            continue
        hooks = [h for h in ("on_train_batch_start", "on_train_batch_end") if is_overridden(h, callback, L.Callback)]
        if hooks:
            log.warning("steps_per_call=%d: %s.%s sees groups of up to %d batches (ablate.data.BatchGroup), "
                        "not single batches; set steps_per_call=1 for per-batch hooks", k,
                        type(callback).__name__, "/".join(hooks), k)


def train(cfg: DictConfig, datamodule, module: AblationModule, run_dir: Path, logger=None,
          member_loggers: Sequence | None = None) -> Outcome:
    """Fit and test ``module`` with the Trainer of ``cfg.trainer`` and the run's callbacks; resume
    from ``run_dir/checkpoints/last.ckpt`` when a killed run left one. A vectorized job passes
    ``member_loggers`` (each member's own) instead of ``logger``."""
    probes = [instantiate(spec) for spec in (cfg.get("probes") or {}).values()]
    _warn_batch_hooks(probes, module.steps_per_call)
    history, throughput = History(probes), Throughput()
    callbacks = [throughput, *probes, history]
    members = None
    if member_loggers:
        members = MemberLogging(member_loggers, history)
        callbacks.append(members)
    checkpoint_dir = run_dir / "checkpoints"
    checkpointing = bool(cfg.get("checkpoint", True))
    if checkpointing:
        # one file, overwritten every epoch (save_last alone never writes without a top-k save)
        callbacks.append(ModelCheckpoint(dirpath=checkpoint_dir, filename="last", save_top_k=1,
                                         enable_version_counter=False))
    carry = CarryState(run_dir)     # ddp_spawn: rank 0's measurements come back to this process
    callbacks.append(carry)
    # checkpoint=false means none at all: without enable_checkpointing=False Lightning adds its own
    # ModelCheckpoint (logs/checkpoints/epoch=...ckpt every epoch, left behind after the run)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger or False,
                                     default_root_dir=str(run_dir), plugins=[LocalCheckpointIO()],
                                     enable_checkpointing=checkpointing)
    outcome = Outcome(callbacks=callbacks, history=history, throughput=throughput, trainer=trainer,
                      member_logging=members)
    resume = _resumable(checkpoint_dir / "last.ckpt", module.members)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
        carry.restore(trainer)
        results = trainer.test(module, datamodule=datamodule, verbose=False)
        carry.restore(trainer)
        values = module.epoch_values("test")     # empty in this process when the test ran in spawned workers
        if values:
            outcome.test = [{name: float(v[k]) for name, v in values.items()} for k in range(module.members)]
        else:
            outcome.test = [{k: float(v) for k, v in (results[0] if results else {}).items()}]
    except Diverged as e:
        outcome.status, outcome.error = "diverged", str(e)
        log.warning("%s diverged: %s", run_dir, e)
    except Exception as e:  # noqa: BLE001 - any training fault becomes a `failed` record
        outcome.status, outcome.error = "failed", "".join(traceback.format_exception(e))
        log.error("%s failed: %s", run_dir, e)
    return outcome


# ---------------------------------------------------------------------------------------------
# The job: one run, or the members of a vectorized job
# ---------------------------------------------------------------------------------------------


def _check(cfg: DictConfig) -> None:
    try:
        validate(cfg)
    except ConfigError as e:
        print(f"ablate: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _built(cfg: DictConfig, members: Sequence[Member] | None = None):
    """:func:`build`, where a part that refuses its arguments (a family or a transform raising
    ValueError: a norm it cannot take, an augment for another data layout) stops the command with
    its message, before anything trains or is written."""
    try:
        return build(cfg, members)
    except (ValueError, InstantiationException) as e:
        cause = e if isinstance(e, ValueError) else e.__cause__
        if not isinstance(cause, ValueError):
            raise
        print(f"ablate: invalid config: {cause}", file=sys.stderr)
        raise SystemExit(2) from None


def run_trial(cfg: DictConfig) -> float:
    """Run the trial described by ``cfg`` and write its record(s); return the objective.

    A config that cannot run raises :class:`SystemExit` (2) before anything is built or written. A
    run that diverges or raises is recorded (``diverged`` / ``failed``) and, inside a sweep, the sweep
    goes on; a single failed run re-raises so the command exits non-zero. With several members
    (``seeds=[...]``, ``lrs=[...]``) the objective is the members' best.
    """
    return run_job(cfg, job_members(cfg))


def _skip(cfg: DictConfig, members: list[Member] | None, done: list[dict | None]) -> float:
    run_dir = Path(cfg.run_dir)
    if members is None:
        log.info("skipping %s: already done (status ok, record %s)", run_dir, run_dir / RECORD_NAME)
    else:
        log.info("skipping %s: every member already done", cfg.run_dir)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # a kill between record(s) and clean-up
    return max(objective(d["metrics"]) for d in done)


def _vectorized(members: Sequence[Member], index: int, job: str) -> dict:
    """The record's ``vectorized`` field of member ``index``: the job, and what varies across it."""
    varying = {"seeds": [m.seed for m in members]}
    for key, values in (("optimizer.lr", [m.lr for m in members]),
                        ("optimizer.weight_decay", [m.weight_decay for m in members])):
        if any(v is not None for v in values):
            varying[key] = values
    return {"members": len(members), "index": index, "job": job, **varying}


class _MemberConfigs:
    """Member ``k``'s config (what :func:`ablate.members.member_config` gives: the config of the one-run
    job of that member), one member at a time, made on one copy of the job's config: a copy per member
    costs ~8 ms, 1-2% of an experiment of many small vectorized jobs. Each is used (a logger made, a
    record made) before the next is asked for. Members that differ in which of ``optimizer.lr`` /
    ``optimizer.weight_decay`` they set (never, from :func:`~ablate.members.job_members`) get a copy each."""

    def __init__(self, cfg: DictConfig, members: Sequence[Member], folders: Sequence[Path]):
        self.cfg, self.members, self.folders = cfg, list(members), list(folders)
        sets = {(m.lr is not None, m.weight_decay is not None) for m in self.members}
        self.shared = copy.deepcopy(cfg) if len(sets) == 1 else None

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, k: int) -> DictConfig:
        member, folder = self.members[k], self.folders[k]
        if self.shared is None:
            return member_config(self.cfg, member, folder)
        return set_member(self.shared, member, folder)


def run_job(cfg: DictConfig, members: list[Member] | None = None) -> float:
    """The job of ``cfg``: one seed (``cfg.seed``, ``members`` None) in ``cfg.run_dir``, or the
    members of a several-member job (:func:`ablate.members.job_members`), as one vectorized fit when
    the family and setup allow it, else one after another; either way one record per member, in the
    folder the one-run job of that member would use."""
    run_dir = Path(cfg.run_dir)
    folders = member_folders(cfg, members) if members is not None else [run_dir]
    done = [finished(folder) for folder in folders]
    if all(done):
        return _skip(cfg, members, done)
    _check(cfg)
    if members is not None:
        todo = [(m, f) for m, f, d in zip(members, folders, done) if d is None]
        refusal = vectorize_refusal(cfg, [m for m, _ in todo])
        if refusal is not None:
            if cfg.get("vectorize", True):
                log.warning("%s: the %d members run one after another", refusal, len(todo))
            return max(run_job(member_config(cfg, m, f)) for m, f in todo)
        members, folders = [m for m, _ in todo], [f for _, f in todo]
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    if members is None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)   # members are seeded as they are built
    datamodule, module = _built(cfg, members)
    if members is None:
        configs, whom, logger = [cfg], [int(cfg.seed)], make_logger(cfg, run_dir)
        loggers, member_loggers = [logger], None
    else:
        configs, whom = _MemberConfigs(cfg, members, folders), members
        loggers = [member_logger(configs[k], f) for k, f in enumerate(folders)]
        logger, member_loggers = None, loggers if all(loggers) else None
    outcome = train(cfg, datamodule, module, run_dir, logger=logger, member_loggers=member_loggers)
    wall = time.perf_counter() - t0
    records = []
    for index, (who, folder, own) in enumerate(zip(whom, folders, loggers)):
        config = configs[index]
        extra = {"wandb": wandb_info(own)}
        if members is not None:
            extra["vectorized"] = _vectorized(members, index, run_dir.name)
        records.append(make_record(config, outcome, module, folder, who, None if members is None else index,
                                   datamodule.num_classes, started, wall, extra=extra))
    for folder, record in zip(folders, records):
        write(outcome.trainer, folder, record)
    if outcome.member_logging is not None:
        outcome.member_logging.log_test([r.metrics if r.ok else {} for r in records], outcome.trainer.global_step)
        outcome.member_logging.finalize([r.status for r in records])
    # the record is the done marker now; a vectorized job's diverged members are final too (nothing to resume)
    final = outcome.status == "ok" if members is None else outcome.status != "failed"
    if outcome.trainer.is_global_zero and final:
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    if outcome.status == "failed" and not multirun():
        raise RuntimeError(f"run failed: {outcome.error.strip().splitlines()[-1]}")
    return max(objective(r.metrics) for r in records)
