"""A small residual MLP for tables: ablate passes ``input_shape`` ((30,) here) and ``num_classes``,
and the other arguments because the signature names them (see ablate's docs/models.md)."""

import math

from torch import nn


class ResidualMLP(nn.Module):
    vectorizable = True    # ablate may train several seeds as one stacked model (torch.func.vmap)

    def __init__(self, input_shape, num_classes, activation=nn.ReLU, norm=None,
                 depth=2, width=64, residual=True, dropout=0.0):
        super().__init__()
        norm = norm or (lambda features, where: nn.Identity())
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), activation())
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), norm(width, "features"), activation(), nn.Dropout(dropout))
            for _ in range(depth))
        self.residual = residual
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):                      # (batch, 30) -> logits (batch, num_classes)
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(h) if self.residual else block(h)
        return self.head(h)
