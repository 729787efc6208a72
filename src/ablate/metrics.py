"""Loss and accuracy per member: torchmetrics ``Metric`` s whose state has one entry per member of a
vectorized run (``members`` stacked models trained as one, see :mod:`ablate.vectorize`); a plain run
is one member. States are summed over ranks under DDP, so ``compute()`` is the global value.

Why not ``MeanMetric`` / ``MulticlassAccuracy``: they reduce over everything they are given, so K
members would need K objects and K updates a step; these keep a member axis, and they skip the
per-call input checks (``validate_args``) that cost ~3x this update on a CPU. They implement only
the documented ``Metric`` interface (``add_state``, ``update``, ``compute``).
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric


class MemberMean(Metric):
    """Weighted mean of one value per member and batch: ``update(values (K,), weight)``;
    ``compute()`` is ``(K,)``. A NaN value makes that member's mean NaN (it is not dropped): a
    member whose loss went NaN shows as NaN."""

    full_state_update = False

    def __init__(self, members: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self.add_state("total", default=torch.zeros(members, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("weight", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, values: torch.Tensor, weight: int | float = 1) -> None:
        self.total.add_(values.detach().to(self.total.dtype), alpha=weight)   # in place: no Module.__setattr__
        self.weight.add_(weight)

    def compute(self) -> torch.Tensor:
        return self.total / self.weight


class MemberAccuracy(Metric):
    """Share of predictions whose highest-scoring class is the target, per member.

    ``update(scores, target)`` with ``scores`` ``(K, N, C, ...)`` and ``target`` ``(K, N, ...)``
    (``member_dim=True``), or ``(N, C, ...)`` / ``(N, ...)`` for one member; every position of a
    sequence output counts (per-token accuracy). With ``whole_sequence=True`` a sample counts only
    when every position is right (targets ``(..., N, L)``)."""

    full_state_update = False

    def __init__(self, members: int = 1, member_dim: bool = False, whole_sequence: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.member_dim, self.whole_sequence = member_dim, whole_sequence
        self.add_state("hits", default=torch.zeros(members, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, target: torch.Tensor) -> None:
        lead = 1 if self.member_dim else 0                  # the class axis follows (member,) sample
        right = scores.detach().argmax(dim=lead + 1) == target
        if self.whole_sequence:
            right = right.flatten(lead + 1).all(dim=-1)
        if self.member_dim:
            right = right.flatten(1)
            self.hits.add_(right.sum(dim=1))
            self.count.add_(right.shape[1])
        else:
            self.hits.add_(right.sum())
            self.count.add_(right.numel())

    def compute(self) -> torch.Tensor:
        return self.hits.double() / self.count
