"""The issue's acceptance test: the residual-depth smoke sweep, SIGKILLed mid-sweep and relaunched,
ends as it would have uninterrupted. The experiment runs once (killed, then relaunched); the
uninterrupted references are the jobs the kill caught in flight, each run again alone."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from ablate.report.records.values import cell_key
from ablate.results import RECORD_NAME, load_records, read_record
from ablate.run import run_trial
from hydra_plugins.ablate_sweeper.ablate_sweeper import job_dict
from tests.run.harness import (TIMEOUT_S, assert_same_results, fault_env, job_overrides, popen, run_cli,
                               sweep_records, temp_files, wait_for)
from tests.support import compose


def _job_seeds(job: list[str]) -> list[int]:
    overrides = job_dict(job)
    if "seeds" in overrides:
        return [int(s) for s in overrides["seeds"].strip("[]").split(",")]
    return [int(overrides["seed"])]


def _launched_jobs(output: str) -> list[list[str]]:
    """The jobs a sweep launched, from Hydra's ``#<n> : <overrides>`` lines."""
    return [line.split(" : ", 1)[1].split() for line in output.splitlines() if "\t#" in line]


def _run_key(record: dict) -> tuple:
    optimizer = record["config"]["optimizer"]
    return record["seed"], optimizer.get("lr"), optimizer.get("weight_decay")


@pytest.mark.slow
def test_residual_depth_smoke_sweep_killed_and_relaunched_equals_uninterrupted(tmp_path, probes_dir):
    """``python -m ablate +experiment=residual_depth budget=smoke hydra.sweep.dir=D``, killed once at
    least 2 of its runs have a record and another job is caught mid-training (its checkpoint written,
    no record yet; killed again if that job finished first), then relaunched: the
    relaunch launches only the runs without a record, every job the kill caught in flight resumes
    from its checkpoint and ends with the records of the same job run without interruption, and the
    sweep is complete (its report written; the same command once more launches nothing)."""
    args = ["+experiment=residual_depth", "budget=smoke"]
    env = fault_env(probes_dir)
    got = tmp_path / "rd"

    def in_flight() -> list[Path]:      # jobs with a checkpoint and no record yet: killed, they resume
        # a vectorized job's records land in its members' folders, naming the job: once one is written
        # the job has finished training and only its clean-up (removing the checkpoint) is left
        finished_jobs = {r["vectorized"]["job"] for r in load_records(got)[0] if r.get("vectorized")}
        return [c for c in got.glob("*/checkpoints/last.ckpt")
                if not (c.parent.parent / RECORD_NAME).exists() and c.parent.parent.name not in finished_jobs]

    # Kill once >= 2 runs are done and another job has written its first checkpoint. That job may still
    # finish between the check and the kill (seen in CI); then nothing was caught in flight, and the
    # same command, killed again, is the test's sweep (it launches only the runs without a record).
    interrupted: dict = {}
    for attempt in range(3):
        log = tmp_path / f"killed-{attempt}.log"
        victim = popen([*args, f"hydra.sweep.dir={got}"], tmp_path, env, log)
        try:
            assert wait_for(lambda: len(list(got.rglob(RECORD_NAME))) >= 2 and in_flight(), TIMEOUT_S, victim), \
                log.read_text()[-3000:]
            os.killpg(victim.pid, signal.SIGKILL)
            assert victim.wait(60) == -signal.SIGKILL
        finally:
            if victim.poll() is None:
                os.killpg(victim.pid, signal.SIGKILL)
        interrupted = {c.parent.parent.name: job_overrides(c.parent.parent) for c in in_flight()}
        if interrupted:
            break
    done = {p.parent.name for p in got.rglob(RECORD_NAME) if read_record(p)["status"] == "ok"}
    assert len(done) >= 2, f"the kill came too early: {len(done)} records"
    assert interrupted and not (got / "report.md").exists()

    relaunch = run_cli([*args, f"hydra.sweep.dir={got}"], tmp_path, env)
    assert relaunch.returncode == 0, relaunch.stdout[-3000:]
    # the sweeper launches only runs without a record (a job of seeds=[a,b] makes two runs) ...
    jobs = _launched_jobs(relaunch.stdout)
    launched = {(cell_key(job_dict(job)), seed) for job in jobs for seed in _job_seeds(job)}
    finished = {(cell_key(r["overrides"]), r["seed"]) for r in map(read_record, got.rglob(RECORD_NAME))
                if r["status"] == "ok" and r["run_id"] in done}
    assert len(finished) == len(done) and not launched & finished, sorted(launched & finished)
    # ... and a job killed in flight is the same job again: it resumes from its checkpoint
    resumed = [line for line in relaunch.stdout.splitlines() if "resuming" in line]
    assert all(any(name in line for line in resumed) for name in interrupted), (interrupted, resumed)
    print(f"killed after {len(done)} runs, with {sorted(interrupted)} in flight; relaunch ran "
          f"{len(launched)} runs in {len(jobs)} jobs and resumed {len(resumed)} from a checkpoint")

    records = sweep_records(got)
    assert len(records) >= 12 and all(r["status"] == "ok" for r in records.values()), \
        {n: r["error"] for n, r in records.items() if r["status"] != "ok"}
    assert temp_files(got) == [] and not list(got.glob("*/checkpoints"))
    for name, overrides in interrupted.items():     # the resumed runs are the uninterrupted ones
        mine = {_run_key(r): r for r in records.values() if name in (r["run_id"], (r["vectorized"] or {}).get("job"))}
        run_trial(compose(overrides, tmp_path / "reference" / name))
        want = {_run_key(r): r for r in load_records(tmp_path / "reference" / name)[0]}
        assert sorted(mine) == sorted(want), name
        for key, record in mine.items():
            assert_same_results(record, want[key], f"{name} {key}")
    assert "verdict" in (got / "report.md").read_text().lower() and (got / "runs.csv").exists()

    again = run_cli([*args, f"hydra.sweep.dir={got}"], tmp_path, env)
    assert again.returncode == 0 and _launched_jobs(again.stdout) == [], again.stdout[-3000:]
    assert sweep_records(got) == records
