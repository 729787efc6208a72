from __future__ import annotations

import math
from typing import Callable

from torch import nn

from ablate.families import FAMILIES
from ablate.nn import Norm


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units: Linear → norm → activation → dropout, then a head."""

    accepts = FAMILIES["MLP"]       # what it takes (read by the config check without torch)
    supported_norms = accepts.norms
    vectorizable = True    # K seeds train as one stacked model (ablate.vectorize)

    def __init__(self, input_shape, num_classes: int, activation: Callable[[], nn.Module], norm: Norm,
                 depth: int = 3, width: int = 256, dropout: float = 0.0):
        super().__init__()
        in_features = math.prod(input_shape)
        layers = []
        for i in range(depth):
            layers += [nn.Linear(in_features if i == 0 else width, width), norm(width, "features"),
                       activation(), nn.Dropout(dropout)]
        self.body = nn.Sequential(nn.Flatten(), *layers)
        self.head = nn.Linear(width if depth else in_features, num_classes)

    def forward(self, x):
        return self.head(self.body(x))
