"""The five experiments of claims 11-15 (batch_size, cnn_vs_mlp, rnn_vs_lstm, attention_vs_recurrence,
init_scale) end to end at budget=smoke: the sweep runs, and its report lists every clause of the claim
(with a verdict, or "not tested" and why), the scope, and figures; plus what each experiment's design
relies on (its probes' metrics, its labels, its budgets)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from ablate.results import load_sweep

from tests.support import PYTHON, REPO

pytestmark = pytest.mark.slow

VERDICTS = ("**supported**", "**not supported**", "**inconclusive**", "**no effect", "**not tested**")


def _smoke(name: str, tmp_path: Path) -> tuple[Path, list[dict], dict]:
    sweep = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([PYTHON, "-m", "ablate", f"+experiment={name}", "budget=smoke", "threads=1",
                           f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    spec = yaml.safe_load((REPO / "conf" / "experiment" / f"{name}.yaml").read_text())
    records = load_sweep(sweep)
    assert records and all(r["experiment"] == name for r in records)
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records if r["status"] != "ok"][:1]
    _check_report(sweep, spec["claim"])
    return sweep, records, spec


def _check_report(sweep: Path, claim: dict) -> None:
    report = (sweep / "report.md").read_text()
    clauses = report.split("**Clauses**", 1)[1].split("**Scope**", 1)[0]
    for clause in claim["clauses"]:
        line = next((l for l in clauses.splitlines() if f"(`{clause['name']}`)" in l), None)
        assert line is not None, f"clause {clause['name']} is not listed"
        assert line.lstrip("- ").startswith(VERDICTS), line
        if clause.get("not_tested"):
            assert "**not tested**" in line
    scope = report.split("**Scope**", 1)[1].split("| # | check", 1)[0]
    for key in claim["scope"]:
        assert f"- {key}: " in scope, f"scope {key} is missing"
    assert "hardware: 2-core CPU" in scope
    header = next(line for line in report.splitlines() if line.startswith("| # | check"))
    table = report.split(header, 1)[1].split("\n\n", 1)[0].splitlines()
    rows = [line for line in table if line.startswith("| ") and line[2:3].isdigit()]
    assert len(rows) == len(claim["checks"]), "one row per check"
    figures = sorted((sweep / "figures").glob("*.png"))
    assert figures and all(f.stat().st_size > 1000 for f in figures)
    assert "data:image/png;base64," in (sweep / "report.html").read_text()


def _metric_everywhere(records: list[dict], *names: str) -> None:
    for name in names:
        assert all(isinstance(r["metrics"].get(name), float) for r in records), name


def test_batch_size(tmp_path):
    sweep, records, spec = _smoke("batch_size", tmp_path)
    _metric_everywhere(records, "speed/samples_per_s", "speed/epoch_s", "speed/step_ms")
    smoke = yaml.safe_load((REPO / "conf" / "budget" / "smoke.yaml").read_text())
    steps = max(1, round(smoke["max_epochs"] * 6.4))   # max_steps: ${scale:${budget.max_epochs},${steps_scale}}
    for r in records:   # the steps budget stops at the same number of updates at every batch size
        if r["config"]["regime"] == "steps":
            assert r["history"][-1]["step"] == steps
        else:
            assert r["epochs_completed"] == r["config"]["trainer"]["max_epochs"]
    assert {r["config"]["data"]["batch_size"] for r in records} == {16, 64, 256, 1024}


def test_cnn_vs_mlp(tmp_path):
    sweep, records, spec = _smoke("cnn_vs_mlp", tmp_path)
    _metric_everywhere(records, "test/acc_shift1", "test/acc_shift2", "test/acc_shift4")
    for r in records:   # the parameter counts in the labels, check names and scope are the records'
        assert r["config"]["param_count"] == r["params"], r["config"]["arm"]
    assert len({r["config"]["arm"] for r in records}) == 11


def test_rnn_vs_lstm(tmp_path):
    sweep, records, spec = _smoke("rnn_vs_lstm", tmp_path)
    _metric_everywhere(records, "grad/time_first_last_init", "grad/time_first_last")
    # at 100 steps the plain RNN's gradient at step 0 is ~1e-20 of the last step's: tiny, not zero
    long_rnn = [r for r in records if r["config"]["data"]["source"]["length"] == 100
                and r["config"]["model"]["cell"] == "rnn"]
    assert long_rnn and all(0 < r["metrics"]["grad/time_first_last_init"] < 1e-6 for r in long_rnn)


def test_attention_vs_recurrence(tmp_path):
    sweep, records, spec = _smoke("attention_vs_recurrence", tmp_path)
    _metric_everywhere(records, "speed/samples_per_s", "speed/epoch_s", "speed/step_ms")
    seq2seq = [r for r in records if r["choices"]["data"] == "copy"]
    assert seq2seq and all(isinstance(r["metrics"].get("test/seq_acc"), float) for r in seq2seq)
    by_task: dict = {}
    for r in records:   # matched parameter counts: LSTM and Transformer within 10% on each task
        by_task.setdefault(r["choices"]["data"], {})[r["config"]["arch"]] = r["params"]
    for task, counts in by_task.items():
        assert abs(counts["lstm"] - counts["transformer"]) <= 0.1 * counts["transformer"], (task, counts)


def test_init_scale(tmp_path):
    sweep, records, spec = _smoke("init_scale", tmp_path)
    _metric_everywhere(records, "grad/first_last_ratio_init", "act/std_ratio_init")
    deep_default = [r for r in records if r["config"]["model"]["depth"] == 32 and r["choices"]["init"] == "default"
                    and r["choices"]["activation"] == "relu"]
    assert deep_default and all(r["metrics"]["grad/first_last_ratio_init"] < 1e-6 for r in deep_default)
