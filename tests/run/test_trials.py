"""``ablate.run``: one trial from config to record. Real Trainer runs at smoke budgets (every family
learns, every data source runs, the record holds what the schema promises), determinism on CPU, and the
record's provenance (versions, commit). Multi-process runs (DDP, ddp_spawn, the submitit launchers) are
tested in tests/test_scale.py."""

from __future__ import annotations

import math
import platform
import re
import shutil
import subprocess
from pathlib import Path

import lightning
import pytest
import torch

import ablate
from ablate.results import read_record, validate_record
from ablate.run import build, run_trial
from tests.support import REPO, compose

FAMILIES = ("mlp", "cnn", "resnet", "rnn", "transformer")


def _trial(compose_cfg, overrides, run_dir=None):
    cfg = compose_cfg(overrides, run_dir)
    objective = run_trial(cfg)
    record = validate_record(read_record(cfg.run_dir))
    return cfg, objective, record


def _train_rows(cfg) -> int:
    n = cfg.data.source.get("num_samples") or 1797
    return n - round(n * cfg.data.val_fraction) - round(n * cfg.data.test_fraction)


def _check_ok(cfg, objective, record, epochs):
    """What the record of a finished single run holds."""
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


# --- real runs: every family learns, every data source runs ----------------------------------------

# A rate high enough that 4 smoke epochs (16 steps of 128) move every family's loss clearly. The
# LSTM reads mnist1d one value per step and sits at chance for the first epochs, so it gets 10.
LEARN = ["budget=smoke", "optimizer.lr=0.01", "logger=none"]
EPOCHS = {"rnn": 10}


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


def test_the_readme_combination_runs_and_is_recorded(compose_cfg):
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
def test_other_data_sources_run_and_start_at_chance_loss(compose_cfg, overrides, classes):
    cfg, objective, record = _trial(compose_cfg, [*overrides, "budget=smoke", "logger=none"])
    _check_ok(cfg, objective, record, 2)
    # accuracy is measured over `classes` classes: the loss starts near ln(classes)
    assert record["history"][0]["train/loss"] == pytest.approx(math.log(classes), rel=0.35)


def test_csv_logger_writes_the_epoch_metrics(compose_cfg, tmp_path):
    cfg, objective, record = _trial(compose_cfg, ["budget=smoke", "logger=csv"])
    _check_ok(cfg, objective, record, 2)
    metrics = list((tmp_path / "run" / "logs").rglob("metrics.csv"))
    assert len(metrics) == 1
    header = metrics[0].read_text().splitlines()[0].split(",")
    assert {"train/loss", "val/acc", "epoch"} <= set(header)


def test_checkpoint_false_writes_no_checkpoint(compose_cfg):
    """``checkpoint=false`` means none at all: not ablate's last.ckpt, nor Lightning's default one."""
    cfg = compose_cfg(["budget=smoke", "checkpoint=false"])
    run_trial(cfg)
    assert read_record(cfg.run_dir)["status"] == "ok"
    assert sorted(p.name for p in Path(cfg.run_dir).rglob("*.ckpt")) == []


def test_a_plain_lightning_callback_can_be_a_probe(compose_cfg, tmp_path):
    """A callback without ablate's probe methods (epoch_metrics, final_metrics, summary)."""
    cfg = compose_cfg(["budget=smoke", "logger=none", "+probes.timer._target_=lightning.pytorch.callbacks.Timer"])
    run_trial(cfg)
    record = read_record(tmp_path / "run")
    assert record["status"] == "ok" and record["epochs_completed"] == 2


# --- determinism on CPU: the same config and seed give the same numbers -----------------------------
# (Lightning ``deterministic=True``, a seeded split, a shuffle order that is a function of (seed, epoch):
# tests/data/test_datamodule.py. Cross-process determinism: tests/run/test_sweeps.py compares relaunched
# subprocess sweeps with in-process references.)

DETERMINISM = ["budget=smoke", "logger=none", "probes=gradients"]
TIMING_KEYS = ("throughput",)              # wall-clock measurements: never equal between two runs


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """``seeded(family, seed, copy)``: the record of one smoke trial, each distinct one run once."""
    root, cache = tmp_path_factory.mktemp("determinism"), {}

    def _trial(family: str, seed: int, copy: str = "a") -> dict:
        key = (family, seed, copy)
        if key not in cache:
            run_dir = root / f"{family}-seed{seed}-{copy}"
            run_trial(compose([f"model={family}", f"seed={seed}", *DETERMINISM], run_dir))
            cache[key] = validate_record(read_record(run_dir))
        return cache[key]

    return _trial


@pytest.mark.parametrize("family", ("mlp", "cnn"))
def test_same_config_and_seed_give_identical_results(seeded, family):
    a, b = seeded(family, 0, "a"), seeded(family, 0, "b")
    assert a["status"] == b["status"] == "ok"
    assert a["seed"] == b["seed"] == 0
    assert a["history"] == b["history"]                      # every epoch's train/val numbers, exactly
    assert a["metrics"] == b["metrics"]                      # incl. test/* and the probes' finals
    assert a["params"] == b["params"]
    for probe in a["probes"]:
        if probe not in TIMING_KEYS:
            assert a["probes"][probe] == b["probes"][probe], probe
    assert a["probes"]["throughput"]["samples"] == b["probes"]["throughput"]["samples"]
    assert a["run_id"] != b["run_id"]                        # two runs, really


@pytest.mark.parametrize("family", ("mlp", "cnn"))
def test_another_seed_gives_other_results(seeded, family):
    a, c = seeded(family, 0, "a"), seeded(family, 1, "a")
    assert a["seed"] == 0 and c["seed"] == 1
    assert a["history"] != c["history"]
    for key in ("train/loss", "val/loss", "test/loss", "grad/first_layer_init"):
        assert a["metrics"][key] != c["metrics"][key], key
    assert a["probes"]["grad_norm"]["init"] != c["probes"]["grad_norm"]["init"]   # another initialisation


def test_records_hold_seed_versions_and_commit(seeded):
    record = seeded("mlp", 0, "a")
    assert record["seed"] == 0 and record["config"]["seed"] == 0
    versions = record["versions"]
    assert set(versions) >= {"python", "torch", "lightning", "ablate", "git_commit"}
    assert versions["python"] == platform.python_version()
    assert versions["torch"] == torch.__version__
    assert versions["lightning"] == lightning.__version__
    assert versions["ablate"] == ablate.__version__
    commit = versions["git_commit"]
    git = shutil.which("git")
    in_checkout = git and subprocess.run([git, "-C", str(REPO), "rev-parse", "--is-inside-work-tree"],
                                         capture_output=True, text=True).returncode == 0
    if not in_checkout:
        assert commit is None
        return
    assert isinstance(commit, str) and re.fullmatch(r"[0-9a-f]{40}", commit), commit
    # a commit of this repository (HEAD may have moved on since it was read, while the suite ran)
    assert subprocess.run([git, "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"]).returncode == 0


def test_trainer_is_deterministic_on_cpu(seeded):
    trainer = seeded("mlp", 0, "a")["config"]["trainer"]
    assert trainer["deterministic"] is True and trainer["benchmark"] is False
    assert trainer["accelerator"] == "cpu"
