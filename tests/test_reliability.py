"""Reliability: a finished run is skipped, an unfinished one is redone or resumed, a killed sweep
relaunched with the same ``hydra.sweep.dir`` ends with exactly the records of an uninterrupted one,
faults inside a sweep become ``diverged`` / ``failed`` records while the sweep goes on, and records
are written atomically (concurrent writers never expose a half-written file).

Faults are injected without touching ``src/``: a small module of Lightning callbacks (written to a
temp folder and put on ``PYTHONPATH``) is added as an extra probe, ``+probes.fault._target_=...``.
``Signal`` sends this process SIGKILL/SIGTERM at a chosen hook, once (only while the file named by
``$ABLATE_FAULT_TRIGGER`` exists; it is deleted first, so the relaunch of the same command runs
clean); ``Boom`` raises for one seed. The references they are compared with carry the same probe
(inert without the trigger), so configs and job folders are the same.

Subprocesses and the in-process references both run torch on one thread (``OMP_NUM_THREADS=1`` here,
``torch.set_num_threads(1)`` in conftest), so metrics are compared for exact equality.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from ablate.results import RECORD_NAME, read_record, validate_record, write_record
from ablate.run import run_trial
from tests.support import PYTHON, compose

FAULTS_MODULE = "ablate_test_faults"
FAULTS_SOURCE = '''
"""Fault injection for tests/test_reliability.py (Lightning callbacks used as extra ablate probes)."""
import os
import signal

import lightning as L


class _Probe(L.Callback):
    def epoch_metrics(self):       # ablate's History asks every probe for its epoch scalars
        return {}


class Signal(_Probe):
    """Send ``sig`` to this process at ``hook`` (train_epoch_start | test_start), at epoch ``epoch``
    (None: any) of the job whose ``seed`` is ``at_seed`` (None: any), once: only while the file
    named by $ABLATE_FAULT_TRIGGER exists, and it is deleted before the signal is sent."""

    def __init__(self, sig="SIGKILL", hook="train_epoch_start", epoch=None, at_seed=None, seed=None):
        self.sig, self.hook, self.epoch, self.at_seed, self.seed = sig, hook, epoch, at_seed, seed

    def _fire(self, trainer, hook):
        trigger = os.environ.get("ABLATE_FAULT_TRIGGER")
        if (hook == self.hook and (self.epoch is None or trainer.current_epoch == self.epoch)
                and (self.at_seed is None or self.seed == self.at_seed) and trigger and os.path.exists(trigger)):
            os.unlink(trigger)
            os.kill(os.getpid(), getattr(signal, self.sig))

    def on_train_epoch_start(self, trainer, pl_module):
        self._fire(trainer, "train_epoch_start")

    def on_test_start(self, trainer, pl_module):
        self._fire(trainer, "test_start")


class Boom(_Probe):
    """Raise at the start of epoch ``epoch`` of the job whose ``seed`` is ``at_seed``."""

    def __init__(self, seed, at_seed=1, epoch=0):
        self.seed, self.at_seed, self.epoch = seed, at_seed, epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if self.seed == self.at_seed and trainer.current_epoch == self.epoch:
            raise RuntimeError(f"injected fault: boom at epoch {self.epoch} (seed={self.seed})")
'''

TIMEOUT_S = 600          # one subprocess; generous: the machine is shared and has 2 cores
EXACT_KEYS = ("status", "error", "seed", "epochs_completed", "params", "history", "metrics")


# --- helpers ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def faults_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("faults")
    (folder / f"{FAULTS_MODULE}.py").write_text(FAULTS_SOURCE)
    return folder


def _env(faults_dir: Path, trigger: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "ABLATE_FAULT_TRIGGER")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(faults_dir))
    if trigger is not None:
        env["ABLATE_FAULT_TRIGGER"] = str(trigger)
    return env


def _ablate(args, cwd: Path, env: dict, timeout: int = TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "ablate", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def _signal_probe(sig: str, hook: str, epoch: int | None = None, at_seed: int | None = None) -> list[str]:
    args = [f"+probes.fault._target_={FAULTS_MODULE}.Signal", f"+probes.fault.sig={sig}",
            f"+probes.fault.hook={hook}"]
    if epoch is not None:
        args.append(f"+probes.fault.epoch={epoch}")
    if at_seed is not None:
        args += [f"+probes.fault.at_seed={at_seed}", "+probes.fault.seed=${seed}"]
    return args


def _reference(overrides: list[str], run_dir: Path, faults_dir: Path) -> dict:
    """The same trial, uninterrupted, in this process."""
    sys.path.insert(0, str(faults_dir))
    try:
        run_trial(compose(overrides, run_dir))
    finally:
        sys.path.remove(str(faults_dir))
    return validate_record(read_record(run_dir))


def _assert_same_results(got: dict, want: dict, what: str = "") -> None:
    for key in EXACT_KEYS:
        assert got[key] == want[key], f"{what}: {key} differs:\n{got[key]}\n!=\n{want[key]}"


def _job_folders(sweep: Path) -> dict[str, Path]:
    """Job folders of a sweep (they hold .hydra/), by name."""
    return {p.name: p for p in sweep.iterdir() if (p / ".hydra").is_dir()} if sweep.exists() else {}


def _seed_of(folder: Path) -> int:
    overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
    return int(next(o.split("=", 1)[1] for o in overrides if o.startswith("seed=")))


def _records(sweep: Path) -> dict[str, dict]:
    """run_id -> record, checking there is exactly one record.json per job folder (and none elsewhere)."""
    out = {}
    for name, folder in _job_folders(sweep).items():
        found = list(folder.rglob(RECORD_NAME))
        assert found == [folder / RECORD_NAME], f"{name}: {found}"
        out[name] = validate_record(read_record(folder))
        assert out[name]["run_id"] == name
    assert len(list(sweep.rglob(RECORD_NAME))) == len(out)
    return out


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def _wait_for(condition, timeout: float, proc: subprocess.Popen | None = None, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds (True), the deadline passes or ``proc`` ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc is not None and proc.poll() is not None:
            return condition()
        time.sleep(interval)
    return False


# --- a finished run is skipped; an unfinished one is redone -----------------------------------------

def _fake_record(run_dir: Path, **fields) -> dict:
    record = {"schema": 1, "run_id": run_dir.name, "status": "ok", "error": None, "seed": 0, "overrides": {},
              "config": {}, "metrics": {"val/acc": 0.625, "train/loss": 0.5}, "history": [], "probes": {},
              "params": 1, "wall_time_s": 1.0, "versions": {}, **fields}
    write_record(run_dir, record)
    return record


def test_finished_run_is_skipped_without_training(compose_cfg, tmp_path, caplog, monkeypatch):
    run_dir = tmp_path / "run"
    _fake_record(run_dir)
    path = run_dir / RECORD_NAME
    os.utime(path, (1_000_000_000, 1_000_000_000))            # an old mtime: any rewrite would show
    before = path.read_bytes()

    import ablate.run

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was built/trained again")

    monkeypatch.setattr(ablate.run, "build", no_training)
    monkeypatch.setattr(ablate.run, "instantiate", no_training)      # data, model, probes, Trainer
    caplog.set_level(logging.INFO, logger="ablate")
    objective = run_trial(compose_cfg(["budget=smoke", "logger=none"]))
    assert objective == 0.625                                  # the finished run's val/acc, for a sweeper
    messages = [r.getMessage() for r in caplog.records if r.name == "ablate"]
    assert any("skipping" in m and "already done" in m and str(run_dir) in m for m in messages), messages
    assert path.stat().st_mtime == 1_000_000_000 and path.read_bytes() == before
    assert os.listdir(run_dir) == [RECORD_NAME]


@pytest.mark.parametrize("existing", ["failed", "diverged", "truncated", "not-json"])
def test_unfinished_or_unreadable_record_is_run_again(compose_cfg, tmp_path, existing):
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


def test_unreadable_checkpoint_is_dropped_and_the_run_starts_afresh(compose_cfg, tmp_path, caplog):
    overrides = ["budget=smoke", "logger=none"]
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"PK\x03\x04 half a zip file")        # a kill during torch.save
    caplog.set_level(logging.INFO, logger="ablate")
    run_trial(compose_cfg(overrides))
    assert any("ignoring unusable checkpoint" in r.getMessage() for r in caplog.records)
    resumed = validate_record(read_record(tmp_path / "run"))
    fresh = _reference(overrides, tmp_path / "fresh", tmp_path)
    _assert_same_results(resumed, fresh, "after a bad checkpoint")
    assert not checkpoint.parent.exists()


# --- kill and relaunch ----------------------------------------------------------------------------

SMALL = ["budget=smoke", "trainer.max_epochs=3", "logger=none", "probes=gradients"]


@pytest.fixture(scope="module")
def killed_after_training(tmp_path_factory, faults_dir):
    """A 2-job sweep (seed=0,1) SIGKILLed when job seed=1 has trained (last.ckpt written) and starts
    testing; then the same command again; and both jobs run uninterrupted in-process."""
    tmp = tmp_path_factory.mktemp("killed-after-training")
    sweep, trigger = tmp / "sweep", tmp / "trigger"
    trigger.touch()
    args = ["-m", "seed=0,1", *SMALL, *_signal_probe("SIGKILL", "test_start", at_seed=1), f"hydra.sweep.dir={sweep}"]
    env = _env(faults_dir, trigger)
    first = _ablate(args, tmp, env)
    after_kill = {name: sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".hydra" not in p.parts)
                  for name, folder in _job_folders(sweep).items()}
    seeds = {name: _seed_of(folder) for name, folder in _job_folders(sweep).items()}
    second = _ablate(args, tmp, env)
    references = {seed: _reference([f"seed={seed}", *SMALL, *_signal_probe("SIGKILL", "test_start", at_seed=1)],
                                   tmp / f"reference-{seed}", faults_dir) for seed in (0, 1)}
    return dict(sweep=sweep, first=first, second=second, after_kill=after_kill, seeds=seeds, references=references)


def test_sigkill_after_training_relaunch_skips_done_and_resumes_the_rest(killed_after_training):
    k = killed_after_training
    assert k["first"].returncode == -signal.SIGKILL, k["first"].stdout[-3000:]
    by_seed = {seed: name for name, seed in k["seeds"].items()}
    assert sorted(by_seed) == [0, 1]
    done, killed = by_seed[0], by_seed[1]
    assert RECORD_NAME in k["after_kill"][done]
    assert RECORD_NAME not in k["after_kill"][killed] and "checkpoints/last.ckpt" in k["after_kill"][killed]

    out = k["second"].stdout
    assert k["second"].returncode == 0, out[-3000:]
    skipped = [line for line in out.splitlines() if "skipping" in line and "already done" in line]
    assert len(skipped) == 1 and done in skipped[0], out[-3000:]
    resumed = [line for line in out.splitlines() if "resuming" in line]
    assert len(resumed) == 1 and killed in resumed[0] and "last.ckpt" in resumed[0], out[-3000:]

    records = _records(k["sweep"])
    assert sorted(records) == sorted([done, killed])
    for name, record in records.items():
        _assert_same_results(record, k["references"][k["seeds"][name]], f"seed {k['seeds'][name]}")
        assert not (k["sweep"] / name / "checkpoints").exists()
    assert (k["sweep"] / "report.md").exists()
    assert _temp_files(k["sweep"]) == []


def test_resumed_run_keeps_probe_summaries_and_throughput(killed_after_training):
    k = killed_after_training
    for name, record in _records(k["sweep"]).items():
        want = k["references"][k["seeds"][name]]
        assert record["samples_per_s"] is not None and record["samples_per_s"] > 0, name
        assert record["probes"]["throughput"]["samples"] == want["probes"]["throughput"]["samples"], name
        for probe in ("grad_norm", "units", "update_ratio"):
            assert record["probes"][probe] == want["probes"][probe], (name, probe)


def test_sigkill_mid_training_resumes_from_the_last_epoch_checkpoint(tmp_path, faults_dir):
    overrides = ["budget=smoke", "trainer.max_epochs=4", "logger=none", "probes=gradients",
                 *_signal_probe("SIGKILL", "train_epoch_start", epoch=2)]
    run_dir, trigger = tmp_path / "run", tmp_path / "trigger"
    trigger.touch()
    env = _env(faults_dir, trigger)
    first = _ablate([*overrides, f"hydra.run.dir={run_dir}"], tmp_path, env)
    assert first.returncode == -signal.SIGKILL, first.stdout[-3000:]
    assert not (run_dir / RECORD_NAME).exists()
    assert (run_dir / "checkpoints" / "last.ckpt").exists(), "no checkpoint after 2 of 4 epochs"
    second = _ablate([*overrides, f"hydra.run.dir={run_dir}"], tmp_path, env)
    assert second.returncode == 0, second.stdout[-3000:]
    assert "resuming" in second.stdout
    record = validate_record(read_record(run_dir))
    assert record["epochs_completed"] == 4 and [row["epoch"] for row in record["history"]] == [0, 1, 2, 3]
    _assert_same_results(record, _reference(overrides, tmp_path / "reference", faults_dir), "resumed")


@pytest.mark.parametrize("hook", ["train_epoch_start", "test_start"])
def test_sigterm_stops_the_sweep_with_a_nonzero_exit_and_relaunch_completes(tmp_path, faults_dir, hook):
    sweep, trigger = tmp_path / "sweep", tmp_path / "trigger"
    trigger.touch()
    probe = _signal_probe("SIGTERM", hook, epoch=1 if hook == "train_epoch_start" else None, at_seed=0)
    args = ["-m", "seed=0,1", *SMALL, *probe, f"hydra.sweep.dir={sweep}"]
    env = _env(faults_dir, trigger)
    first = _ablate(args, tmp_path, env)
    assert first.returncode != 0, "a SIGTERMed sweep must not report success"
    assert sorted(_seed_of(f) for f in _job_folders(sweep).values()) == [0], "the sweep went on after SIGTERM"
    assert list(sweep.rglob(RECORD_NAME)) == []
    second = _ablate(args, tmp_path, env)
    assert second.returncode == 0, second.stdout[-3000:]
    records = _records(sweep)
    assert len(records) == 2
    for name, record in records.items():
        seed = _seed_of(sweep / name)
        _assert_same_results(record, _reference([f"seed={seed}", *SMALL, *probe], tmp_path / f"ref{seed}", faults_dir),
                             f"seed {seed}")


# --- faults inside a sweep ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def faulty_sweep(tmp_path_factory, faults_dir):
    """lr=1e6 with plain SGD makes the loss nan within a few steps (diverged); the Boom probe raises in
    every seed=1 job (failed). The grid's order puts a failure second, so later jobs show the sweep
    went on."""
    tmp = tmp_path_factory.mktemp("faulty-sweep")
    sweep = tmp / "sweep"
    args = ["-m", "optimizer=sgd", "optimizer.lr=0.01,1e6", "seed=0,1", "budget=smoke", "logger=none",
            f"+probes.boom._target_={FAULTS_MODULE}.Boom", "+probes.boom.seed=${seed}", "+probes.boom.at_seed=1",
            f"hydra.sweep.dir={sweep}"]
    return sweep, _ablate(args, tmp, _env(faults_dir))


def test_diverged_and_failed_runs_are_recorded_and_the_sweep_goes_on(faulty_sweep):
    sweep, result = faulty_sweep
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    records = _records(sweep)
    assert len(records) == 4
    status = {(r["config"]["optimizer"]["lr"], r["seed"]): r for r in records.values()}
    assert status[(0.01, 0)]["status"] == "ok"
    diverged = status[(1e6, 0)]
    assert diverged["status"] == "diverged" and "training loss became" in diverged["error"]
    failed = [status[(0.01, 1)], status[(1e6, 1)]]
    for record in failed:
        assert record["status"] == "failed"
        assert "injected fault: boom at epoch 0 (seed=1)" in record["error"] and "Traceback" in record["error"]
    launched = [line for line in out.splitlines() if "[HYDRA]" in line and "\t#" in line]
    assert len(launched) == 4                                         # every job ran, after the failures too
    assert "diverged:" in out and "failed:" in out                    # said in the log as it happens
    report = (sweep / "report.md").read_text()
    assert "Runs that did not finish" in report and "**1 diverged, 2 failed** of 4 runs" in report
    bad_rows = [line for line in report.splitlines() if line.startswith("| `")]
    for record in (diverged, *failed):
        row = next(line for line in bad_rows if record["run_id"] in line)
        assert f"| {record['status']} |" in row
    assert "training loss became nan" in report or "training loss became inf" in report
    runs_csv = (sweep / "runs.csv").read_text()
    assert runs_csv.count(",failed,") == 2 and runs_csv.count(",diverged,") == 1
    assert "injected fault: boom" in runs_csv                          # the full error text
    assert _temp_files(sweep) == []


def test_report_says_why_each_failed_run_failed(faulty_sweep):
    sweep, _ = faulty_sweep
    report = (sweep / "report.md").read_text()
    failed_rows = [line for line in report.splitlines() if line.startswith("| `") and "| failed |" in line]
    assert len(failed_rows) == 2
    for row in failed_rows:
        assert "RuntimeError: injected fault: boom at epoch 0 (seed=1)" in row, row


def test_a_plain_lightning_callback_can_be_a_probe(compose_cfg, tmp_path):
    cfg = compose_cfg(["budget=smoke", "logger=none", "+probes.timer._target_=lightning.pytorch.callbacks.Timer"])
    run_trial(cfg)
    assert read_record(tmp_path / "run")["status"] == "ok"


# --- atomic writes --------------------------------------------------------------------------------

def _big_record(writer: str, i: int) -> dict:
    """A record of ~150 kB, so a torn write would be caught mid-file."""
    history = [{"epoch": e, "train/loss": 1.0 / (e + 1), "val/acc": e / 1000, "note": writer * 20} for e in range(600)]
    return {"schema": 1, "run_id": f"{writer}-{i}", "status": "ok", "error": None, "seed": i, "overrides": {},
            "config": {"writer": writer}, "metrics": {"val/acc": 0.5}, "history": history, "probes": {},
            "params": 1, "wall_time_s": 0.1, "versions": {}}


def _write_many(run_dir: str, writer: str, n: int) -> None:
    for i in range(n):
        write_record(run_dir, _big_record(writer, i))


def _torn_writer(run_dir: str, writer: str, n: int) -> None:
    """A deliberately non-atomic writer (half the text, a pause, the rest): the reader must catch it."""
    for i in range(n):
        text = json.dumps(_big_record(writer, i))
        with open(Path(run_dir) / RECORD_NAME, "w") as f:
            f.write(text[: len(text) // 2])
            f.flush()
            time.sleep(0.01)
            f.write(text[len(text) // 2:])


def _read_while(run_dir: Path, writing) -> tuple[int, list[str]]:
    """Read the record in a loop while ``writing()`` is true (and at least once whole); return
    (whole reads, problems)."""
    path, reads, problems = run_dir / RECORD_NAME, 0, []
    deadline = time.monotonic() + TIMEOUT_S
    while (writing() or reads == 0) and time.monotonic() < deadline:
        try:
            record = read_record(path)
        except FileNotFoundError:
            problems.append("missing")        # the record exists before the writers start
            continue
        except ValueError as e:
            problems.append(f"invalid JSON: {e}")
            continue
        try:
            validate_record(record)
            reads += 1
        except ValueError as e:
            problems.append(f"invalid record: {e}")
    return reads, problems


def test_write_record_leaves_only_the_record(tmp_path):
    for i in range(30):
        write_record(tmp_path / "run", _big_record("solo", i))
    assert os.listdir(tmp_path / "run") == [RECORD_NAME]
    assert read_record(tmp_path / "run")["run_id"] == "solo-29"


def test_interrupted_write_keeps_the_old_record(tmp_path, monkeypatch):
    """Ctrl-C (or a SIGTERM turned into an exception) while the new record is being flushed."""
    import ablate.results

    write_record(tmp_path / "run", _big_record("old", 0))

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(ablate.results.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_record(tmp_path / "run", _big_record("new", 1))
    assert read_record(tmp_path / "run")["run_id"] == "old-0"
    assert os.listdir(tmp_path / "run") == [RECORD_NAME]


@pytest.mark.parametrize("kind", ["processes", "threads"])
def test_concurrent_writers_never_expose_a_partial_record(tmp_path, kind):
    run_dir = tmp_path / "run"
    write_record(run_dir, _big_record("initial", 0))
    writers = [("a", 40), ("b", 40), ("c", 40)]
    if kind == "processes":   # like joblib (loky) workers writing to the same folder
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        workers = [ctx.Process(target=_write_many, args=(str(run_dir), w, n)) for w, n in writers]
    else:
        workers = [threading.Thread(target=_write_many, args=(str(run_dir), w, n)) for w, n in writers]
    for w in workers:
        w.start()
    reads, problems = _read_while(run_dir, lambda: any(w.is_alive() for w in workers))
    for w in workers:
        w.join(TIMEOUT_S)
    if kind == "processes":
        assert all(w.exitcode == 0 for w in workers)
    assert problems == [], problems[:5]
    assert reads > 0
    assert os.listdir(run_dir) == [RECORD_NAME]                 # no temp file left by any writer
    assert read_record(run_dir)["run_id"] in {f"{w}-{n - 1}" for w, n in writers}


def test_the_reader_does_catch_a_torn_write(tmp_path):
    """Sensitivity check of the harness above: with a non-atomic writer it reports problems."""
    run_dir = tmp_path / "run"
    write_record(run_dir, _big_record("initial", 0))
    worker = threading.Thread(target=_torn_writer, args=(str(run_dir), "torn", 20))
    worker.start()
    reads, problems = _read_while(run_dir, worker.is_alive)
    worker.join()
    assert any(p.startswith("invalid JSON") for p in problems)


# --- the acceptance test: kill and relaunch the residual-depth smoke sweep -------------------

def _popen(args, cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "ablate", *args], cwd=cwd, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _normalised(text: str, sweep: Path) -> str:
    return text.replace(str(sweep), "<SWEEP>").replace(f"{sweep.parent.name}/{sweep.name}", "<SWEEP>")


def _runs_csv_without_timings(sweep: Path) -> list[dict]:
    import csv

    with open(sweep / "runs.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in ("wall_time_s", "samples_per_s")} for row in csv.DictReader(f)]


def _assert_same_sweep(got: Path, want: Path) -> dict[str, dict]:
    assert sorted(_job_folders(got)) == sorted(_job_folders(want)), "different job folders"
    records, references = _records(got), _records(want)
    for name, record in records.items():
        assert record["status"] == "ok", (name, record["error"])
        _assert_same_results(record, references[name], name)
        assert record["overrides"] == references[name]["overrides"]
    assert _runs_csv_without_timings(got) == _runs_csv_without_timings(want)
    for name in ("report.md", "cells.csv"):
        assert _normalised((got / name).read_text(), got) == _normalised((want / name).read_text(), want), name
    assert _temp_files(got) == []
    return records


@pytest.mark.slow
def test_residual_depth_smoke_sweep_killed_and_relaunched_equals_uninterrupted(tmp_path, faults_dir):
    """``python -m ablate +experiment=residual_depth budget=smoke hydra.sweep.dir=D``, killed once at
    least 2 of its 12 runs have a record, then relaunched, ends with the records and report of the same
    sweep run without interruption (run side by side in another folder)."""
    args = ["+experiment=residual_depth", "budget=smoke"]
    env = _env(faults_dir)
    want, got = tmp_path / "uninterrupted" / "rd", tmp_path / "killed" / "rd"
    for folder in (want.parent, got.parent):
        folder.mkdir()
    reference = _popen([*args, f"hydra.sweep.dir={want}"], want.parent, env, tmp_path / "uninterrupted.log")
    victim = _popen([*args, f"hydra.sweep.dir={got}"], got.parent, env, tmp_path / "killed.log")

    def in_flight() -> list[Path]:      # jobs with a checkpoint and no record yet: killed, they resume
        return [c for c in got.glob("*/checkpoints/last.ckpt") if not (c.parent.parent / RECORD_NAME).exists()]

    try:   # kill once >= 2 runs are done and another one has written its first checkpoint
        assert _wait_for(lambda: len(list(got.rglob(RECORD_NAME))) >= 2 and in_flight(), TIMEOUT_S, victim), \
            (tmp_path / "killed.log").read_text()[-3000:]
        os.killpg(victim.pid, signal.SIGKILL)
        assert victim.wait(60) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    done = {p.parent.name for p in got.rglob(RECORD_NAME) if read_record(p)["status"] == "ok"}
    interrupted = {c.parent.parent.name for c in in_flight()}
    assert 2 <= len(done) < 12, f"the kill came too late: {len(done)} records"
    assert interrupted and not (got / "report.md").exists()

    relaunch = _ablate([*args, f"hydra.sweep.dir={got}"], got.parent, env)
    assert relaunch.returncode == 0, relaunch.stdout[-3000:]
    lines = relaunch.stdout.splitlines()
    skipped = [line for line in lines if "skipping" in line and "already done" in line]
    assert sorted(name for name in done if any(name in line for line in skipped)) == sorted(done)
    assert len(skipped) == len(done)
    resumed = [line for line in lines if "resuming" in line]
    assert all(any(name in line for line in resumed) for name in interrupted), (interrupted, resumed)
    print(f"killed after {len(done)} of 12 runs, with {sorted(interrupted)} in flight; relaunch skipped "
          f"{len(skipped)} and resumed {len(resumed)} from a checkpoint")

    assert reference.wait(TIMEOUT_S) == 0, (tmp_path / "uninterrupted.log").read_text()[-3000:]
    records = _assert_same_sweep(got, want)
    assert len(records) == 12


@pytest.mark.slow
def test_small_sweep_sigtermed_and_relaunched_equals_uninterrupted(tmp_path, faults_dir):
    """An outside SIGTERM (what `timeout`, `docker stop` or a scheduler sends) once a record exists.
    Only the end state is asserted here: wherever the signal lands, the relaunch ends with the records of
    an uninterrupted sweep. Whether the first process stops, and with which exit code, is pinned down by
    test_sigterm_stops_the_sweep_with_a_nonzero_exit_and_relaunch_completes."""
    overrides = ["budget=smoke", "trainer.max_epochs=4", "logger=none"]
    args = ["-m", "seed=0,1,2,3", *overrides]
    env = _env(faults_dir)
    sweep = tmp_path / "sweep"
    victim = _popen([*args, f"hydra.sweep.dir={sweep}"], tmp_path, env, tmp_path / "first.log")
    try:
        assert _wait_for(lambda: len(list(sweep.rglob(RECORD_NAME))) >= 1, TIMEOUT_S, victim)
        victim.send_signal(signal.SIGTERM)
        victim.wait(TIMEOUT_S)
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    done = {p.parent.name for p in sweep.rglob(RECORD_NAME) if read_record(p)["status"] == "ok"}
    relaunch = _ablate([*args, f"hydra.sweep.dir={sweep}"], tmp_path, env)
    assert relaunch.returncode == 0, relaunch.stdout[-3000:]
    skipped = [line for line in relaunch.stdout.splitlines() if "skipping" in line and "already done" in line]
    assert len(skipped) == len(done) and all(any(n in line for line in skipped) for n in done)
    records = _records(sweep)
    assert len(records) == 4
    for name, record in records.items():
        seed = _seed_of(sweep / name)
        _assert_same_results(record, _reference([f"seed={seed}", *overrides], tmp_path / f"ref{seed}", faults_dir),
                             f"seed {seed}")
    assert _temp_files(sweep) == []


@pytest.mark.slow
def test_joblib_workers_each_write_their_own_record(tmp_path, faults_dir):
    """Two joblib (loky) worker processes run the sweep's jobs side by side: every job folder ends with
    its own whole record, equal to the same trial run alone."""
    overrides = ["budget=smoke", "logger=none"]
    sweep = tmp_path / "sweep"
    result = _ablate(["-m", "seed=0,1,2,3", *overrides, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                      f"hydra.sweep.dir={sweep}"], tmp_path, _env(faults_dir))
    assert result.returncode == 0, result.stdout[-3000:]
    records = _records(sweep)
    assert sorted(r["seed"] for r in records.values()) == [0, 1, 2, 3]
    for name, record in records.items():
        seed = _seed_of(sweep / name)
        assert record["seed"] == seed
        _assert_same_results(record, _reference([f"seed={seed}", *overrides], tmp_path / f"ref{seed}", faults_dir),
                             f"seed {seed}")
    assert (sweep / "report.md").exists() and _temp_files(sweep) == []
