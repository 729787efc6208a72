"""Classification losses beyond torch's cross-entropy, all taking (logits, integer labels).

Like ``torch.nn.CrossEntropyLoss``, they take class scores along dim 1: ``(N, C)`` logits with
``(N,)`` labels, or ``(N, C, L)`` logits with ``(N, L)`` labels for sequence outputs (one class per
output step), the mean then running over every sample and step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def one_hot(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``target``'s one-hot encoding laid out like ``logits`` (classes along dim 1), in its dtype."""
    return F.one_hot(target, logits.shape[1]).movedim(-1, 1).to(logits.dtype)


class OneHotMSE(nn.Module):
    """Mean squared error between the softmax output (or the raw logits) and one-hot targets: the
    textbook "regression loss on a classification task"."""

    def __init__(self, softmax: bool = True):
        super().__init__()
        self.softmax = softmax

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out = logits.softmax(1) if self.softmax else logits
        return F.mse_loss(out, one_hot(target, out))


class OneVsRestBCE(nn.Module):
    """Binary cross-entropy of each class against the rest (independent sigmoids, one-hot targets)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, one_hot(target, logits))
