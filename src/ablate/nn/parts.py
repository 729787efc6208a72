"""Small factories so that families receive parts, never names (timm's ``get_norm_layer`` idea).

Input layout convention, shared by the data sources and every family (channel-first, like torch):
    (F,)       a flat feature vector
    (C, L)     a signal / sequence with C channels (features per step) and L steps
    (C, H, W)  an image
"""

from __future__ import annotations

from typing import Callable, Literal

import torch
from torch import nn

from ablate.families import NORMS  # the names live where the config check can read them without torch

Where = Literal["features", "channels", "tokens"]
INIT_SCHEMES = ("default", "kaiming", "xavier", "orthogonal")


class _Transposed(nn.Module):
    """Apply a channel norm to (N, L, F) tokens by viewing them as (N, F, L)."""

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


def _batch(num_features: int, where: Where, spatial_dims: int, groups: int, eps: float) -> nn.Module:
    bn = nn.BatchNorm2d if spatial_dims == 2 and where == "channels" else nn.BatchNorm1d
    layer = bn(num_features, eps=eps)
    return _Transposed(layer) if where == "tokens" else layer


def _layer(num_features: int, where: Where, spatial_dims: int, groups: int, eps: float) -> nn.Module:
    # on feature maps: over all of (C, ...) per sample, i.e. GroupNorm with one group, the usual
    # LayerNorm for conv nets
    return nn.GroupNorm(1, num_features, eps=eps) if where == "channels" else nn.LayerNorm(num_features, eps=eps)


def _group(num_features: int, where: Where, spatial_dims: int, groups: int, eps: float) -> nn.Module:
    # the largest divisor of num_features not above the requested group count
    g = max(d for d in range(1, min(groups, num_features) + 1) if num_features % d == 0)
    layer = nn.GroupNorm(g, num_features, eps=eps)
    return _Transposed(layer) if where == "tokens" else layer


# name -> builder(num_features, where, spatial_dims, groups, eps); the names are ablate.families.NORMS
NORM_LAYERS: dict[str, Callable[..., nn.Module]] = {
    "none": lambda *args: nn.Identity(),
    "batch": _batch,
    "layer": _layer,
    "group": _group,
}
assert tuple(NORM_LAYERS) == NORMS


class Norm:
    """Build a normalisation layer for ``num_features`` at one of three places in a network.

    ``where``: ``features`` for (N, F) activations, ``channels`` for (N, C, ...) feature maps,
    ``tokens`` for (N, L, F) sequences.
    """

    def __init__(self, name: str = "none", groups: int = 8, eps: float = 1e-5):
        if name not in NORM_LAYERS:
            raise ValueError(f"norm.name={name!r} is not a norm; valid: {', '.join(NORM_LAYERS)}")
        self.name, self.groups, self.eps = name, groups, eps

    def __call__(self, num_features: int, where: Where = "features", spatial_dims: int = 1) -> nn.Module:
        return NORM_LAYERS[self.name](num_features, where, spatial_dims, self.groups, self.eps)

    def __repr__(self) -> str:
        return f"Norm({self.name!r})"


# torch.nn.init's names for the gain of each activation; anything else is treated as linear.
_GAIN_NAMES = {nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid",
               nn.SELU: "selu", nn.GELU: "relu", nn.SiLU: "relu", nn.ELU: "relu"}


def gain_name(activation: Callable[[], nn.Module]) -> str:
    return _GAIN_NAMES.get(type(activation()), "linear")


# scheme -> initialiser(weight, nonlinearity); "default" keeps PyTorch's own
INIT_WEIGHTS: dict[str, Callable[[torch.Tensor, str], None] | None] = {
    "default": None,
    # He et al. 2015: std = gain / sqrt(fan_in), the gain of the layer's own activation
    "kaiming": lambda w, nl: nn.init.kaiming_normal_(w, nonlinearity=nl),
    "xavier": lambda w, nl: nn.init.xavier_normal_(w, gain=nn.init.calculate_gain(nl)),
    "orthogonal": lambda w, nl: nn.init.orthogonal_(w, gain=nn.init.calculate_gain(nl)),
}
assert tuple(INIT_WEIGHTS) == INIT_SCHEMES


class Init:
    """Weight initialisation of every Linear/Conv layer, scaled to the activation where the scheme is.

    ``default`` keeps PyTorch's own init (Kaiming-uniform with a=sqrt(5), i.e. std ≈ 1/sqrt(3·fan_in),
    too small for deep ReLU stacks, which is exactly why init must be a recorded factor).
    Recurrent and attention weights keep their own init; biases are zeroed by the other schemes.
    """

    def __init__(self, scheme: str = "default"):
        if scheme not in INIT_WEIGHTS:
            raise ValueError(f"init.scheme={scheme!r} is not an init; valid: {', '.join(INIT_WEIGHTS)}")
        self.scheme = scheme

    def __call__(self, model: nn.Module, activation: Callable[[], nn.Module]) -> nn.Module:
        init = INIT_WEIGHTS[self.scheme]
        if init is None:
            return model
        nonlinearity = gain_name(activation)
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                init(module.weight, nonlinearity)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        return model

    def __repr__(self) -> str:
        return f"Init({self.scheme!r})"


def as_signal(x: torch.Tensor) -> torch.Tensor:
    """(N, F) vectors become 1-channel signals (N, 1, F); (N, C, L) and (N, C, H, W) pass through."""
    return x.unsqueeze(1) if x.dim() == 2 else x


def signal_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1, *input_shape) if len(input_shape) == 1 else tuple(input_shape)


def as_sequence(x: torch.Tensor) -> torch.Tensor:
    """Read any input as (N, L, F) steps: a vector is L steps of 1 value, a (C, L) signal L steps of C
    values, an image H rows of C·W values."""
    if x.dim() == 2:
        return x.unsqueeze(-1)
    if x.dim() == 3:
        return x.transpose(1, 2)
    n, c, h, w = x.shape
    return x.permute(0, 2, 1, 3).reshape(n, h, c * w)


def sequence_shape(input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(L, F) of :func:`as_sequence` for one sample of ``input_shape``."""
    if len(input_shape) == 1:
        return input_shape[0], 1
    if len(input_shape) == 2:
        return input_shape[1], input_shape[0]
    c, h, w = input_shape
    return h, c * w
