"""Every experiment end to end at budget=smoke, each once: real Hydra composition and multirun (the
ablate sweeper, with sequential seeds), the real Trainer, one record per cell x seed, and the report
with its verdicts (subprocesses, since an experiment is a Hydra multirun).

One parametrized test, driven by ``EXPECTED``: what every experiment's records and report must show
(``_check_records``, ``tests.support.check_report``), then what each one's own design relies on (its
figures, the words its checks use, its probes' metrics, its cells and budgets). residual_depth runs in
the default suite (through the joblib launcher); the others are slow. The experiments in
``tests.support.CATALOGUED`` are run by the catalogue (the session fixture ``smoke_catalogue``, shared
with tests/test_catalogue.py) and checked here from its folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml

from ablate.catalogue import read_entry
from ablate.report.records.values import get_value
from ablate.report.spec.levels import canonical, same_level
from ablate.results import STATUSES, load_sweep
from tests.support import (CATALOGUED, REPO, check_figure, check_report, experiment_cells, experiment_spec,
                           run_ablate)

EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
SMOKE = yaml.safe_load((REPO / "conf" / "budget" / "smoke.yaml").read_text())
SMOKE_SEEDS = list(range(SMOKE["seeds"]))  # every cell runs these; undecided checks' cells get more


@dataclass(frozen=True)
class Expected:
    """What an experiment's smoke run must show beyond what every experiment's must."""

    args: tuple[str, ...] = ()               # more overrides for its run
    output: tuple[str, ...] = ()             # in the run's stdout + stderr
    report: dict[str, int] = field(default_factory=dict)   # text -> how many times report.md has it, at least
    figures: tuple[str, ...] = ()            # figures/<name>, drawn and shown in the report
    metrics: tuple[str, ...] = ()            # numbers every run that ended ok has
    all_ok: bool = False                     # every run ends ok (none diverges or fails)
    records: Callable[[list[dict]], None] | None = None   # its own record properties


def _ok(records: list[dict]) -> list[dict]:
    return [r for r in records if r["status"] == "ok"]


def _activation_vanishing(records: list[dict]) -> None:
    assert all(r["probes"]["grad_norm"]["layers"] for r in _ok(records))   # the probes are on


def _linear_collapse(records: list[dict]) -> None:
    cells = {(r["overrides"]["activation"], r["overrides"]["model.depth"]) for r in records}
    assert cells == {("identity", "1"), ("identity", "2"), ("identity", "8"), ("relu", "2"), ("relu", "8")}


def _sigmoid_vs_tanh(records: list[dict]) -> None:
    cells = {(r["overrides"]["activation"], r["overrides"]["init"], r["overrides"]["model.depth"]) for r in records}
    assert len(cells) == 8
    assert all(r["config"]["optimizer"]["momentum"] == 0.9 for r in records)


def _loss_choice(records: list[dict]) -> None:
    arms = {(r["overrides"]["data"], r["overrides"]["optimizer"], r["overrides"]["arm"]) for r in records}
    assert len(arms) == 12
    targets = {(r["overrides"]["arm"], r["config"]["loss"]["_target_"], r["config"]["loss"].get("softmax"))
               for r in records}
    assert targets == {("ce", "torch.nn.CrossEntropyLoss", None), ("mse_softmax", "ablate.nn.losses.OneHotMSE", True),
                       ("mse_logits", "ablate.nn.losses.OneHotMSE", False)}


def _scheduler_warmup(records: list[dict]) -> None:
    assert {r["overrides"]["part"] for r in records} == {"schedules", "warmup"}
    warm = [r for r in records if r["overrides"]["part"] == "warmup"]
    assert {(r["overrides"]["model.pre_ln"].lower(), r["overrides"]["scheduler"], r["overrides"]["optimizer.lr"])
            for r in warm} == {(p, s, lr) for p in ("false", "true") for s in ("cosine", "warmup_cosine")
                               for lr in ("0.01", "0.03")}
    assert all(r["config"]["model"]["width"] == 64 and r["config"]["norm"]["name"] == "layer" for r in warm)
    step = [r for r in records if r["overrides"].get("scheduler") == "step"]
    assert step and all(r["config"]["scheduler"]["step_size"] == 1 for r in step)  # half of smoke's 2 epochs


def _learning_rate(records: list[dict]) -> None:
    rates = {(r["overrides"]["optimizer"], float(r["overrides"]["optimizer.lr"])) for r in records}
    sgd = {lr for o, lr in rates if o == "sgd"}
    assert len(sgd) == 16 and len({lr for o, lr in rates if o == "adam"}) == 19
    assert min(sgd) == 0.001 and max(sgd) == 100
    assert {r["overrides"]["region"] for r in records} == {"low", "below_best", "mid", "above_best", "high"}
    assert any(r["status"] == "diverged" for r in records)  # SGD at 20-100 blows up even in two epochs


def _regularization(records: list[dict]) -> None:
    cells = {(r["overrides"]["regularizer"], r["overrides"]["data.train_size"]) for r in records}
    assert cells == {(g, n) for g in ("none", "dropout", "weight_decay") for n in ("250", "1000", "3500")}
    # every training-set size gets the same optimizer steps (smoke: 2 epochs x 14)
    assert {r["history"][-1]["step"] for r in _ok(records)} == {28}
    by_arm = {r["overrides"]["regularizer"]: r["config"] for r in records}
    assert by_arm["dropout"]["model"]["dropout"] == 0.3 and by_arm["none"]["model"]["dropout"] == 0.0
    assert by_arm["weight_decay"]["optimizer"]["weight_decay"] == 1.0
    assert by_arm["none"]["optimizer"]["weight_decay"] == 0.0


def _batch_size(records: list[dict]) -> None:
    steps = max(1, round(SMOKE["max_epochs"] * 6.4))   # max_steps: ${scale:${budget.max_epochs},${steps_scale}}
    for r in records:   # the steps budget stops at the same number of updates at every batch size
        if r["config"]["regime"] == "steps":
            assert r["history"][-1]["step"] == steps
        else:
            assert r["epochs_completed"] == r["config"]["trainer"]["max_epochs"]
    assert {r["config"]["data"]["batch_size"] for r in records} == {16, 64, 256, 1024}


def _cnn_vs_mlp(records: list[dict]) -> None:
    for r in records:   # the parameter counts in the labels, check names and scope are the records'
        assert r["config"]["param_count"] == r["params"], r["config"]["arm"]
    assert len({r["config"]["arm"] for r in records}) == 11


def _rnn_vs_lstm(records: list[dict]) -> None:
    # at 100 steps the plain RNN's gradient at step 0 is ~1e-20 of the last step's: tiny, not zero
    long_rnn = [r for r in records if r["config"]["data"]["source"]["length"] == 100
                and r["config"]["model"]["cell"] == "rnn"]
    assert long_rnn and all(0 < r["metrics"]["grad/time_first_last_init"] < 1e-6 for r in long_rnn)


def _attention_vs_recurrence(records: list[dict]) -> None:
    seq2seq = [r for r in records if r["choices"]["data"] == "copy"]
    assert seq2seq and all(isinstance(r["metrics"].get("test/seq_acc"), float) for r in seq2seq)
    by_task: dict = {}
    for r in records:   # matched parameter counts: LSTM and Transformer within 10% on each task
        by_task.setdefault(r["choices"]["data"], {})[r["config"]["arch"]] = r["params"]
    for task, counts in by_task.items():
        assert abs(counts["lstm"] - counts["transformer"]) <= 0.1 * counts["transformer"], (task, counts)


def _init_scale(records: list[dict]) -> None:
    deep_default = [r for r in records if r["config"]["model"]["depth"] == 32 and r["choices"]["init"] == "default"
                    and r["choices"]["activation"] == "relu"]
    assert deep_default and all(r["metrics"]["grad/first_last_ratio_init"] < 1e-6 for r in deep_default)


SPEED = ("speed/samples_per_s", "speed/epoch_s", "speed/step_ms")

EXPECTED: dict[str, Expected] = {
    "activation_vanishing": Expected(metrics=("grad/first_layer",), records=_activation_vanishing),
    "attention_vs_recurrence": Expected(metrics=SPEED, all_ok=True, records=_attention_vs_recurrence),
    "batch_size": Expected(metrics=SPEED, all_ok=True, records=_batch_size),
    "cnn_vs_mlp": Expected(metrics=("test/acc_shift1", "test/acc_shift2", "test/acc_shift4"), all_ok=True,
                           records=_cnn_vs_mlp),
    "init_scale": Expected(metrics=("grad/first_last_ratio_init", "act/std_ratio_init"), all_ok=True,
                           records=_init_scale),
    "learning_rate": Expected(
        report={"event count (Fisher's exact test, one-sided)": 1, "runs with the event": 1},
        figures=("learning_rate_train_loss_vs_optimizer_lr.png", "lr_sensitivity_train_loss.png"),
        records=_learning_rate),
    "linear_collapse": Expected(figures=("linear_collapse_test_acc_vs_model_depth.png",),
                                metrics=("train_eval/acc",), records=_linear_collapse),
    "loss_choice": Expected(report={"CE was not necessary here": 4},   # the non-inferiority checks say what support means
                            figures=("loss_choice_test_acc_vs_optimizer_lr.png",), records=_loss_choice),
    "norm_bn_vs_ln": Expected(),
    "optimizer_adam_vs_sgd": Expected(report={"non-inferiority, δ=0.0150": 1, "| superiority |": 1,
                                              # smoke's max_seeds leaves no fresh seeds
                                              "the same seeds choose and judge": 1}),
    "regularization": Expected(report={"train_eval/acc - test/acc": 1, "interaction": 1},
                               figures=("regularization_train_eval_acc_test_acc_vs_data_train_size.png",),
                               metrics=("train_eval/acc",), records=_regularization),
    "residual_depth": Expected(args=("hydra/launcher=joblib",), output=("Joblib",)),
    "rnn_vs_lstm": Expected(metrics=("grad/time_first_last_init", "grad/time_first_last"), all_ok=True,
                            records=_rnn_vs_lstm),
    "scheduler_warmup": Expected(report={"interaction": 1},
                                 figures=("scheduler_warmup_test_acc_vs_optimizer_lr.png",
                                          "scheduler_warmup_train_early_spike_vs_optimizer_lr.png"),
                                 metrics=("train/early_spike",), records=_scheduler_warmup),
    "sigmoid_vs_tanh": Expected(report={"**not tested** Being zero-centred is why": 1},
                                figures=("sigmoid_vs_tanh_train_loss_auc_vs_model_depth.png",),
                                metrics=("train/loss_auc",), records=_sigmoid_vs_tanh),
}


def _cells(name: str) -> list[dict[str, str]]:
    """The experiment's cells (params x grids, labels filled in), as its sweeper expands them at smoke
    (a grid may scale with the budget: scheduler_warmup's step decay halfway is 1 epoch at smoke)."""
    return experiment_cells(experiment_spec(name), "smoke")


def _check_records(name: str, records: list[dict]) -> None:
    """Every cell ran the budget's seeds once each and no more than max_seeds; every record is this
    experiment's, with a known status, and a run that ended ok trained and kept its history."""
    assert records

    def at(record: dict, cell: dict) -> bool:
        return all(same_level(get_value(record, k), canonical(v)) for k, v in cell.items())

    for cell in _cells(name):
        seeds = sorted(r["seed"] for r in records if at(r, cell))
        assert len(seeds) == len(set(seeds)), f"{cell}: a seed has two records"
        assert set(SMOKE_SEEDS) <= set(seeds), f"{cell} did not run the budget's seeds"
    assert all(r["seed"] < SMOKE["max_seeds"] for r in records), "sequential seeds stop at budget.max_seeds"
    for record in records:
        assert record["status"] in STATUSES
        assert record["experiment"] == name and record["claim"]["checks"]
        if record["status"] == "ok":
            assert record["epochs_completed"] >= 1 and record["history"]


def test_every_experiment_has_its_expectations():
    assert sorted(EXPECTED) == EXPERIMENTS
    assert set(CATALOGUED) <= set(EXPERIMENTS) - {"residual_depth"}   # the catalogue test is slow


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_the_sweeper_adds_the_seeds_and_the_scope_names_the_hardware(name):
    """Design checks, from the config alone: no cell sets a seed (the sweeper adds them), and the
    claim's scope says what it was measured on."""
    assert not any("seed" in c or "seeds" in c for c in _cells(name)), "the sweeper adds the seeds"
    assert experiment_spec(name)["claim"]["scope"]["hardware"].startswith("2-core CPU")


def _smoke_run(name: str, tmp_path: Path, request) -> tuple[Path, str]:
    """The experiment's sweep at budget=smoke and the run's output: from the catalogue's folder for the
    catalogued ones, else from its own run."""
    if name in CATALOGUED:
        catalogue = request.getfixturevalue("smoke_catalogue")
        assert catalogue.first.returncode == 0, catalogue.first.stdout[-3000:] + catalogue.first.stderr[-3000:]
        sweep = catalogue.dir / name
        return sweep, (sweep / "catalogue.log").read_text()
    sweep = tmp_path / "sweep"
    proc = run_ablate([f"+experiment={name}", "budget=smoke", "threads=1", *EXPECTED[name].args,
                       f"hydra.sweep.dir={sweep}"], cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if n == "residual_depth"] +
                         [pytest.param(n, marks=pytest.mark.slow) for n in EXPERIMENTS if n != "residual_depth"])
def test_experiment_at_smoke(name, tmp_path, request):
    expected = EXPECTED[name]
    sweep, output = _smoke_run(name, tmp_path, request)
    assert all(text in output for text in expected.output), output[-3000:]
    records = load_sweep(sweep)
    _check_records(name, records)
    if expected.all_ok:
        assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records if r["status"] != "ok"][:1]
    for metric in expected.metrics:
        assert all(isinstance(r["metrics"].get(metric), float) for r in _ok(records)), metric
    if expected.records:
        expected.records(records)
    report = check_report(sweep, experiment_spec(name)["claim"])
    for text, times in expected.report.items():
        assert report.count(text) >= times, text
    for figure in expected.figures:
        check_figure(sweep, report, figure)
    entry = read_entry(name, sweep)      # its row of the catalogue has a verdict ("without a verdict yet" not)
    assert entry.problem is None and entry.claims, entry.problem


@pytest.mark.slow
def test_optuna_learning_rate_search(tmp_path):
    sweep = tmp_path / "search"
    proc = run_ablate(["+search=lr", "optimizer=adam", "budget=smoke", f"hydra.sweep.dir={sweep}"], cwd=tmp_path,
                      timeout=900)
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
