"""How many processes fill this machine, and when a sweep's jobs run in several of them.

One home for the rule jobs × threads ≤ cores. The catalogue runs ``cores ÷ threads`` experiments at
once; an experiment's own sweep, launched alone, runs its jobs in ``cores ÷ threads`` worker
processes (Hydra's joblib launcher) where that pays, and one after another in its own process (Hydra's
basic launcher) where it does not. Torch-free: the sweeper's process reads this before any job runs.

*Where it pays* is measured, not guessed. A worker pays its imports (torch, Lightning: ~4-5 s) and
its exit once per sweep. So the sweeper runs its first jobs in its own process and times those that ran
after the imports (the first job pays them). Before each launch it hands the rest of the sweep to
workers once the jobs left in it would take :data:`PAYS_AFTER_S` or more one after another at those
jobs' mean time (``hydra.sweeper.workers_after_s``; null: never).
Measured 2026-12-07 on the 2-core VM, ``+experiment=learning_rate``:

* at ``budget=smoke`` (second-long jobs) joblib was 9% slower than one process, and the sweep stays in one;
* at ``budget=quick`` it took 70 s in one process, 41 s in two workers from the start and 47 s with
  this rule (63 s against 53 s in a later pair), the same records each time.

The records do not depend on the choice: every job runs at the same ``threads`` either way.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger("ablate")

# sequential seconds left in a launch from which two or more workers win by a clear margin: a worker's
# start (imports, ~5 s) and exit (~2 s) run in parallel with the others', so n workers save
# left × (1 − 1/n) − ~7 s; at 2 workers that is ≥ 8 s from 30 s on
PAYS_AFTER_S = 30.0


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform says, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def processes(threads: int | None) -> int:
    """As many processes at once as the cores allow at ``threads`` each (jobs × threads ≤ cores);
    ``threads`` None or 0 (torch's own default) takes every core: one process."""
    return max(1, cores() // threads) if threads else 1


@dataclass(frozen=True)
class Workers:
    """Whether a sweep may run its jobs in worker processes: ``count`` workers (1: it may not), and why."""

    count: int
    why: str

    @property
    def allowed(self) -> bool:
        return self.count >= 2

    def pays(self, job_seconds: float, jobs_left: int, after_s: float = PAYS_AFTER_S) -> bool:
        """Whether ``jobs_left`` jobs of about ``job_seconds`` each (``after_s`` seconds or more one
        after another) are worth the workers' start."""
        return self.allowed and jobs_left >= 2 and job_seconds * jobs_left >= after_s


def sweep_workers(config: DictConfig) -> Workers:
    """How many worker processes the sweep of ``config`` (the launching config, with its ``hydra``
    node) may use: ``cores ÷ threads`` when Hydra's launcher is the basic one *by default* (a
    ``hydra/launcher=...`` on the command line is the user's choice and is kept) and each job trains
    on one CPU device; else 1, with the reason."""
    given = [o for o in OmegaConf.select(config, "hydra.overrides.hydra", default=None) or []
             if str(o).split("=", 1)[0] == "hydra/launcher"]
    if given:
        return Workers(1, f"{given[-1]} given")
    choice = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
    if choice.get("hydra/launcher", "basic") != "basic":
        return Workers(1, f"hydra/launcher={choice.get('hydra/launcher')} configured")
    trainer = OmegaConf.select(config, "trainer", default=None)
    if trainer is None or str(trainer.get("accelerator")) != "cpu" or str(trainer.get("devices")) != "1" \
            or int(trainer.get("num_nodes") or 1) != 1:
        return Workers(1, "jobs train on other devices than one CPU (trainer.accelerator/devices)")
    threads = OmegaConf.select(config, "threads", default=None)
    try:
        threads = int(threads) if threads not in (None, "") else None
    except (TypeError, ValueError):   # a sweep over threads (threads=1,2): the launching value is not one count
        return Workers(1, f"threads={threads} is not one count")
    count = processes(threads)
    if count < 2:
        return Workers(1, f"{cores()} core(s) at threads={threads} leave room for one process")
    return Workers(count, f"{cores()} cores ÷ threads={threads}")


def joblib_launcher_config(workers: int) -> DictConfig:
    """Hydra's joblib launcher, as ``hydra/launcher=joblib hydra.launcher.n_jobs=<workers>`` would set it."""
    from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf

    return OmegaConf.structured(JobLibLauncherConf(n_jobs=workers))


def joblib_launcher(hydra_context: Any, task_function: Any, config: DictConfig, workers: int) -> Any:
    """Hydra's joblib launcher with ``workers`` workers for the sweep of ``config``, set up by Hydra."""
    from hydra.core.plugins import Plugins

    config = copy.deepcopy(config)
    with open_dict(config):
        config.hydra.launcher = joblib_launcher_config(workers)
    return Plugins.instance().instantiate_launcher(hydra_context=hydra_context, task_function=task_function,
                                                   config=config)


class AutoLauncher:
    """A Hydra launcher's ``launch`` that runs jobs on ``launcher`` (Hydra's basic one: in this process)
    and hands the rest of the sweep to ``to_workers(workers.count)`` once the jobs left in a launch pay
    for it (:meth:`Workers.pays`, at the mean wall time of the in-process jobs after the first, which
    pays the imports). Each launch returns its jobs' results in order, as a launcher does."""

    def __init__(self, launcher: Any, workers: Workers, to_workers: Callable[[int], Any],
                 after_s: float = PAYS_AFTER_S):
        self.launcher, self.workers, self.to_workers, self.after_s = launcher, workers, to_workers, after_s
        self.in_process = 0                       # jobs run in this process so far
        self.timed_s, self.timed_jobs = 0.0, 0    # those after the first: wall seconds, count

    @property
    def job_seconds(self) -> float | None:
        """The mean wall time of the jobs run in this process after its first; None before one."""
        return self.timed_s / self.timed_jobs if self.timed_jobs else None

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
        jobs, results = list(job_overrides), []
        while len(jobs) >= 2 and self.workers is not None and self.job_seconds is None:   # time one first
            results += self._run(jobs[:1], initial_job_idx + len(results))
            jobs = jobs[1:]
        if jobs:
            self._choose(len(jobs))
            results += self._run(jobs, initial_job_idx + len(results))
        return results

    def _run(self, jobs: list, index: int) -> list:
        timing = self.workers is not None and self.in_process > 0
        tic = time.perf_counter()
        results = list(self.launcher.launch(jobs, initial_job_idx=index))
        if self.workers is not None:
            self.in_process += len(jobs)
        if timing:
            self.timed_s += time.perf_counter() - tic
            self.timed_jobs += len(jobs)
        return results

    def _choose(self, jobs_left: int) -> None:
        if self.workers is None or self.job_seconds is None or not self.workers.pays(self.job_seconds, jobs_left,
                                                                                    self.after_s):
            return
        self.launcher = self.to_workers(self.workers.count)
        log.info("ablate sweeper: the rest of the sweep runs %d jobs at a time in worker processes (Hydra's joblib "
                 "launcher, n_jobs=%d: %s); its jobs took %.1f s each on average and %d are left in this look. "
                 "hydra/launcher=basic keeps them in this process", self.workers.count, self.workers.count,
                 self.workers.why, self.job_seconds, jobs_left)
        self.workers = None                       # chosen for good: the workers stay warm for the next looks
