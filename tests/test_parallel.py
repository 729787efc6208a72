"""ablate.parallel: how many processes fill the machine, and whether a sweep may use workers."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

from ablate import parallel


def _config(*overrides: str):
    with initialize_config_module("ablate.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(parallel, "cores", lambda: 4)


def test_processes_never_oversubscribe_the_cores(four_cores):
    assert [parallel.processes(t) for t in (1, 2, 3, 4, 8)] == [4, 2, 1, 1, 1]
    assert parallel.processes(None) == parallel.processes(0) == 1     # torch's default: every core


def test_a_default_sweep_may_use_cores_over_threads_workers(four_cores):
    workers = parallel.sweep_workers(_config("+experiment=learning_rate"))
    assert workers.count == 4 and workers.allowed and "4 cores ÷ threads=1" in workers.why
    assert parallel.sweep_workers(_config("threads=2")).count == 2


@pytest.mark.parametrize("overrides, why", [
    (["hydra/launcher=basic"], "hydra/launcher=basic given"),
    (["hydra/launcher=joblib"], "hydra/launcher=joblib given"),
    (["trainer=ddp"], "other devices than one CPU"),
    (["trainer.devices=2"], "other devices than one CPU"),
    (["threads=null"], "leave room for one process"),
    (["threads=3"], "leave room for one process"),
])
def test_a_sweep_keeps_its_jobs_in_one_process_when(four_cores, overrides, why):
    workers = parallel.sweep_workers(_config(*overrides))
    assert workers.count == 1 and not workers.allowed and why in workers.why


def test_workers_pay_only_for_enough_work_left():
    workers = parallel.Workers(2, "2 cores ÷ threads=1")
    assert workers.pays(4.0, 8)                      # 32 s one after another
    assert not workers.pays(4.0, 7)                  # 28 s: the workers' start would eat the gain
    assert not workers.pays(100.0, 1)                # one job cannot be split
    assert workers.pays(1.0, 5, after_s=0)
    assert not parallel.Workers(1, "one core").pays(100.0, 10)


def test_the_joblib_launcher_config_is_hydras():
    cfg = parallel.joblib_launcher_config(3)
    assert cfg._target_.endswith("JoblibLauncher") and cfg.n_jobs == 3


class _Launcher:
    """A launcher whose every job takes ``seconds`` (the clock is patched) and returns its overrides."""

    def __init__(self, name, clock, seconds):
        self.name, self.clock, self.seconds, self.launched = name, clock, seconds, []

    def launch(self, jobs, initial_job_idx):
        self.launched.append((initial_job_idx, [list(j) for j in jobs]))
        self.clock[0] += self.seconds * len(jobs)
        return [(self.name, list(j)) for j in jobs]


def _auto(monkeypatch, seconds, after_s=30.0):
    clock = [0.0]
    monkeypatch.setattr(parallel.time, "perf_counter", lambda: clock[0])
    basic, made = _Launcher("basic", clock, seconds), []

    def to_workers(n):
        made.append(_Launcher(f"workers{n}", clock, seconds))
        return made[-1]
    return parallel.AutoLauncher(basic, parallel.Workers(2, "2 cores ÷ threads=1"), to_workers, after_s), basic, made


def test_auto_launcher_times_a_job_after_the_first_then_hands_the_rest_to_workers(monkeypatch, caplog):
    auto, basic, made = _auto(monkeypatch, seconds=5.0)
    jobs = [[f"seed={i}"] for i in range(9)]
    with caplog.at_level("INFO", logger="ablate"):
        results = auto.launch(jobs, initial_job_idx=10)
    assert [r[1] for r in results] == jobs                       # every job once, in order
    assert basic.launched == [(10, [["seed=0"]]), (11, [["seed=1"]])]   # the first pays the imports, the second is timed
    assert made[0].launched == [(12, jobs[2:])]                   # 7 × 5 s left: the workers pay
    assert "runs 2 jobs at a time in worker processes" in caplog.text and "7 are left" in caplog.text
    auto.launch([["seed=9"], ["seed=10"]], initial_job_idx=19)     # later looks stay on the workers
    assert len(made) == 1 and made[0].launched[-1] == (19, [["seed=9"], ["seed=10"]])


def test_auto_launcher_keeps_short_jobs_in_its_process_and_rejudges_on_the_mean(monkeypatch):
    auto, basic, made = _auto(monkeypatch, seconds=2.0)
    auto.launch([[f"a={i}"] for i in range(5)], initial_job_idx=0)     # 3 × 2 s left: not worth it
    assert made == [] and sum(len(j) for _, j in basic.launched) == 5 and auto.job_seconds == 2.0
    basic.seconds = 50.0                                               # a look of deep jobs
    auto.launch([[f"b={i}"] for i in range(2)], initial_job_idx=5)
    assert made == []                                                  # still 2 s on average when it chose
    auto.launch([[f"c={i}"] for i in range(2)], initial_job_idx=7)     # mean now (4 × 2 + 2 × 50) / 6 = 18 s
    assert made and made[0].launched == [(7, [["c=0"], ["c=1"]])]
