"""``ablate.nn.losses`` on sequence outputs: ``(N, C, L)`` logits with ``(N, L)`` targets give the
loss of the ``N·L`` steps read as ``(N·L, C)`` classifications, as torch's cross-entropy does. (Their
values on ``(N, C)`` logits are tested with the other losses in tests/test_optim.py.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ablate.nn.losses import OneHotMSE, OneVsRestBCE, one_hot

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
