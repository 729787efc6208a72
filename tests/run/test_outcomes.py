"""``ablate.run``: what the record of a run that diverges, fails, or is refused says, and the job's
own overrides in the record (its provenance, :mod:`ablate.provenance`)."""

from __future__ import annotations

import json
import math

import pytest

from ablate.results import RECORD_NAME, read_record, validate_record
from ablate.run import run_trial


def _strict_load(path):
    def no_constants(name):
        raise AssertionError(f"non-JSON constant {name} in {path}")

    return json.loads(path.read_text(), parse_constant=no_constants)


@pytest.mark.filterwarnings("ignore:Encountered `nan` values")
def test_diverging_run_is_recorded_as_diverged(compose_cfg, tmp_path):
    cfg = compose_cfg(["budget=smoke", "logger=none", "optimizer=sgd", "optimizer.lr=1e6"])
    objective = run_trial(cfg)                       # a diverged run does not raise
    assert objective == -math.inf                    # the worst value for the sweeper (val/acc, max)
    stored = _strict_load(tmp_path / "run" / RECORD_NAME)
    record = validate_record(stored)
    assert record["status"] == "diverged"
    assert "training loss became nan" in record["error"] or "training loss became inf" in record["error"]
    assert "epoch 0" in record["error"]
    assert record["epochs_completed"] == len(record["history"]) == 0
    assert "test/acc" not in record["metrics"]       # never tested
    assert record["config"]["optimizer"]["lr"] == 1e6


def test_failing_run_raises_and_is_recorded_as_failed(compose_cfg, tmp_path, monkeypatch):
    from ablate.models import MLP

    calls = {"n": 0}
    original = MLP.forward

    def forward(self, x):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("boom: a deliberately broken forward")
        return original(self, x)

    monkeypatch.setattr(MLP, "forward", forward)
    cfg = compose_cfg(["budget=smoke", "logger=none"])
    with pytest.raises(RuntimeError, match="run failed: RuntimeError: boom: a deliberately broken forward"):
        run_trial(cfg)
    record = validate_record(read_record(tmp_path / "run"))
    assert record["status"] == "failed"
    assert "boom: a deliberately broken forward" in record["error"]
    assert "Traceback" in record["error"] and "forward" in record["error"]
    assert record["epochs_completed"] == 0


def test_invalid_config_exits_2_and_writes_nothing(compose_cfg, tmp_path, capsys):
    cfg = compose_cfg(["budget=smoke", "optimizer.lr=-1", "model.depth=0"])
    with pytest.raises(SystemExit) as info:
        run_trial(cfg)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "optimizer.lr=-1" in err and "model.depth=0" in err
    assert not (tmp_path / "run").exists()


@pytest.fixture
def hydra_job(tmp_path):
    """Compose like a Hydra app does (with the hydra node) and register it as the running job, so
    run_trial records the job's overrides; returns a function overrides -> cfg (hydra node removed)."""
    from hydra import compose as hydra_compose, initialize_config_module
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    def job(overrides):
        with initialize_config_module("ablate.conf", version_base="1.3"):
            cfg = hydra_compose("config", overrides=[*overrides, f"run_dir={tmp_path / 'run'}"],
                                return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg

    yield job
    HydraConfig.instance().cfg = None


def test_record_holds_the_job_overrides(hydra_job, tmp_path):
    cfg = hydra_job(["budget=smoke", "logger=none", "++trainer.min_epochs=1", "seed=3"])
    run_trial(cfg)
    record = read_record(tmp_path / "run")
    assert record["overrides"] == {"budget": "smoke", "logger": "none", "trainer.min_epochs": "1", "seed": "3",
                                   "run_dir": str(tmp_path / "run")}
    assert record["seed"] == 3


def test_a_deletion_override_is_recorded_and_the_run_goes_on(hydra_job, tmp_path):
    cfg = hydra_job(["budget=smoke", "logger=none", "~probes"])
    run_trial(cfg)
    record = read_record(tmp_path / "run")
    assert record["status"] == "ok" and record["overrides"]["budget"] == "smoke"
    assert "probes" in record["overrides"] and record["overrides"]["probes"] is None
