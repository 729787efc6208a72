"""``ablate.optim`` and the optimizer configs: each shipped optimizer is what it claims and trains,
and MemberRates gives each member of a vectorized job its own learning rate and weight decay."""

from __future__ import annotations

import itertools

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from ablate.optim import MemberRates
from ablate.results import read_record
from ablate.run import run_trial
from tests.support import choices, group

OPTIMIZERS = choices("optimizer")


def _optimizer(name: str):
    """The optimizer partial conf/optimizer/<name>.yaml builds (``factory(params, lr=..., ...)``)."""
    return instantiate(group("optimizer", name))


def _toy_problem(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    return model, x, y


# --- optimizers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_step_changes_every_parameter_and_lowers_the_loss(name):
    model, x, y = _toy_problem()
    optimizer = _optimizer(name)(model.parameters())
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


def test_optimizer_configs_build_the_optimizer_and_defaults_they_claim():
    expect = {
        "sgd": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.0, "nesterov": False}),
        "momentum": (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": False}),
        "nesterov": (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
        "adam": (torch.optim.Adam, {"lr": 0.001, "weight_decay": 0.0}),
        "adamw": (torch.optim.AdamW, {"lr": 0.001, "weight_decay": 0.01}),
        "rmsprop": (torch.optim.RMSprop, {"lr": 0.001, "alpha": 0.99, "momentum": 0.0}),
    }
    assert sorted(expect) == sorted(OPTIMIZERS)            # every shipped optimizer is checked here
    for name, (cls, values) in expect.items():
        optimizer = _optimizer(name)([nn.Parameter(torch.zeros(2))])
        assert type(optimizer) is cls, name
        for key, value in values.items():
            assert optimizer.defaults[key] == value, (name, key)


def test_sgd_step_is_lr_times_gradient():
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = _optimizer("sgd")([p])
    (p ** 2).sum().backward()                                   # grad = 2p = (2, -4)
    optimizer.step()
    assert torch.allclose(p.detach(), torch.tensor([1.0 - 0.1 * 2, -2.0 + 0.1 * 4]))


def test_momentum_accumulates_under_a_constant_gradient():
    p = nn.Parameter(torch.zeros(1))
    optimizer = _optimizer("momentum")([p])
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
    optimizer = _optimizer("adam")([p])
    (p * torch.tensor([1e-3, 1.0, -50.0])).sum().backward()
    optimizer.step()
    assert torch.allclose(p.detach(), torch.tensor([-1e-3, -1e-3, 1e-3]), rtol=1e-3)


def test_adamw_decay_is_decoupled():
    """With a zero gradient AdamW still shrinks weights by lr * weight_decay; Adam (L2 coupled via the
    gradient, here weight_decay 0) leaves them."""
    for name, expected in (("adamw", 1.0 - 0.001 * 0.01), ("adam", 1.0)):
        p = nn.Parameter(torch.ones(2))
        optimizer = _optimizer(name)([p])
        (p * 0).sum().backward()
        optimizer.step()
        assert torch.allclose(p.detach(), torch.full((2,), expected)), name


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_shipped_optimizer_lowers_the_loss_through_run_trial(compose_cfg, optimizer):
    cfg = compose_cfg(["budget=smoke", "logger=none", f"optimizer={optimizer}", "trainer.max_epochs=3"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    assert record["status"] == "ok"
    assert record["history"][-1]["train/loss"] < record["history"][0]["train/loss"]


# --- per-member rates and decays (ablate.optim.MemberRates) ----------------------------------------

@pytest.mark.parametrize("name", OPTIMIZERS)
def test_member_rates_step_each_slice_as_its_own_optimizer(name):
    """K stacked members with their own lr and weight decay move exactly as K optimizers would."""
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


def test_member_rates_refuse_a_non_elementwise_optimizer_and_a_rate_above_the_optimizers():
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
