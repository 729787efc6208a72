"""The fundamentals experiments (claims 5-10 of CLAIMS.md) end to end at budget=smoke: each one's sweep
runs (a subprocess: an experiment is a Hydra multirun), and its report states every clause (with a
verdict or "not tested"), every check, the scope, and the figure that shows the effect."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from ablate.results import load_sweep

from tests.support import PYTHON, REPO

VERDICTS = ("**supported**", "**not supported**", "**inconclusive**", "**no effect", "**not tested**")


def _spec(name: str) -> dict:
    return yaml.safe_load((REPO / "conf" / "experiment" / f"{name}.yaml").read_text())


def _smoke(name: str, tmp_path: Path, *extra: str) -> tuple[Path, str, list[dict]]:
    """Run the experiment at budget=smoke; check what every report must have; return the sweep folder,
    report.md and the records."""
    sweep = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([PYTHON, "-m", "ablate", f"+experiment={name}", "budget=smoke", "threads=1",
                           f"hydra.sweep.dir={sweep}", *extra], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (sweep / "report.md").read_text()
    claim = _spec(name)["claim"]
    records = load_sweep(sweep)
    assert records and all(r["experiment"] == name for r in records)
    assert "**Clauses**" in report and "**Scope**" in report
    for clause in claim["clauses"]:
        line = next((ln for ln in report.splitlines() if f"(`{clause['name']}`)" in ln), None)
        assert line is not None, f"clause {clause['name']} is missing from the report"
        assert any(v in line for v in VERDICTS), line
        if clause.get("not_tested"):
            assert "**not tested**" in line
    for key, text in claim["scope"].items():
        assert f"- {key}: {text}" in report, f"scope {key} is missing"
    lines = report.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| # | check"))
    table = [ln for ln in itertools.takewhile(lambda ln: ln.startswith("|"), lines[start + 2:])]
    assert len(table) == len(claim["checks"])
    for check, row in zip(claim["checks"], table):
        assert check["name"] in row and any(v in row for v in VERDICTS), row
    assert "data:image/png;base64," in (sweep / "report.html").read_text()
    return sweep, report, records


def _figure(sweep: Path, report: str, name: str) -> None:
    """The figure that shows the effect exists and the report shows it."""
    assert (sweep / "figures" / name).is_file(), sorted(p.name for p in (sweep / "figures").iterdir())
    assert f"figures/{name}" in report


@pytest.mark.slow
def test_linear_collapse_smoke(tmp_path):
    sweep, report, records = _smoke("linear_collapse", tmp_path)
    cells = {(r["overrides"]["activation"], r["overrides"]["model.depth"]) for r in records}
    assert cells == {("identity", "1"), ("identity", "2"), ("identity", "8"), ("relu", "2"), ("relu", "8")}
    assert all("train_eval/acc" in r["metrics"] for r in records if r["status"] == "ok")
    _figure(sweep, report, "linear_collapse_test_acc_vs_model_depth.png")


@pytest.mark.slow
def test_sigmoid_vs_tanh_smoke(tmp_path):
    sweep, report, records = _smoke("sigmoid_vs_tanh", tmp_path)
    cells = {(r["overrides"]["activation"], r["overrides"]["init"], r["overrides"]["model.depth"]) for r in records}
    assert len(cells) == 8
    assert all("train/loss_auc" in r["metrics"] for r in records if r["status"] == "ok")
    assert all(r["config"]["optimizer"]["momentum"] == 0.9 for r in records)
    assert "**not tested** Being zero-centred is why" in report
    _figure(sweep, report, "sigmoid_vs_tanh_train_loss_auc_vs_model_depth.png")


@pytest.mark.slow
def test_loss_choice_smoke(tmp_path):
    sweep, report, records = _smoke("loss_choice", tmp_path)
    arms = {(r["overrides"]["data"], r["overrides"]["optimizer"], r["overrides"]["arm"]) for r in records}
    assert len(arms) == 12
    targets = {(r["overrides"]["arm"], r["config"]["loss"]["_target_"], r["config"]["loss"].get("softmax"))
               for r in records}
    assert targets == {("ce", "torch.nn.CrossEntropyLoss", None), ("mse_softmax", "ablate.nn.losses.OneHotMSE", True),
                       ("mse_logits", "ablate.nn.losses.OneHotMSE", False)}
    assert report.count("CE was not necessary here") >= 4  # the non-inferiority checks say what support means
    _figure(sweep, report, "loss_choice_test_acc_vs_optimizer_lr.png")


@pytest.mark.slow
def test_scheduler_warmup_smoke(tmp_path):
    sweep, report, records = _smoke("scheduler_warmup", tmp_path)
    parts = {r["overrides"]["part"]: r for r in records}
    assert set(parts) == {"schedules", "warmup"}
    warm = [r for r in records if r["overrides"]["part"] == "warmup"]
    assert {(r["overrides"]["model.pre_ln"].lower(), r["overrides"]["scheduler"], r["overrides"]["optimizer.lr"]) for r in warm} \
        == {(p, s, lr) for p in ("false", "true") for s in ("cosine", "warmup_cosine") for lr in ("0.01", "0.03")}
    assert all(r["config"]["model"]["width"] == 64 and r["config"]["norm"]["name"] == "layer" for r in warm)
    assert all("train/early_spike" in r["metrics"] for r in records if r["status"] == "ok")
    step = [r for r in records if r["overrides"].get("scheduler") == "step"]
    assert step and all(r["config"]["scheduler"]["step_size"] == 1 for r in step)  # half of smoke's 2 epochs
    assert "interaction" in report
    _figure(sweep, report, "scheduler_warmup_test_acc_vs_optimizer_lr.png")
    _figure(sweep, report, "scheduler_warmup_train_early_spike_vs_optimizer_lr.png")


@pytest.mark.slow
def test_learning_rate_smoke(tmp_path):
    sweep, report, records = _smoke("learning_rate", tmp_path)
    rates = {(r["overrides"]["optimizer"], float(r["overrides"]["optimizer.lr"])) for r in records}
    assert len({lr for o, lr in rates if o == "sgd"}) == 16 and len({lr for o, lr in rates if o == "adam"}) == 19
    assert min(lr for o, lr in rates if o == "sgd") == 0.001 and max(lr for o, lr in rates if o == "sgd") == 100
    assert {r["overrides"]["region"] for r in records} == {"low", "below_best", "mid", "above_best", "high"}
    assert any(r["status"] == "diverged" for r in records)  # SGD at 20-100 blows up even in two epochs
    assert "event count (Fisher's exact test, one-sided)" in report and "runs with the event" in report
    _figure(sweep, report, "learning_rate_train_loss_vs_optimizer_lr.png")
    _figure(sweep, report, "lr_sensitivity_train_loss.png")


@pytest.mark.slow
def test_regularization_smoke(tmp_path):
    sweep, report, records = _smoke("regularization", tmp_path)
    cells = {(r["overrides"]["regularizer"], r["overrides"]["data.train_size"]) for r in records}
    assert cells == {(g, n) for g in ("none", "dropout", "weight_decay") for n in ("250", "1000", "3500")}
    steps = {r["history"][-1]["step"] for r in records if r["status"] == "ok"}
    assert steps == {28}  # every training-set size gets the same optimizer steps (smoke: 2 epochs x 14)
    by_arm = {r["overrides"]["regularizer"]: r["config"] for r in records}
    assert by_arm["dropout"]["model"]["dropout"] == 0.3 and by_arm["none"]["model"]["dropout"] == 0.0
    assert by_arm["weight_decay"]["optimizer"]["weight_decay"] == 1.0 and by_arm["none"]["optimizer"]["weight_decay"] == 0.0
    assert all("train_eval/acc" in r["metrics"] for r in records if r["status"] == "ok")
    assert "train_eval/acc - test/acc" in report and "interaction" in report
    _figure(sweep, report, "regularization_train_eval_acc_test_acc_vs_data_train_size.png")
