"""Real Trainer runs through ``ablate.run.run_trial`` at smoke budgets: every family learns, every
data source runs, and the run record holds what the schema promises."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ablate.results import read_record, validate_record
from ablate.run import build, run_trial

FAMILIES = ("mlp", "cnn", "resnet", "rnn", "transformer")
# A rate high enough that 4 smoke epochs (16 steps of 128) move every family's loss clearly. The
# LSTM reads mnist1d one value per step and sits at chance for the first epochs, so it gets 10.
LEARN = ["budget=smoke", "optimizer.lr=0.01", "logger=none"]
EPOCHS = {"rnn": 10}


def _trial(compose_cfg, overrides, run_dir=None):
    cfg = compose_cfg(overrides, run_dir)
    objective = run_trial(cfg)
    record = validate_record(read_record(cfg.run_dir))
    return cfg, objective, record


def _check_ok(cfg, objective, record, epochs):
    assert record["status"] == "ok" and record["error"] is None
    assert record["epochs_completed"] == epochs == len(record["history"])
    assert [row["epoch"] for row in record["history"]] == list(range(epochs))
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc"):
        assert math.isfinite(record["metrics"][key]), key
    for key in ("val/acc", "test/acc", "train/acc"):
        assert 0.0 <= record["metrics"][key] <= 1.0
    assert objective == pytest.approx(record["metrics"]["val/acc"])  # the sweeper's objective
    assert record["metrics"]["train/loss"] == record["history"][-1]["train/loss"]
    assert record["config"]["run_dir"] == str(cfg.run_dir)
    assert record["run_id"] == cfg.run_dir.rsplit("/", 1)[-1]
    assert record["overrides"] == {}                                   # no Hydra app in-process
    assert record["batch_size"] == {"per_rank": cfg.data.batch_size, "world_size": 1,
                                    "effective": cfg.data.batch_size}
    assert record["samples_per_s"] > 0 and record["wall_time_s"] > 0
    assert record["probes"]["throughput"]["samples"] == len(record["history"]) * _train_rows(cfg)
    assert not Path(cfg.run_dir, "checkpoints").exists()    # removed once the record is written


def _train_rows(cfg) -> int:
    n = cfg.data.source.get("num_samples") or 1797
    return n - round(n * cfg.data.val_fraction) - round(n * cfg.data.test_fraction)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_learns_mnist1d(compose_cfg, family):
    epochs = EPOCHS.get(family, 4)
    cfg, objective, record = _trial(compose_cfg, [f"model={family}", *LEARN, f"trainer.max_epochs={epochs}"])
    _check_ok(cfg, objective, record, epochs)
    first, last = record["history"][0]["train/loss"], record["history"][-1]["train/loss"]
    assert last < 0.95 * first, f"{family}: train loss {first:.3f} -> {last:.3f}"
    # the record's parameter count is the built model's
    _, module = build(cfg)
    assert record["params"] == sum(p.numel() for p in module.model.parameters())
    assert record["config"]["model"]["_target_"].lower().endswith(family)


def test_the_issue_combination(compose_cfg):
    overrides = ["model=resnet", "activation=sigmoid", "norm=layer", "optimizer=adamw", "scheduler=warmup_cosine",
                 "budget=smoke"]
    cfg, objective, record = _trial(compose_cfg, overrides)
    _check_ok(cfg, objective, record, 2)
    assert record["config"]["activation"]["_target_"] == "torch.nn.Sigmoid"
    assert record["config"]["norm"]["name"] == "layer"
    assert record["config"]["optimizer"]["_target_"] == "torch.optim.AdamW"
    assert record["config"]["scheduler"]["_target_"] == "ablate.nn.schedules.warmup_cosine"


@pytest.mark.parametrize("overrides,classes", [
    (["data=digits", "model=cnn"], 10),
    (["data=synthetic", "model=mlp"], 4),
    (["data=recall", "model=rnn", "data.source.length=20"], 8),
    (["data=adding", "model=transformer", "data.source.length=20"], 2),
], ids=["digits-cnn", "synthetic-mlp", "recall-rnn", "adding-transformer"])
def test_other_data_sources_run(compose_cfg, overrides, classes):
    cfg, objective, record = _trial(compose_cfg, [*overrides, "budget=smoke", "logger=none"])
    _check_ok(cfg, objective, record, 2)
    # accuracy is measured over `classes` classes: never below 0, and loss starts near ln(classes)
    assert record["history"][0]["train/loss"] == pytest.approx(math.log(classes), rel=0.35)


def test_csv_logger_writes_metrics(compose_cfg, tmp_path):
    cfg, objective, record = _trial(compose_cfg, ["budget=smoke", "logger=csv"])
    _check_ok(cfg, objective, record, 2)
    metrics = list((tmp_path / "run" / "logs").rglob("metrics.csv"))
    assert len(metrics) == 1
    header = metrics[0].read_text().splitlines()[0].split(",")
    assert {"train/loss", "val/acc", "epoch"} <= set(header)


def test_same_seed_same_run_other_seed_other_run(compose_cfg, tmp_path):
    common = ["budget=smoke", "logger=none", "model=mlp"]
    _, _, a = _trial(compose_cfg, [*common, "seed=0"], tmp_path / "a")
    _, _, b = _trial(compose_cfg, [*common, "seed=0"], tmp_path / "b")
    _, _, c = _trial(compose_cfg, [*common, "seed=1"], tmp_path / "c")
    assert a["history"] == b["history"] and a["metrics"] == b["metrics"]   # trainer.deterministic=true
    assert a["history"] != c["history"]
    assert a["seed"] == 0 and c["seed"] == 1


def test_finished_run_is_not_redone(compose_cfg, tmp_path):
    cfg, objective, record = _trial(compose_cfg, ["budget=smoke", "logger=none"])
    before = (tmp_path / "run" / "record.json").read_text()
    assert run_trial(cfg) == objective                       # skipped: same objective, same record
    assert (tmp_path / "run" / "record.json").read_text() == before


def test_logged_metrics_are_epoch_means_over_all_rows(compose_cfg):
    """train/loss and train/acc are means over every training row of the epoch (weighted by batch),
    not one batch's; val/* over the validation split. A frozen model (lr 1e-12) makes them exact."""
    cfg = compose_cfg(["budget=smoke", "logger=none", "trainer.max_epochs=2", "optimizer=sgd",
                       "optimizer.lr=1e-12"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    from lightning import seed_everything

    seed_everything(cfg.seed, workers=True, verbose=False)      # as run_trial does before building
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


def _killable_mlp(monkeypatch, kill_after: int | None):
    """Count MLP forwards; raise after ``kill_after`` of them (a run killed mid-training)."""
    from ablate.models import MLP

    original, state = MLP.forward, {"calls": 0, "kill_after": kill_after}

    def forward(self, x):
        state["calls"] += 1
        if state["kill_after"] is not None and state["calls"] > state["kill_after"]:
            raise RuntimeError("killed mid-run")
        return original(self, x)

    monkeypatch.setattr(MLP, "forward", forward)
    return state


def test_killed_run_resumes_from_its_last_epoch(compose_cfg, tmp_path, monkeypatch):
    common = ["budget=smoke", "logger=none", "trainer.max_epochs=3"]
    # per epoch: 4 training batches + 1 validation batch (420 / 128 rows, 60 rows in one eval batch)
    _, _, full = _trial(compose_cfg, common, tmp_path / "full")
    state = _killable_mlp(monkeypatch, kill_after=13)               # dies in the third epoch
    with pytest.raises(RuntimeError, match="killed mid-run"):
        _trial(compose_cfg, common, tmp_path / "killed")
    assert read_record(tmp_path / "killed")["status"] == "failed"
    assert (tmp_path / "killed" / "checkpoints" / "last.ckpt").is_file()
    state.update(calls=0, kill_after=None)
    _, _, resumed = _trial(compose_cfg, common, tmp_path / "killed")
    assert state["calls"] == 4 + 1 + 1                              # the last epoch and the test only
    assert resumed["status"] == "ok"
    assert resumed["history"] == full["history"] and resumed["metrics"] == full["metrics"]
    assert not (tmp_path / "killed" / "checkpoints").exists()


def test_checkpoint_false_writes_no_checkpoint(compose_cfg):
    """``checkpoint=false`` means none at all: not ablate's last.ckpt, nor Lightning's default one."""
    cfg = compose_cfg(["budget=smoke", "checkpoint=false"])
    run_trial(cfg)
    assert read_record(cfg.run_dir)["status"] == "ok"
    assert sorted(p.name for p in Path(cfg.run_dir).rglob("*.ckpt")) == []
