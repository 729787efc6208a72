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
