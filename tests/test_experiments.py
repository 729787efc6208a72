"""The experiments end to end at budget=smoke: real Hydra composition and multirun (the
ablate sweeper, with sequential seeds), the real Trainer, one record per cell x seed, and the report
with its verdicts (subprocesses, since an experiment is a Hydra multirun)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from ablate.report.values import canonical, get_value, same_level
from ablate.results import STATUSES, load_sweep
from tests.support import PYTHON, REPO, experiment_cells

EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
SMOKE = yaml.safe_load((REPO / "conf" / "budget" / "smoke.yaml").read_text())
SMOKE_SEEDS = list(range(SMOKE["seeds"]))  # every cell runs these; undecided checks' cells get more


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}


def _cells(name: str) -> list[dict[str, str]]:
    """The experiment's cells (params x grids, labels filled in), as its sweeper expands them at smoke
    (a grid may scale with the budget: scheduler_warmup's step decay halfway is 1 epoch at smoke)."""
    cells = experiment_cells(yaml.safe_load((REPO / "conf" / "experiment" / f"{name}.yaml").read_text()), "smoke")
    assert not any("seed" in c or "seeds" in c for c in cells), "the sweeper adds the seeds"
    return cells


def _run(args: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "ablate", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


def _check_sweep(name: str, sweep: Path) -> list[dict]:
    records = load_sweep(sweep)
    cells = _cells(name)

    def at(record: dict, cell: dict) -> bool:
        return all(same_level(get_value(record, k), canonical(v)) for k, v in cell.items())

    for cell in cells:
        seeds = sorted(r["seed"] for r in records if at(r, cell))
        assert len(seeds) == len(set(seeds)), f"{cell}: a seed has two records"
        assert set(SMOKE_SEEDS) <= set(seeds), f"{cell} did not run the budget's seeds"
    assert all(r["seed"] < SMOKE["max_seeds"] for r in records), "sequential seeds stop at budget.max_seeds"
    for record in records:
        assert record["status"] in STATUSES
        assert record["experiment"] == name and record["claim"]["checks"]
        if record["status"] == "ok":
            assert record["epochs_completed"] >= 1 and record["history"]
    report = (sweep / "report.md").read_text()
    assert "verdict" in report.lower()
    assert any(v in report for v in ("**supported**", "**not supported**", "**inconclusive**", "**no effect"))
    # the checks table: kind, margin, raw and adjusted p, the detectable effect, the seeds and looks
    header = next(line for line in report.splitlines() if line.startswith("| # | check"))
    assert all(c in header for c in ("| test |", "p for", "p against (raw / Holm)", "detectable", "seeds per side"))
    assert "**Clauses**" in report and "**Scope**" in report
    html = (sweep / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert (sweep / "runs.csv").exists()
    return records


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if n == "residual_depth"] +
                         [pytest.param(n, marks=pytest.mark.slow) for n in EXPERIMENTS if n != "residual_depth"])
def test_experiment_runs_whole_grid_at_smoke(name, tmp_path):
    sweep = tmp_path / "sweep"
    proc = _run([f"+experiment={name}", "budget=smoke", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = _check_sweep(name, sweep)
    if name == "activation_vanishing":  # the probes are on in these experiments
        assert all("grad/first_layer" in r["metrics"] for r in records if r["status"] == "ok")
        assert all(r["probes"]["grad_norm"]["layers"] for r in records if r["status"] == "ok")
    if name == "optimizer_adam_vs_sgd":
        report = (sweep / "report.md").read_text()
        assert "non-inferiority, δ=0.0150" in report and "| superiority |" in report
        assert "the same seeds choose and judge" in report  # smoke's max_seeds leaves no fresh seeds


def test_experiment_with_joblib_launcher(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _run(["+experiment=residual_depth", "budget=smoke", "hydra/launcher=joblib",
                 f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib" in proc.stdout + proc.stderr
    _check_sweep("residual_depth", sweep)


@pytest.mark.slow
def test_optuna_learning_rate_search(tmp_path):
    sweep = tmp_path / "search"
    proc = _run(["+search=lr", "optimizer=adam", "budget=smoke", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = load_sweep(sweep)
    assert len(records) == 3  # budget.search_trials at smoke
    rates = {float(r["overrides"]["optimizer.lr"]) for r in records}
    assert len(rates) == 3 and all(1e-4 <= lr <= 1.0 for lr in rates)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(r["metrics"]["val/acc"] for r in records))


def test_wandb_sweep_files_call_the_entry_point_with_valid_overrides():
    """Every sweeps/*.yaml runs `python -m ablate ${args_no_hyphens}` with keys the config accepts."""
    from hydra import compose, initialize_config_module

    files = sorted((REPO / "sweeps").glob("*.yaml"))
    assert files
    for path in files:
        spec = yaml.safe_load(path.read_text())
        assert spec["command"][:5] == ["${env}", "${interpreter}", "-m", "ablate", "${args_no_hyphens}"]
        overrides = []
        for key, param in spec["parameters"].items():
            value = param["value"] if "value" in param else param.get("values", [param.get("min")])[0]
            value = str(value).lower() if isinstance(value, bool) else value
            overrides.append(f"{key}={value}")
        with initialize_config_module("ablate.conf", version_base="1.3"):
            cfg = compose("config", overrides=[*overrides, "run_dir=."])
        assert cfg.logger is not None, path.name
        assert json.dumps(spec["metric"]["name"]).strip('"') in ("val/acc", "train/loss", "val/loss")
