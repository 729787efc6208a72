"""Hydra callbacks (conf/config.yaml, hydra.callbacks): reject a bad config before anything runs, and
build the comparison report when a sweep ends.

A sweep's jobs are checked by the ablate sweeper (``hydra/sweeper: ablate``), every one before the
first is launched, with :func:`check_job`; other sweepers (Optuna) draw values as they go, and each
job checks its own config when it starts (:func:`ablate.run.run_trial`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from ablate.contract import set_field_errors
from ablate.validate import ConfigError, validate

log = logging.getLogger("ablate")


def without_hydra(config: DictConfig) -> DictConfig:
    """The job's config as the run sees it: no ``hydra`` node, ``run_dir`` (resolved by Hydra per
    job, irrelevant to validity) set to ``.``."""
    cfg = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]) if "hydra" in config else config
    with open_dict(cfg):
        cfg.run_dir = "."
    return cfg


def check_job(config: DictConfig, where: str = "") -> None:
    """Validate a composed config; on a problem print ``ablate: <where>invalid config: ...`` to
    stderr and exit with status 2."""
    try:
        validate(without_hydra(config))
        overrides = OmegaConf.select(config, "hydra.overrides.task", default=None) or []
        errors = set_field_errors(config.get("model"), list(overrides))
        if errors:
            raise ConfigError("invalid config:\n  - " + "\n  - ".join(errors))
    except ConfigError as e:
        print(f"ablate: {where}{e}", file=sys.stderr)
        raise SystemExit(2) from None


class ValidateConfig(Callback):
    """Checks a single run's config before Hydra creates its folder."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_job(config)


def _nothing_applies(sweep_dir: Path) -> bool:
    """Whether the sweep ran nothing because its claim does not apply to the model and data
    (``applicability.json``; the sweeper said why)."""
    from ablate.applicability import read

    try:
        found = read(sweep_dir)
    except ValueError:
        return False
    return found is not None and not found.applies


class ReportOnMultirunEnd(Callback):
    """Builds ``report.md``/``report.html`` in the sweep folder once every job has finished."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.get("report", True):
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        if _nothing_applies(sweep_dir):
            return
        try:
            from ablate.report import build_report

            path = build_report(sweep_dir)
        except Exception as e:  # noqa: BLE001 - a report problem must not hide the finished runs
            log.error("could not build the report for %s: %s (rebuild with `python -m ablate.report %s`)",
                      sweep_dir, e, sweep_dir)
            return
        log.info("report: %s", path)
