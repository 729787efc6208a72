"""K seeds of one trial as one model: the members' parameters and buffers stacked along a leading
member dimension and run with ``torch.func.vmap`` (PyTorch's model-ensembling recipe:
``stack_module_state`` + ``functional_call``).

:class:`Stacked` keeps a copy of the family's module tree whose every parameter and buffer is the
stack of the K members' (``(K, *shape)``), under the same names, so optimizers, checkpoints and probes
see ordinary named parameters. Every elementwise optimizer (SGD, momentum, Adam, AdamW, RMSprop)
then updates K independent runs at once, as long as the members' losses are *summed* (each
member's gradient is then its own). Each member keeps its own BatchNorm running statistics (stacked
buffers, updated in place through vmap) and draws its own dropout masks (``randomness="different"``).
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


class Stacked(nn.Module):
    """``members`` copies of one family trained as one module.

    ``forward(x)`` takes one batch per member, ``(K, N, ...)``, and returns ``(K, N, C, ...)``;
    ``forward(x, shared=True)`` gives every member the same ``(N, ...)`` batch (evaluation).
    """

    def __init__(self, models: Sequence[nn.Module]):
        super().__init__()
        if len(models) < 1:
            raise ValueError("Stacked needs at least one member model")
        params, buffers = stack_module_state(list(models))
        aliases = _aliases(models[0])           # a tied tensor's other names get the same stack
        # functional_call unties tied tensors on every call by walking the whole module tree (~0.1 ms of a
        # 9-member batch-2 MLP step of ~3 ms); only a family whose tensors have two names needs it
        self.tied = any(len(names) > 1 for names in aliases.values())
        self.members = len(models)
        self.net = copy.deepcopy(models[0])     # the module tree; its tensors are replaced by the stacks
        for name, value in (*params.items(), *buffers.items()):
            stack = nn.Parameter(value.detach().clone()) if name in params else value.clone()
            for alias in aliases.get(name, [name]):
                _set(self.net, alias, stack)
        self.family = type(models[0])           # its attributes (takes_targets, ...) stay readable
        self.takes_targets = bool(getattr(self.family, "takes_targets", False))

    def _call(self, params: dict, buffers: dict, x: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        args = (x,) if targets is None else (x, targets)
        return functional_call(self.net, (params, buffers), args, tie_weights=self.tied)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None, shared: bool = False) -> torch.Tensor:
        per_member = None if shared else 0
        in_dims = (0, 0, per_member, None if targets is None else per_member)
        return vmap(self._call, in_dims=in_dims, randomness="different")(
            dict(self.net.named_parameters()), dict(self.net.named_buffers()), x, targets)

    def member(self, index: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """Member ``index`` as a plain function of one ``(N, ...)`` batch (its own parameters, no
        vmap): for probes that hook the family's modules, which see ordinary tensors this way."""
        params = {k: v[index] for k, v in self.net.named_parameters()}
        buffers = {k: v[index] for k, v in self.net.named_buffers()}
        return lambda x: functional_call(self.net, (params, buffers), (x,), tie_weights=self.tied)


def _aliases(module: nn.Module) -> dict[str, list[str]]:
    """Every name of each parameter or buffer of ``module``, under its first name (the one
    ``named_parameters`` keeps): more than one where weights are tied."""
    names: dict[int, list[str]] = {}
    for name, tensor in (*module.named_parameters(remove_duplicate=False),
                         *module.named_buffers(remove_duplicate=False)):
        names.setdefault(id(tensor), []).append(name)
    return {group[0]: group for group in names.values()}


def _set(module: nn.Module, dotted: str, value: torch.Tensor) -> None:
    """Replace the parameter or buffer ``dotted`` (nn.Module keeps a buffer's persistence on assignment)."""
    *path, leaf = dotted.split(".")
    setattr(module.get_submodule(".".join(path)) if path else module, leaf, value)
