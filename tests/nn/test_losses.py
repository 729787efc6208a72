"""``ablate.nn.losses`` and the shipped loss configs: on ``(N, C)`` logits each loss is finite, its
gradient favours the true class, and its values are the textbook ones; on sequence outputs ``(N, C, L)``
logits with ``(N, L)`` targets give the loss of the ``N·L`` steps read as ``(N·L, C)`` classifications,
as torch's cross-entropy does; the non-default losses train through run_trial."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from ablate.nn.losses import OneHotMSE, OneVsRestBCE, one_hot
from ablate.results import read_record
from ablate.run import run_trial
from tests.support import choices, compose, group

LOSSES = {"mse": OneHotMSE(), "mse_raw": OneHotMSE(softmax=False), "bce": OneVsRestBCE(),
          "cross_entropy": torch.nn.CrossEntropyLoss()}


def _steps(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, L), (N, L) -> (N·L, C), (N·L,)"""
    return logits.movedim(1, -1).reshape(-1, logits.shape[1]), target.reshape(-1)


@pytest.mark.parametrize("name", list(LOSSES))
def test_sequence_loss_is_the_loss_of_its_steps(name):
    torch.manual_seed(0)
    logits, target = torch.randn(4, 5, 7), torch.randint(0, 5, (4, 7))
    loss = LOSSES[name]
    assert loss(logits, target).item() == pytest.approx(loss(*_steps(logits, target)).item(), rel=1e-6)


@pytest.mark.parametrize("name", list(LOSSES))
def test_sequence_gradient_favours_the_true_class_at_every_step(name):
    logits = torch.zeros(2, 4, 3, requires_grad=True)
    target = torch.tensor([[0, 1, 2], [3, 3, 0]])
    LOSSES[name](logits, target).backward()
    true = logits.grad.gather(1, target[:, None]).squeeze(1)            # (N, L)
    others = logits.grad.sum(1) - true
    assert (true < 0).all() and (true < others / 3).all()                # descent raises the true class


def test_one_hot_puts_classes_on_dim_1():
    target = torch.tensor([[2, 0, 1]])
    encoded = one_hot(target, torch.zeros(1, 3, 3, dtype=torch.float64))
    assert encoded.dtype == torch.float64 and encoded.shape == (1, 3, 3)
    assert torch.equal(encoded[0], torch.eye(3, dtype=torch.float64)[:, [2, 0, 1]])
    assert torch.equal(one_hot(torch.tensor([1, 0]), torch.zeros(2, 2)), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


def test_classification_values_unchanged():
    """(N, C) logits: the same values as the one-hot formulas along the last dim."""
    torch.manual_seed(1)
    logits, target = torch.randn(6, 4), torch.randint(0, 4, (6,))
    onehot = F.one_hot(target, 4).float()
    assert OneHotMSE()(logits, target).item() == pytest.approx(F.mse_loss(logits.softmax(-1), onehot).item())
    assert OneVsRestBCE()(logits, target).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, onehot).item())
    # BCE is one-vs-rest: one binary problem per class, the true one the only positive
    assert OneVsRestBCE()(torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([0])).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[1.0, 0.0, 0.0]])).item())


# --- the shipped loss configs on (N, C) logits, and through run_trial ----------------------------------

LOSS_CHOICES = choices("loss")


@pytest.mark.parametrize("name", LOSS_CHOICES)
def test_loss_is_finite_and_its_gradient_favours_the_true_class(name):
    loss_fn = instantiate(group("loss", name))
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
    assert instantiate(group("loss", "cross_entropy"))(logits, y).item() == pytest.approx(math.log(10))
    assert instantiate(group("loss", "bce"))(logits, y).item() == pytest.approx(math.log(2))
    # softmax = 0.1 everywhere: (0.9^2 + 9 * 0.1^2) / 10
    assert instantiate(group("loss", "mse"))(logits, y).item() == pytest.approx(0.09)
    assert OneHotMSE(softmax=False)(logits, y).item() == pytest.approx(0.1)


def test_label_smoothing_spreads_a_tenth_of_the_target_mass():
    loss_fn = instantiate(compose(["loss=cross_entropy", "loss.label_smoothing=0.1"]).loss)
    assert loss_fn.label_smoothing == 0.1
    confident = torch.full((2, 10), -20.0)
    confident[0, 3] = confident[1, 7] = 20.0
    y = torch.tensor([3, 7])
    plain = instantiate(group("loss", "cross_entropy"))(confident, y)
    smoothed = loss_fn(confident, y)
    assert plain.item() == pytest.approx(0.0, abs=1e-6)
    # 0.1 of the target mass is spread uniformly, 0.01 on each of the 9 wrong classes at logit gap 40
    assert smoothed.item() == pytest.approx(0.1 * 9 / 10 * 40, rel=1e-3)


@pytest.mark.parametrize("name", ["mse", "bce"])
def test_mse_and_bce_lower_the_loss_through_run_trial(compose_cfg, name):
    cfg = compose_cfg(["budget=smoke", "logger=none", f"loss={name}", "optimizer.lr=0.01", "trainer.max_epochs=3"])
    run_trial(cfg)
    record = read_record(cfg.run_dir)
    assert record["status"] == "ok"
    assert record["history"][-1]["train/loss"] < record["history"][0]["train/loss"]
