"""The training probes, through real runs: what each measures, per member when vectorized, and that
measuring changes nothing the run computes."""

from __future__ import annotations

import math

import pytest

from ablate.results import read_record
from ablate.run import run_trial

SMOKE = ["budget=smoke", "logger=none"]


def _run(compose_cfg, tmp_path, overrides, name="run"):
    run_trial(compose_cfg([*SMOKE, *overrides], tmp_path / name))
    record = read_record(tmp_path / name)
    assert record["status"] == "ok", record.get("error")
    return record


def _probe(name: str, cls: str, **kwargs) -> list[str]:
    return [f"+probes.{name}._target_=ablate.probes.{cls}", *(f"+probes.{name}.{k}={v}" for k, v in kwargs.items())]


def test_convergence_is_the_mean_training_loss_and_the_first_epoch_at_target(compose_cfg, tmp_path):
    record = _run(compose_cfg, tmp_path, ["trainer.max_epochs=3", *_probe("c", "Convergence", target=2.2)])
    losses = [row["train/loss"] for row in record["history"]]
    assert record["metrics"]["train/loss_auc"] == pytest.approx(sum(losses) / 3)
    first = next((i + 1 for i, v in enumerate(losses) if v <= 2.2), 4)
    assert record["metrics"]["train/epochs_to_target"] == first


def test_early_spike_is_one_when_the_loss_only_falls_and_above_one_when_it_jumps(compose_cfg, tmp_path):
    calm = _run(compose_cfg, tmp_path, [*_probe("s", "EarlySpike", steps=6)], "calm")
    assert calm["metrics"]["train/early_spike"] == pytest.approx(1.0, abs=0.05)
    wild = _run(compose_cfg, tmp_path, ["optimizer=sgd", "optimizer.lr=3.0", *_probe("s", "EarlySpike", steps=8)],
                "wild")
    assert wild["metrics"]["train/early_spike"] > 1.2


def test_eval_mode_training_accuracy_turns_dropout_off(compose_cfg, tmp_path):
    record = _run(compose_cfg, tmp_path, ["model.dropout=0.6", "trainer.max_epochs=4", *_probe("e", "EvalTrainAccuracy")])
    metrics = record["metrics"]
    assert 0 <= metrics["train_eval/acc"] <= 1 and metrics["train_eval/loss"] > 0
    # with dropout 0.6 on, the accuracy seen while training is well below the eval-mode one
    assert metrics["train_eval/acc"] > metrics["train/acc"]


def test_batch_stats_accuracy_leaves_the_running_statistics_alone(compose_cfg, tmp_path):
    common = ["norm=batch", "trainer.max_epochs=2"]
    plain = _run(compose_cfg, tmp_path, common, "plain")
    probed = _run(compose_cfg, tmp_path, [*common, *_probe("b", "BatchStatsAccuracy")], "probed")
    assert {k: v for k, v in probed["metrics"].items() if k != "val/acc_batch_stats"} == plain["metrics"]
    assert 0 <= probed["metrics"]["val/acc_batch_stats"] <= 1
    assert all("val/acc_batch_stats" in row for row in probed["history"])


def test_shifted_accuracy_at_shift_zero_is_the_test_accuracy(compose_cfg, tmp_path):
    record = _run(compose_cfg, tmp_path, ["model=cnn", "model.width=8", "+probes.s._target_=ablate.probes.ShiftedAccuracy",
                                          "+probes.s.shifts=[0,3]"])
    assert record["metrics"]["test/acc_shift0"] == pytest.approx(record["metrics"]["test/acc"])
    assert 0 <= record["metrics"]["test/acc_shift3"] <= 1


def test_time_gradient_profiles_every_step_at_init_and_at_the_end(compose_cfg, tmp_path):
    record = _run(compose_cfg, tmp_path, ["model=rnn", "model.cell=rnn", "model.width=8", "data=recall",
                                          "data.source.length=12", *_probe("t", "TimeGradient")])
    profiles = record["probes"]["time_grad"]
    assert len(profiles["init"]) == len(profiles["final"]) == 12
    first, last = profiles["init"][0], profiles["init"][-1]
    assert record["metrics"]["grad/time_first_last_init"] == pytest.approx(first / last)


def test_time_gradient_of_a_vanished_gradient_is_tiny_not_zero(compose_cfg, tmp_path):
    # a plain RNN over 100 steps: step 0's gradient is ~1e-20 of the last step's; its float32 squares
    # underflow, so the norm is taken in float64
    record = _run(compose_cfg, tmp_path, ["model=rnn", "model.cell=rnn", "model.width=16", "data=recall",
                                          "data.source.length=100", *_probe("t", "TimeGradient")])
    ratio = record["metrics"]["grad/time_first_last_init"]
    assert 0 < ratio < 1e-8
    assert min(record["probes"]["time_grad"]["init"]) > 0


def test_activation_scale_shrinks_through_a_deep_relu_stack_under_the_default_init(compose_cfg, tmp_path):
    ratios = {}
    for init in ("default", "kaiming"):
        record = _run(compose_cfg, tmp_path, ["model.depth=8", "model.width=64", f"init={init}",
                                              *_probe("a", "ActivationScale")], init)
        ratios[init] = record["metrics"]["act/std_ratio_init"]
        assert len(record["probes"]["activation_std"]["init"]) == 9          # 8 hidden layers and the head
    # PyTorch's default keeps ~sqrt(2/3) of the scale per ReLU layer; He init keeps it whole
    assert ratios["default"] < 0.3 and 0.5 < ratios["kaiming"] < 2


def test_vectorized_members_get_their_own_probe_values(compose_cfg, tmp_path):
    probes = [*_probe("c", "Convergence"), *_probe("e", "EvalTrainAccuracy"), *_probe("a", "ActivationScale")]
    run_trial(compose_cfg([*SMOKE, "seeds=[0,1]", *probes], tmp_path / "vectorized"))
    for seed in (0, 1):
        alone = _run(compose_cfg, tmp_path, [f"seed={seed}", *probes], f"seed{seed}")
        member = read_record(tmp_path / "vectorized" / f"seed={seed}")
        for key in ("train/loss_auc", "train_eval/acc", "act/std_ratio_init"):
            assert member["metrics"][key] == pytest.approx(alone["metrics"][key], rel=1e-4), key
        assert member["probes"]["activation_std"]["init"] == pytest.approx(alone["probes"]["activation_std"]["init"],
                                                                          rel=1e-4)
    assert not math.isclose(read_record(tmp_path / "vectorized" / "seed=0")["metrics"]["train/loss_auc"],
                            read_record(tmp_path / "vectorized" / "seed=1")["metrics"]["train/loss_auc"])
