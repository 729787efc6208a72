"""``ablate.nn.schedules``: each learning-rate schedule, through AblationModule.configure_optimizers and
a real Trainer (the rate every optimizer step used), and directly."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from ablate.nn import schedules
from ablate.results import read_record
from ablate.run import build, run_trial
from tests.support import choices, compose


class _LRTrace(L.Callback):
    """The learning rate (and momentum) each training step used, and the one left at the end."""

    def __init__(self):
        self.lrs, self.momenta, self.final = [], [], None

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):   # every step, however batches are grouped
        group = trainer.optimizers[0].param_groups[0]
        self.lrs.append(group["lr"])
        self.momenta.append(group.get("momentum"))

    def on_train_end(self, trainer, pl_module):
        self.final = trainer.optimizers[0].param_groups[0]["lr"]


EPOCHS, STEPS_PER_EPOCH = 4, 4          # smoke budget: 600 samples, 420 for training, batches of 128
TOTAL = EPOCHS * STEPS_PER_EPOCH
BASE = 0.1


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    """``trace(*overrides)``: the learning rates of a 4-epoch plain-SGD fit with that schedule, each
    distinct fit run once."""
    cache = {}

    def _trace(*overrides) -> _LRTrace:
        if overrides not in cache:
            run_dir = tmp_path_factory.mktemp("trace")
            cfg = compose(["budget=smoke", "logger=none", f"trainer.max_epochs={EPOCHS}", "optimizer=sgd",
                           f"optimizer.lr={BASE}", "checkpoint=false", *overrides], run_dir)
            L.seed_everything(0, verbose=False)
            datamodule, module = build(cfg)
            lrs = _LRTrace()
            trainer = instantiate(cfg.trainer, callbacks=[lrs], logger=False, default_root_dir=str(run_dir),
                                  enable_checkpointing=False, limit_val_batches=0)
            trainer.fit(module, datamodule=datamodule)
            assert len(lrs.lrs) == TOTAL
            cache[overrides] = lrs
        return cache[overrides]

    return _trace


def test_no_schedule_is_constant(trace):
    trace = trace("scheduler=none")
    assert trace.lrs == [BASE] * TOTAL and trace.final == BASE


def test_step_divides_by_ten_every_step_size_epochs(trace):
    trace = trace("scheduler=step", "scheduler.step_size=2")
    per_epoch = [trace.lrs[i * STEPS_PER_EPOCH : (i + 1) * STEPS_PER_EPOCH] for i in range(EPOCHS)]
    assert per_epoch[0] == per_epoch[1] == [BASE] * STEPS_PER_EPOCH
    assert per_epoch[2] == per_epoch[3] == pytest.approx([BASE / 10] * STEPS_PER_EPOCH)
    assert trace.final == pytest.approx(BASE / 100)


def test_cosine_anneals_to_zero_over_the_run(trace):
    trace = trace("scheduler=cosine")
    expected = [BASE * 0.5 * (1 + math.cos(math.pi * i / TOTAL)) for i in range(TOTAL)]
    assert trace.lrs == pytest.approx(expected, abs=1e-9)
    assert trace.final == pytest.approx(0.0, abs=1e-9)


def test_cosine_ends_at_min_lr_ratio_of_the_rate(trace):
    trace = trace("scheduler=cosine", "scheduler.min_lr_ratio=0.1")
    assert trace.lrs[0] == pytest.approx(BASE)
    assert trace.final == pytest.approx(0.1 * BASE)


def test_warmup_cosine_rises_linearly_then_decays_to_zero(trace):
    trace = trace("scheduler=warmup_cosine", "scheduler.warmup_fraction=0.25")
    warmup = 4
    assert trace.lrs[:warmup] == pytest.approx([BASE * (i + 1) / warmup for i in range(warmup)])
    assert max(trace.lrs) == pytest.approx(BASE) and trace.lrs.index(max(trace.lrs)) == warmup - 1
    decay = trace.lrs[warmup - 1 :]
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    expected = [BASE * 0.5 * (1 + math.cos(math.pi * (i - warmup) / (TOTAL - warmup))) for i in range(warmup, TOTAL)]
    assert trace.lrs[warmup:] == pytest.approx(expected)
    assert trace.final == pytest.approx(0.0, abs=1e-9)


def test_warmup_cosine_default_warmup_is_at_least_one_step(trace):
    trace = trace("scheduler=warmup_cosine")           # 5% of 16 steps rounds to 1
    assert trace.lrs[0] == pytest.approx(BASE)
    assert trace.final == pytest.approx(0.0, abs=1e-9)


def test_onecycle_peaks_at_the_configured_rate(trace):
    trace = trace("scheduler=onecycle")
    assert trace.lrs[0] == pytest.approx(BASE / 25)                                  # div_factor
    peak = trace.lrs.index(max(trace.lrs))
    assert max(trace.lrs) == pytest.approx(BASE, rel=0.01)
    assert 2 <= peak <= 5                                                             # ~30% of 16 steps
    assert all(a <= b for a, b in zip(trace.lrs[: peak + 1], trace.lrs[1 : peak + 1]))
    assert all(a >= b for a, b in zip(trace.lrs[peak:], trace.lrs[peak + 1 :]))
    assert trace.lrs[-1] == pytest.approx(BASE / 25 / 1e4)                            # final_div_factor


def test_onecycle_cycles_momentum_only_where_the_optimizer_has_it(trace):
    """optimizer=sgd has momentum 0; the one-cycle schedule must not switch momentum on (OneCycleLR's
    cycle_momentum would run it at 0.85-0.95, and the record would still say momentum 0). With momentum
    (SGD's, or Adam's beta1) it cycles; RMSprop without momentum keeps none."""
    assert set(trace("scheduler=onecycle").momenta) == {0.0}
    momenta = trace("scheduler=onecycle", "optimizer=momentum", f"optimizer.lr={BASE}").momenta
    assert momenta[0] == pytest.approx(0.95) and min(momenta) == pytest.approx(0.85, abs=0.01)
    p = [nn.Parameter(torch.zeros(1))]
    rmsprop, adam = torch.optim.RMSprop(p, lr=0.01, momentum=0.0), torch.optim.Adam(p, lr=0.01)
    schedules.onecycle(rmsprop, total_steps=10, steps_per_epoch=5)
    schedules.onecycle(adam, total_steps=10, steps_per_epoch=5)
    assert rmsprop.param_groups[0]["momentum"] == 0.0
    assert adam.param_groups[0]["betas"][0] == pytest.approx(0.95)


def _sgd() -> torch.optim.Optimizer:
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)


def test_each_schedule_is_stepped_at_its_interval():
    assert schedules.constant(_sgd(), 100, 10) is None
    for fn, interval in ((schedules.step, "epoch"), (schedules.cosine, "step"), (schedules.warmup_cosine, "step"),
                         (schedules.onecycle, "step"), (schedules.plateau, "epoch")):
        spec = fn(_sgd(), total_steps=100, steps_per_epoch=10)
        assert spec["interval"] == interval, fn.__name__
    assert schedules.plateau(_sgd(), total_steps=100, steps_per_epoch=10)["monitor"] == "val/loss"


def test_warmup_cosine_warms_up_over_5_percent_of_a_long_run_then_decays_to_zero():
    o = _sgd()
    sched = schedules.warmup_cosine(o, total_steps=1000, steps_per_epoch=100)["scheduler"]
    lrs = []
    for _ in range(1000):
        lrs.append(o.param_groups[0]["lr"])
        o.step(), sched.step()
    assert lrs[:50] == pytest.approx([(i + 1) / 50 for i in range(50)])
    assert lrs[-1] < 1e-4 and lrs.index(max(lrs)) == 49


@pytest.mark.parametrize("scheduler", choices("scheduler"))
def test_every_shipped_scheduler_runs_through_run_trial(compose_cfg, scheduler):
    cfg = compose_cfg(["budget=smoke", "logger=none", f"scheduler={scheduler}", "optimizer=momentum"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    assert record["status"] == "ok"
    assert record["config"]["scheduler"]["_target_"] == f"ablate.nn.schedules.{ {'none': 'constant'}.get(scheduler, scheduler)}"
