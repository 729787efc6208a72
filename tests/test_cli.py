"""The command line (a handful of subprocesses): `python -m ablate` and the `ablate` console script
run a smoke trial, and bad configs are refused with a useful message before any folder is made."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import PYTHON, run_ablate, subprocess_env


def ablate(*args: str, cwd: Path, script: bool = False, timeout: int = 180) -> subprocess.CompletedProcess:
    env = subprocess_env(PYTHONPATH="")      # PYTHONPATH removed: the installed package runs
    if script:
        return subprocess.run([_console_script(), *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
    return run_ablate(args, cwd, timeout=timeout, env=env)


def _console_script() -> str:
    script = Path(PYTHON).parent / "ablate"
    return str(script) if script.exists() else shutil.which("ablate")


def test_smoke_run_writes_an_ok_record(tmp_path):
    run_dir = tmp_path / "runs" / "smoke"
    result = ablate("budget=smoke", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "ok" and record["error"] is None
    assert record["overrides"] == {"budget": "smoke"}           # the job's own overrides, as text
    assert record["run_id"] == "smoke"
    assert record["config"]["run_dir"] == str(run_dir)          # ${hydra:runtime.output_dir} resolved
    assert record["epochs_completed"] == 2
    assert 0.0 <= record["metrics"]["test/acc"] <= 1.0
    assert (run_dir / ".hydra" / "config.yaml").exists()
    assert not (run_dir / "checkpoints").exists()
    assert not (tmp_path / "outputs").exists()


def test_unknown_activation_lists_the_choices(tmp_path):
    run_dir = tmp_path / "never"
    result = ablate("activation=relux", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode != 0
    err = result.stderr
    assert "activation/relux" in err and "Available options in 'activation'" in err
    for choice in ("relu", "sigmoid", "tanh", "gelu", "silu", "leaky_relu", "elu", "identity"):
        assert f"\t{choice}\n" in err, choice
    assert not run_dir.exists()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("override,message", [
    ("model.depth=0", "model.depth=0 is invalid: it must be an integer >= 1"),
    ("optimizer.lr=-1", "optimizer.lr=-1 is invalid: it must be a number > 0"),
    ("model=rnn norm=batch", "norm=batch is not supported by model=rnn; valid norms for it: none, layer"),
], ids=["depth", "lr", "rnn-batch-norm"])
def test_invalid_values_exit_2_before_any_folder(tmp_path, override, message):
    run_dir = tmp_path / "never"
    result = ablate(*override.split(), f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("ablate: invalid config:")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not run_dir.exists() and not (run_dir / "record.json").exists()
    assert os.listdir(tmp_path) == []


def test_console_script_help(tmp_path):
    script = _console_script()
    assert script, "the `ablate` console script is not installed"
    result = ablate("--help", cwd=tmp_path, script=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "== Configuration groups ==" in out
    groups = dict(line.split(": ", 1) for line in out.split("== Config ==")[0].splitlines() if ": " in line)
    expected = {"model": "cnn mlp resnet rnn transformer",
                "activation": "elu gelu identity leaky_relu relu sigmoid silu tanh",
                "norm": "batch group layer none", "init": "default kaiming orthogonal xavier",
                "optimizer": "adam adamw momentum nesterov rmsprop sgd",
                "scheduler": "cosine none onecycle step warmup_cosine", "loss": "bce cross_entropy mse",
                "data": "adding digits mnist1d recall synthetic", "budget": "full quick smoke"}
    for group, choices in expected.items():
        assert set(choices.split()) <= set(groups.get(group, "").split(", ")), group
    assert os.listdir(tmp_path) == []
