from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ablate.families import SUPPORTED_NORMS
from ablate.nn import Norm
from ablate.nn.parts import as_sequence, sequence_shape


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """Vaswani et al. (2017) fixed positional encoding, (length, dim)."""
    pos = torch.arange(length).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


class Block(nn.Module):
    """One encoder block: multi-head self-attention and an MLP, each with a residual connection.
    ``pre_ln`` puts the norm before each sub-layer (GPT-2 style), else after the residual sum
    (the original post-LN Transformer)."""

    def __init__(self, width: int, heads: int, mlp_ratio: int, activation, norm: Norm, dropout: float,
                 pre_ln: bool):
        super().__init__()
        self.ln_1 = norm(width, "tokens")
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ln_2 = norm(width, "tokens")
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), activation(),
                                 nn.Linear(mlp_ratio * width, width), nn.Dropout(dropout))
        self.pre_ln = pre_ln

    def _attend(self, x):
        return self.attn(x, x, x, need_weights=False)[0]

    def forward(self, x):
        if self.pre_ln:
            x = x + self._attend(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self._attend(x))
        return self.ln_2(x + self.mlp(x))


class Transformer(nn.Module):
    """Encoder-only Transformer classifier: linear embedding of each step + positional encoding,
    a learned [CLS] token, ``depth`` blocks, a final norm (pre-LN only) and a linear head on [CLS]."""

    supported_norms = SUPPORTED_NORMS["Transformer"]

    def __init__(self, input_shape, num_classes: int, activation: Callable[[], nn.Module], norm: Norm,
                 depth: int = 2, width: int = 64, heads: int = 4, mlp_ratio: int = 2, pre_ln: bool = True,
                 positional: str = "sinusoidal", dropout: float = 0.0):
        super().__init__()
        if width % heads:
            raise ValueError(f"model.width={width} must be divisible by model.heads={heads}")
        if positional not in ("sinusoidal", "learned", "none"):
            raise ValueError(f"model.positional={positional!r}; valid: sinusoidal, learned, none")
        length, features = sequence_shape(tuple(input_shape))
        self.embed = nn.Linear(features, width)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        if positional == "learned":
            self.pos = nn.Parameter(0.02 * torch.randn(1, length + 1, width))
        else:
            pe = sinusoidal_positions(length + 1, width) if positional == "sinusoidal" else torch.zeros(length + 1, width)
            self.register_buffer("pos", pe.unsqueeze(0), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[Block(width, heads, mlp_ratio, activation, norm, dropout, pre_ln)
                                      for _ in range(depth)])
        self.ln_f = norm(width, "tokens") if pre_ln else nn.Identity()
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        tokens = self.embed(as_sequence(x))                      # (N, L, width)
        tokens = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1)
        h = self.blocks(self.drop(tokens + self.pos))
        return self.head(self.ln_f(h)[:, 0])
