from __future__ import annotations

import math
from typing import Callable

from torch import nn

from ablate.families import FAMILIES
from ablate.models.cnn import POOLS
from ablate.nn import Norm
from ablate.nn.parts import as_signal, signal_shape


class VGG(nn.Module):
    """AlexNet/VGG-style stack (Simonyan & Zisserman 2014): ``depth`` blocks of two convolutions
    (conv → norm → activation, twice) and a pool, the channels doubling from ``width`` at each block,
    then a dense head: Flatten → Linear(``hidden``) → activation → Dropout → Linear(classes).

    1-D convolutions for vectors and (C, L) signals, 2-D for images, as in :class:`~ablate.models.CNN`;
    pooling (factor 2) is applied while the map is still at least 2 wide. Unlike the CNN family,
    whose blocks keep one width and whose head is a single linear layer, the features widen as the map
    shrinks and most parameters sit in the dense head, where the dropout acts (0.5 in both papers).
    """

    accepts = FAMILIES["VGG"]       # what it takes (read by the config check without torch)
    supported_norms = accepts.norms
    vectorizable = True    # K seeds train as one stacked model (ablate.vectorize): conv, norm, pool, dense

    def __init__(self, input_shape, num_classes: int, activation: Callable[[], nn.Module], norm: Norm,
                 depth: int = 3, width: int = 16, kernel_size: int = 3, hidden: int = 128, pool: str = "max",
                 dropout: float = 0.5):
        super().__init__()
        self.accepts.check(pool=pool)
        shape = signal_shape(tuple(input_shape))
        dims = 2 if len(shape) == 3 else 1
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        blocks, channels, size = [], shape[0], list(shape[1:])
        for i in range(depth):
            out = width * 2 ** i
            block = []
            for c_in in (channels, out):
                block += [conv(c_in, out, kernel_size, padding=kernel_size // 2), norm(out, "channels", dims),
                          activation()]
            if pool != "none" and min(size) >= 2:
                block.append(POOLS[pool][dims - 1](2))
                size = [s // 2 for s in size]
            blocks.append(nn.Sequential(*block))
            channels = out
        self.body = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * math.prod(size), hidden), activation(),
                                  nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.head(self.body(as_signal(x)))
