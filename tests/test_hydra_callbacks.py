"""ablate.hydra_callbacks: a bad config stops a run before its folder exists (exit 2, the field
named), and the report is built when a sweep ends."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from ablate import hydra_callbacks
from ablate.hydra_callbacks import ReportOnMultirunEnd, ValidateConfig, check_job, without_hydra
from tests.report.records import two_level_records, write_sweep
from tests.support import compose


def test_a_bad_config_exits_2_naming_the_field(capsys):
    with pytest.raises(SystemExit) as stop:
        ValidateConfig().on_run_start(compose(["model.depth=0"]))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("ablate: invalid config:") and "model.depth=0 is invalid: it must be an integer >= 1" in err


def test_check_job_says_which_job(capsys):
    with pytest.raises(SystemExit):
        check_job(compose(["optimizer.lr=-1"]), "sweep job optimizer.lr=-1: ")
    assert capsys.readouterr().err.startswith("ablate: sweep job optimizer.lr=-1: invalid config:")
    check_job(compose([]))  # a good one passes silently


def test_without_hydra_drops_the_hydra_node():
    cfg = OmegaConf.create({"hydra": {"x": 1}, "run_dir": "${hydra:runtime.output_dir}", "seed": 0})
    clean = without_hydra(cfg)
    assert "hydra" not in clean and clean.run_dir == "." and clean.seed == 0


def test_the_grid_is_checked_by_the_sweeper_not_by_a_private_hydra_class():
    assert ValidateConfig.on_multirun_start is Callback.on_multirun_start
    assert "hydra._internal" not in Path(hydra_callbacks.__file__).read_text()


def test_the_report_is_built_when_a_sweep_ends(tmp_path, caplog):
    root = write_sweep(tmp_path / "s", two_level_records(0.1, 1.0))
    ReportOnMultirunEnd().on_multirun_end(OmegaConf.create({"report": False, "hydra": {"sweep": {"dir": str(root)}}}))
    assert not (root / "report.md").exists()
    ReportOnMultirunEnd().on_multirun_end(OmegaConf.create({"report": True, "hydra": {"sweep": {"dir": str(root)}}}))
    assert "**supported**" in (root / "report.md").read_text()
    (tmp_path / "empty").mkdir()
    with caplog.at_level(logging.ERROR, logger="ablate"):  # a report problem never hides the runs
        ReportOnMultirunEnd().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "empty")}}}))
    assert "could not build the report" in caplog.text and "python -m ablate.report" in caplog.text
