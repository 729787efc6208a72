"""``ablate.run``: a finished run is skipped, an unfinished one is redone or resumed from its
checkpoint, in-process and after a SIGKILL (the fault probes: tests/run/harness.py)."""

from __future__ import annotations

import logging
import math
import os
import signal
from pathlib import Path

import pytest

import ablate.assemble
import ablate.loggers
import ablate.run
from ablate.results import RECORD_NAME, read_record, validate_record, write_record
from ablate.run import run_trial
from tests.run.harness import assert_same_results, fault_env, reference_record, run_cli, signal_probe


def _fake_record(run_dir: Path, **fields) -> dict:
    record = {"schema": 1, "run_id": run_dir.name, "status": "ok", "error": None, "seed": 0, "overrides": {},
              "config": {}, "metrics": {"val/acc": 0.625, "train/loss": 0.5}, "history": [], "probes": {},
              "params": 1, "wall_time_s": 1.0, "versions": {}, **fields}
    write_record(run_dir, record)
    return record


def _rerun_building_nothing(cfg, monkeypatch, caplog, what: str) -> float:
    """``run_trial(cfg)`` again, failing if it builds or trains anything: the job's parts, its model,
    probes, loggers and Trainer (every ``instantiate`` of the run path) or the fit; the ablate log
    captured from INFO."""

    def fail(*args, **kwargs):
        raise AssertionError(f"a finished {what} was built/trained again")

    for module in (ablate.run, ablate.assemble, ablate.loggers):
        monkeypatch.setattr(module, "instantiate", fail)
    monkeypatch.setattr(ablate.run, "build", fail)
    monkeypatch.setattr(ablate.run, "train", fail)
    caplog.set_level(logging.INFO, logger="ablate")
    return run_trial(cfg)


def test_a_finished_run_is_skipped_without_building_anything(compose_cfg, tmp_path, caplog, monkeypatch):
    """Run once; the same trial again builds nothing, returns the finished run's objective, leaves its
    record untouched, and clears a checkpoint a kill between record and clean-up left behind."""
    cfg = compose_cfg(["budget=smoke", "logger=none"])
    objective = run_trial(cfg)
    run_dir = tmp_path / "run"
    path = run_dir / RECORD_NAME
    os.utime(path, (1_000_000_000, 1_000_000_000))            # an old mtime: any rewrite would show
    before = path.read_bytes()
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"left by a kill after the record was written")
    again = _rerun_building_nothing(cfg, monkeypatch, caplog, "run")
    assert again == objective == read_record(run_dir)["metrics"]["val/acc"]   # for a sweeper
    messages = [r.getMessage() for r in caplog.records if r.name == "ablate"]
    assert any("skipping" in m and "already done" in m and str(run_dir) in m for m in messages), messages
    assert path.stat().st_mtime == 1_000_000_000 and path.read_bytes() == before
    assert os.listdir(run_dir) == [RECORD_NAME]


def test_a_finished_vectorized_job_is_skipped_and_its_leftover_checkpoint_removed(compose_cfg, tmp_path, caplog,
                                                                                   monkeypatch):
    """A job of seeds=[0,1] whose members both have ok records builds nothing when run again, and
    removes the checkpoint a kill between its records and its clean-up left in the job's folder."""
    cfg = compose_cfg(["budget=smoke", "logger=none", "seeds=[0,1]"])
    objective = run_trial(cfg)
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"left by a kill after the records were written")
    assert _rerun_building_nothing(cfg, monkeypatch, caplog, "job") == objective
    assert any("every member already done" in r.getMessage() for r in caplog.records if r.name == "ablate")
    assert not (run_dir / "checkpoints").exists()
    assert all(read_record(run_dir / f"seed={s}")["status"] == "ok" for s in (0, 1))


@pytest.mark.parametrize("existing", ["failed", "diverged", "truncated", "not-json"])
def test_an_unfinished_or_unreadable_record_is_run_again(compose_cfg, tmp_path, existing):
    """Only status ok marks a run done: a failed, diverged or torn record is run again."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = run_dir / RECORD_NAME
    if existing in ("failed", "diverged"):
        _fake_record(run_dir, status=existing, error=f"an earlier {existing} run")
    elif existing == "truncated":      # what a non-atomic writer killed mid-write would leave
        path.write_text('{"status": "ok", "metrics": {"val/acc": 0.9')
    else:
        path.write_text("not json at all")
    run_trial(compose_cfg(["budget=smoke", "logger=none"]))
    record = validate_record(read_record(run_dir))
    assert record["status"] == "ok" and record["error"] is None
    assert record["epochs_completed"] == 2 and math.isfinite(record["metrics"]["test/acc"])


def test_an_unreadable_checkpoint_is_dropped_and_the_run_starts_afresh(compose_cfg, tmp_path, caplog):
    overrides = ["budget=smoke", "logger=none"]
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"PK\x03\x04 half a zip file")        # a kill during torch.save
    caplog.set_level(logging.INFO, logger="ablate")
    run_trial(compose_cfg(overrides))
    assert any("ignoring unusable checkpoint" in r.getMessage() for r in caplog.records)
    resumed = validate_record(read_record(tmp_path / "run"))
    fresh = reference_record(overrides, tmp_path / "fresh", tmp_path)
    assert_same_results(resumed, fresh, "after a bad checkpoint")
    assert not checkpoint.parent.exists()


def _count_forwards(monkeypatch) -> dict:
    from ablate.models import MLP

    original, state = MLP.forward, {"calls": 0}

    def forward(self, x):
        state["calls"] += 1
        return original(self, x)

    monkeypatch.setattr(MLP, "forward", forward)
    return state


@pytest.mark.parametrize("kill", ["exception", "sigkill"])
def test_a_run_killed_mid_training_resumes_from_its_last_epoch(compose_cfg, tmp_path, monkeypatch, caplog,
                                                                probes_dir, kill):
    """Killed as epoch 2 of 4 starts, by an exception inside the process (its record says failed) or
    by SIGKILL from outside (no record at all): the relaunch resumes from the checkpoint of epoch 1,
    trains only epochs 2 and 3, and ends with the record of the uninterrupted run."""
    overrides = ["budget=smoke", "trainer.max_epochs=4", "logger=none", "probes=gradients",
                 *signal_probe("exception" if kill == "exception" else "SIGKILL", "train_epoch_start", epoch=2)]
    reference = reference_record(overrides, tmp_path / "reference", probes_dir)     # before the trigger exists
    run_dir, trigger = tmp_path / "run", tmp_path / "trigger"
    trigger.touch()
    monkeypatch.syspath_prepend(str(probes_dir))
    if kill == "exception":
        monkeypatch.setenv("ABLATE_FAULT_TRIGGER", str(trigger))
        with pytest.raises(RuntimeError, match="killed mid-run at epoch 2"):
            run_trial(compose_cfg(overrides, run_dir))
        assert read_record(run_dir)["status"] == "failed"
    else:
        first = run_cli([*overrides, f"hydra.run.dir={run_dir}"], tmp_path, fault_env(probes_dir, trigger))
        assert first.returncode == -signal.SIGKILL, first.stdout[-3000:]
        assert not (run_dir / RECORD_NAME).exists()
    assert not trigger.exists(), "the kill never came"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file(), "no checkpoint after 2 of 4 epochs"

    forwards = _count_forwards(monkeypatch)
    caplog.set_level(logging.INFO, logger="ablate")
    run_trial(compose_cfg(overrides, run_dir))
    assert any("resuming" in r.getMessage() and "last.ckpt" in r.getMessage() for r in caplog.records)
    # epochs 2 and 3 only (4 training batches, 1 validation batch, UnitStats' probe batch each), then the test
    assert forwards["calls"] == 2 * (4 + 1 + 1) + 1
    record = validate_record(read_record(run_dir))
    assert record["epochs_completed"] == 4 and [row["epoch"] for row in record["history"]] == [0, 1, 2, 3]
    assert_same_results(record, reference, "resumed")
    assert not (run_dir / "checkpoints").exists()
