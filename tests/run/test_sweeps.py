"""``ablate.run`` inside a sweep (``python -m ablate -m ...``): killed and relaunched sweeps end with
the records of uninterrupted runs, SIGTERM stops a sweep with a non-zero exit, diverged and failed
runs are recorded while the sweep goes on, and parallel (joblib) workers each write their own record.
The whole-experiment acceptance test: tests/run/test_experiment_killed.py."""

from __future__ import annotations

import os
import signal

import pytest

from ablate.results import RECORD_NAME, read_record
from tests.run.harness import (PROBES_MODULE, SMALL, TIMEOUT_S, assert_same_results, fault_env, job_folders, popen,
                               reference_record, run_cli, seed_of, signal_probe, sweep_records, temp_files,
                               wait_for)


@pytest.fixture(scope="module")
def killed_after_training(tmp_path_factory, probes_dir):
    """A 2-job sweep (seed=0,1) SIGKILLed when job seed=1 has trained (last.ckpt written) and starts
    testing; then the same command again; and both jobs run uninterrupted in-process."""
    tmp = tmp_path_factory.mktemp("killed-after-training")
    sweep, trigger = tmp / "sweep", tmp / "trigger"
    trigger.touch()
    args = ["-m", "seed=0,1", *SMALL, *signal_probe("SIGKILL", "test_start", at_seed=1), f"hydra.sweep.dir={sweep}"]
    env = fault_env(probes_dir, trigger)
    first = run_cli(args, tmp, env)
    after_kill = {name: sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".hydra" not in p.parts)
                  for name, folder in job_folders(sweep).items()}
    seeds = {name: seed_of(folder) for name, folder in job_folders(sweep).items()}
    second = run_cli(args, tmp, env)
    references = {seed: reference_record([f"seed={seed}", *SMALL, *signal_probe("SIGKILL", "test_start", at_seed=1)],
                                   tmp / f"reference-{seed}", probes_dir) for seed in (0, 1)}
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

    records = sweep_records(k["sweep"])
    assert sorted(records) == sorted([done, killed])
    for name, record in records.items():
        assert_same_results(record, k["references"][k["seeds"][name]], f"seed {k['seeds'][name]}")
        assert not (k["sweep"] / name / "checkpoints").exists()
    assert (k["sweep"] / "report.md").exists()
    assert temp_files(k["sweep"]) == []


def test_a_resumed_run_keeps_its_probe_summaries_and_throughput(killed_after_training):
    k = killed_after_training
    for name, record in sweep_records(k["sweep"]).items():
        want = k["references"][k["seeds"][name]]
        assert record["samples_per_s"] is not None and record["samples_per_s"] > 0, name
        assert record["probes"]["throughput"]["samples"] == want["probes"]["throughput"]["samples"], name
        for probe in ("grad_norm", "units", "update_ratio"):
            assert record["probes"][probe] == want["probes"][probe], (name, probe)


@pytest.mark.parametrize("hook", ["train_epoch_start", "test_start"])
def test_sigterm_stops_the_sweep_with_a_nonzero_exit_and_relaunch_completes(tmp_path, probes_dir, hook):
    sweep, trigger = tmp_path / "sweep", tmp_path / "trigger"
    trigger.touch()
    probe = signal_probe("SIGTERM", hook, epoch=1 if hook == "train_epoch_start" else None, at_seed=0)
    args = ["-m", "seed=0,1", *SMALL, *probe, f"hydra.sweep.dir={sweep}"]
    env = fault_env(probes_dir, trigger)
    first = run_cli(args, tmp_path, env)
    assert first.returncode != 0, "a SIGTERMed sweep must not report success"
    assert "terminated (SIGTERM); relaunch the same command to resume" in first.stdout, first.stdout[-3000:]
    assert sorted(seed_of(f) for f in job_folders(sweep).values()) == [0], "the sweep went on after SIGTERM"
    assert list(sweep.rglob(RECORD_NAME)) == []
    second = run_cli(args, tmp_path, env)
    assert second.returncode == 0, second.stdout[-3000:]
    records = sweep_records(sweep)
    assert len(records) == 2
    for name, record in records.items():
        seed = seed_of(sweep / name)
        assert_same_results(record, reference_record([f"seed={seed}", *SMALL, *probe], tmp_path / f"ref{seed}", probes_dir),
                             f"seed {seed}")


# --- faults inside a sweep ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def faulty_sweep(tmp_path_factory, probes_dir):
    """lr=1e6 with plain SGD makes the loss nan within a few steps (diverged); the Boom probe raises in
    every seed=1 job (failed). The grid's order puts a failure second, so later jobs show the sweep
    went on."""
    tmp = tmp_path_factory.mktemp("faulty-sweep")
    sweep = tmp / "sweep"
    args = ["-m", "optimizer=sgd", "optimizer.lr=0.01,1e6", "seed=0,1", "budget=smoke", "logger=none",
            f"+probes.boom._target_={PROBES_MODULE}.Boom", "+probes.boom.seed=${seed}", "+probes.boom.at_seed=1",
            f"hydra.sweep.dir={sweep}"]
    return sweep, run_cli(args, tmp, fault_env(probes_dir))


def test_diverged_and_failed_runs_are_recorded_and_the_sweep_goes_on(faulty_sweep):
    sweep, result = faulty_sweep
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    records = sweep_records(sweep)
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
    assert temp_files(sweep) == []


def test_report_says_why_each_failed_run_failed(faulty_sweep):
    sweep, _ = faulty_sweep
    report = (sweep / "report.md").read_text()
    failed_rows = [line for line in report.splitlines() if line.startswith("| `") and "| failed |" in line]
    assert len(failed_rows) == 2
    for row in failed_rows:
        assert "RuntimeError: injected fault: boom at epoch 0 (seed=1)" in row, row


@pytest.mark.slow
def test_small_sweep_sigtermed_and_relaunched_equals_uninterrupted(tmp_path, probes_dir):
    """An outside SIGTERM (what `timeout`, `docker stop` or a scheduler sends) once a record exists.
    Only the end state is asserted here: wherever the signal lands, the relaunch ends with the records of
    an uninterrupted sweep. Whether the first process stops, and with which exit code, is pinned down by
    test_sigterm_stops_the_sweep_with_a_nonzero_exit_and_relaunch_completes."""
    overrides = ["budget=smoke", "trainer.max_epochs=4", "logger=none"]
    args = ["-m", "seed=0,1,2,3", *overrides]
    env = fault_env(probes_dir)
    sweep = tmp_path / "sweep"
    victim = popen([*args, f"hydra.sweep.dir={sweep}"], tmp_path, env, tmp_path / "first.log")
    try:
        assert wait_for(lambda: len(list(sweep.rglob(RECORD_NAME))) >= 1, TIMEOUT_S, victim)
        victim.send_signal(signal.SIGTERM)
        victim.wait(TIMEOUT_S)
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    done = {p.parent.name for p in sweep.rglob(RECORD_NAME) if read_record(p)["status"] == "ok"}
    relaunch = run_cli([*args, f"hydra.sweep.dir={sweep}"], tmp_path, env)
    assert relaunch.returncode == 0, relaunch.stdout[-3000:]
    skipped = [line for line in relaunch.stdout.splitlines() if "skipping" in line and "already done" in line]
    assert len(skipped) == len(done) and all(any(n in line for line in skipped) for n in done)
    records = sweep_records(sweep)
    assert len(records) == 4
    for name, record in records.items():
        seed = seed_of(sweep / name)
        assert_same_results(record, reference_record([f"seed={seed}", *overrides], tmp_path / f"ref{seed}", probes_dir),
                             f"seed {seed}")
    assert temp_files(sweep) == []


@pytest.mark.slow
def test_joblib_workers_each_write_their_own_record(tmp_path, probes_dir):
    """Two joblib (loky) worker processes run the sweep's jobs side by side: every job folder ends with
    its own whole record, equal to the same trial run alone."""
    overrides = ["budget=smoke", "logger=none"]
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "seed=0,1,2,3", *overrides, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                      f"hydra.sweep.dir={sweep}"], tmp_path, fault_env(probes_dir))
    assert result.returncode == 0, result.stdout[-3000:]
    records = sweep_records(sweep)
    assert sorted(r["seed"] for r in records.values()) == [0, 1, 2, 3]
    for name, record in records.items():
        seed = seed_of(sweep / name)
        assert record["seed"] == seed
        assert_same_results(record, reference_record([f"seed={seed}", *overrides], tmp_path / f"ref{seed}", probes_dir),
                             f"seed {seed}")
    assert (sweep / "report.md").exists() and temp_files(sweep) == []
