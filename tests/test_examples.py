"""examples/tabular: its make_data.py writes the CSV, one trial of its model on it runs at smoke, and
(slow) one experiment of the catalogue runs on it at smoke, with the commands of its README. They run
in a temporary folder, not the repository: the CSV is written there, at the path the example's
conf/data/breast_cancer.yaml names (relative to where ablate runs); model and configs come from the
repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import PYTHON, REPO, run_ablate, subprocess_env

EXAMPLE = REPO / "examples" / "tabular"


RELATIVE_CSV = "examples/tabular/data/breast_cancer.csv"   # as conf/data/breast_cancer.yaml names it


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp("tabular") / RELATIVE_CSV
    proc = subprocess.run([PYTHON, str(EXAMPLE / "make_data.py"), str(out)], capture_output=True, text=True,
                          timeout=120, env=subprocess_env())
    assert proc.returncode == 0, proc.stderr
    assert "569 rows, 30 features" in proc.stdout
    return out


def example(args, table):
    """``python -m ablate --config-dir examples/tabular/conf model=tabular_mlp data=breast_cancer
    budget=smoke *args`` as the README says, the example's folder on PYTHONPATH, run where ``table``
    is at the relative path the data config names."""
    root = Path(str(table)[: -len(RELATIVE_CSV)])
    return run_ablate(["--config-dir", EXAMPLE / "conf", "model=tabular_mlp", "data=breast_cancer", "budget=smoke",
                       *args], cwd=root, env=subprocess_env(PYTHONPATH=str(EXAMPLE)))


def test_make_data_writes_a_standardised_table(table):
    import pandas as pd

    frame = pd.read_csv(table)
    assert frame.shape == (569, 31) and sorted(frame["label"].unique()) == [0, 1]
    features = frame.drop(columns="label")
    assert features.mean().abs().max() < 1e-3 and (features.std() - 1).abs().max() < 1e-3


def test_one_trial_on_the_example(table, tmp_path):
    proc = example([f"hydra.run.dir={tmp_path / 'run'}"], table)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["status"] == "ok"
    assert record["config"]["model"]["_target_"] == "model.ResidualMLP"
    assert record["config"]["data"]["source"]["_target_"] == "ablate.data.sources.table"


@pytest.mark.slow
def test_learning_rate_experiment_on_the_example(table, tmp_path):
    """+experiment=learning_rate at smoke on the example's model and data (~40 s)."""
    sweep = tmp_path / "sweep"
    proc = example(["+experiment=learning_rate", f"hydra.sweep.dir={sweep}"], table)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    verdict = json.loads((sweep / "verdict.json").read_text())
    assert verdict["runs"] > 0 and verdict["status"]["failed"] == 0
    (claim,) = verdict["claims"]
    assert claim["name"] == "learning_rate" and len(claim["checks"]) == 6
    records = [json.loads(p.read_text()) for p in sweep.glob("*/record.json")]
    assert records and all(r["config"]["model"]["_target_"] == "model.ResidualMLP" for r in records)
    assert all(r["config"]["data"]["source"]["path"] == RELATIVE_CSV for r in records)
