"""``python -m ablate.bench``: what training through ablate costs over a hand-written PyTorch loop, and
what ``hydra/launcher=joblib`` gains on a sweep.

**Fit time.** Both contenders train the default trial (``model=mlp``: depth 3, width 256, ReLU;
MNIST-1D; batch 128; Adam, lr 1e-3; ``budget=quick``: 20 epochs of 3,500 samples = 560 steps) in
this process, with the same intra-op thread count (``--threads``, default 1), after one untimed
warm-up of each. They alternate **epoch by epoch** (lockstep): a callback placed first in ablate's
Trainer runs one epoch of the raw loop at each ``on_train_epoch_start``, before ablate's own epoch
(and before its Throughput clock starts), and ablate's fit time is that of ``Trainer.fit`` minus the
raw epochs inside it. Each epoch takes ~0.1 s, so both contenders see the same speed of a shared
machine, whose speed can drift by 1.5x within a minute: whole runs taken in turn (``--whole-runs``)
give paired ratios spread over ~0.9-1.5 on such a machine, lockstep ones over a few percent.

* **ablate** is :func:`ablate.run.run_trial` on the composed config: exactly what
  ``python -m ablate budget=quick`` runs after Hydra has composed the config (the config check,
  seeding, building, the Trainer from ``conf/trainer`` with the callbacks and CSV logger of every run,
  the per-epoch ``last.ckpt``, the test pass and the record; ``steps_per_call`` at its default, 32
  optimizer steps per Lightning batch call), minus process start-up. What differs
  from a bare ``python -m ablate``: ``run_dir`` is a temporary folder, torch uses ``--threads``
  intra-op threads (as the raw loop does), and the progress bar is off (``budget.progress_bar=false``:
  a display, not training; ``--progress-bar`` turns it back on: Lightning's TQDM bar redraws at every
  step, ~1-2 ms a step here, see the README). Its *fit time* is the wall time of ``Trainer.fit``
  (timed by wrapping it for the duration of the bench), minus the raw epochs run inside it.
* **raw** is the loop one would write by hand for the same job, on the same data tensors and the same
  model (built by :func:`ablate.run.build` from the same seed, so both start from identical weights and
  see identical batches: their final losses agree, which the bench prints as a check): per epoch one
  shuffle and a gather per batch, forward, loss, ``zero_grad``, backward, Adam step; the loss checked
  for NaN/inf at every step (as ablate's Divergence callback does); training loss and accuracy
  accumulated on the device; a validation pass (loss and accuracy); a CSV row; and a resumable
  checkpoint (model + optimizer + epoch, written atomically), as ablate's ``last.ckpt`` is. Its fit time
  is the sum of its epochs' wall times (the first one builds the optimizer). ``--bare`` drops the divergence check,
  CSV row and checkpoint from the raw loop (a lower bound no sweep that resumes could use).
* ``--floor`` adds Lightning's own floor: a minimal LightningModule (``training_step`` returning the
  loss; no validation, callbacks, metrics, logger or checkpoint) against the bare loop's training
  time, on the same model and batches, also in lockstep: what Lightning costs a module that does
  nothing of its own.

Reported: per-step times (fit time / steps, and training-only time / steps: ablate's Throughput
callback, the raw loop's own clock) and training samples/s; the ratio is the **median of the paired
per-repeat ratios** (ablate fit time / raw fit time of the same repeat), with their range.

**Sweep** (``--sweep``). The same grid (``--sweep-grid``: by default 8 alike jobs of ~12-17 s each, long
enough that process start-up does not dominate) runs as ``python -m ablate -m ...`` subprocesses with
Hydra's basic launcher (jobs one after another in one process) and with ``hydra/launcher=joblib``
(loky worker processes, ``n_jobs=-1``: one per core; loky caps each worker's OpenMP threads at
cores // workers, so 2 workers × 1 thread on 2 cores: the bench prints what a worker sees). The basic
launcher runs twice: with ``OMP_NUM_THREADS=1`` (the headline speed-up, parallelism alone) and with
torch's default threads (what a bare ``python -m ablate -m`` does; ``--sweep-skip-default-threads``
leaves it out: on a busy 2-core machine it can take many times longer). Reported: wall times and
speed-ups (medians over ``--sweep-repeats``, order alternating).

**Seeds** (``--seeds K``). K seeds of one cell (``--seeds-model``: by default the optimizer
experiment's MLP, depth 2 width 128) as K separate in-process ``run_trial`` calls against one
vectorized ``seeds=[0..K-1]`` call, alternating which goes first, at torch's default thread count
(every core: one stacked model's larger ops use them where K small runs cannot; ``--threads 1``
measures the single-core gain). The last line is then ``vectorized speed-up for K seeds: X.XX``.

Otherwise the last line is always ``ablate/raw fit-time ratio: X.XX``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import torch

RATIO_LINE = "ablate/raw fit-time ratio: {:.2f}"
SEEDS_LINE = "vectorized speed-up for {} seeds: {:.2f}"
# the optimizer experiment's model (conf/experiment/optimizer_adam_vs_sgd.yaml): MLP depth 2, width 128
SEEDS_MODELS = {"mlp": ["model=mlp", "model.depth=2", "model.width=128"],
                "mlp-default": ["model=mlp"],
                "cnn": ["model=cnn"],
                "resnet": ["model=resnet", "norm=batch"]}
DEFAULT_THREADS = torch.get_num_threads()   # what a fresh `python -m ablate` process uses
# 8 jobs of ~12-17 s each on a 2-core CPU, all alike, so that the workers' shares of the grid are even.
# The MNIST-1D arrays come from the disk cache (the fit bench has just generated them).
SWEEP_GRID = ("seed=0,1,2,3,4,5,6,7", "budget=smoke", "budget.num_samples=5000", "trainer.max_epochs=100")


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


class RawLoop:
    """The same trial as a hand-written loop (see the module docstring), one epoch per :meth:`epoch`
    call, so that it can run on its own (:func:`run_raw`) or in lockstep with ablate's epochs."""

    def __init__(self, cfg, bare: bool = False):
        import lightning as L
        from torch import nn

        from ablate.run import build

        if cfg.optimizer._target_ != "torch.optim.Adam" or cfg.loss._target_ != "torch.nn.CrossEntropyLoss" \
                or cfg.scheduler._target_ != "ablate.nn.schedules.constant":
            raise SystemExit("ablate.bench: the raw loop is written for optimizer=adam, loss=cross_entropy, "
                             "scheduler=none (the defaults)")
        L.seed_everything(cfg.seed, workers=True, verbose=False)      # as run_trial does before building
        datamodule, module = build(cfg)
        self.cfg, self.bare, self.model, self.loss_fn = cfg, bare, module.model, nn.CrossEntropyLoss()
        self.x, self.y = datamodule.splits["train"]
        self.xv, self.yv = datamodule.splits["val"]
        self.batch, self.epochs, self.seed = int(cfg.data.batch_size), int(cfg.trainer.max_epochs), int(cfg.data.seed)
        self.run_dir = Path(cfg.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.optimizer, self.optimizer_factory = None, module.optimizer_factory
        self.rows: list[dict] = []
        self.steps, self.fit_s, self.train_s = 0, 0.0, 0.0

    def epoch(self) -> None:
        """One epoch: training, validation, CSV row, checkpoint; the first call also builds the
        optimizer. Its wall time adds to ``fit_s``, its training loop's to ``train_s``."""
        t_fit = time.perf_counter()
        cfg, model, loss_fn, x, y, batch = self.cfg, self.model, self.loss_fn, self.x, self.y, self.batch
        if self.optimizer is None:
            self.optimizer = self.optimizer_factory(model.parameters())   # conf/optimizer, as ablate builds it
        optimizer, epoch = self.optimizer, len(self.rows)
        t_train = time.perf_counter()
        model.train()
        # IndexLoader's order: one permutation per (seed, epoch)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        for i in range(0, len(y), batch):
            idx = order[i : i + batch]
            xb, yb = x[idx], y[idx]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if not self.bare and not math.isfinite(loss.item()):
                raise RuntimeError(f"raw loop diverged at epoch {epoch}")
            loss_sum += loss.detach() * len(yb)
            correct += (logits.detach().argmax(1) == yb).sum()
            self.steps += 1
        self.train_s += time.perf_counter() - t_train
        model.eval()
        with torch.no_grad():
            logits = model(self.xv)
            val_loss = loss_fn(logits, self.yv).item()
            val_acc = (logits.argmax(1) == self.yv).float().mean().item()
        self.rows.append({"epoch": epoch, "step": self.steps, "train/loss": loss_sum.item() / len(y),
                          "train/acc": correct.item() / len(y), "val/loss": val_loss, "val/acc": val_acc})
        if not self.bare:
            with open(self.run_dir / "metrics.csv", "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(self.rows[-1]))
                if epoch == 0:
                    writer.writeheader()
                writer.writerow(self.rows[-1])
            tmp = self.run_dir / "last.ckpt.tmp"
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, tmp)
            os.replace(tmp, self.run_dir / "last.ckpt")
        self.fit_s += time.perf_counter() - t_fit

    def result(self) -> dict:
        return {"fit_s": self.fit_s, "train_s": self.train_s, "samples": len(self.y) * len(self.rows),
                "steps": self.steps, "train_loss": self.rows[-1]["train/loss"], "val_acc": self.rows[-1]["val/acc"]}


def run_raw(cfg, bare: bool = False) -> dict:
    """The raw loop's whole trial on its own."""
    raw = RawLoop(cfg, bare)
    for _ in range(raw.epochs):
        raw.epoch()
    return raw.result()


def run_lockstep(ablate_cfg, raw_cfg, bare: bool = False) -> tuple[dict, dict]:
    """Both contenders in one run, epoch by epoch: a callback placed first in ablate's Trainer runs one
    raw epoch at each ``on_train_epoch_start`` (before ablate's Throughput clock starts), and ablate's
    fit time is ``Trainer.fit``'s minus the time of the raw epochs inside it. The two then share every
    ~0.1 s of the machine, so a drift in its speed hits both alike."""
    raw = RawLoop(raw_cfg, bare)
    inside: list[int] = []                        # the epochs of ablate's fit the raw epochs ran in
    ablate = run_ablate(ablate_cfg, first_callback=_interleave(raw, inside))
    ablate["fit_s"] -= raw.fit_s
    return ablate, {**raw.result(), "interleaved_epochs": inside}


def _interleave(raw: RawLoop, inside: list[int]):
    """A Lightning callback running one epoch of ``raw`` at each ``on_train_epoch_start``."""
    import lightning as L

    class Interleave(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if len(raw.rows) < raw.epochs:
                raw.epoch()
                inside.append(trainer.current_epoch)

    return Interleave()


def run_floor(cfg, raw_cfg) -> tuple[float, float]:
    """Lightning's own floor: a minimal LightningModule (``training_step`` returning the loss, Adam)
    on the same model and batches, no validation, callbacks, metrics, logger or checkpoint, in
    lockstep with the bare raw loop. Returns (the minimal module's fit time, the bare loop's
    training time)."""
    import lightning as L
    from torch import nn

    from ablate.data.datamodule import IndexLoader
    from ablate.run import build

    class Minimal(L.LightningModule):
        def __init__(self, model: nn.Module, lr: float):
            super().__init__()
            self.model, self.lr, self.loss = model, lr, nn.CrossEntropyLoss()

        def training_step(self, batch, batch_idx):
            return self.loss(self.model(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.model.parameters(), lr=self.lr)

    raw = RawLoop(raw_cfg, bare=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, module = build(cfg)
    x, y = datamodule.splits["train"]
    loader = IndexLoader(x, y, int(cfg.data.batch_size), shuffle=True, seed=int(cfg.data.seed))
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=int(cfg.trainer.max_epochs), logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[_interleave(raw, [])])
    t0 = time.perf_counter()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        trainer.fit(Minimal(module.model, float(cfg.optimizer.lr)), train_dataloaders=loader)
    return time.perf_counter() - t0 - raw.fit_s, raw.train_s


def _ms(seconds: float, steps: int) -> str:
    return f"{seconds / max(steps, 1) * 1e3:.2f}"


def fit_bench(args) -> float:
    overrides = ["budget=quick", f"trainer.max_epochs={args.epochs}", *args.override]
    if args.samples:
        overrides.append(f"budget.num_samples={args.samples}")
    if not args.progress_bar:
        overrides.append("budget.progress_bar=false")
    root = Path(tempfile.mkdtemp(prefix="ablate-bench-"))
    runs = iter(range(10**6))

    def ablate_once():
        return run_ablate(compose(overrides, root / f"ablate-{next(runs)}"))

    def raw_once():
        return run_raw(compose(overrides, root / f"raw-{next(runs)}"), bare=args.bare)

    cfg = compose(overrides, root / "probe")
    print(f"fit: model={cfg.model._target_.rsplit('.', 1)[-1]} depth={cfg.model.depth} width={cfg.model.width}, "
          f"data={cfg.data.source._target_.rsplit('.', 1)[-1]}, batch {cfg.data.batch_size}, "
          f"optimizer={cfg.optimizer._target_.rsplit('.', 1)[-1]} lr={cfg.optimizer.lr}, "
          f"{cfg.trainer.max_epochs} epochs, torch threads {torch.get_num_threads()}, "
          f"progress bar {'on' if args.progress_bar else 'off'}, raw loop {'bare' if args.bare else 'same job'}",
          flush=True)
    ablate_once(), raw_once()                                        # warm-up: imports, first calls
    results: dict[str, list[dict]] = {"ablate": [], "raw": []}
    for r in range(args.repeats):
        if args.whole_runs:
            order = ("ablate", "raw") if r % 2 == 0 else ("raw", "ablate")
            for name in order:
                results[name].append(ablate_once() if name == "ablate" else raw_once())
        else:
            a, w = run_lockstep(compose(overrides, root / f"ablate-{next(runs)}"),
                                compose(overrides, root / f"raw-{next(runs)}"), bare=args.bare)
            results["ablate"].append(a), results["raw"].append(w)
        a, w = results["ablate"][-1], results["raw"][-1]
        print(f"  repeat {r + 1}/{args.repeats}: ablate {a['fit_s']:.3f} s, raw {w['fit_s']:.3f} s, "
              f"ratio {a['fit_s'] / w['fit_s']:.3f}", flush=True)
    for name, runs_ in results.items():
        fit = statistics.median(x["fit_s"] for x in runs_)
        train = statistics.median(x["train_s"] for x in runs_)
        steps, samples = runs_[0]["steps"], runs_[0]["samples"]
        print(f"{name:6s}: fit {fit:.3f} s = {_ms(fit, steps)} ms/step (train only {_ms(train, steps)} ms/step, "
              f"{samples / train:,.0f} samples/s); {steps} steps; final train/loss {runs_[-1]['train_loss']:.5f}, "
              f"val/acc {runs_[-1]['val_acc']:.4f}  [medians of {len(runs_)}]")
    if args.floor:
        floors = []
        for r in range(args.repeats):
            floor_s, bare_s = run_floor(compose(overrides, root / f"floor-{next(runs)}"),
                                        compose(overrides, root / f"raw-{next(runs)}"))
            floors.append(floor_s / bare_s)
        print(f"Lightning's floor: a minimal LightningModule (training_step only: no validation, callbacks, "
              f"metrics, logger or checkpoint) / the bare loop's training time: {statistics.median(floors):.2f} "
              f"(median of {len(floors)}, range {min(floors):.2f}-{max(floors):.2f})")
    ratios = sorted(a["fit_s"] / w["fit_s"] for a, w in zip(results["ablate"], results["raw"]))
    ratio = statistics.median(ratios)
    print(f"ablate/raw: median of {len(ratios)} paired fit-time ratios, range {ratios[0]:.3f}-{ratios[-1]:.3f}; "
          f"per step +{_ms(statistics.median(x['fit_s'] for x in results['ablate']) - statistics.median(x['fit_s'] for x in results['raw']), results['raw'][0]['steps'])} ms")
    return ratio


def _sweep_once(launcher: str | None, grid: list[str], out: Path, threads: int | None = None) -> float:
    cmd = [sys.executable, "-m", "ablate", "-m", *grid, "report=false", "budget.progress_bar=false",
           f"hydra.sweep.dir={out}"]
    if launcher:
        cmd.append(f"hydra/launcher={launcher}")
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)    # torch reads it at start-up
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"sweep failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return elapsed


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
          f"another in one process, with torch's default {DEFAULT_THREADS} intra-op threads and with 1 "
          f"(OMP_NUM_THREADS=1)\n  joblib: hydra/launcher=joblib, {_worker_threads()}", flush=True)
    variants = {"basic": (None, None), "basic-1-thread": (None, 1), "joblib": ("joblib", None)}
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


def seeds_bench(args) -> float:
    """K seeds of one cell both ways, in this process: K separate runs (``seed=k``) against one
    vectorized run (``seeds=[0..K-1]``), whole ``run_trial`` calls (what a sweep pays per cell:
    building, fit, validation, checkpoints, test, records), alternating which goes first."""
    from ablate.results import read_record
    from ablate.run import run_trial

    k = args.seeds
    overrides = ["budget=quick", "budget.progress_bar=false", f"trainer.max_epochs={args.epochs}",
                 *SEEDS_MODELS[args.seeds_model], *args.override]
    if args.samples:
        overrides.append(f"budget.num_samples={args.samples}")
    seeds = "[" + ",".join(str(s) for s in range(k)) + "]"
    root = Path(tempfile.mkdtemp(prefix="ablate-bench-seeds-"))
    runs = iter(range(10**6))

    def separate() -> float:
        t0 = time.perf_counter()
        for seed in range(k):
            run_trial(compose([*overrides, f"seed={seed}"], root / f"separate-{next(runs)}"))
        return time.perf_counter() - t0

    def vectorized() -> float:
        t0 = time.perf_counter()
        run_trial(compose([*overrides, f"seeds={seeds}"], root / f"vectorized-{next(runs)}"))
        return time.perf_counter() - t0

    cfg = compose(overrides, root / "probe")
    print(f"seeds: {k} seeds of model={args.seeds_model} ({' '.join(SEEDS_MODELS[args.seeds_model])}), "
          f"data={cfg.data.source._target_.rsplit('.', 1)[-1]}, batch {cfg.data.batch_size}, "
          f"{cfg.trainer.max_epochs} epochs, torch threads {torch.get_num_threads()}: {k} separate in-process "
          f"runs against one run of seeds={seeds}", flush=True)
    run_trial(compose([*overrides, "trainer.max_epochs=1", "seed=0"], root / "warm-separate"))
    run_trial(compose([*overrides, "trainer.max_epochs=1", f"seeds={seeds}"], root / "warm-vectorized"))
    times: dict[str, list[float]] = {"separate": [], "vectorized": []}
    for r in range(args.repeats):
        for name in (("separate", "vectorized") if r % 2 == 0 else ("vectorized", "separate")):
            times[name].append(separate() if name == "separate" else vectorized())
        print(f"  repeat {r + 1}/{args.repeats}: separate {times['separate'][-1]:.2f} s, vectorized "
              f"{times['vectorized'][-1]:.2f} s, speed-up {times['separate'][-1] / times['vectorized'][-1]:.2f}",
              flush=True)
    record = read_record(next(root.glob("vectorized-*/seed=0")))
    steps = record["history"][-1]["step"] if record["history"] else 1
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:10s}: {median:.2f} s for {k} seeds x {steps} steps = {median / (k * steps) * 1e3:.3f} ms "
              f"per member-step  [median of {len(values)}]")
    speedups = sorted(s / v for s, v in zip(times["separate"], times["vectorized"]))
    print(f"speed-up: median of {len(speedups)} paired ratios, range {speedups[0]:.2f}-{speedups[-1]:.2f}")
    return statistics.median(speedups)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(prog="python -m ablate.bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats of each contender (default 9; 3 with --seeds)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per run (default 20, budget=quick's)")
    parser.add_argument("--samples", type=int, default=None, help="budget.num_samples (default: budget=quick's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for both contenders (default 1; with --seeds, torch's "
                             "default: every core, as a vectorized job of the basic launcher runs; 0 keeps "
                             "torch's default)")
    parser.add_argument("--progress-bar", action="store_true", help="leave ablate's progress bar on")
    parser.add_argument("--bare", action="store_true",
                        help="raw loop without the per-step divergence check, CSV row and checkpoint")
    parser.add_argument("--whole-runs", action="store_true",
                        help="time whole runs in turn instead of epochs in lockstep (noisier on a shared machine)")
    parser.add_argument("--floor", action="store_true",
                        help="also time a minimal LightningModule against the bare loop: Lightning's own floor")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override for both contenders (repeatable)")
    parser.add_argument("--seeds", type=int, default=None, metavar="K",
                        help="time K seeds of a cell as K separate runs against one vectorized run instead")
    parser.add_argument("--seeds-model", choices=sorted(SEEDS_MODELS), default="mlp",
                        help="the model of --seeds (default mlp: the optimizer experiment's, depth 2 width 128)")
    parser.add_argument("--sweep", action="store_true", help="also time a sweep: basic launcher vs joblib")
    parser.add_argument("--sweep-repeats", type=int, default=1)
    parser.add_argument("--sweep-skip-default-threads", action="store_true",
                        help="skip the basic launcher with torch's default threads (slow on a busy machine)")
    parser.add_argument("--sweep-grid", nargs="+", default=None, metavar="OVERRIDE",
                        help=f"the sweep's overrides (default: {' '.join(SWEEP_GRID)})")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.seeds else 9
    if args.threads is None:
        # one stacked model's larger ops use every core where K small runs cannot: measured both ways
        # (2-core CPU, 8 seeds, 2026-12-06: 2.24 at one thread, 2.68 at two), the default is what runs
        args.threads = 0 if args.seeds else 1
    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        args.threads = None

    if args.seeds:
        speedup = seeds_bench(args)
        print(SEEDS_LINE.format(args.seeds, speedup), flush=True)
        return speedup
    ratio = fit_bench(args)
    if args.sweep:
        sweep_bench(args)
    print(RATIO_LINE.format(ratio), flush=True)
    return ratio


if __name__ == "__main__":
    main()
