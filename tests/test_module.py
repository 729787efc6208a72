"""AblationModule: the epoch metrics it logs (means over every row of a split), the grouped fast path
computes what Lightning's automatic loop computes, the optimizer step it takes, schedules (per step,
per epoch, on a monitored metric), divergence."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import nn

import ablate.run
from ablate.data import BatchGroup
from ablate.module import AblationModule
from ablate.results import read_record
from ablate.run import build, run_trial, steps_per_call


def _spy_in(monkeypatch, spy: L.Callback) -> None:
    """Make ``spy`` one of the run's probes (the trainer's callbacks, before the History)."""
    original = ablate.run.History
    monkeypatch.setattr(ablate.run, "History", lambda probes: (probes.append(spy), original(probes))[1])


@pytest.mark.parametrize("overrides", [
    [],
    ["scheduler=step", "scheduler.step_size=1"],                     # stepped per epoch
    ["scheduler=onecycle", "probes=gradients"],                      # per step; hooks the probes use
    ["scheduler=plateau", "scheduler.patience=0"],                   # per epoch, on val/loss
    ["model=resnet", "norm=batch", "optimizer=momentum", "trainer.precision=bf16-mixed"],
    # 14 batches an epoch: calls of 3, 3, 3, 3 and 2 steps; a per-step schedule and the probes
    ["data.batch_size=32", "steps_per_call=3", "scheduler=onecycle", "probes=gradients"],
    ["data.batch_size=32", "steps_per_call=3", "scheduler=cosine"],
], ids=["plain", "epoch-schedule", "step-schedule+probes", "plateau", "resnet-bf16",
        "3-steps-per-call+onecycle+probes", "3-steps-per-call+cosine"])
def test_grouped_steps_match_lightnings_automatic_loop(compose_cfg, tmp_path, overrides):
    """steps_per_call > 1 (manual optimization over batch groups) against steps_per_call=1
    (Lightning's automatic optimization, one batch a call): the same numbers, to the bit."""
    records = {}
    for name, extra in (("grouped", []), ("automatic", ["steps_per_call=1"])):
        cfg = compose_cfg(["budget=smoke", "logger=none", "trainer.max_epochs=3", *overrides, *extra], tmp_path / name)
        run_trial(cfg)
        records[name] = read_record(cfg.run_dir)
    grouped, automatic = records["grouped"], records["automatic"]
    assert grouped["status"] == automatic["status"] == "ok"
    assert grouped["history"] == automatic["history"]        # global_step included: it counts optimizer steps
    assert grouped["metrics"] == automatic["metrics"]
    assert grouped["probes"].get("grad_norm") == automatic["probes"].get("grad_norm")
    assert grouped["probes"].get("update_ratio") == automatic["probes"].get("update_ratio")
    assert grouped["probes"]["throughput"]["samples"] == automatic["probes"]["throughput"]["samples"]


def test_logged_metrics_are_epoch_means_over_all_rows(compose_cfg):
    """train/loss and train/acc are means over every training row of the epoch (weighted by batch),
    not one batch's; val/* over the validation split. A frozen model (lr 1e-12) makes them exact."""
    cfg = compose_cfg(["budget=smoke", "logger=none", "trainer.max_epochs=2", "optimizer=sgd",
                       "optimizer.lr=1e-12"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)      # as run_trial does before building
    datamodule, module = build(cfg)
    expected = {}
    with torch.no_grad():
        for split in ("train", "val", "test"):
            x, y = datamodule.splits[split]
            logits = module.model(x)
            expected[f"{split}/loss"] = torch.nn.functional.cross_entropy(logits, y).item()
            expected[f"{split}/acc"] = (logits.argmax(1) == y).float().mean().item()
    assert len(datamodule.splits["train"][1]) == 420                # 4 batches: 128, 128, 128, 36
    for row in record["history"]:
        for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
            assert row[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-6), (row["epoch"], key)
    for key in ("test/loss", "test/acc"):
        assert record["metrics"][key] == pytest.approx(expected[key], rel=1e-4, abs=1e-6), key


class _Spy(L.Callback):
    """Records what the fast path looked like from the trainer's side."""

    def __init__(self, hook: str | None = None):
        self.calls, self.plain, self.seen = [], None, []
        if hook:    # make this callback implement a hook inside the optimizer step
            setattr(self, hook, lambda *args: self.seen.append(hook))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.plain = pl_module._plain
        self.calls.append((batch_idx, trainer.global_step, len(batch) if isinstance(batch, BatchGroup) else 1))


@pytest.mark.parametrize("hook", [None, "on_after_backward", "on_before_optimizer_step"])
def test_steps_skip_lightnings_hook_dispatch_only_when_nobody_listens(compose_cfg, monkeypatch, hook):
    spy = _Spy(hook)
    _spy_in(monkeypatch, spy)
    cfg = compose_cfg(["budget=smoke", "logger=none", "data.batch_size=32", "steps_per_call=4",
                       "trainer.max_epochs=2"])
    run_trial(cfg)
    assert read_record(cfg.run_dir)["status"] == "ok"
    assert spy.plain is (hook is None)
    # 420 training rows = 14 batches an epoch, in calls of 4, 4, 4, 2; global_step counts optimizer steps
    assert spy.calls == [(0, 4, 4), (1, 8, 4), (2, 12, 4), (3, 14, 2), (0, 18, 4), (1, 22, 4), (2, 26, 4), (3, 28, 2)]
    assert len(spy.seen) == (28 if hook else 0)               # a listener hears every step


def test_the_private_step_counters_the_plain_path_calls_are_still_there():
    """The one private Lightning call ablate keeps (module.AblationModule._optimize): the callbacks
    Lightning's manual loop attaches to its optimizer wrapper. If this fails after a Lightning upgrade,
    the plain path must go (or follow the new names): measure with `python -m ablate.bench`."""
    assert L.__version__ == "2.6.6"           # pinned in pyproject.toml
    wrapper = LightningOptimizer(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1))
    assert callable(wrapper._on_before_step) and callable(wrapper._on_after_step)


def test_a_non_finite_loss_inside_a_call_is_caught(compose_cfg):
    """The step checks every loss of a call (one device sync per call): NaN at any step stops the run."""
    cfg = compose_cfg(["budget=smoke", "logger=none", "optimizer=sgd", "optimizer.fused=false", "optimizer.lr=1e6",
                       "steps_per_call=8"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    assert record["status"] == "diverged" and "epoch 0" in record["error"]
    assert record["error"].startswith("training loss became nan") or "inf" in record["error"]


def test_one_step_per_call_where_lightnings_loop_is_needed(compose_cfg):
    assert steps_per_call(compose_cfg(["steps_per_call=16"])) == 16
    assert steps_per_call(compose_cfg(["steps_per_call=16", "trainer.gradient_clip_val=0.5"])) == 1
    assert steps_per_call(compose_cfg(["steps_per_call=16", "+trainer.accumulate_grad_batches=2"])) == 1
    assert not AblationModule(nn.Linear(2, 2), nn.CrossEntropyLoss(), None, None, steps_per_call=4).automatic_optimization
    assert AblationModule(nn.Linear(2, 2), nn.CrossEntropyLoss(), None, None, steps_per_call=1).automatic_optimization


def test_gradient_clipping_still_runs(compose_cfg):
    cfg = compose_cfg(["budget=smoke", "logger=none", "trainer.gradient_clip_val=0.5"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    assert record["status"] == "ok" and record["epochs_completed"] == 2


class _Rates(L.Callback):
    def __init__(self):
        self.rates = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize("calls", ["32", "1"])
def test_plateau_schedule_cuts_the_rate_when_val_loss_stalls(compose_cfg, monkeypatch, calls):
    """scheduler=plateau steps on the logged val/loss after each epoch's validation, on both paths.
    With an absurd threshold nothing counts as an improvement, so the rate falls every epoch."""
    rates = _Rates()
    _spy_in(monkeypatch, rates)
    cfg = compose_cfg(["budget=smoke", "logger=none", "scheduler=plateau", "scheduler.patience=0",
                       "+scheduler.threshold=1e9", "trainer.max_epochs=4", f"steps_per_call={calls}"])
    run_trial(cfg)
    assert read_record(cfg.run_dir)["status"] == "ok"
    assert rates.rates == pytest.approx([1e-3, 1e-4, 1e-5, 1e-6])


def test_plateau_needs_its_metric_logged(compose_cfg):
    cfg = compose_cfg(["budget=smoke", "logger=none", "scheduler=plateau", "scheduler.monitor=val/nothing"])
    with pytest.raises(RuntimeError, match="val/nothing"):
        run_trial(cfg)
