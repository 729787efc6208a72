"""What the benchmarks of :mod:`ablate.bench` share: composing a config in-process, timing
``Trainer.fit``, one trial through ablate, and running ``python -m ...`` subprocesses."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence


def compose(overrides: list[str], run_dir: Path):
    from hydra import compose as hydra_compose, initialize_config_module

    import ablate  # noqa: F401  (registers the config resolvers)

    with initialize_config_module("ablate.conf", version_base="1.3"):
        return hydra_compose("config", overrides=[*overrides, f"run_dir={run_dir}"])


@contextlib.contextmanager
def timed_fit(into: list[float], first_callback=None) -> Iterator[None]:
    """Appends the wall time of every ``lightning.Trainer.fit`` call made inside the block to ``into``;
    ``first_callback`` joins the Trainer's callbacks, first, for the duration of each fit."""
    import lightning as L

    original = L.Trainer.fit

    def fit(self, *args, **kwargs):
        if first_callback is not None:
            self.callbacks.insert(0, first_callback)
        t0 = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            into.append(time.perf_counter() - t0)
            if first_callback is not None:
                self.callbacks.remove(first_callback)

    L.Trainer.fit = fit
    try:
        yield
    finally:
        L.Trainer.fit = original


def run_ablate(cfg, first_callback=None) -> dict:
    """One trial through :func:`ablate.run.run_trial`; its fit time, training time and final losses.
    ``first_callback`` (a Lightning callback) goes first in the Trainer's callbacks for the fit."""
    from ablate.results import read_record
    from ablate.run import run_trial

    fits: list[float] = []
    with timed_fit(fits, first_callback), open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        run_trial(cfg)
    record = read_record(cfg.run_dir)
    if record["status"] != "ok":
        raise RuntimeError(f"the ablate run ended {record['status']}: {record['error']}")
    throughput = record["probes"]["throughput"]
    return {"fit_s": fits[-1], "train_s": throughput["seconds"], "samples": throughput["samples"],
            "steps": int(record["history"][-1]["step"]), "train_loss": record["metrics"]["train/loss"],
            "val_acc": record["metrics"]["val/acc"]}



def ms_per_step(seconds: float, steps: int) -> str:
    return f"{seconds / max(steps, 1) * 1e3:.2f}"


def python_m(module: str, args: Sequence[str], env: dict | None = None, timeout: float | None = None,
             output: list[str] | None = None) -> float:
    """Run ``python -m <module> *args``, output captured (its stdout appended to ``output`` when given);
    its wall time in seconds. A failure raises RuntimeError with the end of its output."""
    command = [sys.executable, "-m", module, *map(str, args)]
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    elapsed = time.perf_counter() - t0
    if output is not None:
        output.append(proc.stdout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return elapsed


def policy_env(**extra: str) -> dict[str, str]:
    """This process's environment without ``OMP_NUM_THREADS`` (so that a run's threads are its config's:
    the policy under test), W&B offline, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    return {**env, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **extra}


def records_under(folder: Path) -> dict[str, dict]:
    """Every run record below ``folder``, by its path relative to ``folder``."""
    from ablate.results import iter_records

    return {str(path.relative_to(folder)): record for path, record in iter_records(folder)}


def same_numbers(a: dict[str, dict], b: dict[str, dict]) -> tuple[int, int]:
    """How many of the runs of two sets of records (:func:`records_under`) have identical final metrics,
    of how many there are in either. ``speed/...`` metrics (seconds measured on the machine, not numbers
    a run computes; :data:`ablate.bench.same_records.TIMED_PREFIX`) are left out."""
    from ablate.bench.same_records import TIMED_PREFIX

    def computed(record: dict) -> dict:
        return {k: v for k, v in (record.get("metrics") or {}).items() if not k.startswith(TIMED_PREFIX)}

    names = set(a) | set(b)
    return sum(name in a and name in b and computed(a[name]) == computed(b[name]) for name in names), len(names)


BUSY_LOOP = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


@contextlib.contextmanager
def busy_core(seconds: float) -> Iterator[subprocess.Popen]:
    """One core kept busy by a spinning Python process for the block (a shared machine's other user);
    the process is stopped when the block ends, however it ends, and stops itself after ``seconds``."""
    proc = subprocess.Popen([sys.executable, "-c", BUSY_LOOP.format(seconds=float(seconds))])
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain-text table, columns aligned, flushed."""
    cells = [list(map(str, header)), *[list(map(str, row)) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), flush=True)
        if n == 0:
            print("  " + "-+-".join("-" * width for width in widths), flush=True)
