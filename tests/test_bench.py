"""``python -m ablate.bench`` (output format only: no timing assertions) and the fast training path
it measures, which must compute exactly what Lightning's automatic loop computes."""

from __future__ import annotations

import re
from types import SimpleNamespace

import lightning as L
import pytest
from torch import nn

import ablate.run
from ablate.bench import main, run_lockstep, run_raw
from ablate.data import BatchGroup
from ablate.module import AblationModule
from ablate.results import read_record
from ablate.run import run_trial

RATIO = re.compile(r"^ablate/raw fit-time ratio: \d+\.\d\d$")


@pytest.mark.parametrize("method", [["--floor"], ["--whole-runs"]], ids=["lockstep+floor", "whole-runs"])
def test_bench_prints_its_ratio_last(capsys, method):
    ratio = main(["--epochs", "2", "--repeats", "1", "--samples", "400", *method])
    lines = capsys.readouterr().out.strip().splitlines()
    assert RATIO.match(lines[-1]), lines[-1]
    assert float(lines[-1].rsplit(" ", 1)[1]) == pytest.approx(ratio, abs=0.005)
    rows = {line.split(":", 1)[0].strip(): line for line in lines if line.startswith(("ablate:", "raw   :"))}
    assert set(rows) == {"ablate", "raw"}
    for row in rows.values():
        assert re.search(r"ms/step .* samples/s\); \d+ steps", row), row
    # same model, same batches: both contenders end at the same training loss
    losses = {name: re.search(r"final train/loss (\S+),", row).group(1) for name, row in rows.items()}
    assert losses["ablate"] == losses["raw"]
    repeat = re.search(r"repeat 1/1: ablate (\S+) s, raw (\S+) s", "\n".join(lines))
    assert 0 < float(repeat.group(1)) and 0 < float(repeat.group(2))
    if "--floor" in method:
        floor = re.search(r"^Lightning's floor: .*: (\d+\.\d\d) \(median of 1", "\n".join(lines), re.MULTILINE)
        assert floor and float(floor.group(1)) > 0


def test_lockstep_runs_both_contenders_epoch_by_epoch(compose_cfg, tmp_path):
    """The raw loop's epochs run inside ablate's fit, one before each of ablate's epochs, and their time
    is taken out of ablate's: both end where they would have run alone."""
    overrides = ["budget=smoke", "trainer.max_epochs=3"]
    alone = run_raw(compose_cfg(overrides, tmp_path / "alone"))
    ablate, raw = run_lockstep(compose_cfg(overrides, tmp_path / "ablate"), compose_cfg(overrides, tmp_path / "raw"))
    assert raw["steps"] == ablate["steps"] == alone["steps"] == 3 * 4         # 420 training rows: 4 batches of 128
    assert raw["train_loss"] == alone["train_loss"] == pytest.approx(ablate["train_loss"], abs=1e-6)
    assert len((tmp_path / "raw" / "metrics.csv").read_text().splitlines()) == 1 + 3
    assert raw["interleaved_epochs"] == [0, 1, 2]                  # one raw epoch before each of ablate's
    assert 0 < ablate["fit_s"] and 0 < raw["fit_s"]
    assert read_record(tmp_path / "ablate")["status"] == "ok"


@pytest.mark.slow
def test_bench_sweep_prints_the_speed_up(capsys):
    main(["--epochs", "1", "--repeats", "1", "--samples", "300", "--sweep", "--sweep-skip-default-threads",
          "--sweep-grid", "seed=0,1", "budget=smoke"])
    out = capsys.readouterr().out
    assert re.search(r"^joblib/basic sweep speed-up: \d+\.\d\d ", out, re.MULTILINE), out
    assert "basic-1-thread: " in out and "joblib: " in out and "2 records" in out
    assert RATIO.match(out.strip().splitlines()[-1])


class _Automatic(AblationModule):
    """The same module on Lightning's automatic optimization loop."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.automatic_optimization = True


@pytest.mark.parametrize("overrides", [
    [],
    ["scheduler=step", "scheduler.step_size=1"],                     # stepped per epoch
    ["scheduler=onecycle", "probes=gradients"],                      # per step; hooks the probes use
    ["model=resnet", "norm=batch", "optimizer=momentum", "trainer.precision=bf16-mixed"],
    # 14 batches an epoch: calls of 3, 3, 3, 3 and 2 steps; a per-step schedule and the probes
    ["data.batch_size=32", "steps_per_call=3", "scheduler=onecycle", "probes=gradients"],
    ["data.batch_size=32", "steps_per_call=3", "scheduler=cosine"],
    ["data.batch_size=32", "steps_per_call=1"],
], ids=["plain", "epoch-schedule", "step-schedule+probes", "resnet-bf16", "3-steps-per-call+onecycle+probes",
        "3-steps-per-call+cosine", "1-step-per-call"])
def test_fast_path_matches_the_automatic_loop(compose_cfg, tmp_path, monkeypatch, overrides):
    records = {}
    for name, module_class in (("fast", AblationModule), ("automatic", _Automatic)):
        monkeypatch.setattr(ablate.run, "AblationModule", module_class)
        cfg = compose_cfg(["budget=smoke", "logger=none", "trainer.max_epochs=3", *overrides], tmp_path / name)
        run_trial(cfg)
        records[name] = read_record(cfg.run_dir)
    fast, automatic = records["fast"], records["automatic"]
    assert fast["status"] == automatic["status"] == "ok"
    assert fast["history"] == automatic["history"]            # global_step included: it counts optimizer steps
    assert fast["metrics"] == automatic["metrics"]
    assert fast["probes"].get("grad_norm") == automatic["probes"].get("grad_norm")
    assert fast["probes"].get("update_ratio") == automatic["probes"].get("update_ratio")
    assert fast["probes"]["throughput"]["samples"] == automatic["probes"]["throughput"]["samples"]


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
    original = ablate.run.History
    monkeypatch.setattr(ablate.run, "History", lambda probes: (probes.append(spy), original(probes))[1])
    cfg = compose_cfg(["budget=smoke", "logger=none", "data.batch_size=32", "steps_per_call=4",
                       "trainer.max_epochs=2"])
    run_trial(cfg)
    assert read_record(cfg.run_dir)["status"] == "ok"
    assert spy.plain is (hook is None)
    # 420 training rows = 14 batches an epoch, in calls of 4, 4, 4, 2; global_step counts optimizer steps
    assert spy.calls == [(0, 4, 4), (1, 8, 4), (2, 12, 4), (3, 14, 2), (0, 18, 4), (1, 22, 4), (2, 26, 4), (3, 28, 2)]
    assert len(spy.seen) == (28 if hook else 0)               # a listener hears every step


def test_a_non_finite_loss_inside_a_call_is_caught(compose_cfg):
    """Divergence sees one loss per call: the mean of its steps' losses, NaN if any of them is."""
    cfg = compose_cfg(["budget=smoke", "logger=none", "optimizer=sgd", "optimizer.lr=1e6", "steps_per_call=8"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    assert record["status"] == "diverged" and "epoch 0" in record["error"]


def test_lightnings_loop_where_the_fast_path_cannot_follow():
    module = AblationModule(nn.Linear(2, 2), nn.CrossEntropyLoss(), None, None, 2)
    assert module.automatic_optimization                      # no trainer yet

    def attach(clip, accumulate):
        module._trainer = SimpleNamespace(gradient_clip_val=clip, accumulate_grad_batches=accumulate)

    attach(None, 1)
    assert not module.automatic_optimization
    attach(0.5, 1)
    assert module.automatic_optimization                      # gradient clipping
    attach(None, 4)
    assert module.automatic_optimization                      # gradient accumulation
    attach(None, 1)
    module.automatic_optimization = True
    assert module.automatic_optimization                      # asked for


def test_gradient_clipping_still_runs(compose_cfg):
    cfg = compose_cfg(["budget=smoke", "logger=none", "trainer.gradient_clip_val=0.5"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    assert record["status"] == "ok" and record["epochs_completed"] == 2


def test_logged_metric_holders_skip_only_the_move_to_where_they_are(compose_cfg, monkeypatch):
    """After an epoch's first log, the holders of ablate's logged metrics skip Lightning's walk when
    the metric is already on the target device; any other move still goes through Lightning's."""
    import torch
    from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultMetric

    from ablate.module import MeanValue, _LoggedMetric

    holders = []

    class Spy(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            holders.extend(trainer._results.values())

    original = ablate.run.History
    monkeypatch.setattr(ablate.run, "History", lambda probes: (probes.append(Spy()), original(probes))[1])
    cfg = compose_cfg(["budget=smoke", "logger=none", "trainer.max_epochs=3"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    losses = [row["train/loss"] for row in record["history"]]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2]          # logged anew every epoch
    assert holders and all(type(h) is _LoggedMetric for h in holders)
    holder = holders[0]
    moved = []
    monkeypatch.setattr(_ResultMetric, "to", lambda self, *a, **k: (moved.append(a), self)[1])
    assert holder.to(torch.device("cpu")) is holder and holder.to("cpu") is holder and moved == []
    holder.to(torch.float64)
    holder.to(torch.device("meta"))
    assert moved == [(torch.float64,), (torch.device("meta"),)]
    assert isinstance(holder.value, MeanValue)
