"""One trial: check the config, build the parts, fit, test, write the run record.

config → instantiate → DataModule + AblationModule(model) → Trainer(+probes) → fit/test → record.json
"""

from __future__ import annotations

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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

import ablate
from ablate.checkpointing import LocalCheckpointIO
from ablate.module import AblationModule, keep_callback_state
from ablate.probes import Diverged, Divergence, History, Throughput
from ablate.results import RECORD_NAME, SCHEMA_VERSION, read_record, write_record
from ablate.validate import ConfigError, validate

log = logging.getLogger("ablate")
# Lightning's start-up banner (devices, tips) repeats for every run of a sweep; warnings still show.
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")

OBJECTIVE = ("val/acc", "max")  # what a sweeper (Optuna) optimises; failed or diverged runs get the worst value


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


def _resumable(checkpoint: Path) -> str | None:
    """The checkpoint a killed run left behind, if it can be read (a kill can land mid-write)."""
    if not checkpoint.exists():
        return None
    try:
        torch.load(checkpoint, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - unreadable for whatever reason: start the run afresh
        log.warning("ignoring unreadable checkpoint %s (%s); starting %s from scratch", checkpoint, e,
                    checkpoint.parent.parent)
        checkpoint.unlink()
        return None
    log.info("resuming %s from %s", checkpoint.parent.parent, checkpoint)
    return str(checkpoint)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, AblationModule]:
    """Instantiate the data and the module from config. The model never sees Hydra: it receives its
    input shape, class count, an activation factory and a :class:`~ablate.nn.Norm`."""
    datamodule = instantiate(cfg.data)
    activation = instantiate(cfg.activation)
    model = instantiate(cfg.model, input_shape=datamodule.input_shape, num_classes=datamodule.num_classes,
                        activation=activation, norm=instantiate(cfg.norm))
    instantiate(cfg.init)(model, activation)
    compile_ = cfg.get("compile", False)  # true, or torch.compile options such as {mode: max-autotune}
    if OmegaConf.is_config(compile_):
        compile_ = OmegaConf.to_container(compile_, resolve=True)
    module = AblationModule(model, loss=instantiate(cfg.loss), optimizer=instantiate(cfg.optimizer),
                            scheduler=instantiate(cfg.scheduler), num_classes=datamodule.num_classes,
                            compile=compile_, steps_per_call=cfg.get("steps_per_call") or 1)
    return datamodule, module


def _logger(cfg: DictConfig, run_dir: Path):
    if not cfg.get("logger") or "_target_" not in cfg.logger:
        return False
    extra = {}
    if cfg.logger._target_.endswith("WandbLogger"):
        experiment = cfg.get("experiment") or "ablate"
        sweep = HydraConfig.get().sweep.dir if HydraConfig.initialized() else None
        if cfg.logger.get("group") is None:
            extra["group"] = f"{experiment}-{Path(sweep).name}" if sweep and _multirun() else experiment
        extra["tags"] = [*cfg.logger.get("tags", []), experiment]
        extra["name"] = run_dir.name
        extra["config"] = OmegaConf.to_container(cfg, resolve=True)
    return instantiate(cfg.logger, **extra)


def _multirun() -> bool:
    return HydraConfig.initialized() and str(HydraConfig.get().mode) == "RunMode.MULTIRUN"


def run_trial(cfg: DictConfig) -> float:
    """Run one trial described by ``cfg`` and write ``<run_dir>/record.json``; return the objective.

    A config that cannot run raises :class:`ConfigError` before anything is built or written. A run
    that diverges or raises is recorded (``diverged`` / ``failed``) and, inside a sweep, the sweep
    goes on; a single failed run re-raises so the command exits non-zero.
    """
    run_dir = Path(cfg.run_dir)
    if done := _finished(run_dir):
        log.info("skipping %s: already done (status ok, record %s)", run_dir, run_dir / RECORD_NAME)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # a kill between record and clean-up
        return _objective(done["metrics"])
    try:
        validate(cfg)
    except ConfigError as e:
        print(f"ablate: {e}", file=sys.stderr)
        raise SystemExit(2) from None

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, module = build(cfg)

    probes = [instantiate(spec) for spec in (cfg.get("probes") or {}).values()]
    history, throughput = History(probes), Throughput()
    callbacks = [Divergence(), throughput, *probes, history]
    checkpoint_dir = run_dir / "checkpoints"
    checkpointing = bool(cfg.get("checkpoint", True))
    if checkpointing:
        # one file, overwritten every epoch (save_last alone never writes without a top-k save)
        callbacks.append(ModelCheckpoint(dirpath=checkpoint_dir, filename="last", save_top_k=1,
                                         enable_version_counter=False))
    # checkpoint=false means none at all: without enable_checkpointing=False Lightning adds its own
    # ModelCheckpoint (logs/checkpoints/epoch=...ckpt every epoch, left behind after the run)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=_logger(cfg, run_dir),
                                     default_root_dir=str(run_dir), plugins=[LocalCheckpointIO()],
                                     enable_checkpointing=checkpointing)
    keep_callback_state(trainer)  # ddp_spawn: rank 0's measurements come back to this process
    resume = _resumable(checkpoint_dir / "last.ckpt")

    status, error, test_metrics = "ok", None, {}
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
        results = trainer.test(module, datamodule=datamodule, verbose=False)
        test_metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    except Diverged as e:
        status, error = "diverged", str(e)
        log.warning("%s diverged: %s", run_dir, e)
    except Exception as e:  # noqa: BLE001 - any training fault becomes a `failed` record
        status, error = "failed", "".join(traceback.format_exception(e))
        log.error("%s failed: %s", run_dir, e)

    metrics = {**(history.rows[-1] if history.rows else {}), **test_metrics}
    metrics.pop("epoch", None), metrics.pop("step", None)
    summaries: dict[str, Any] = {}
    for callback in callbacks:
        if hasattr(callback, "final_metrics"):
            metrics.update(callback.final_metrics())
        if hasattr(callback, "summary"):
            summaries.update(callback.summary())
    per_rank = int(cfg.data.batch_size)
    record = {
        "schema": SCHEMA_VERSION,
        "run_id": run_dir.name,
        "status": status,
        "error": error,
        "experiment": cfg.get("experiment"),
        "seed": int(cfg.seed),
        "overrides": job_overrides(),
        "choices": group_choices(),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "claim": OmegaConf.to_container(cfg.claim, resolve=True) if cfg.get("claim") else None,
        "metrics": metrics,
        "history": history.rows,
        "probes": summaries,
        "params": sum(p.numel() for p in module.model.parameters()),
        "num_classes": int(datamodule.num_classes),
        "wall_time_s": time.perf_counter() - t0,
        "samples_per_s": throughput.samples_per_s,
        "epochs_completed": len(history.rows),
        "batch_size": {"per_rank": per_rank, "world_size": trainer.world_size,
                       "effective": per_rank * trainer.world_size * trainer.accumulate_grad_batches},
        "versions": versions(),
        "threads": torch.get_num_threads(),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if trainer.logger and hasattr(trainer.logger, "experiment") and type(trainer.logger).__name__ == "WandbLogger":
        run = trainer.logger.experiment
        record["wandb"] = {"project": run.project, "entity": run.entity, "group": run.group, "id": run.id}
    if trainer.is_global_zero:  # under DDP only rank 0 writes
        write_record(run_dir, record)
        if status == "ok" and checkpoint_dir.exists():
            shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the record is the done marker now
        log.info("%s: %s; %s", run_dir, status,
                 ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if k.endswith(("/acc", "/loss"))))
    if status == "failed" and not _multirun():
        raise RuntimeError(f"run failed: {error.strip().splitlines()[-1]}")
    return _objective(metrics)
