"""Determinism on CPU: the same config and seed give bit-identical histories and metrics (Lightning
``deterministic=True``, seeded data split, a shuffle order that is a function of (seed, epoch));
another seed gives other numbers; every record says which seed and which versions produced it.

Cross-process determinism (a subprocess sweep equal to the same trial in this process) is checked by
tests/test_reliability.py, which compares relaunched sweeps with in-process references.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess

import lightning
import pytest
import torch
from hydra.utils import instantiate

import ablate
from ablate.data import IndexLoader
from ablate.results import read_record, validate_record
from ablate.run import run_trial
from tests.support import REPO, compose

FAMILIES = ("mlp", "cnn")
COMMON = ["budget=smoke", "logger=none", "probes=gradients"]
TIMING_KEYS = ("throughput",)              # wall-clock measurements: never equal between two runs


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """``trial(family, seed, copy)``: the record of one smoke trial, each distinct one run once."""
    root, cache = tmp_path_factory.mktemp("determinism"), {}

    def _trial(family: str, seed: int, copy: str = "a") -> dict:
        key = (family, seed, copy)
        if key not in cache:
            run_dir = root / f"{family}-seed{seed}-{copy}"
            run_trial(compose([f"model={family}", f"seed={seed}", *COMMON], run_dir))
            cache[key] = validate_record(read_record(run_dir))
        return cache[key]

    return _trial


@pytest.mark.parametrize("family", FAMILIES)
def test_same_config_and_seed_give_identical_results(trial, family):
    a, b = trial(family, 0, "a"), trial(family, 0, "b")
    assert a["status"] == b["status"] == "ok"
    assert a["history"] == b["history"]                      # every epoch's train/val numbers, exactly
    assert a["metrics"] == b["metrics"]                      # incl. test/* and the probes' finals
    assert a["params"] == b["params"]
    for probe in a["probes"]:
        if probe not in TIMING_KEYS:
            assert a["probes"][probe] == b["probes"][probe], probe
    assert a["probes"]["throughput"]["samples"] == b["probes"]["throughput"]["samples"]
    assert a["run_id"] != b["run_id"]                        # two runs, really


@pytest.mark.parametrize("family", FAMILIES)
def test_another_seed_gives_other_results(trial, family):
    a, c = trial(family, 0, "a"), trial(family, 1, "a")
    assert a["seed"] == 0 and c["seed"] == 1
    assert a["history"] != c["history"]
    for key in ("train/loss", "val/loss", "test/loss", "grad/first_layer_init"):
        assert a["metrics"][key] != c["metrics"][key], key
    assert a["probes"]["grad_norm"]["init"] != c["probes"]["grad_norm"]["init"]   # another initialisation


def test_records_hold_seed_versions_and_commit(trial):
    record = trial("mlp", 0, "a")
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


def test_trainer_is_deterministic_on_cpu(trial):
    trainer = trial("mlp", 0, "a")["config"]["trainer"]
    assert trainer["deterministic"] is True and trainer["benchmark"] is False
    assert trainer["accelerator"] == "cpu"


# --- the data: a seeded split, and a shuffle order that depends on (seed, epoch) only ---------------

def _splits(*overrides: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return instantiate(compose(["budget=smoke", *overrides]).data).splits


def test_data_split_is_seeded_by_split_seed_alone():
    base = _splits("seed=0")
    same = _splits("seed=1")                                 # the model seed does not move the split
    other = _splits("data.split_seed=1")
    for name in ("train", "val", "test"):
        assert torch.equal(base[name][0], same[name][0]) and torch.equal(base[name][1], same[name][1]), name
    assert not torch.equal(base["test"][0], other["test"][0])
    sizes = {name: len(y) for name, (_, y) in base.items()}
    assert sizes == {name: len(y) for name, (_, y) in other.items()}


def _epoch_batches(loader: IndexLoader) -> list[torch.Tensor]:
    return [y for _, y in loader]


def test_shuffle_order_is_a_function_of_seed_and_epoch():
    x, y = torch.randn(100, 3), torch.arange(100)
    epoch = {"now": 0}

    def loader(seed: int) -> IndexLoader:
        return IndexLoader(x, y, batch_size=16, shuffle=True, seed=seed, epoch_fn=lambda: epoch["now"])

    first = loader(0)
    orders = []
    for e in range(3):
        epoch["now"] = e
        orders.append(_epoch_batches(first))
    assert not all(torch.equal(a, b) for a, b in zip(orders[0], orders[1]))        # reshuffled every epoch
    for e in range(3):                       # a fresh loader (a resumed run) at epoch e: the same batches
        epoch["now"] = e
        assert all(torch.equal(a, b) for a, b in zip(orders[e], _epoch_batches(loader(0))))
    epoch["now"] = 0
    assert not all(torch.equal(a, b) for a, b in zip(orders[0], _epoch_batches(loader(1))))
    assert sorted(torch.cat(orders[0]).tolist()) == list(range(100))               # each row once


def test_evaluation_order_is_fixed():
    x, y = torch.randn(50, 3), torch.arange(50)
    loader = IndexLoader(x, y, batch_size=16, shuffle=False, seed=3, epoch_fn=lambda: 7)
    assert torch.equal(torch.cat(_epoch_batches(loader)), y)
