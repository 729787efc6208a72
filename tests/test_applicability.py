"""Which experiments, clauses and checks apply to a model or data of the user's (ablate.applicability):
each shipped experiment composed with Hydra's compose API, as the sweeper composes it, and assessed on
models defined here (importable as ``tests.test_applicability.<Name>``); then the real command on a
claim that does not apply, and one that applies in part."""

from __future__ import annotations

import json
import math
import os

import pytest
from omegaconf import OmegaConf
from torch import nn

from ablate.applicability import Applicability, assess_config, own_task, read
from ablate.catalogue import experiments
from ablate.report.spec.rules import claim_errors
from tests.support import REPO, run_ablate

HERE = "tests.test_applicability"


class Plain(nn.Module):
    """Takes only what every model is passed."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 16), nn.ReLU(),
                                  nn.Linear(16, num_classes))

    def forward(self, x):
        return self.body(x)


class Normed(nn.Module):
    """Takes a norm (and nothing else of ablate's)."""

    def __init__(self, input_shape, num_classes, norm):
        super().__init__()
        width = 16
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), norm(width, "features"),
                                  nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, x):
        return self.body(x)


def _assess(experiment: str, *pins: str) -> tuple[Applicability | None, list[bool], dict]:
    """What the sweeper decides for ``python -m ablate +experiment=<experiment> <pins>``."""
    from hydra import compose, initialize_config_module
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from hydra_plugins.ablate_sweeper.ablate_sweeper import job_dict, union

    task = [f"+experiment={experiment}", *pins]
    with initialize_config_module("ablate.conf", version_base="1.3"):
        cfg = compose("config", overrides=task, return_hydra_config=True)
        own = compose("config", overrides=own_task(task), return_hydra_config=True)
    resolved = _resolved_sweeper(cfg)
    params = [f"{k}={v}" for k, v in (resolved.get("params") or {}).items()]
    cells = union([[*params, *(f"{k}={v}" for k, v in g.items())] for g in resolved.get("grids") or [{}]],
                  OverridesParser.create())
    found, keep = assess_config(cfg, own, job_dict(pins), [job_dict(c) for c in cells])
    return found, keep, OmegaConf.to_container(cfg.claim, resolve=True)


def _resolved_sweeper(cfg) -> dict:
    import ablate  # noqa: F401  (registers ${scale:...})

    return OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)


def _applies(found: Applicability | None) -> bool:
    return found is None or found.applies


def test_a_plain_model_gets_the_training_experiments_and_the_weight_decay_clauses():
    """The issue's list: optimizer, learning rate, schedule, batch size, loss, and regularization's weight
    decay; every other shipped experiment is not applicable, for a reason that names what is missing."""
    applying, reasons = [], {}
    for name in experiments():
        found, _, _ = _assess(name, f"model._target_={HERE}.Plain")
        assert found is not None and found.user_model and not found.user_data
        (applying.append(name) if found.applies else reasons.__setitem__(name, found.reason))
    assert applying == ["batch_size", "learning_rate", "loss_choice", "optimizer_adam_vs_sgd", "regularization",
                        "scheduler_warmup"]
    assert reasons["norm_bn_vs_ln"] == f"{HERE}.Plain takes no norm"
    assert "takes no depth" in reasons["residual_depth"] and "takes no residual" in reasons["residual_depth"]
    assert "ablate's own families" in reasons["cnn_vs_mlp"] and "ablate's own families" in reasons["attention_vs_recurrence"]
    assert "takes no cell" in reasons["rnn_vs_lstm"]
    assert "takes no activation" in reasons["sigmoid_vs_tanh"]


def test_regularization_on_a_plain_model_is_judged_on_its_weight_decay_clauses():
    found, keep, claim = _assess("regularization", f"model._target_={HERE}.Plain")
    assert found.clause_reasons(claim) == {"dropout_reduces_overfitting": f"{HERE}.Plain takes no dropout"}
    judged = found.apply(claim)
    assert [c["name"] for c in judged["checks"]] == [c["name"] for c in claim["checks"] if "dropout" not in c["name"]]
    assert judged["scope"]["model"].startswith(f"{HERE}.Plain (your model; the design's: MLP")
    # the dropout cells are not run (their model.dropout would be refused); the others are
    assert keep.count(False) == 3 and keep.count(True) == 6

    found, _, claim = _assess("scheduler_warmup", f"model._target_={HERE}.Plain")
    assert set(found.clause_reasons(claim)) == {"warmup_removes_spike", "post_ln_needs_it_more", "high_rates"}
    assert "schedules_improve" not in found.clause_reasons(claim)


def test_a_model_that_takes_a_norm_gets_the_norm_experiment():
    found, keep, _ = _assess("norm_bn_vs_ln", f"model._target_={HERE}.Normed")
    assert found.applies and not found.checks and all(keep)
    found, _, _ = _assess("residual_depth", f"model._target_={HERE}.Normed")
    assert not found.applies


def test_ablates_own_model_and_data_are_not_assessed():
    assert _assess("norm_bn_vs_ln")[0] is None
    assert _assess("residual_depth", "model.width=8")[0] is None


def test_data_of_the_users_stands_for_the_designs_first_data_set():
    """loss_choice compares losses on mnist1d and digits: on your data, its mnist1d checks run on it
    (renamed), its digits checks cannot; experiments that set their own data's source are not applicable."""
    found, keep, claim = _assess("loss_choice", "data=csv")
    assert found.user_data and not found.user_model and found.applies
    digits = {i for i, c in enumerate(claim["checks"]) if c.get("where", {}).get("data") == "digits"}
    assert set(found.checks) == digits and all("second data set (data=digits)" in why for why in found.checks.values())
    judged = found.apply(claim)
    assert {c["where"]["data"] for c in judged["checks"]} == {"csv"}
    assert keep.count(True) == keep.count(False)          # the digits cells are not run
    assert judged["scope"]["data"].startswith("data=csv (your data")

    found, _, _ = _assess("rnn_vs_lstm", "data=csv")
    assert not found.applies and "data.source.length" in found.reason
    found, _, _ = _assess("norm_bn_vs_ln", "data=csv")
    assert not found.applies and found.reason.startswith("it needs its own data, not data=csv: ")


def test_settings_of_the_users_data_and_model_are_left_out_of_the_design():
    """``data.source.path=...`` belongs to the user's data: the experiment as designed (mnist1d) has no
    such key, and composing it must not fail."""
    assert own_task(["+experiment=x", "data=csv", "data.source.path=t.csv", "model._target_=m.Net", "model.width=8",
                     "budget=smoke"]) == ["+experiment=x", "budget=smoke"]
    found, _, _ = _assess("learning_rate", "data=csv", "data.source.path=t.csv")
    assert found is not None and found.user_data and found.applies


def test_a_claim_designed_on_the_users_model_keeps_its_scope():
    found = Applicability(model="m.Net", data="d", n_checks=1, user_model=True, replaced_model=False)
    claim = {"statement": "s", "scope": {"model": "my net"}, "checks": [{"name": "c"}]}
    assert found.apply(claim)["scope"] == {"model": "my net"}
    replaced = Applicability(model="m.Net", data="d", n_checks=1, user_model=True, replaced_model=True)
    assert replaced.apply(claim)["scope"] == {"model": "m.Net (your model; the design's: my net)"}


def test_a_sweep_whose_model_cannot_be_imported_gets_the_config_checks_message(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_ablate(["+experiment=learning_rate", "model._target_=nowhere_to_be_found.Net", "budget=smoke",
                         f"hydra.sweep.dir={sweep}"], tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "nowhere_to_be_found" in result.stderr
    assert not sweep.exists()


def test_the_file_round_trips_and_a_bad_needs_is_refused(tmp_path):
    from ablate.applicability import write

    found, _, _ = _assess("loss_choice", "data=csv", f"model._target_={HERE}.Plain")
    write(tmp_path, found)
    assert read(tmp_path) == found and read(tmp_path / "missing") is None
    (tmp_path / "applicability.json").write_text("{")
    with pytest.raises(ValueError, match="applicability.json could not be read"):
        read(tmp_path)
    claim = {"statement": "s", "needs": {"gpu": "fast", "data": ""},
             "checks": [{"metric": "test/acc", "goal": "max", "factor": "a", "treatment": 1, "baseline": 2}]}
    errors = claim_errors(claim)
    assert "claim.needs has unknown field 'gpu'; valid fields: model, data" in errors
    assert "claim.needs.data must say why, as text" in errors


def _env() -> dict:
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}


def test_an_experiment_that_does_not_apply_ends_at_once_and_lists_those_that_do(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_ablate(["+experiment=norm_bn_vs_ln", f"model._target_={HERE}.Plain", "budget=smoke",
                         f"hydra.sweep.dir={sweep}"], tmp_path, timeout=300, **_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"ablate: not applicable: norm_bn_vs_ln on {HERE}.Plain: {HERE}.Plain takes no norm" in result.stderr
    assert ("experiments that apply: batch_size, learning_rate, loss_choice, optimizer_adam_vs_sgd, regularization, "
            "scheduler_warmup") in result.stderr
    assert not list(sweep.rglob("record.json")) and not (sweep / "report.md").exists()   # nothing trained
    assert not read(sweep).applies


def test_on_the_users_data_a_grid_that_sets_its_own_datas_source_is_not_applicable(tmp_path):
    """rnn_vs_lstm sweeps data.source.length, a key the user's CSV source does not have: judged not
    applicable before any job is composed (composing one would fail on that key)."""
    table = tmp_path / "t.csv"
    table.write_text("a,b,label\n" + "".join(f"{i % 7},{i % 5},{i % 3}\n" for i in range(60)))
    sweep = tmp_path / "sweep"
    result = run_ablate(["+experiment=rnn_vs_lstm", "data=csv", f"data.source.path={table}", "data.source.target=label",
                         "budget=smoke", f"hydra.sweep.dir={sweep}"], tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("ablate: not applicable: rnn_vs_lstm on data=csv: it sets data.source.length, a setting of the design's "
            "own generated data, not of data=csv") in result.stderr
    assert not list(sweep.rglob("record.json"))


@pytest.mark.slow
def test_regularization_on_a_plain_model_reports_what_applies(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_ablate(["+experiment=regularization", f"model._target_={HERE}.Plain", "budget=smoke",
                         f"hydra.sweep.dir={sweep}"], tmp_path, timeout=600, **_env())
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in sweep.rglob("record.json")]
    assert records and {r["config"]["regularizer"] for r in records} == {"none", "weight_decay"}
    claim = json.loads((sweep / "verdict.json").read_text())["claims"][0]
    clauses = {c["name"]: c for c in claim["clauses"]}
    assert clauses["dropout_reduces_overfitting"]["verdict"] == "not applicable"
    assert clauses["dropout_reduces_overfitting"]["not_applicable"] == f"{HERE}.Plain takes no dropout"
    assert all(c["verdict"] != "not applicable" for n, c in clauses.items() if n != "dropout_reduces_overfitting")
    assert len(claim["checks"]) == 4 and all("dropout" not in c["name"] for c in claim["checks"])
    assert claim["scope"]["model"].startswith(f"{HERE}.Plain (your model")
    report = (sweep / "report.md").read_text()
    assert f"**not applicable** With little data (250 examples), dropout" in report
    assert f"{HERE}.Plain takes no dropout" in report
