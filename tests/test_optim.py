"""Optimizers, learning-rate schedules (through AblationModule.configure_optimizers and a real
Trainer) and losses, all built from the shipped configs."""

from __future__ import annotations

import functools
import itertools
import math

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from ablate.nn import schedules
from ablate.nn.losses import OneHotMSE, OneVsRestBCE
from ablate.results import read_record
from ablate.run import build, run_trial
from tests.support import compose

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULERS = ("none", "step", "cosine", "warmup_cosine", "onecycle")


@functools.lru_cache(maxsize=None)
def _group(group: str, choice: str):
    return compose([f"{group}={choice}"])[group]


def _optimizer(name: str):
    """The optimizer partial conf/optimizer/<name>.yaml builds (``factory(params, lr=..., ...)``)."""
    return instantiate(_group("optimizer", name))


def _toy_problem(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    return model, x, y


# --- optimizers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_step_changes_every_parameter_and_lowers_the_loss(name):
    model, x, y = _toy_problem()
    optimizer = instantiate(_group("optimizer", name))(model.parameters())
    before = [p.detach().clone() for p in model.parameters()]
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    for old, new in zip(before, model.parameters()):
        assert not torch.equal(old, new.detach())
    assert losses[-1] < losses[0]


def test_optimizer_configs_are_what_they_claim():
    expect = {
        "sgd": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.0, "nesterov": False}),
        "momentum": (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": False}),
        "nesterov": (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
        "adam": (torch.optim.Adam, {"lr": 0.001, "weight_decay": 0.0}),
        "adamw": (torch.optim.AdamW, {"lr": 0.001, "weight_decay": 0.01}),
        "rmsprop": (torch.optim.RMSprop, {"lr": 0.001, "alpha": 0.99, "momentum": 0.0}),
    }
    for name, (cls, values) in expect.items():
        optimizer = instantiate(_group("optimizer", name))([nn.Parameter(torch.zeros(2))])
        assert type(optimizer) is cls, name
        for key, value in values.items():
            assert optimizer.defaults[key] == value, (name, key)


def test_sgd_step_is_lr_times_gradient():
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = instantiate(_group("optimizer", "sgd"))([p])
    (p ** 2).sum().backward()                                   # grad = 2p = (2, -4)
    optimizer.step()
    assert torch.allclose(p.detach(), torch.tensor([1.0 - 0.1 * 2, -2.0 + 0.1 * 4]))


def test_momentum_accumulates_under_a_constant_gradient():
    p = nn.Parameter(torch.zeros(1))
    optimizer = instantiate(_group("optimizer", "momentum"))([p])
    positions = [0.0]
    for _ in range(3):
        optimizer.zero_grad()
        p.sum().backward()                                      # gradient 1 every step
        optimizer.step()
        positions.append(p.item())
    steps = [a - b for a, b in zip(positions, positions[1:])]
    assert steps == pytest.approx([0.05, 0.05 * 1.9, 0.05 * (1 + 0.9 + 0.81)])


def test_adam_first_step_is_lr_per_coordinate():
    p = nn.Parameter(torch.zeros(3))
    optimizer = instantiate(_group("optimizer", "adam"))([p])
    (p * torch.tensor([1e-3, 1.0, -50.0])).sum().backward()
    optimizer.step()
    assert torch.allclose(p.detach(), torch.tensor([-1e-3, -1e-3, 1e-3]), rtol=1e-3)


def test_adamw_decay_is_decoupled():
    """With a zero gradient AdamW still shrinks weights by lr * weight_decay; Adam (L2 coupled via the
    gradient, here weight_decay 0) leaves them."""
    for name, expected in (("adamw", 1.0 - 0.001 * 0.01), ("adam", 1.0)):
        p = nn.Parameter(torch.ones(2))
        optimizer = instantiate(_group("optimizer", name))([p])
        (p * 0).sum().backward()
        optimizer.step()
        assert torch.allclose(p.detach(), torch.full((2,), expected)), name


# --- schedules through configure_optimizers and a real Trainer ----------------------------------

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


def _trace(tmp_path, *overrides) -> _LRTrace:
    cfg = compose(["budget=smoke", "logger=none", f"trainer.max_epochs={EPOCHS}", "optimizer=sgd",
                   f"optimizer.lr={BASE}", "checkpoint=false", *overrides], tmp_path)
    L.seed_everything(0, verbose=False)
    datamodule, module = build(cfg)
    trace = _LRTrace()
    trainer = instantiate(cfg.trainer, callbacks=[trace], logger=False, default_root_dir=str(tmp_path),
                          enable_checkpointing=False, limit_val_batches=0)
    trainer.fit(module, datamodule=datamodule)
    assert len(trace.lrs) == TOTAL
    return trace


def test_no_schedule_is_constant(tmp_path):
    trace = _trace(tmp_path, "scheduler=none")
    assert trace.lrs == [BASE] * TOTAL and trace.final == BASE


def test_step_divides_by_ten_every_step_size_epochs(tmp_path):
    trace = _trace(tmp_path, "scheduler=step", "scheduler.step_size=2")
    per_epoch = [trace.lrs[i * STEPS_PER_EPOCH : (i + 1) * STEPS_PER_EPOCH] for i in range(EPOCHS)]
    assert per_epoch[0] == per_epoch[1] == [BASE] * STEPS_PER_EPOCH
    assert per_epoch[2] == per_epoch[3] == pytest.approx([BASE / 10] * STEPS_PER_EPOCH)
    assert trace.final == pytest.approx(BASE / 100)


def test_cosine_anneals_to_zero_over_the_run(tmp_path):
    trace = _trace(tmp_path, "scheduler=cosine")
    expected = [BASE * 0.5 * (1 + math.cos(math.pi * i / TOTAL)) for i in range(TOTAL)]
    assert trace.lrs == pytest.approx(expected, abs=1e-9)
    assert trace.final == pytest.approx(0.0, abs=1e-9)


def test_cosine_min_lr_ratio(tmp_path):
    trace = _trace(tmp_path, "scheduler=cosine", "scheduler.min_lr_ratio=0.1")
    assert trace.lrs[0] == pytest.approx(BASE)
    assert trace.final == pytest.approx(0.1 * BASE)


def test_warmup_cosine_rises_linearly_then_decays_to_zero(tmp_path):
    trace = _trace(tmp_path, "scheduler=warmup_cosine", "scheduler.warmup_fraction=0.25")
    warmup = 4
    assert trace.lrs[:warmup] == pytest.approx([BASE * (i + 1) / warmup for i in range(warmup)])
    assert max(trace.lrs) == pytest.approx(BASE) and trace.lrs.index(max(trace.lrs)) == warmup - 1
    decay = trace.lrs[warmup - 1 :]
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    expected = [BASE * 0.5 * (1 + math.cos(math.pi * (i - warmup) / (TOTAL - warmup))) for i in range(warmup, TOTAL)]
    assert trace.lrs[warmup:] == pytest.approx(expected)
    assert trace.final == pytest.approx(0.0, abs=1e-9)


def test_warmup_cosine_default_warmup_is_at_least_one_step(tmp_path):
    trace = _trace(tmp_path, "scheduler=warmup_cosine")           # 5% of 16 steps rounds to 1
    assert trace.lrs[0] == pytest.approx(BASE)
    assert trace.final == pytest.approx(0.0, abs=1e-9)


def test_onecycle_peaks_at_the_configured_rate(tmp_path):
    trace = _trace(tmp_path, "scheduler=onecycle")
    assert trace.lrs[0] == pytest.approx(BASE / 25)                                  # div_factor
    peak = trace.lrs.index(max(trace.lrs))
    assert max(trace.lrs) == pytest.approx(BASE, rel=0.01)
    assert 2 <= peak <= 5                                                             # ~30% of 16 steps
    assert all(a <= b for a, b in zip(trace.lrs[: peak + 1], trace.lrs[1 : peak + 1]))
    assert all(a >= b for a, b in zip(trace.lrs[peak:], trace.lrs[peak + 1 :]))
    assert trace.lrs[-1] == pytest.approx(BASE / 25 / 1e4)                            # final_div_factor


def test_onecycle_keeps_plain_sgd_without_momentum(tmp_path):
    """optimizer=sgd has momentum 0; the one-cycle schedule must not switch momentum on (OneCycleLR's
    cycle_momentum would run it at 0.85-0.95, and the record would still say momentum 0)."""
    trace = _trace(tmp_path, "scheduler=onecycle")
    assert set(trace.momenta) == {0.0}


def test_onecycle_cycles_momentum_where_the_optimizer_has_it(tmp_path):
    trace = _trace(tmp_path, "scheduler=onecycle", "optimizer=momentum", f"optimizer.lr={BASE}")
    assert trace.momenta[0] == pytest.approx(0.95) and min(trace.momenta) == pytest.approx(0.85, abs=0.01)


def test_schedule_functions_directly():
    opt = lambda: torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    assert schedules.constant(opt(), 100, 10) is None
    for fn, interval in ((schedules.step, "epoch"), (schedules.cosine, "step"), (schedules.warmup_cosine, "step"),
                         (schedules.onecycle, "step")):
        spec = fn(opt(), total_steps=100, steps_per_epoch=10)
        assert spec["interval"] == interval, fn.__name__
    # a long run: warm-up over 5%, then the cosine reaches ~0 at the end
    o = opt()
    sched = schedules.warmup_cosine(o, total_steps=1000, steps_per_epoch=100)["scheduler"]
    lrs = []
    for _ in range(1000):
        lrs.append(o.param_groups[0]["lr"])
        o.step(), sched.step()
    assert lrs[:50] == pytest.approx([(i + 1) / 50 for i in range(50)])
    assert lrs[-1] < 1e-4 and lrs.index(max(lrs)) == 49
    # one-cycle cycles momentum only where the optimizer has it
    p = [nn.Parameter(torch.zeros(1))]
    rmsprop, adam = torch.optim.RMSprop(p, lr=0.01, momentum=0.0), torch.optim.Adam(p, lr=0.01)
    schedules.onecycle(rmsprop, total_steps=10, steps_per_epoch=5)
    schedules.onecycle(adam, total_steps=10, steps_per_epoch=5)
    assert rmsprop.param_groups[0]["momentum"] == 0.0
    assert adam.param_groups[0]["betas"][0] == pytest.approx(0.95)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_runs_through_run_trial(compose_cfg, scheduler):
    cfg = compose_cfg(["budget=smoke", "logger=none", f"scheduler={scheduler}", "optimizer=momentum"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    assert record["status"] == "ok"
    assert record["config"]["scheduler"]["_target_"] == f"ablate.nn.schedules.{ {'none': 'constant'}.get(scheduler, scheduler)}"


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_trains_through_run_trial(compose_cfg, optimizer):
    cfg = compose_cfg(["budget=smoke", "logger=none", f"optimizer={optimizer}", "trainer.max_epochs=3"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    assert record["status"] == "ok"
    assert record["history"][-1]["train/loss"] < record["history"][0]["train/loss"]


# --- losses --------------------------------------------------------------------------------------

LOSSES = ("cross_entropy", "mse", "bce")


@pytest.mark.parametrize("name", LOSSES)
def test_loss_is_finite_and_its_gradient_favours_the_true_class(name):
    loss_fn = instantiate(_group("loss", name))
    torch.manual_seed(0)
    logits = torch.randn(16, 10, requires_grad=True)
    y = torch.randint(0, 10, (16,))
    loss = loss_fn(logits, y)
    assert loss.dim() == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    grad = logits.grad
    true = grad[torch.arange(16), y]
    assert (true < 0).all()                      # raising the true logit lowers the loss
    if name != "mse":                            # CE and BCE push every wrong logit down
        others = grad.clone()
        others[torch.arange(16), y] = 0
        assert (others >= 0).all()
    # a small gradient step lowers the loss
    with torch.no_grad():
        assert loss_fn(logits - 0.1 * grad / grad.norm(), y) < loss


def test_loss_values_at_zero_logits():
    logits, y = torch.zeros(4, 10), torch.tensor([0, 1, 2, 3])
    assert instantiate(_group("loss", "cross_entropy"))(logits, y).item() == pytest.approx(math.log(10))
    assert instantiate(_group("loss", "bce"))(logits, y).item() == pytest.approx(math.log(2))
    # softmax = 0.1 everywhere: (0.9^2 + 9 * 0.1^2) / 10
    assert instantiate(_group("loss", "mse"))(logits, y).item() == pytest.approx(0.09)
    assert OneHotMSE(softmax=False)(logits, y).item() == pytest.approx(0.1)


def test_label_smoothing():
    loss_fn = instantiate(compose(["loss=cross_entropy", "loss.label_smoothing=0.1"]).loss)
    assert loss_fn.label_smoothing == 0.1
    confident = torch.full((2, 10), -20.0)
    confident[0, 3] = confident[1, 7] = 20.0
    y = torch.tensor([3, 7])
    plain = instantiate(_group("loss", "cross_entropy"))(confident, y)
    smoothed = loss_fn(confident, y)
    assert plain.item() == pytest.approx(0.0, abs=1e-6)
    # 0.1 of the target mass is spread uniformly, 0.01 on each of the 9 wrong classes at logit gap 40
    assert smoothed.item() == pytest.approx(0.1 * 9 / 10 * 40, rel=1e-3)


def test_bce_is_one_vs_rest():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    y = torch.tensor([0])
    target = torch.tensor([[1.0, 0.0, 0.0]])
    expected = nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert OneVsRestBCE()(logits, y).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("name", ["mse", "bce"])
def test_other_losses_train_through_run_trial(compose_cfg, name):
    cfg = compose_cfg(["budget=smoke", "logger=none", f"loss={name}", "optimizer.lr=0.01", "trainer.max_epochs=3"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    assert record["status"] == "ok"
    assert record["history"][-1]["train/loss"] < record["history"][0]["train/loss"]


# --- per-member rates and decays (ablate.optim.MemberRates) ----------------------------------------

@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"])
def test_member_rates_step_each_slice_as_its_own_optimizer(name):
    """K stacked members with their own lr and weight decay move exactly as K optimizers would."""
    from ablate.optim import MemberRates

    rates, decays = [0.02, 0.005, 0.001], [0.0, 0.1, 0.03]
    torch.manual_seed(0)
    stacked = [nn.Parameter(torch.randn(3, 4, 5)), nn.Parameter(torch.randn(3, 5))]
    alone = [[nn.Parameter(p.detach()[k].clone()) for p in stacked] for k in range(3)]
    factory = _optimizer(name)
    vector = factory(stacked, lr=max(rates), weight_decay=0.0)
    MemberRates(vector, rates, decays)
    separate = [factory(ps, lr=rates[k], weight_decay=decays[k]) for k, ps in enumerate(alone)]
    for step in range(5):
        grads = [torch.randn_like(p) for p in stacked]
        for p, g in zip(stacked, grads):
            p.grad = g.clone()
        vector.step()
        for k, (ps, opt) in enumerate(zip(alone, separate)):
            for p, g in zip(ps, grads):
                p.grad = g[k].clone()
            opt.step()
    for k, ps in enumerate(alone):
        for p, q in zip(stacked, ps):
            torch.testing.assert_close(p.detach()[k], q.detach(), rtol=1e-5, atol=1e-7)


def test_member_rates_refuse_what_they_cannot_do():
    from ablate.optim import MemberRates

    p = [nn.Parameter(torch.zeros(2, 3))]
    with pytest.raises(ValueError, match="elementwise optimizer"):
        MemberRates(torch.optim.LBFGS(p, lr=1.0), [1.0, 0.5])
    with pytest.raises(ValueError, match="largest member rate"):
        MemberRates(torch.optim.SGD(p, lr=0.1), [1.0, 0.5])


def test_an_lr_grid_is_one_vectorized_job_equal_to_its_runs(compose_cfg, tmp_path):
    """seeds x lrs x weight_decays members in one job: each member's record is the run of its own
    seed, rate and decay (stable rates: where training is chaotic, rounding differences grow)."""
    base = ["budget=smoke", "logger=none", "trainer.max_epochs=2", "model.width=16", "optimizer=adamw"]
    run_trial(compose_cfg([*base, "seeds=[0,1]", "lrs=[0.001,0.01]", "weight_decays=[0.0,0.1]"], tmp_path / "grid"))
    for seed, lr, wd in itertools.product((0, 1), (0.001, 0.01), (0.0, 0.1)):
        run_trial(compose_cfg([*base, f"seed={seed}", f"optimizer.lr={lr}", f"optimizer.weight_decay={wd}"],
                              tmp_path / f"{seed}-{lr}-{wd}"))
        alone = read_record(tmp_path / f"{seed}-{lr}-{wd}")
        member = read_record(tmp_path / "grid" / f"seed={seed},optimizer.lr={lr},optimizer.weight_decay={wd}")
        assert member["overrides"]["optimizer.lr"] == str(lr) and member["config"]["optimizer"]["lr"] == lr
        assert member["config"]["optimizer"]["weight_decay"] == wd and member["vectorized"]["members"] == 8
        for key, value in alone["metrics"].items():
            assert member["metrics"][key] == pytest.approx(value, rel=1e-4), key
