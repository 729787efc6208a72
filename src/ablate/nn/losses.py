"""Classification losses beyond torch's cross-entropy, all taking (logits, integer labels)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class OneHotMSE(nn.Module):
    """Mean squared error between the softmax output (or the raw logits) and one-hot targets: the
    textbook "regression loss on a classification task"."""

    def __init__(self, softmax: bool = True):
        super().__init__()
        self.softmax = softmax

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out = logits.softmax(-1) if self.softmax else logits
        return F.mse_loss(out, F.one_hot(target, logits.shape[-1]).to(out.dtype))


class OneVsRestBCE(nn.Module):
    """Binary cross-entropy of each class against the rest (independent sigmoids, one-hot targets)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, F.one_hot(target, logits.shape[-1]).to(logits.dtype))
