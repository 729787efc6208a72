"""One trial: check the config, build the parts, fit, test, write the run record.

config → instantiate → DataModule + AblationModule(model) → Trainer(+probes) → fit/test → record.json

``seeds=[0,1,2]`` trains those seeds of the trial as one vectorized model (:mod:`ablate.vectorize`)
in one fit and writes one ordinary record per seed (:mod:`ablate.members`); a family that cannot be
vectorized runs them one after another, and says so.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import platform
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig, OmegaConf, open_dict

import ablate
from ablate.checkpointing import LocalCheckpointIO
from ablate.members import MEMBER_KEYS, Member, MemberLogging, job_members, member_folders
from ablate.module import AblationModule, Diverged
from ablate.optim import ELEMENTWISE
from ablate.probes import History, Throughput
from ablate.results import RECORD_NAME, RunRecord, read_record, write_record
from ablate.spawned import CarryState
from ablate.validate import ConfigError, validate
from ablate.vectorize import Stacked

log = logging.getLogger("ablate")
# Lightning's start-up banner (devices, tips) repeats for every run of a sweep; warnings still show.
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")

OBJECTIVE = ("val/acc", "max")  # what a sweeper (Optuna) optimises; failed or diverged runs get the worst value


# ---------------------------------------------------------------------------------------------
# Where the run stands
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, Any]:
    try:
        git = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        commit = git.stdout.strip() if git.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"python": platform.python_version(), "torch": torch.__version__, "lightning": L.__version__,
            "ablate": ablate.__version__, "git_commit": commit}


def job_overrides() -> dict[str, str]:
    """This job's own command-line and sweep overrides, ``key -> value`` (empty outside a Hydra app)."""
    if not HydraConfig.initialized():
        return {}
    out = {}
    for override in HydraConfig.get().overrides.task:
        key, _, value = override.partition("=")
        out[key.lstrip("+~")] = value if value or not key.startswith("~") else None  # ~key deletes it
    return out


def group_choices() -> dict[str, str]:
    """Which file of each config group this run used (``{"model": "resnet", "optimizer": "adam"}``)."""
    if not HydraConfig.initialized():
        return {}
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra/")}


def _multirun() -> bool:
    return HydraConfig.initialized() and str(HydraConfig.get().mode) == "RunMode.MULTIRUN"


def _objective(metrics: dict[str, Any]) -> float:
    metric, goal = OBJECTIVE
    value = metrics.get(metric)
    if value is None or not math.isfinite(value):
        return -math.inf if goal == "max" else math.inf
    return float(value)


def _finished(run_dir: Path) -> dict[str, Any] | None:
    """The record of a run that already finished (status ok), else None: such runs are not redone."""
    path = run_dir / RECORD_NAME
    if not path.exists():
        return None
    try:
        record = read_record(path)
    except (OSError, ValueError):
        return None
    return record if record.get("status") == "ok" else None


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


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


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


def _logger(cfg: DictConfig, run_dir: Path, **extra):
    if not cfg.get("logger") or "_target_" not in cfg.logger:
        return None
    if issubclass(get_class(cfg.logger._target_), WandbLogger):
        experiment = cfg.get("experiment") or "ablate"
        sweep = HydraConfig.get().sweep.dir if HydraConfig.initialized() else None
        if cfg.logger.get("group") is None:
            extra["group"] = f"{experiment}-{Path(sweep).name}" if sweep and _multirun() else experiment
        extra["tags"] = [*cfg.logger.get("tags", []), experiment]
        extra["name"] = run_dir.name
        extra["config"] = OmegaConf.to_container(cfg, resolve=True)
    if "save_dir" in cfg.logger:
        extra["save_dir"] = str(run_dir)
    # a partial, then called: `config` (W&B's run config) is also the name of instantiate's own argument
    return instantiate(cfg.logger, _partial_=True)(**extra)


def vectorize_refusal(cfg: DictConfig, members: Sequence[Member] = ()) -> str | None:
    """Why a several-member job cannot train as one stacked model here (None when it can)."""
    if not cfg.get("vectorize", True):
        return "vectorize=false"
    family = get_class(cfg.model._target_)
    if not getattr(family, "vectorizable", False):
        why = getattr(family, "not_vectorizable_because", "it does not declare itself vectorizable")
        return f"model={family.__name__.lower()} cannot be vectorized ({why})"
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
        optimizer = get_class(cfg.optimizer._target_)
        if not issubclass(optimizer, ELEMENTWISE):
            return (f"optimizer={optimizer.__name__} takes no per-member learning rate (ablate.optim.MemberRates "
                    f"needs {', '.join(c.__name__ for c in ELEMENTWISE)})")
    return None


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a fit + test left: status, error, test metrics per member, the callbacks that measured."""

    status: str = "ok"
    error: str | None = None
    test: list[dict[str, float]] = field(default_factory=list)
    callbacks: list = field(default_factory=list)
    history: History | None = None
    throughput: Throughput | None = None
    trainer: L.Trainer | None = None
    member_logging: MemberLogging | None = None


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


def _pick(value: Any, member: int | None) -> Any:
    """Member ``member``'s entry of a per-member list (History rows, probe metrics)."""
    return value[member] if member is not None and isinstance(value, list) else value


def _summaries(callbacks: Sequence, member: int | None) -> dict[str, Any]:
    summaries: dict[str, Any] = {}
    for callback in callbacks:
        if hasattr(callback, "summary"):
            summaries.update(callback.summary(member=member or 0))
    return summaries


def make_record(cfg: DictConfig, outcome: Outcome, module: AblationModule, run_dir: Path, who: Member | int,
                member: int | None, num_classes: int, started: datetime, wall_time_s: float,
                extra: dict | None = None) -> RunRecord:
    """The record of one run (``who`` its seed), or of member ``member`` (``who``) of a vectorized job."""
    seed = who.seed if isinstance(who, Member) else int(who)
    status, error = outcome.status, outcome.error
    stop_epoch = None
    if member is not None and member in module.diverged and status != "failed":
        status, error, stop_epoch = "diverged", module.diverged[member]["error"], module.diverged[member]["epoch"]
    elif member is not None and status == "diverged":
        status = "diverged"
    rows = [{k: _pick(v, member) for k, v in row.items()} for row in outcome.history.rows
            if stop_epoch is None or row["epoch"] < stop_epoch]
    metrics = {**(rows[-1] if rows else {})}
    if status == "ok":
        metrics.update(outcome.test[member or 0] if outcome.test else {})
    metrics.pop("epoch", None), metrics.pop("step", None)
    for callback in outcome.callbacks:
        if hasattr(callback, "final_metrics") and stop_epoch is None:
            metrics.update({k: _pick(v, member) for k, v in callback.final_metrics().items()})
    members = module.members if member is not None else 1
    trainer = outcome.trainer
    per_rank = int(cfg.data.batch_size)
    config = OmegaConf.to_container(cfg, resolve=True)
    record = RunRecord(
        run_id=run_dir.name, status=status, error=error, experiment=cfg.get("experiment"), seed=int(seed),
        overrides=_member_overrides(who) if isinstance(who, Member) else job_overrides(),
        choices=group_choices(), config=config,
        claim=OmegaConf.to_container(cfg.claim, resolve=True) if cfg.get("claim") else None,
        metrics=metrics, history=rows, probes=_summaries(outcome.callbacks, member),
        params=sum(p.numel() for p in module.model.parameters()) // members,
        num_classes=int(num_classes),
        wall_time_s=wall_time_s / members, samples_per_s=outcome.throughput.samples_per_s / members,
        epochs_completed=len(rows),
        batch_size={"per_rank": per_rank, "world_size": trainer.world_size,
                    "effective": per_rank * trainer.world_size * trainer.accumulate_grad_batches},
        versions=versions(), threads=torch.get_num_threads(),
        started_at=started.isoformat(timespec="seconds"),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    )
    return record


def _member_overrides(member: Member) -> dict[str, str]:
    own = member.overrides()
    overrides = {k: v for k, v in job_overrides().items() if k not in (*MEMBER_KEYS, *own)}
    return {**overrides, **own}


def _wandb_info(logger) -> dict | None:
    if isinstance(logger, WandbLogger):
        run = logger.experiment
        return {"project": run.project, "entity": run.entity, "group": run.group, "id": run.id}
    return None


def _write(trainer: L.Trainer, run_dir: Path, record: RunRecord) -> None:
    if trainer.is_global_zero:  # under DDP only rank 0 writes
        write_record(run_dir, record)
        log.info("%s: %s; %s", run_dir, record.status,
                 ", ".join(f"{k}={v:.4g}" for k, v in sorted(record.metrics.items())
                           if k.endswith(("/acc", "/loss")) and isinstance(v, float)))


# ---------------------------------------------------------------------------------------------
# Entry points
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
    members = job_members(cfg)
    return run_members(cfg, members) if members else run_one(cfg)


def run_one(cfg: DictConfig) -> float:
    """One seed (``cfg.seed``) in ``cfg.run_dir``."""
    run_dir = Path(cfg.run_dir)
    if done := _finished(run_dir):
        log.info("skipping %s: already done (status ok, record %s)", run_dir, run_dir / RECORD_NAME)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # a kill between record and clean-up
        return _objective(done["metrics"])
    _check(cfg)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, module = _built(cfg)
    logger = _logger(cfg, run_dir)
    outcome = train(cfg, datamodule, module, run_dir, logger=logger)
    record = make_record(cfg, outcome, module, run_dir, int(cfg.seed), None, datamodule.num_classes, started,
                         time.perf_counter() - t0, extra={"wandb": _wandb_info(logger)})
    _write(outcome.trainer, run_dir, record)
    if outcome.trainer.is_global_zero and record.status == "ok":
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # the record is the done marker now
    if record.status == "failed" and not _multirun():
        raise RuntimeError(f"run failed: {record.error.strip().splitlines()[-1]}")
    return _objective(record.metrics)


def run_members(cfg: DictConfig, members: list[Member]) -> float:
    """The members of one job (:func:`ablate.members.job_members`): as one vectorized fit when the
    family and setup allow it, else one after another; either way one record per member, in the
    folder the one-run job of that member would use."""
    folders = dict(zip(members, member_folders(cfg, members)))
    done = {m: _finished(folder) for m, folder in folders.items()}
    todo = [m for m in members if done[m] is None]
    if not todo:
        log.info("skipping %s: every member already done", cfg.run_dir)
        shutil.rmtree(Path(cfg.run_dir) / "checkpoints", ignore_errors=True)  # a kill between records and clean-up
        return max(_objective(d["metrics"]) for d in done.values())
    _check(cfg)
    refusal = vectorize_refusal(cfg, todo)
    if refusal is not None:
        if cfg.get("vectorize", True):
            log.warning("%s: the %d members run one after another", refusal, len(todo))
        return max(run_one(_member_config(cfg, m, folders[m])) for m in todo)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    run_dir = Path(cfg.run_dir)
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    datamodule, module = _built(cfg, members=todo)
    configs = [_member_config(cfg, m, folders[m]) for m in todo]
    loggers = [_logger(c, folders[m], **_wandb_member(c)) for c, m in zip(configs, todo)]
    outcome = train(cfg, datamodule, module, run_dir,
                    member_loggers=loggers if all(loggers) else None)
    wall = time.perf_counter() - t0
    varying = {"seed": [m.seed for m in todo]}
    for key, values in (("optimizer.lr", [m.lr for m in todo]), ("optimizer.weight_decay", [m.weight_decay for m in todo])):
        if any(v is not None for v in values):
            varying[key] = values
    records = []
    for index, member in enumerate(todo):
        vectorized = {"members": len(todo), "index": index, "job": run_dir.name, **{
            "seeds" if key == "seed" else key: values for key, values in varying.items()}}
        records.append(make_record(configs[index], outcome, module, folders[member], member, index,
                                   datamodule.num_classes, started, wall,
                                   extra={"vectorized": vectorized, "wandb": _wandb_info(loggers[index])}))
    for member, record in zip(todo, records):
        _write(outcome.trainer, folders[member], record)
    if outcome.member_logging is not None:
        outcome.member_logging.log_test([r.metrics if r.status == "ok" else {} for r in records],
                                        outcome.trainer.global_step)
        outcome.member_logging.finalize([r.status for r in records])
    if outcome.status != "failed":        # every member's record is final (ok or diverged): nothing to resume
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    if outcome.status == "failed" and not _multirun():
        raise RuntimeError(f"run failed: {outcome.error.strip().splitlines()[-1]}")
    return max(_objective(r.metrics) for r in records)


def _wandb_member(cfg: DictConfig) -> dict:
    """A W&B run per member, several in one process."""
    if cfg.get("logger") and issubclass(get_class(cfg.logger.get("_target_", "builtins.object")), WandbLogger):
        return {"reinit": "create_new"}
    return {}


def _member_config(cfg: DictConfig, member: Member, folder: Path) -> DictConfig:
    """The config the one-run job of ``member`` in ``folder`` would have."""
    config = copy.deepcopy(cfg)
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
