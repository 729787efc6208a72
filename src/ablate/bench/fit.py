"""``python -m ablate.bench`` (the default mode): ablate's fit time against a hand-written PyTorch loop.

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

"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ablate.bench.common import compose, ms_per_step, run_ablate

RATIO_LINE = "ablate/raw fit-time ratio: {:.2f}"


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
        print(f"{name:6s}: fit {fit:.3f} s = {ms_per_step(fit, steps)} ms/step (train only {ms_per_step(train, steps)} ms/step, "
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
          f"per step +{ms_per_step(statistics.median(x['fit_s'] for x in results['ablate']) - statistics.median(x['fit_s'] for x in results['raw']), results['raw'][0]['steps'])} ms")
    return ratio

