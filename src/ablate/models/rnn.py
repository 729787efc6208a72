from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ablate.families import FAMILIES
from ablate.models.decoding import as_output, greedy, output_steps, teacher_inputs
from ablate.nn import Norm
from ablate.nn.parts import as_sequence, sequence_shape

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}     # the layer of each of ablate.families.CELLS


class RNN(nn.Module):
    """A ``depth``-layer recurrent stack (``cell``: rnn | lstm | gru), optionally ``bidirectional``,
    then a readout MLP (Linear → norm → activation → Linear).

    ``kind=encoder`` (a classifier): the head reads the ``readout`` of the stack's outputs: ``last``
    (the final step; bidirectional: the forward direction's final step and the backward direction's,
    which ends at step 0), ``mean`` (over steps) or ``all`` (every step's output, flattened: L × hidden
    features).

    ``kind=encoder_decoder`` (Sutskever et al. 2014): the stack encodes the input; its final states
    (both directions side by side when bidirectional) start a decoder stack of the same cell, which
    reads the previous target token - the targets shifted right behind a start token in training
    (teacher forcing), its own greedy predictions in eval - and the head maps each decoder step to
    logits, ``(N, C, L_out)`` (see :mod:`ablate.models.decoding`).

    The cells keep their own non-linearities (tanh and gates); ``activation`` and ``norm`` act in the
    readout. Batch norm is not offered: statistics over a batch of final states are not what anyone
    means by a normalised recurrent net, and layer norm is the standard there.
    """

    accepts = FAMILIES["RNN"]       # what it takes (read by the config check without torch)
    supported_norms = accepts.norms
    vectorizable = False
    not_vectorizable_because = "torch.func.vmap has no batching rule for the fused nn.RNN/LSTM/GRU kernels"
    takes_targets = False          # True for kind=encoder_decoder (set per model)

    def __init__(self, input_shape, num_classes: int, activation: Callable[[], nn.Module], norm: Norm,
                 cell: str = "lstm", depth: int = 1, width: int = 64, dropout: float = 0.0,
                 bidirectional: bool = False, readout: str = "last", kind: str = "encoder"):
        super().__init__()
        self.accepts.check(cell=cell, readout=readout, kind=kind)
        length, features = sequence_shape(tuple(input_shape))
        self.kind, self.readout, self.width, self.start = kind, readout, width, num_classes
        self.directions = 2 if bidirectional else 1
        layers = dict(num_layers=depth, batch_first=True, dropout=dropout if depth > 1 else 0.0)
        self.rnn = CELLS[cell](features, width, bidirectional=bidirectional, **layers)
        hidden = self.directions * width
        if kind == "encoder_decoder":
            self.takes_targets = True
            self.tokens = nn.Embedding(num_classes + 1, width)      # the classes and the start token
            self.decoder = CELLS[cell](width, hidden, **layers)
            features_in = hidden
        else:
            features_in = hidden * length if readout == "all" else hidden
        self.head = nn.Sequential(nn.Linear(features_in, width), norm(width, "features"), activation(),
                                  nn.Dropout(dropout), nn.Linear(width, num_classes))

    def _read(self, out: torch.Tensor) -> torch.Tensor:
        if self.readout == "mean":
            return out.mean(1)
        if self.readout == "all":
            return out.flatten(1)
        if self.directions == 1:
            return out[:, -1]
        return torch.cat([out[:, -1, : self.width], out[:, 0, self.width :]], dim=-1)

    def _bridge(self, state):
        """Encoder final states (layers · directions, N, width) → decoder states (layers, N, directions · width)."""
        if isinstance(state, tuple):                                 # LSTM: (h, c)
            return tuple(self._bridge(s) for s in state)
        layers, n = state.shape[0] // self.directions, state.shape[1]
        return state.view(layers, self.directions, n, self.width).permute(0, 2, 1, 3).reshape(layers, n, -1)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None, steps: int | None = None):
        out, state = self.rnn(as_sequence(x))
        if self.kind == "encoder":
            return self.head(self._read(out))
        num_steps, sequence = output_steps(targets, steps)
        state = self._bridge(state)
        if self.training and targets is not None:                   # teacher forcing
            decoded, _ = self.decoder(self.tokens(teacher_inputs(targets, self.start)), state)
            return as_output(self.head(decoded).transpose(1, 2), sequence)

        def next_logits(tokens: torch.Tensor) -> torch.Tensor:      # greedy: one step, the state carried
            nonlocal state
            decoded, state = self.decoder(self.tokens(tokens[:, -1:]), state)
            return self.head(decoded[:, -1])

        return as_output(greedy(next_logits, len(x), self.start, num_steps, x.device), sequence)
