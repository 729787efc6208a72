from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ablate.families import FAMILIES
from ablate.nn import Norm
from ablate.nn.parts import as_signal, signal_shape

# pool name (ablate.families.POOLS but none) -> its (1-D, 2-D) layer
POOLS = {"max": (nn.MaxPool1d, nn.MaxPool2d), "avg": (nn.AvgPool1d, nn.AvgPool2d)}


class CNN(nn.Module):
    """``depth`` blocks of conv → norm → activation → pool, then a linear head on the flattened maps.

    1-D convolutions for vectors and (C, L) signals, 2-D for images. Pooling (factor 2) is applied
    while the map is still at least 2 wide, so deep stacks on short signals stay valid.
    """

    accepts = FAMILIES["CNN"]       # what it takes (read by the config check without torch)
    supported_norms = accepts.norms
    vectorizable = True    # K seeds train as one stacked model (ablate.vectorize)

    def __init__(self, input_shape, num_classes: int, activation: Callable[[], nn.Module], norm: Norm,
                 depth: int = 3, width: int = 32, kernel_size: int = 5, pool: str = "max",
                 dropout: float = 0.0):
        super().__init__()
        self.accepts.check(pool=pool)
        shape = signal_shape(tuple(input_shape))
        dims = 2 if len(shape) == 3 else 1
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        blocks, channels, size = [], shape[0], list(shape[1:])
        for _ in range(depth):
            block = [conv(channels, width, kernel_size, padding=kernel_size // 2), norm(width, "channels", dims),
                     activation()]
            if pool != "none" and min(size) >= 2:
                block.append(POOLS[pool][dims - 1](2))
                size = [s // 2 for s in size]
            blocks.append(nn.Sequential(*block))
            channels = width
        self.body = nn.Sequential(*blocks)
        features = channels * int(torch.tensor(size).prod())
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(features, num_classes))

    def forward(self, x):
        return self.head(self.body(as_signal(x)))
