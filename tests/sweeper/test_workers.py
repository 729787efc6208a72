"""A sweep launched alone hands its jobs to worker processes where that pays (ablate.parallel), with
the records it would have written in one process."""

from __future__ import annotations

import pytest

from ablate import parallel
from ablate.bench.same_records import compare
from tests.support import run_ablate

pytestmark = pytest.mark.skipif(parallel.cores() < 2, reason="workers need two cores")

WORKERS = "runs 2 jobs at a time in worker processes"


def _launched(proc) -> int:
    return sum("\t#" in line for line in (proc.stdout + proc.stderr).splitlines())


def test_a_sweep_goes_to_workers_once_they_pay_and_writes_the_same_records(tmp_path):
    common = ["+experiment=learning_rate", "budget=smoke", "threads=1", "budget.progress_bar=false"]
    alone = run_ablate([*common, "hydra.sweeper.workers_after_s=0", f"hydra.sweep.dir={tmp_path / 'w'}"], tmp_path)
    basic = run_ablate([*common, "hydra/launcher=basic", "hydra.sweeper.workers_after_s=0",
                        f"hydra.sweep.dir={tmp_path / 'b'}"], tmp_path)
    assert alone.returncode == 0 and basic.returncode == 0, alone.stderr[-2000:] + basic.stderr[-2000:]
    log = alone.stdout + alone.stderr
    line = next(x for x in log.splitlines() if "worker processes" in x)
    # two jobs in the sweeper's own process (the second timed), then the rest to Hydra's joblib launcher
    assert f"{WORKERS} (Hydra's joblib launcher, n_jobs=2" in line and "hydra/launcher=basic keeps them" in line
    assert "Joblib.Parallel(n_jobs=2" in log
    assert "worker processes" not in basic.stdout + basic.stderr
    assert _launched(alone) == _launched(basic) > 2
    assert compare(tmp_path / "b", tmp_path / "w") == []


def test_by_default_a_smoke_sweep_of_short_jobs_stays_in_one_process(tmp_path):
    proc = run_ablate(["+experiment=learning_rate", "budget=smoke", "threads=1", "budget.progress_bar=false",
                       f"hydra.sweep.dir={tmp_path / 's'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "worker processes" not in proc.stdout + proc.stderr and "Joblib" not in proc.stdout + proc.stderr
