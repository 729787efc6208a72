"""Hydra callbacks (conf/config.yaml, hydra.callbacks): reject bad configs before anything runs, and
build the comparison report when a sweep ends."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from ablate.validate import ConfigError, validate

log = logging.getLogger("ablate")


def _job_configs(config: DictConfig):
    """Every job of a basic-sweeper grid, composed as the launcher will compose it."""
    from hydra import compose
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = config.hydra.sweeper.get("params") or {}
    # the same order as Hydra's BasicSweeper: sweeper params first, the command line wins
    overrides = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(overrides)
    for batch in BasicSweeper.split_arguments(parsed, max_batch_size=None):
        for job in batch:
            yield job, compose(config_name=config.hydra.job.config_name, overrides=list(job))


def _reject(error: ConfigError, where: str = "") -> None:
    print(f"ablate: {where}{error}", file=sys.stderr)
    raise SystemExit(2)


class ValidateConfig(Callback):
    """Checks the config (every job of a grid sweep) before Hydra creates any folder."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            validate(_without_hydra(config))
        except ConfigError as e:
            _reject(e)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
            return  # other sweepers (Optuna) draw values as they go; each job checks its own
        for overrides, job in _job_configs(config):
            try:
                validate(_without_hydra(job))
            except ConfigError as e:
                _reject(e, f"sweep job {' '.join(overrides)}: ")


def _without_hydra(config: DictConfig) -> DictConfig:
    cfg = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]) if "hydra" in config else config
    with open_dict(cfg):
        cfg.run_dir = "."   # resolved by Hydra per job; irrelevant to validity
    return cfg


class ReportOnMultirunEnd(Callback):
    """Builds ``report.md``/``report.html`` in the sweep folder once every job has finished."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.get("report", True):
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            from ablate.report import build_report

            path = build_report(sweep_dir)
        except Exception as e:  # noqa: BLE001 - a report problem must not hide the finished runs
            log.error("could not build the report for %s: %s (rebuild with `python -m ablate.report %s`)",
                      sweep_dir, e, sweep_dir)
            return
        log.info("report: %s", path)
