"""What the benchmarks of :mod:`ablate.bench` share: composing a config in-process, timing
``Trainer.fit``, one trial through ablate, and running ``python -m ...`` subprocesses."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator


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
