from __future__ import annotations

from typing import Callable

from torch import nn

from ablate.families import FAMILIES
from ablate.nn import Norm
from ablate.nn.parts import as_signal, signal_shape


class BasicBlock(nn.Module):
    """He et al. (2015): conv → norm → act → conv → norm, (+ x), → act. Identity skips add no
    parameters, so ``residual=False`` gives the same network, same parameter count, minus the skips."""

    def __init__(self, width: int, dims: int, activation, norm: Norm, residual: bool, dropout: float):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        self.conv1 = conv(width, width, 3, padding=1, bias=False)
        self.norm1 = norm(width, "channels", dims)
        self.act1 = activation()
        self.drop = nn.Dropout(dropout)
        self.conv2 = conv(width, width, 3, padding=1, bias=False)
        self.norm2 = norm(width, "channels", dims)
        self.act2 = activation()
        self.residual = residual

    def forward(self, x):
        out = self.norm2(self.conv2(self.drop(self.act1(self.norm1(self.conv1(x))))))
        return self.act2(out + x if self.residual else out)


class ResNet(nn.Module):
    """A stem conv, ``depth`` basic blocks at constant ``width``, global average pooling, a linear head.

    ``depth`` counts blocks (2 convs each); ``residual`` switches the skip connections on or off.
    """

    accepts = FAMILIES["ResNet"]       # what it takes (read by the config check without torch)
    supported_norms = accepts.norms
    vectorizable = True    # K seeds train as one stacked model (ablate.vectorize)

    def __init__(self, input_shape, num_classes: int, activation: Callable[[], nn.Module], norm: Norm,
                 depth: int = 4, width: int = 32, residual: bool = True, stem_stride: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        shape = signal_shape(tuple(input_shape))
        dims = 2 if len(shape) == 3 else 1
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        self.stem = nn.Sequential(conv(shape[0], width, 3, stride=stem_stride, padding=1, bias=False),
                                  norm(width, "channels", dims), activation())
        self.blocks = nn.Sequential(*[BasicBlock(width, dims, activation, norm, residual, dropout)
                                      for _ in range(depth)])
        pool = nn.AdaptiveAvgPool2d(1) if dims == 2 else nn.AdaptiveAvgPool1d(1)
        self.head = nn.Sequential(pool, nn.Flatten(), nn.Linear(width, num_classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(as_signal(x))))
