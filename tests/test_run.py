"""``ablate.run``: one trial from config to record. Real Trainer runs at smoke budgets (every family
learns, every data source runs, the record holds what the schema promises), determinism, finished runs
skipped and killed ones resumed, faults recorded as ``diverged`` / ``failed`` while a sweep goes on.
Multi-process runs (DDP, ddp_spawn, the submitit launchers) are tested in tests/test_scale.py.

Faults are injected without touching ``src/``: a small module of Lightning callbacks (written to a
temp folder and put on ``PYTHONPATH``) is added as an extra probe, ``+probes.fault._target_=...``.
``Signal`` kills this process (SIGKILL/SIGTERM, or an exception) at a chosen hook, once (only while
the file named by ``$ABLATE_FAULT_TRIGGER`` exists; it is deleted first, so the relaunch of the same
command runs clean); ``Boom`` raises for one seed. The references they are compared with carry the
same probe (inert without the trigger), so configs and job folders are the same.

Subprocesses and the in-process references both run torch on one thread (``OMP_NUM_THREADS=1`` here,
``torch.set_num_threads(1)`` in conftest), so metrics are compared for exact equality.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning
import pytest
import torch
import yaml

import ablate
import ablate.run
from ablate.report.records.values import cell_key
from ablate.results import RECORD_NAME, read_record, validate_record, write_record
from ablate.run import build, run_trial
from hydra_plugins.ablate_sweeper.ablate_sweeper import job_dict
from tests.support import PYTHON, REPO, compose

PROBES_MODULE = "ablate_test_probes"
PROBES_SOURCE = '''
"""Test probes for tests/test_run.py (Lightning callbacks used as extra ablate probes)."""
import os
import signal

import lightning as L


class _Probe(L.Callback):
    def epoch_metrics(self):       # ablate's History asks every probe for its epoch scalars
        return {}


class Signal(_Probe):
    """Send ``sig`` to this process (``sig="exception"``: raise RuntimeError instead) at ``hook``
    (train_epoch_start | test_start), at epoch ``epoch`` (None: any) of the job whose ``seed`` is
    ``at_seed`` (None: any), once: only while the file named by $ABLATE_FAULT_TRIGGER exists, and it
    is deleted first."""

    def __init__(self, sig="SIGKILL", hook="train_epoch_start", epoch=None, at_seed=None, seed=None):
        self.sig, self.hook, self.epoch, self.at_seed, self.seed = sig, hook, epoch, at_seed, seed

    def _fire(self, trainer, hook):
        trigger = os.environ.get("ABLATE_FAULT_TRIGGER")
        if (hook == self.hook and (self.epoch is None or trainer.current_epoch == self.epoch)
                and (self.at_seed is None or self.seed == self.at_seed) and trigger and os.path.exists(trigger)):
            os.unlink(trigger)
            if self.sig == "exception":
                raise RuntimeError(f"killed mid-run at epoch {trainer.current_epoch}")
            os.kill(os.getpid(), getattr(signal, self.sig))

    def on_train_epoch_start(self, trainer, pl_module):
        self._fire(trainer, "train_epoch_start")

    def on_test_start(self, trainer, pl_module):
        self._fire(trainer, "test_start")


class Boom(_Probe):
    """Raise at the start of epoch ``epoch`` of the job whose ``seed`` is ``at_seed``."""

    def __init__(self, seed, at_seed=1, epoch=0):
        self.seed, self.at_seed, self.epoch = seed, at_seed, epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if self.seed == self.at_seed and trainer.current_epoch == self.epoch:
            raise RuntimeError(f"injected fault: boom at epoch {self.epoch} (seed={self.seed})")
'''

TIMEOUT_S = 600          # one subprocess; generous: the machine is shared and has 2 cores
EXACT_KEYS = ("status", "error", "seed", "epochs_completed", "params", "history", "metrics")
FAMILIES = ("mlp", "cnn", "resnet", "rnn", "transformer")


# --- helpers ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def probes_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("probes")
    (folder / f"{PROBES_MODULE}.py").write_text(PROBES_SOURCE)
    return folder


def _env(probes_dir: Path, trigger: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "ABLATE_FAULT_TRIGGER")}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(probes_dir))
    if trigger is not None:
        env["ABLATE_FAULT_TRIGGER"] = str(trigger)
    return env


def _ablate(args, cwd: Path, env: dict, timeout: int = TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "ablate", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def _signal_probe(sig: str, hook: str, epoch: int | None = None, at_seed: int | None = None) -> list[str]:
    args = [f"+probes.fault._target_={PROBES_MODULE}.Signal", f"+probes.fault.sig={sig}",
            f"+probes.fault.hook={hook}"]
    if epoch is not None:
        args.append(f"+probes.fault.epoch={epoch}")
    if at_seed is not None:
        args += [f"+probes.fault.at_seed={at_seed}", "+probes.fault.seed=${seed}"]
    return args


def _reference(overrides: list[str], run_dir: Path, probes_dir: Path) -> dict:
    """The same trial, uninterrupted, in this process."""
    sys.path.insert(0, str(probes_dir))
    try:
        run_trial(compose(overrides, run_dir))
    finally:
        sys.path.remove(str(probes_dir))
    return validate_record(read_record(run_dir))


def _assert_same_results(got: dict, want: dict, what: str = "") -> None:
    for key in EXACT_KEYS:
        assert got[key] == want[key], f"{what}: {key} differs:\n{got[key]}\n!=\n{want[key]}"


def _job_folders(sweep: Path) -> dict[str, Path]:
    """Job folders of a sweep (they hold .hydra/), by name."""
    return {p.name: p for p in sweep.iterdir() if (p / ".hydra").is_dir()} if sweep.exists() else {}


def _seed_of(folder: Path) -> int:
    overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
    return int(next(o.split("=", 1)[1] for o in overrides if o.startswith("seed=")))


def _run_folders(sweep: Path) -> dict[str, Path]:
    """The folders that hold a run's record, by name: a seed=k job's folder, or a member's of a
    seeds=[...] job (the job's own folder holds .hydra/ and, while it trains, its checkpoint)."""
    return {p.parent.name: p.parent for p in sweep.glob(f"*/{RECORD_NAME}")} if sweep.exists() else {}


def _records(sweep: Path) -> dict[str, dict]:
    """run_id -> record, checking there is exactly one record.json per run folder (and none elsewhere)."""
    out = {}
    for name, folder in _run_folders(sweep).items():
        found = list(folder.rglob(RECORD_NAME))
        assert found == [folder / RECORD_NAME], f"{name}: {found}"
        out[name] = validate_record(read_record(folder))
        assert out[name]["run_id"] == name
    assert len(list(sweep.rglob(RECORD_NAME))) == len(out)
    return out


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def _wait_for(condition, timeout: float, proc: subprocess.Popen | None = None, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds (True), the deadline passes or ``proc`` ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc is not None and proc.poll() is not None:
            return condition()
        time.sleep(interval)
    return False


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
# tests/data/test_datamodule.py. Cross-process determinism: the sweep tests below compare relaunched
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


# --- what the record of a run that diverges, fails, or is refused says --------------------------------

def _strict_load(path):
    def no_constants(name):
        raise AssertionError(f"non-JSON constant {name} in {path}")

    return json.loads(path.read_text(), parse_constant=no_constants)


@pytest.mark.filterwarnings("ignore:Encountered `nan` values")
def test_diverging_run_is_recorded_as_diverged(compose_cfg, tmp_path):
    cfg = compose_cfg(["budget=smoke", "logger=none", "optimizer=sgd", "optimizer.lr=1e6"])
    objective = run_trial(cfg)                       # a diverged run does not raise
    assert objective == -math.inf                    # the worst value for the sweeper (val/acc, max)
    stored = _strict_load(tmp_path / "run" / RECORD_NAME)
    record = validate_record(stored)
    assert record["status"] == "diverged"
    assert "training loss became nan" in record["error"] or "training loss became inf" in record["error"]
    assert "epoch 0" in record["error"]
    assert record["epochs_completed"] == len(record["history"]) == 0
    assert "test/acc" not in record["metrics"]       # never tested
    assert record["config"]["optimizer"]["lr"] == 1e6


def test_failing_run_raises_and_is_recorded_as_failed(compose_cfg, tmp_path, monkeypatch):
    from ablate.models import MLP

    calls = {"n": 0}
    original = MLP.forward

    def forward(self, x):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("boom: a deliberately broken forward")
        return original(self, x)

    monkeypatch.setattr(MLP, "forward", forward)
    cfg = compose_cfg(["budget=smoke", "logger=none"])
    with pytest.raises(RuntimeError, match="run failed: RuntimeError: boom: a deliberately broken forward"):
        run_trial(cfg)
    record = validate_record(read_record(tmp_path / "run"))
    assert record["status"] == "failed"
    assert "boom: a deliberately broken forward" in record["error"]
    assert "Traceback" in record["error"] and "forward" in record["error"]
    assert record["epochs_completed"] == 0


def test_invalid_config_exits_2_and_writes_nothing(compose_cfg, tmp_path, capsys):
    cfg = compose_cfg(["budget=smoke", "optimizer.lr=-1", "model.depth=0"])
    with pytest.raises(SystemExit) as info:
        run_trial(cfg)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "optimizer.lr=-1" in err and "model.depth=0" in err
    assert not (tmp_path / "run").exists()


@pytest.fixture
def hydra_job(tmp_path):
    """Compose like a Hydra app does (with the hydra node) and register it as the running job, so
    run_trial records the job's overrides; returns a function overrides -> cfg (hydra node removed)."""
    from hydra import compose as hydra_compose, initialize_config_module
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    def job(overrides):
        with initialize_config_module("ablate.conf", version_base="1.3"):
            cfg = hydra_compose("config", overrides=[*overrides, f"run_dir={tmp_path / 'run'}"],
                                return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg

    yield job
    HydraConfig.instance().cfg = None


def test_record_holds_the_job_overrides(hydra_job, tmp_path):
    cfg = hydra_job(["budget=smoke", "logger=none", "++trainer.min_epochs=1", "seed=3"])
    run_trial(cfg)
    record = read_record(tmp_path / "run")
    assert record["overrides"] == {"budget": "smoke", "logger": "none", "trainer.min_epochs": "1", "seed": "3",
                                   "run_dir": str(tmp_path / "run")}
    assert record["seed"] == 3


def test_a_deletion_override_is_recorded_and_the_run_goes_on(hydra_job, tmp_path):
    cfg = hydra_job(["budget=smoke", "logger=none", "~probes"])
    run_trial(cfg)
    record = read_record(tmp_path / "run")
    assert record["status"] == "ok" and record["overrides"]["budget"] == "smoke"
    assert "probes" in record["overrides"] and record["overrides"]["probes"] is None


# --- a finished run is skipped; an unfinished one is redone or resumed -------------------------------

def _fake_record(run_dir: Path, **fields) -> dict:
    record = {"schema": 1, "run_id": run_dir.name, "status": "ok", "error": None, "seed": 0, "overrides": {},
              "config": {}, "metrics": {"val/acc": 0.625, "train/loss": 0.5}, "history": [], "probes": {},
              "params": 1, "wall_time_s": 1.0, "versions": {}, **fields}
    write_record(run_dir, record)
    return record


def test_a_finished_run_is_skipped_without_building_anything(compose_cfg, tmp_path, caplog, monkeypatch):
    """Run once; the same trial again builds nothing, returns the finished run's objective, leaves its
    record untouched, and clears a checkpoint a kill between record and clean-up left behind."""
    cfg = compose_cfg(["budget=smoke", "logger=none"])
    objective = run_trial(cfg)
    run_dir = tmp_path / "run"
    path = run_dir / RECORD_NAME
    os.utime(path, (1_000_000_000, 1_000_000_000))            # an old mtime: any rewrite would show
    before = path.read_bytes()
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"left by a kill after the record was written")

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was built/trained again")

    monkeypatch.setattr(ablate.run, "build", no_training)
    monkeypatch.setattr(ablate.run, "instantiate", no_training)      # data, model, probes, Trainer
    caplog.set_level(logging.INFO, logger="ablate")
    again = run_trial(cfg)
    assert again == objective == read_record(run_dir)["metrics"]["val/acc"]   # for a sweeper
    messages = [r.getMessage() for r in caplog.records if r.name == "ablate"]
    assert any("skipping" in m and "already done" in m and str(run_dir) in m for m in messages), messages
    assert path.stat().st_mtime == 1_000_000_000 and path.read_bytes() == before
    assert os.listdir(run_dir) == [RECORD_NAME]


def test_a_finished_vectorized_job_is_skipped_and_its_leftover_checkpoint_removed(compose_cfg, tmp_path, caplog,
                                                                                   monkeypatch):
    """A job of seeds=[0,1] whose members both have ok records builds nothing when run again, and
    removes the checkpoint a kill between its records and its clean-up left in the job's folder."""
    cfg = compose_cfg(["budget=smoke", "logger=none", "seeds=[0,1]"])
    objective = run_trial(cfg)
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"left by a kill after the records were written")

    def no_training(*args, **kwargs):
        raise AssertionError("a finished job was built/trained again")

    monkeypatch.setattr(ablate.run, "build", no_training)
    monkeypatch.setattr(ablate.run, "instantiate", no_training)
    caplog.set_level(logging.INFO, logger="ablate")
    assert run_trial(cfg) == objective
    assert any("every member already done" in r.getMessage() for r in caplog.records if r.name == "ablate")
    assert not (run_dir / "checkpoints").exists()
    assert all(read_record(run_dir / f"seed={s}")["status"] == "ok" for s in (0, 1))


@pytest.mark.parametrize("existing", ["failed", "diverged", "truncated", "not-json"])
def test_an_unfinished_or_unreadable_record_is_run_again(compose_cfg, tmp_path, existing):
    """Only status ok marks a run done: a failed, diverged or torn record is run again."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = run_dir / RECORD_NAME
    if existing in ("failed", "diverged"):
        _fake_record(run_dir, status=existing, error=f"an earlier {existing} run")
    elif existing == "truncated":      # what a non-atomic writer killed mid-write would leave
        path.write_text('{"status": "ok", "metrics": {"val/acc": 0.9')
    else:
        path.write_text("not json at all")
    run_trial(compose_cfg(["budget=smoke", "logger=none"]))
    record = validate_record(read_record(run_dir))
    assert record["status"] == "ok" and record["error"] is None
    assert record["epochs_completed"] == 2 and math.isfinite(record["metrics"]["test/acc"])


def test_an_unreadable_checkpoint_is_dropped_and_the_run_starts_afresh(compose_cfg, tmp_path, caplog):
    overrides = ["budget=smoke", "logger=none"]
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"PK\x03\x04 half a zip file")        # a kill during torch.save
    caplog.set_level(logging.INFO, logger="ablate")
    run_trial(compose_cfg(overrides))
    assert any("ignoring unusable checkpoint" in r.getMessage() for r in caplog.records)
    resumed = validate_record(read_record(tmp_path / "run"))
    fresh = _reference(overrides, tmp_path / "fresh", tmp_path)
    _assert_same_results(resumed, fresh, "after a bad checkpoint")
    assert not checkpoint.parent.exists()


def _count_forwards(monkeypatch) -> dict:
    from ablate.models import MLP

    original, state = MLP.forward, {"calls": 0}

    def forward(self, x):
        state["calls"] += 1
        return original(self, x)

    monkeypatch.setattr(MLP, "forward", forward)
    return state


@pytest.mark.parametrize("kill", ["exception", "sigkill"])
def test_a_run_killed_mid_training_resumes_from_its_last_epoch(compose_cfg, tmp_path, monkeypatch, caplog,
                                                                probes_dir, kill):
    """Killed as epoch 2 of 4 starts, by an exception inside the process (its record says failed) or
    by SIGKILL from outside (no record at all): the relaunch resumes from the checkpoint of epoch 1,
    trains only epochs 2 and 3, and ends with the record of the uninterrupted run."""
    overrides = ["budget=smoke", "trainer.max_epochs=4", "logger=none", "probes=gradients",
                 *_signal_probe("exception" if kill == "exception" else "SIGKILL", "train_epoch_start", epoch=2)]
    reference = _reference(overrides, tmp_path / "reference", probes_dir)     # before the trigger exists
    run_dir, trigger = tmp_path / "run", tmp_path / "trigger"
    trigger.touch()
    monkeypatch.syspath_prepend(str(probes_dir))
    if kill == "exception":
        monkeypatch.setenv("ABLATE_FAULT_TRIGGER", str(trigger))
        with pytest.raises(RuntimeError, match="killed mid-run at epoch 2"):
            run_trial(compose_cfg(overrides, run_dir))
        assert read_record(run_dir)["status"] == "failed"
    else:
        first = _ablate([*overrides, f"hydra.run.dir={run_dir}"], tmp_path, _env(probes_dir, trigger))
        assert first.returncode == -signal.SIGKILL, first.stdout[-3000:]
        assert not (run_dir / RECORD_NAME).exists()
    assert not trigger.exists(), "the kill never came"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file(), "no checkpoint after 2 of 4 epochs"

    forwards = _count_forwards(monkeypatch)
    caplog.set_level(logging.INFO, logger="ablate")
    run_trial(compose_cfg(overrides, run_dir))
    assert any("resuming" in r.getMessage() and "last.ckpt" in r.getMessage() for r in caplog.records)
    # epochs 2 and 3 only (4 training batches, 1 validation batch, UnitStats' probe batch each), then the test
    assert forwards["calls"] == 2 * (4 + 1 + 1) + 1
    record = validate_record(read_record(run_dir))
    assert record["epochs_completed"] == 4 and [row["epoch"] for row in record["history"]] == [0, 1, 2, 3]
    _assert_same_results(record, reference, "resumed")
    assert not (run_dir / "checkpoints").exists()


# --- kill and relaunch a sweep ------------------------------------------------------------------------

SMALL = ["budget=smoke", "trainer.max_epochs=3", "logger=none", "probes=gradients"]


@pytest.fixture(scope="module")
def killed_after_training(tmp_path_factory, probes_dir):
    """A 2-job sweep (seed=0,1) SIGKILLed when job seed=1 has trained (last.ckpt written) and starts
    testing; then the same command again; and both jobs run uninterrupted in-process."""
    tmp = tmp_path_factory.mktemp("killed-after-training")
    sweep, trigger = tmp / "sweep", tmp / "trigger"
    trigger.touch()
    args = ["-m", "seed=0,1", *SMALL, *_signal_probe("SIGKILL", "test_start", at_seed=1), f"hydra.sweep.dir={sweep}"]
    env = _env(probes_dir, trigger)
    first = _ablate(args, tmp, env)
    after_kill = {name: sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".hydra" not in p.parts)
                  for name, folder in _job_folders(sweep).items()}
    seeds = {name: _seed_of(folder) for name, folder in _job_folders(sweep).items()}
    second = _ablate(args, tmp, env)
    references = {seed: _reference([f"seed={seed}", *SMALL, *_signal_probe("SIGKILL", "test_start", at_seed=1)],
                                   tmp / f"reference-{seed}", probes_dir) for seed in (0, 1)}
    return dict(sweep=sweep, first=first, second=second, after_kill=after_kill, seeds=seeds, references=references)


def test_sigkill_after_training_relaunch_skips_done_and_resumes_the_rest(killed_after_training):
    k = killed_after_training
    assert k["first"].returncode == -signal.SIGKILL, k["first"].stdout[-3000:]
    by_seed = {seed: name for name, seed in k["seeds"].items()}
    assert sorted(by_seed) == [0, 1]
    done, killed = by_seed[0], by_seed[1]
    assert RECORD_NAME in k["after_kill"][done]
    assert RECORD_NAME not in k["after_kill"][killed] and "checkpoints/last.ckpt" in k["after_kill"][killed]

    out = k["second"].stdout
    assert k["second"].returncode == 0, out[-3000:]
    skipped = [line for line in out.splitlines() if "skipping" in line and "already done" in line]
    assert len(skipped) == 1 and done in skipped[0], out[-3000:]
    resumed = [line for line in out.splitlines() if "resuming" in line]
    assert len(resumed) == 1 and killed in resumed[0] and "last.ckpt" in resumed[0], out[-3000:]

    records = _records(k["sweep"])
    assert sorted(records) == sorted([done, killed])
    for name, record in records.items():
        _assert_same_results(record, k["references"][k["seeds"][name]], f"seed {k['seeds'][name]}")
        assert not (k["sweep"] / name / "checkpoints").exists()
    assert (k["sweep"] / "report.md").exists()
    assert _temp_files(k["sweep"]) == []


def test_a_resumed_run_keeps_its_probe_summaries_and_throughput(killed_after_training):
    k = killed_after_training
    for name, record in _records(k["sweep"]).items():
        want = k["references"][k["seeds"][name]]
        assert record["samples_per_s"] is not None and record["samples_per_s"] > 0, name
        assert record["probes"]["throughput"]["samples"] == want["probes"]["throughput"]["samples"], name
        for probe in ("grad_norm", "units", "update_ratio"):
            assert record["probes"][probe] == want["probes"][probe], (name, probe)


@pytest.mark.parametrize("hook", ["train_epoch_start", "test_start"])
def test_sigterm_stops_the_sweep_with_a_nonzero_exit_and_relaunch_completes(tmp_path, probes_dir, hook):
    sweep, trigger = tmp_path / "sweep", tmp_path / "trigger"
    trigger.touch()
    probe = _signal_probe("SIGTERM", hook, epoch=1 if hook == "train_epoch_start" else None, at_seed=0)
    args = ["-m", "seed=0,1", *SMALL, *probe, f"hydra.sweep.dir={sweep}"]
    env = _env(probes_dir, trigger)
    first = _ablate(args, tmp_path, env)
    assert first.returncode != 0, "a SIGTERMed sweep must not report success"
    assert "terminated (SIGTERM); relaunch the same command to resume" in first.stdout, first.stdout[-3000:]
    assert sorted(_seed_of(f) for f in _job_folders(sweep).values()) == [0], "the sweep went on after SIGTERM"
    assert list(sweep.rglob(RECORD_NAME)) == []
    second = _ablate(args, tmp_path, env)
    assert second.returncode == 0, second.stdout[-3000:]
    records = _records(sweep)
    assert len(records) == 2
    for name, record in records.items():
        seed = _seed_of(sweep / name)
        _assert_same_results(record, _reference([f"seed={seed}", *SMALL, *probe], tmp_path / f"ref{seed}", probes_dir),
                             f"seed {seed}")


# --- faults inside a sweep ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def faulty_sweep(tmp_path_factory, probes_dir):
    """lr=1e6 with plain SGD makes the loss nan within a few steps (diverged); the Boom probe raises in
    every seed=1 job (failed). The grid's order puts a failure second, so later jobs show the sweep
    went on."""
    tmp = tmp_path_factory.mktemp("faulty-sweep")
    sweep = tmp / "sweep"
    args = ["-m", "optimizer=sgd", "optimizer.lr=0.01,1e6", "seed=0,1", "budget=smoke", "logger=none",
            f"+probes.boom._target_={PROBES_MODULE}.Boom", "+probes.boom.seed=${seed}", "+probes.boom.at_seed=1",
            f"hydra.sweep.dir={sweep}"]
    return sweep, _ablate(args, tmp, _env(probes_dir))


def test_diverged_and_failed_runs_are_recorded_and_the_sweep_goes_on(faulty_sweep):
    sweep, result = faulty_sweep
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    records = _records(sweep)
    assert len(records) == 4
    status = {(r["config"]["optimizer"]["lr"], r["seed"]): r for r in records.values()}
    assert status[(0.01, 0)]["status"] == "ok"
    diverged = status[(1e6, 0)]
    assert diverged["status"] == "diverged" and "training loss became" in diverged["error"]
    failed = [status[(0.01, 1)], status[(1e6, 1)]]
    for record in failed:
        assert record["status"] == "failed"
        assert "injected fault: boom at epoch 0 (seed=1)" in record["error"] and "Traceback" in record["error"]
    launched = [line for line in out.splitlines() if "[HYDRA]" in line and "\t#" in line]
    assert len(launched) == 4                                         # every job ran, after the failures too
    assert "diverged:" in out and "failed:" in out                    # said in the log as it happens
    report = (sweep / "report.md").read_text()
    assert "Runs that did not finish" in report and "**1 diverged, 2 failed** of 4 runs" in report
    bad_rows = [line for line in report.splitlines() if line.startswith("| `")]
    for record in (diverged, *failed):
        row = next(line for line in bad_rows if record["run_id"] in line)
        assert f"| {record['status']} |" in row
    assert "training loss became nan" in report or "training loss became inf" in report
    runs_csv = (sweep / "runs.csv").read_text()
    assert runs_csv.count(",failed,") == 2 and runs_csv.count(",diverged,") == 1
    assert "injected fault: boom" in runs_csv                          # the full error text
    assert _temp_files(sweep) == []


def test_report_says_why_each_failed_run_failed(faulty_sweep):
    sweep, _ = faulty_sweep
    report = (sweep / "report.md").read_text()
    failed_rows = [line for line in report.splitlines() if line.startswith("| `") and "| failed |" in line]
    assert len(failed_rows) == 2
    for row in failed_rows:
        assert "RuntimeError: injected fault: boom at epoch 0 (seed=1)" in row, row


# --- the acceptance test: kill and relaunch the residual-depth smoke sweep -------------------

def _popen(args, cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "ablate", *args], cwd=cwd, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _normalised(text: str, sweep: Path) -> str:
    return text.replace(str(sweep), "<SWEEP>").replace(f"{sweep.parent.name}/{sweep.name}", "<SWEEP>")


def _runs_csv_without_timings(sweep: Path) -> list[dict]:
    with open(sweep / "runs.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in ("wall_time_s", "samples_per_s")} for row in csv.DictReader(f)]


def _assert_same_sweep(got: Path, want: Path) -> dict[str, dict]:
    assert sorted(_run_folders(got)) == sorted(_run_folders(want)), "different run folders"
    records, references = _records(got), _records(want)
    for name, record in records.items():
        assert record["status"] == "ok", (name, record["error"])
        _assert_same_results(record, references[name], name)
        assert record["overrides"] == references[name]["overrides"]
    assert _runs_csv_without_timings(got) == _runs_csv_without_timings(want)
    for name in ("report.md", "cells.csv"):
        assert _normalised((got / name).read_text(), got) == _normalised((want / name).read_text(), want), name
    assert _temp_files(got) == []
    return records


def _readable_records(sweep: Path) -> list[dict]:
    """The records of a sweep that is still running (a record is written atomically, but a folder
    can go between the listing and the read)."""
    records = []
    for path in sweep.glob(f"*/{RECORD_NAME}"):
        try:
            records.append(read_record(path))
        except (OSError, ValueError):
            pass
    return records


def _job_seeds(job: list[str]) -> list[int]:
    overrides = job_dict(job)
    if "seeds" in overrides:
        return [int(s) for s in overrides["seeds"].strip("[]").split(",")]
    return [int(overrides["seed"])]


@pytest.mark.slow
def test_residual_depth_smoke_sweep_killed_and_relaunched_equals_uninterrupted(tmp_path, probes_dir):
    """``python -m ablate +experiment=residual_depth budget=smoke hydra.sweep.dir=D``, killed once at
    least 2 of its runs have a record, then relaunched, ends with the records and report of the same
    sweep run without interruption (run side by side in another folder)."""
    args = ["+experiment=residual_depth", "budget=smoke"]
    env = _env(probes_dir)
    want, got = tmp_path / "uninterrupted" / "rd", tmp_path / "killed" / "rd"
    for folder in (want.parent, got.parent):
        folder.mkdir()
    reference = _popen([*args, f"hydra.sweep.dir={want}"], want.parent, env, tmp_path / "uninterrupted.log")
    victim = _popen([*args, f"hydra.sweep.dir={got}"], got.parent, env, tmp_path / "killed.log")

    def in_flight() -> list[Path]:      # jobs with a checkpoint and no record yet: killed, they resume
        # a vectorized job's records land in its members' folders, naming the job: once one is written
        # the job has finished training and only its clean-up (removing the checkpoint) is left
        finished_jobs = {r["vectorized"]["job"] for r in _readable_records(got) if r.get("vectorized")}
        return [c for c in got.glob("*/checkpoints/last.ckpt")
                if not (c.parent.parent / RECORD_NAME).exists() and c.parent.parent.name not in finished_jobs]

    try:   # kill once >= 2 runs are done and another one has written its first checkpoint
        assert _wait_for(lambda: len(list(got.rglob(RECORD_NAME))) >= 2 and in_flight(), TIMEOUT_S, victim), \
            (tmp_path / "killed.log").read_text()[-3000:]
        os.killpg(victim.pid, signal.SIGKILL)
        assert victim.wait(60) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    done = {p.parent.name for p in got.rglob(RECORD_NAME) if read_record(p)["status"] == "ok"}
    interrupted = {c.parent.parent.name for c in in_flight()}
    assert len(done) >= 2, f"the kill came too early: {len(done)} records"
    assert interrupted and not (got / "report.md").exists()

    relaunch = _ablate([*args, f"hydra.sweep.dir={got}"], got.parent, env)
    assert relaunch.returncode == 0, relaunch.stdout[-3000:]
    lines = relaunch.stdout.splitlines()
    # the sweeper launches only runs without a record (a job of seeds=[a,b] makes two runs) ...
    jobs = [line.split(" : ", 1)[1].split() for line in lines if "\t#" in line]
    launched = {(cell_key(job_dict(job)), seed) for job in jobs for seed in _job_seeds(job)}
    finished = {(cell_key(r["overrides"]), r["seed"]) for r in map(read_record, got.rglob(RECORD_NAME))
                if r["status"] == "ok" and r["run_id"] in done}
    assert len(finished) == len(done) and not launched & finished, sorted(launched & finished)
    runs = len(launched)
    # ... and a job killed in flight is the same job again: it resumes from its checkpoint
    resumed = [line for line in lines if "resuming" in line]
    assert all(any(name in line for line in resumed) for name in interrupted), (interrupted, resumed)
    print(f"killed after {len(done)} runs, with {sorted(interrupted)} in flight; relaunch ran "
          f"{runs} runs in {len(jobs)} jobs and resumed {len(resumed)} from a checkpoint")

    assert reference.wait(TIMEOUT_S) == 0, (tmp_path / "uninterrupted.log").read_text()[-3000:]
    records = _assert_same_sweep(got, want)
    assert len(records) == len(list(want.rglob(RECORD_NAME))) >= 12


@pytest.mark.slow
def test_small_sweep_sigtermed_and_relaunched_equals_uninterrupted(tmp_path, probes_dir):
    """An outside SIGTERM (what `timeout`, `docker stop` or a scheduler sends) once a record exists.
    Only the end state is asserted here: wherever the signal lands, the relaunch ends with the records of
    an uninterrupted sweep. Whether the first process stops, and with which exit code, is pinned down by
    test_sigterm_stops_the_sweep_with_a_nonzero_exit_and_relaunch_completes."""
    overrides = ["budget=smoke", "trainer.max_epochs=4", "logger=none"]
    args = ["-m", "seed=0,1,2,3", *overrides]
    env = _env(probes_dir)
    sweep = tmp_path / "sweep"
    victim = _popen([*args, f"hydra.sweep.dir={sweep}"], tmp_path, env, tmp_path / "first.log")
    try:
        assert _wait_for(lambda: len(list(sweep.rglob(RECORD_NAME))) >= 1, TIMEOUT_S, victim)
        victim.send_signal(signal.SIGTERM)
        victim.wait(TIMEOUT_S)
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    done = {p.parent.name for p in sweep.rglob(RECORD_NAME) if read_record(p)["status"] == "ok"}
    relaunch = _ablate([*args, f"hydra.sweep.dir={sweep}"], tmp_path, env)
    assert relaunch.returncode == 0, relaunch.stdout[-3000:]
    skipped = [line for line in relaunch.stdout.splitlines() if "skipping" in line and "already done" in line]
    assert len(skipped) == len(done) and all(any(n in line for line in skipped) for n in done)
    records = _records(sweep)
    assert len(records) == 4
    for name, record in records.items():
        seed = _seed_of(sweep / name)
        _assert_same_results(record, _reference([f"seed={seed}", *overrides], tmp_path / f"ref{seed}", probes_dir),
                             f"seed {seed}")
    assert _temp_files(sweep) == []


@pytest.mark.slow
def test_joblib_workers_each_write_their_own_record(tmp_path, probes_dir):
    """Two joblib (loky) worker processes run the sweep's jobs side by side: every job folder ends with
    its own whole record, equal to the same trial run alone."""
    overrides = ["budget=smoke", "logger=none"]
    sweep = tmp_path / "sweep"
    result = _ablate(["-m", "seed=0,1,2,3", *overrides, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                      f"hydra.sweep.dir={sweep}"], tmp_path, _env(probes_dir))
    assert result.returncode == 0, result.stdout[-3000:]
    records = _records(sweep)
    assert sorted(r["seed"] for r in records.values()) == [0, 1, 2, 3]
    for name, record in records.items():
        seed = _seed_of(sweep / name)
        assert record["seed"] == seed
        _assert_same_results(record, _reference([f"seed={seed}", *overrides], tmp_path / f"ref{seed}", probes_dir),
                             f"seed {seed}")
    assert (sweep / "report.md").exists() and _temp_files(sweep) == []
