"""The run record: schema checks, atomic writes, sweep loading, and the records of runs that
diverge, fail or are rejected."""

from __future__ import annotations

import copy
import json
import math
import os
import time

import pytest

from ablate import results
from ablate.results import (RECORD_NAME, RecordError, iter_records, load_sweep, read_record, validate_record,
                            write_record)
from ablate.run import run_trial


def _record(**changes) -> dict:
    record = {
        "schema": 1, "run_id": "abc123", "status": "ok", "error": None, "seed": 0,
        "overrides": {"model.depth": "4"}, "config": {"model": {"depth": 4}},
        "metrics": {"val/acc": 0.5, "train/loss": 1.25}, "history": [{"epoch": 0, "train/loss": 1.25}],
        "probes": {}, "params": 1234, "wall_time_s": 1.5, "versions": {"python": "3.11"},
    }
    record.update(changes)
    return record


# --- schema --------------------------------------------------------------------------------------

def test_a_complete_record_passes():
    record = _record()
    assert validate_record(record) is record


@pytest.mark.parametrize("field", list(results.REQUIRED_KEYS))
def test_missing_field_is_named(field):
    record = _record()
    del record[field]
    with pytest.raises(RecordError, match=f"missing the field '{field}'"):
        validate_record(record)


@pytest.mark.parametrize("field,value", [
    ("schema", "1"), ("seed", 0.5), ("params", True), ("metrics", []), ("history", {}), ("wall_time_s", "1s"),
    ("status", 1), ("run_id", None),
])
def test_wrong_type_is_named(field, value):
    with pytest.raises(RecordError, match=f"field '{field}' should be"):
        validate_record(_record(**{field: value}))


def test_wall_time_may_be_int():
    validate_record(_record(wall_time_s=3))


def test_bad_status_lists_the_valid_ones():
    with pytest.raises(RecordError, match="'status' is 'crashed'; valid: ok, diverged, failed"):
        validate_record(_record(status="crashed"))


@pytest.mark.parametrize("status", ["diverged", "failed"])
def test_non_ok_needs_an_error(status):
    for error in (None, ""):
        with pytest.raises(RecordError, match=f"status '{status}' must say why in 'error'"):
            validate_record(_record(status=status, error=error))
        record = _record(status=status)
        del record["error"]
        with pytest.raises(RecordError):
            validate_record(record)
    validate_record(_record(status=status, error="loss became nan"))


# --- writing and reading -------------------------------------------------------------------------

def _strict_load(path):
    def no_constants(name):
        raise AssertionError(f"non-JSON constant {name} in {path}")

    return json.loads(path.read_text(), parse_constant=no_constants)


def test_write_record_round_trip_nan_as_null(tmp_path):
    record = _record(metrics={"val/acc": 0.5, "train/loss": math.nan, "grad": -math.inf},
                     history=[{"epoch": 0, "train/loss": math.inf}, {"epoch": 1, "train/loss": 2.0}],
                     probes={"nested": {"deep": [1.0, math.nan, (2.0, math.inf)]}})
    original = copy.deepcopy(record)
    path = write_record(tmp_path / "run", record)
    assert path == tmp_path / "run" / RECORD_NAME
    stored = _strict_load(path)
    assert stored["metrics"] == {"val/acc": 0.5, "train/loss": None, "grad": None}
    assert stored["history"] == [{"epoch": 0, "train/loss": None}, {"epoch": 1, "train/loss": 2.0}]
    assert stored["probes"] == {"nested": {"deep": [1.0, None, [2.0, None]]}}
    assert read_record(tmp_path / "run") == read_record(path) == stored
    assert math.isnan(record["metrics"]["train/loss"]) and record.keys() == original.keys()  # input untouched
    assert os.listdir(tmp_path / "run") == [RECORD_NAME]                                      # no temp files


def test_write_record_rejects_an_invalid_record_and_writes_nothing(tmp_path):
    with pytest.raises(RecordError):
        write_record(tmp_path / "run", _record(status="failed"))
    assert not (tmp_path / "run" / RECORD_NAME).exists()


def test_write_record_replaces_atomically(tmp_path, monkeypatch):
    run = tmp_path / "run"
    write_record(run, _record(run_id="first"))
    write_record(run, _record(run_id="second"))
    assert read_record(run)["run_id"] == "second" and os.listdir(run) == [RECORD_NAME]

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_record(run, _record(run_id="third"))
    assert read_record(run)["run_id"] == "second"       # the old record is whole
    assert os.listdir(run) == [RECORD_NAME]             # and the temp file is gone


def test_write_record_removes_the_temp_file_a_killed_writer_left(tmp_path):
    """A SIGKILL between mkstemp and rename leaves ``.record.json.XXXX.tmp``; the next write removes it,
    and only it: a temp file another writer holds (locked) or has just created is left alone."""
    fcntl = pytest.importorskip("fcntl")
    run = tmp_path / "run"
    run.mkdir()
    old = time.time() - 60
    killed = run / f".{RECORD_NAME}.k1lled.tmp"
    killed.write_text('{"half": ')
    busy = run / f".{RECORD_NAME}.busy.tmp"           # a live writer: it holds the lock
    busy.write_text('{"still writing": ')
    fresh = run / f".{RECORD_NAME}.fresh.tmp"         # created an instant ago, not locked yet
    fresh.write_text("")
    for p in (killed, busy):
        os.utime(p, (old, old))
    (run / "notes.tmp").write_text("not ours")
    with open(busy, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        write_record(run, _record())
        assert sorted(os.listdir(run)) == sorted([RECORD_NAME, "notes.tmp", busy.name, fresh.name])
    assert read_record(run)["run_id"] == "abc123"
    assert results.remove_stale_temps(run / RECORD_NAME) == [busy]          # once its writer is gone
    assert results.remove_stale_temps(run / RECORD_NAME, min_age_s=0) == [fresh]


def test_load_sweep_reads_nested_folders_in_order(tmp_path):
    for rel in ("b/1", "a", "a/deeper/x", "c/y/z"):
        write_record(tmp_path / rel, _record(run_id=rel.replace("/", "-")))
    (tmp_path / "a" / "notes.json").write_text("{}")           # only record.json files count
    (tmp_path / "empty").mkdir()
    records = load_sweep(tmp_path)
    # sorted by path: a/deeper/x/record.json comes before a/record.json
    assert [r["run_id"] for r in records] == ["a-deeper-x", "a", "b-1", "c-y-z"]
    paths = [p for p, _ in iter_records(tmp_path)]
    assert paths == sorted(paths) and [p.name for p in paths] == [RECORD_NAME] * 4
    assert [p.relative_to(tmp_path).parent.as_posix() for p in paths] == ["a/deeper/x", "a", "b/1", "c/y/z"]
    assert load_sweep(tmp_path / "empty") == []


def test_load_sweep_rejects_a_broken_record(tmp_path):
    write_record(tmp_path / "good", _record())
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / RECORD_NAME).write_text(json.dumps({"status": "ok"}))
    with pytest.raises(RecordError, match="missing the field"):
        load_sweep(tmp_path)


# --- records of real runs ------------------------------------------------------------------------

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


def test_failed_run_is_retried_not_skipped(compose_cfg, tmp_path):
    """Only status ok marks a run done: a failed or diverged record is run again."""
    run = tmp_path / "run"
    write_record(run, _record(status="failed", error="earlier crash", run_id="run"))
    cfg = compose_cfg(["budget=smoke", "logger=none"])
    run_trial(cfg)
    assert read_record(run)["status"] == "ok"


def test_invalid_config_writes_nothing(compose_cfg, tmp_path, capsys):
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
    from hydra import compose, initialize_config_module
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    def job(overrides):
        with initialize_config_module("ablate.conf", version_base="1.3"):
            cfg = compose("config", overrides=[*overrides, f"run_dir={tmp_path / 'run'}"], return_hydra_config=True)
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


def test_deletion_override_is_recorded(hydra_job, tmp_path):
    cfg = hydra_job(["budget=smoke", "logger=none", "~probes"])
    run_trial(cfg)
    record = read_record(tmp_path / "run")
    assert record["status"] == "ok" and record["overrides"]["budget"] == "smoke"
