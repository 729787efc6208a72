"""``python -m ablate.bench --sweep``: Hydra's basic launcher against ``hydra/launcher=joblib``.

**Sweep** (``--sweep``). The same grid (``--sweep-grid``: by default 8 alike jobs of ~12-17 s each, long
enough that process start-up does not dominate) runs as ``python -m ablate -m ...`` subprocesses with
Hydra's basic launcher (jobs one after another in one process) and with ``hydra/launcher=joblib``
(loky worker processes, ``n_jobs=-1``: one per core; loky caps each worker's OpenMP threads at
cores // workers, so 2 workers × 1 thread on 2 cores: the bench prints what a worker sees). The basic
launcher runs twice: with ``threads=1`` (the default thread policy: the headline speed-up, parallelism
alone) and with torch's default threads (``threads=null``; ``--sweep-skip-default-threads`` leaves it
out: on a busy 2-core machine it can take many times longer). Reported: wall times and
speed-ups (medians over ``--sweep-repeats``, order alternating).
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

import torch

from ablate.bench.common import python_m

DEFAULT_THREADS = torch.get_num_threads()   # what a fresh `python -m ablate` process uses
# 8 jobs of ~12-17 s each on a 2-core CPU, all alike, so that the workers' shares of the grid are even.
# The MNIST-1D arrays come from the disk cache (the fit bench has just generated them).
SWEEP_GRID = ("seed=0,1,2,3,4,5,6,7", "budget=smoke", "budget.num_samples=5000", "trainer.max_epochs=100")


def _sweep_once(launcher: str | None, grid: list[str], out: Path, threads: str) -> float:
    args = ["-m", *grid, "report=false", "budget.progress_bar=false", f"hydra.sweep.dir={out}", f"threads={threads}"]
    if launcher:
        args.append(f"hydra/launcher={launcher}")
    return python_m("ablate", args)


def _worker_threads() -> str:
    """What a joblib (loky) worker of Hydra's launcher sees: torch's intra-op threads and OMP_NUM_THREADS."""
    from joblib import Parallel, delayed

    def probe():
        import os

        import torch

        return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")

    workers = os.cpu_count() or 1                     # n_jobs=-1, Hydra's joblib launcher default
    seen = set(Parallel(n_jobs=-1, backend="loky")(delayed(probe)() for _ in range(2 * workers)))
    threads = ", ".join(f"{t} torch thread(s), OMP_NUM_THREADS={omp}" for t, omp in sorted(seen, key=str))
    return f"{workers} workers; each sees {threads}"


def sweep_bench(args) -> None:
    grid = args.sweep_grid or list(SWEEP_GRID)
    root = Path(tempfile.mkdtemp(prefix="ablate-sweep-"))
    print(f"sweep: python -m ablate -m {' '.join(grid)}\n  basic: Hydra's default launcher, jobs one after "
          f"another in one process, with torch's default {DEFAULT_THREADS} intra-op threads (threads=null) "
          f"and with 1 (threads=1)\n  joblib: hydra/launcher=joblib, {_worker_threads()}", flush=True)
    variants = {"basic": (None, "null"), "basic-1-thread": (None, "1"), "joblib": ("joblib", "1")}
    if args.sweep_skip_default_threads:
        del variants["basic"]
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.sweep_repeats):
        for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
            out = root / f"{name}-{r}"
            launcher, threads = variants[name]
            times[name].append(_sweep_once(launcher, grid, out, threads))
            records = list(out.rglob("record.json"))
            print(f"  {name}: {times[name][-1]:.1f} s, {len(records)} records", flush=True)
    median = {name: statistics.median(t) for name, t in times.items()}
    if "basic" in median:
        print(f"joblib speed-up over basic with torch's default {DEFAULT_THREADS} threads: "
              f"{median['basic'] / median['joblib']:.2f} ({median['basic']:.1f} s vs {median['joblib']:.1f} s)")
    print(f"joblib/basic sweep speed-up: {median['basic-1-thread'] / median['joblib']:.2f} (basic with 1 thread "
          f"{median['basic-1-thread']:.1f} s, joblib {median['joblib']:.1f} s; median of {args.sweep_repeats}; "
          f"the parallel gain alone)", flush=True)

