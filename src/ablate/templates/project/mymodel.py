"""My model: a small residual MLP, written to ablate's model contract.

ablate always passes ``input_shape`` (one sample's shape) and ``num_classes``. Every other argument
is passed only because the signature names it: ``activation`` and ``norm`` are ablate's swappable
parts (``activation=tanh``, ``norm=layer`` on the command line), and ``depth``, ``width``,
``residual`` and ``dropout`` come from conf/model/mynet.yaml (or ``model.depth=8``).
"""

import math

from torch import nn


class Block(nn.Module):
    """norm -> activation -> Linear -> dropout ("pre-activation"), added to its input when ``residual``."""

    def __init__(self, width, activation, norm, dropout, residual):
        super().__init__()
        self.layer = nn.Sequential(norm(width, "features"), activation(), nn.Linear(width, width), nn.Dropout(dropout))
        self.residual = residual

    def forward(self, h):
        return h + self.layer(h) if self.residual else self.layer(h)


class ResidualMLP(nn.Module):
    # Several seeds of one cell may train as one stacked model (torch.func.vmap): fine for plain
    # Linear, norm and dropout layers like these. Remove this line if your model does something vmap cannot.
    vectorizable = True

    def __init__(self, input_shape, num_classes, activation=nn.ReLU, norm=None,
                 depth=4, width=64, residual=True, dropout=0.0):
        super().__init__()
        norm = norm or (lambda features, where: nn.Identity())   # ablate passes its own (norm=none: Identity)
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width))
        self.blocks = nn.Sequential(*[Block(width, activation, norm, dropout, residual) for _ in range(depth)])
        self.head = nn.Sequential(activation(), nn.Linear(width, num_classes))

    def forward(self, x):            # x: (batch, *input_shape) -> logits (batch, num_classes)
        return self.head(self.blocks(self.stem(x)))
