from __future__ import annotations

from typing import Callable

from torch import nn

from ablate.families import SUPPORTED_NORMS
from ablate.nn import Norm
from ablate.nn.parts import as_sequence, sequence_shape

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RNN(nn.Module):
    """A ``depth``-layer recurrent stack (``cell``: rnn | lstm | gru) read at its last step, then a
    readout MLP (Linear → norm → activation → Linear).

    The cells keep their own non-linearities (tanh and gates); ``activation`` and ``norm`` act in the
    readout. Batch norm is not offered: statistics over a batch of final states are not what anyone
    means by a normalised recurrent net, and layer norm is the standard there.
    """

    supported_norms = SUPPORTED_NORMS["RNN"]

    def __init__(self, input_shape, num_classes: int, activation: Callable[[], nn.Module], norm: Norm,
                 cell: str = "lstm", depth: int = 1, width: int = 64, dropout: float = 0.0):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"model.cell={cell!r}; valid: {', '.join(CELLS)}")
        _, features = sequence_shape(tuple(input_shape))
        self.rnn = CELLS[cell](features, width, num_layers=depth, batch_first=True,
                               dropout=dropout if depth > 1 else 0.0)
        self.head = nn.Sequential(nn.Linear(width, width), norm(width, "features"), activation(),
                                  nn.Dropout(dropout), nn.Linear(width, num_classes))

    def forward(self, x):
        out, _ = self.rnn(as_sequence(x))
        return self.head(out[:, -1])
