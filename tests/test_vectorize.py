"""Seeds as a vectorized dimension: each member of a ``seeds=[...]`` run is exactly the run of its
seed (init, data order, BatchNorm statistics, history, final metrics), a member that diverges does
not stop the others, and families that cannot be stacked run their seeds one after another."""

from __future__ import annotations

import logging
import math

import lightning as L
import pytest
import torch
from torch import nn

import ablate.run
from ablate.models import MLP, ResNet
from ablate.nn import Norm
from ablate.results import read_record
from ablate.run import run_trial
from ablate.vectorize import Stacked

SEEDS = [0, 1, 2]


def _close(a: float, b: float, rel: float = 1e-4) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def _same_run(separate: dict, member: dict) -> None:
    assert member["status"] == separate["status"] == "ok"
    assert member["seed"] == separate["seed"] and member["overrides"]["seed"] == str(separate["seed"])
    assert [r["epoch"] for r in member["history"]] == [r["epoch"] for r in separate["history"]]
    for mine, theirs in zip(member["history"], separate["history"]):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            assert _close(value, mine[key]), (key, value, mine[key])
    assert member["metrics"].keys() == separate["metrics"].keys()
    for key, value in separate["metrics"].items():
        assert _close(value, member["metrics"][key]), (key, value, member["metrics"][key])
    assert member["params"] == separate["params"]


@pytest.mark.parametrize("family", [
    ["model=mlp", "model.width=32"],
    ["model=cnn", "model.width=8"],
    ["model=resnet", "norm=batch", "model.width=8", "model.depth=2", "optimizer=momentum"],
], ids=["mlp", "cnn", "resnet-batchnorm"])
def test_each_member_is_the_run_of_its_seed(compose_cfg, tmp_path, family):
    """Same training loss, accuracy and per-epoch history as the separate run with that seed
    (within 1e-4 relative, no dropout); for BatchNorm also in eval mode (val/test use the stacked
    running statistics)."""
    base = ["budget=smoke", "logger=none", "trainer.max_epochs=3", *family]
    run_trial(compose_cfg([*base, f"seeds={SEEDS}"], tmp_path / "vectorized"))
    for index, seed in enumerate(SEEDS):
        run_trial(compose_cfg([*base, f"seed={seed}"], tmp_path / f"seed{seed}"))
        member = read_record(tmp_path / "vectorized" / f"seed={seed}")
        _same_run(read_record(tmp_path / f"seed{seed}"), member)
        assert member["vectorized"] == {"members": 3, "index": index, "seeds": SEEDS, "job": "vectorized"}
    # members differ from each other: their own init and data order
    losses = {read_record(tmp_path / "vectorized" / f"seed={s}")["metrics"]["train/loss"] for s in SEEDS}
    assert len(losses) == 3


class _Poison(L.Callback):
    """Sends one member's weights to NaN when epoch 1 starts."""

    def __init__(self, member: int):
        self.member = member

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            with torch.no_grad():
                pl_module.model.net.head.weight[self.member] = float("nan")


def test_a_member_that_diverges_does_not_stop_the_others(compose_cfg, tmp_path, monkeypatch):
    original = ablate.run.History
    monkeypatch.setattr(ablate.run, "History", lambda probes: (probes.append(_Poison(1)), original(probes))[1])
    base = ["budget=smoke", "logger=none", "trainer.max_epochs=3", "model.width=32"]
    run_trial(compose_cfg([*base, f"seeds={SEEDS}"], tmp_path / "vectorized"))
    sick = read_record(tmp_path / "vectorized" / "seed=1")
    assert sick["status"] == "diverged" and "epoch 1" in sick["error"] and "nan" in sick["error"]
    assert [r["epoch"] for r in sick["history"]] == [0]             # what it had before it diverged
    assert "test/acc" not in sick["metrics"]
    monkeypatch.setattr(ablate.run, "History", original)
    for seed in (0, 2):                                             # the others trained on, unchanged
        run_trial(compose_cfg([*base, f"seed={seed}"], tmp_path / f"seed{seed}"))
        _same_run(read_record(tmp_path / f"seed{seed}"), read_record(tmp_path / "vectorized" / f"seed={seed}"))


def test_every_member_diverging_stops_the_run(compose_cfg, tmp_path):
    cfg = compose_cfg(["budget=smoke", "logger=none", "optimizer=sgd", "optimizer.lr=1e6", "seeds=[0,1]"])
    run_trial(cfg)
    for seed in (0, 1):
        record = read_record(tmp_path / "run" / f"seed={seed}")
        assert record["status"] == "diverged" and "training loss became" in record["error"]


def test_a_family_that_cannot_be_stacked_runs_its_seeds_one_after_another(compose_cfg, tmp_path, caplog):
    cfg = compose_cfg(["budget=smoke", "logger=none", "model=rnn", "model.width=8", "data=recall",
                       "data.source.length=6", "seeds=[0,1]"])
    with caplog.at_level(logging.WARNING, logger="ablate"):
        run_trial(cfg)
    assert "model=rnn cannot be vectorized" in caplog.text and "one after another" in caplog.text
    for seed in (0, 1):
        record = read_record(tmp_path / "run" / f"seed={seed}")
        assert record["status"] == "ok" and record["seed"] == seed and record["vectorized"] is None


def test_vectorize_false_runs_the_seeds_one_after_another(compose_cfg, tmp_path):
    run_trial(compose_cfg(["budget=smoke", "logger=none", "seeds=[3,4]", "vectorize=false"]))
    assert [read_record(tmp_path / "run" / f"seed={s}")["vectorized"] for s in (3, 4)] == [None, None]


def test_a_finished_member_is_not_trained_again(compose_cfg, tmp_path):
    base = ["budget=smoke", "logger=none", "model.width=16"]
    run_trial(compose_cfg([*base, "seeds=[0,1]"]))
    first = read_record(tmp_path / "run" / "seed=0")
    run_trial(compose_cfg([*base, "seeds=[0,1,2]"]))       # the next look of a sequential sweep, say
    assert read_record(tmp_path / "run" / "seed=0") == first
    added = read_record(tmp_path / "run" / "seed=2")
    assert added["status"] == "ok" and added["vectorized"]["seeds"] == [2]


def test_stacked_modules_keep_their_members_state():
    models = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        models.append(ResNet((1, 12), 3, nn.ReLU, Norm("batch"), depth=1, width=4))
    stacked = Stacked(models)
    assert [n for n, _ in stacked.net.named_parameters()] == [n for n, _ in models[0].named_parameters()]
    x = torch.randn(3, 5, 1, 12)
    torch.testing.assert_close(stacked(x), torch.stack([m(x[k]) for k, m in enumerate(models)]))
    for name, buffer in stacked.net.named_buffers():    # running statistics moved per member, in place
        torch.testing.assert_close(buffer, torch.stack([dict(m.named_buffers())[name] for m in models]))
    stacked.eval(), [m.eval() for m in models]
    shared = torch.randn(4, 1, 12)
    torch.testing.assert_close(stacked(shared, shared=True), torch.stack([m(shared) for m in models]))
    torch.testing.assert_close(stacked.member(2)(shared), models[2](shared))


def test_summed_member_losses_give_each_member_its_own_gradient():
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(MLP((6,), 3, nn.Tanh, Norm("none"), depth=2, width=5))
    stacked = Stacked(models)
    x, y = torch.randn(2, 4, 6), torch.randint(0, 3, (2, 4))
    logits = stacked(x)
    sum(nn.functional.cross_entropy(logits[k], y[k]) for k in range(2)).backward()
    for k, model in enumerate(models):
        nn.functional.cross_entropy(model(x[k]), y[k]).backward()
        for (name, mine), theirs in zip(stacked.net.named_parameters(), model.parameters()):
            torch.testing.assert_close(mine.grad[k], theirs.grad, msg=name)


class _Crash(L.Callback):
    """Fails the fit once, when epoch 2 starts (the checkpoint of epoch 1 is on disk)."""

    fired = False

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 2 and not _Crash.fired:
            _Crash.fired = True
            raise RuntimeError("injected crash")


def test_a_killed_vectorized_job_resumes_all_its_members(compose_cfg, tmp_path, monkeypatch):
    base = ["budget=smoke", "logger=none", "trainer.max_epochs=4", "model.width=16", "seeds=[0,1]"]
    run_trial(compose_cfg(base, tmp_path / "whole"))
    original = ablate.run.History
    monkeypatch.setattr(ablate.run, "History", lambda probes: (probes.append(_Crash()), original(probes))[1])
    with pytest.raises(RuntimeError, match="injected crash"):
        run_trial(compose_cfg(base, tmp_path / "crashed"))
    assert [read_record(tmp_path / "crashed" / f"seed={s}")["status"] for s in (0, 1)] == ["failed", "failed"]
    assert (tmp_path / "crashed" / "checkpoints" / "last.ckpt").is_file()
    run_trial(compose_cfg(base, tmp_path / "crashed"))                  # the relaunch resumes at epoch 2
    for seed in (0, 1):
        resumed, whole = read_record(tmp_path / "crashed" / f"seed={seed}"), read_record(tmp_path / "whole" / f"seed={seed}")
        assert resumed["status"] == "ok"
        assert resumed["history"] == whole["history"] and resumed["metrics"] == whole["metrics"]
    assert not (tmp_path / "crashed" / "checkpoints").exists()
    # a checkpoint of another member count is not loaded: that job starts afresh
    monkeypatch.setattr(_Crash, "fired", False)
    with pytest.raises(RuntimeError, match="injected crash"):
        run_trial(compose_cfg([*base[:-1], "seeds=[5,6,7]"], tmp_path / "other"))
    monkeypatch.setattr(ablate.run, "History", original)
    (tmp_path / "other" / "seed=7" / "record.json").unlink()
    for seed in (5, 6):
        record = read_record(tmp_path / "other" / f"seed={seed}")
        record["status"], record["error"] = "ok", None
        (tmp_path / "other" / f"seed={seed}" / "record.json").write_text(__import__("json").dumps(record))
    run_trial(compose_cfg([*base[:-1], "seeds=[5,6,7]"], tmp_path / "other"))   # only seed 7 is left to train
    assert read_record(tmp_path / "other" / "seed=7")["status"] == "ok"


class _Tied(nn.Module):
    """An encoder and a decoder sharing one weight (as language models tie their embeddings)."""

    def __init__(self):
        super().__init__()
        self.encode = nn.Linear(6, 6, bias=False)
        self.decode = nn.Linear(6, 6, bias=False)
        self.decode.weight = self.encode.weight

    def forward(self, x):
        return self.decode(torch.tanh(self.encode(x)))


def test_tied_weights_stay_tied_in_every_member_and_untied_families_skip_the_untying():
    torch.manual_seed(0)
    tied = [_Tied() for _ in range(3)]
    stacked = Stacked(tied)
    assert stacked.tied and not Stacked([MLP((6,), 3, nn.Tanh, Norm("none"), depth=2, width=5) for _ in range(2)]).tied
    x = torch.randn(3, 5, 6)
    out = stacked(x)
    for k, model in enumerate(tied):      # the stacked weight serves both layers of member k
        assert torch.allclose(out[k], model(x[k]), atol=1e-6)
    out.sum().backward()
    (name, weight), = stacked.net.named_parameters()        # one stacked tensor under the tied names
    for k, model in enumerate(tied):      # each member's gradient holds both uses of its one weight
        model(x[k]).sum().backward()
        assert torch.allclose(weight.grad[k], model.encode.weight.grad, atol=1e-5)
