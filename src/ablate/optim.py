"""Per-member learning rates and weight decays for the stacked ``(K, ...)`` parameters of a
vectorized run (:mod:`ablate.vectorize`), on top of any elementwise torch optimizer.

No maintained optimizer library for torch 2.13 takes a learning rate per slice of a tensor (torchopt
and others take one per parameter group, and a stacked tensor is one parameter). But for SGD (with
momentum or Nesterov), Adam, AdamW and RMSprop the state (momentum buffers, moment estimates) does
not depend on the learning rate, and a step moves each weight by exactly ``lr`` times an update that
does not depend on it either. So :class:`MemberRates` lets the optimizer step at the largest member
rate and then scales each member's move by its own share of it: ``p = p_before + (lr_k / lr_max) ·
(p_after − p_before)``. Rates stay below the one stepped at, so rounding is never amplified.
Weight decay per member: the optimizer runs with ``weight_decay=0``; coupled decay (SGD, Adam,
RMSprop: ``grad += wd·p``) is added to each member's gradient before the step, decoupled decay
(AdamW: ``p −= lr·wd·p``) after it. Schedules (the group's ``lr`` over time) scale every member alike.
Both run as the optimizer's own public step hooks (``register_step_pre_hook`` / ``_post_hook``).
"""

from __future__ import annotations

from typing import Sequence

import torch

# the optimizers whose step is linear in the learning rate and whose state does not depend on it
ELEMENTWISE = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop)


def decoupled(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``weight_decay`` is decoupled (AdamW's ``p −= lr·wd·p``) rather than an L2 term."""
    return isinstance(optimizer, torch.optim.AdamW) or bool(optimizer.defaults.get("decoupled_weight_decay"))


class MemberRates:
    """Member ``k`` of ``optimizer``'s stacked parameters learns at ``rates[k]`` (and decays by
    ``decays[k]``); ``optimizer`` must have been built at ``lr=max(rates)`` and ``weight_decay=0``."""

    def __init__(self, optimizer: torch.optim.Optimizer, rates: Sequence[float],
                 decays: Sequence[float] | None = None):
        if not isinstance(optimizer, ELEMENTWISE):
            raise ValueError(f"per-member learning rates need an elementwise optimizer "
                             f"({', '.join(c.__name__ for c in ELEMENTWISE)}); got {type(optimizer).__name__}")
        top = max(rates)
        for group in optimizer.param_groups:
            if abs(group["lr"] - top) > 1e-12 * top or (decays is not None and group.get("weight_decay")):
                raise ValueError("build the optimizer at the largest member rate and weight_decay=0")
        self.optimizer = optimizer
        self.shares = torch.tensor([r / top for r in rates], dtype=torch.float64)
        self.decays = None if decays is None else torch.tensor(list(decays), dtype=torch.float64)
        self.decoupled = decoupled(optimizer)
        self._before: list[torch.Tensor] = []
        self._shaped: dict[tuple, torch.Tensor] = {}     # (values, dtype, device, dims) -> a per-member view
        optimizer.register_step_pre_hook(self._pre)
        optimizer.register_step_post_hook(self._post)

    def _per_member(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``values`` (K,) shaped to broadcast over ``like`` (K, ...), in its dtype and device; made
        once per kind of parameter, not at every step."""
        key = (id(values), like.dtype, like.device, like.dim())
        shaped = self._shaped.get(key)
        if shaped is None:
            shaped = values.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.dim() - 1)))
            self._shaped[key] = shaped
        return shaped

    def _params(self):
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                yield group, p

    @torch.no_grad()
    def _pre(self, optimizer, args, kwargs) -> None:
        self._before = [p.detach().clone() for _, p in self._params()]
        if self.decays is not None and not self.decoupled:
            for _, p in self._params():
                if p.grad is not None:
                    p.grad.add_(self._per_member(self.decays, p) * p)

    @torch.no_grad()
    def _post(self, optimizer, args, kwargs) -> None:
        for (group, p), before in zip(self._params(), self._before):
            share = self._per_member(self.shares, p)
            p.sub_(before).mul_(share).add_(before)          # before + share · (after − before)
            if self.decays is not None and self.decoupled:
                p.sub_(before * (share * group["lr"]) * self._per_member(self.decays, p))
        self._before = []
