from __future__ import annotations

import functools
import math
from typing import Callable

import torch
from torch import nn

from ablate.families import FAMILIES
from ablate.models.decoding import as_output, greedy, output_steps, teacher_inputs
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


def causal_mask(length: int, device: torch.device) -> torch.Tensor:
    """True above the diagonal: position i may not attend to any j > i."""
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(1)


class Block(nn.Module):
    """One Transformer block: multi-head self-attention (``causal``: each position attends to itself
    and the earlier ones only), with ``cross`` a cross-attention to an encoder's output (the block of
    an encoder-decoder's decoder), then an MLP; each sub-layer with a residual connection.
    ``pre_ln`` puts the norm before each sub-layer (GPT-2 style), else after the residual sum (the
    original post-LN Transformer)."""

    def __init__(self, width: int, heads: int, mlp_ratio: int, activation, norm: Norm, dropout: float,
                 pre_ln: bool, causal: bool = False, cross: bool = False):
        super().__init__()
        self.ln_1 = norm(width, "tokens")
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        if cross:
            self.ln_cross = norm(width, "tokens")
            self.cross_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ln_2 = norm(width, "tokens")
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), activation(),
                                 nn.Linear(mlp_ratio * width, width), nn.Dropout(dropout))
        self.pre_ln, self.causal, self.cross = pre_ln, causal, cross

    def _attend(self, x):
        if not self.causal:
            return self.attn(x, x, x, need_weights=False)[0]
        return self.attn(x, x, x, attn_mask=causal_mask(x.shape[1], x.device), is_causal=True,
                         need_weights=False)[0]

    def forward(self, x, memory=None):
        sublayers = [(self.ln_1, self._attend)]
        if self.cross:
            sublayers.append((self.ln_cross, lambda h: self.cross_attn(h, memory, memory, need_weights=False)[0]))
        sublayers.append((self.ln_2, self.mlp))
        for ln, sublayer in sublayers:
            x = x + sublayer(ln(x)) if self.pre_ln else ln(x + sublayer(x))
        return x


class Transformer(nn.Module):
    """A Transformer over the input's steps: a linear embedding of each step + positional encoding,
    ``depth`` blocks, a final norm (pre-LN only) and a linear head. ``kind``:

    - ``encoder`` (default): a classifier; a learned [CLS] token first, bidirectional attention, the
      head on [CLS].
    - ``decoder`` (GPT-style, causal self-attention): one stack reads the input steps, then a start
      token and the output tokens so far; each output is read where its previous token stands. For
      class labels that is one step: the start token, the last position, the only one that has seen
      every input (GPT-1's extract token); no [CLS] first.
    - ``encoder_decoder`` (Vaswani et al. 2017): the encoder reads the input; the decoder's blocks
      (causal self-attention over the start token and the outputs so far, cross-attention to the
      encoder's output, MLP) produce the outputs.

    The decoding kinds take the targets (``takes_targets``): shifted right behind the start token in
    training (teacher forcing), their own greedy predictions in eval (:mod:`ablate.models.decoding`);
    they decode at most as many steps as the input has, and take only per-position norms (none,
    layer): batch and group statistics would carry the future into the past.
    """

    accepts = FAMILIES["Transformer"]       # what it takes (read by the config check without torch)
    supported_norms = accepts.norms
    vectorizable = False
    not_vectorizable_because = "vmap runs scaled_dot_product_attention through a per-sample fallback: 4 stacked seeds took 1.9x as long as 4 runs one by one here"
    takes_targets = False          # True for kind=decoder and encoder_decoder (set per model)

    def __init__(self, input_shape, num_classes: int, activation: Callable[[], nn.Module], norm: Norm,
                 depth: int = 2, width: int = 64, heads: int = 4, mlp_ratio: int = 2, pre_ln: bool = True,
                 positional: str = "sinusoidal", dropout: float = 0.0, kind: str = "encoder"):
        super().__init__()
        self.accepts.check(norm=norm.name, width=width, heads=heads, positional=positional, kind=kind)
        length, features = sequence_shape(tuple(input_shape))
        self.kind, self.length, self.start = kind, length, num_classes
        self.takes_targets = kind != "encoder"
        self.positional, self.width = positional, width
        block = functools.partial(Block, width, heads, mlp_ratio, activation, norm, dropout, pre_ln)
        self.embed = nn.Linear(features, width)
        if kind == "encoder":
            self.cls = nn.Parameter(torch.zeros(1, 1, width))
        # encoder: [CLS] + the input; decoder: the input, then up to `length` output steps
        self._positions("pos", {"encoder": length + 1, "decoder": 2 * length, "encoder_decoder": length}[kind])
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[block(causal=kind == "decoder") for _ in range(depth)])
        if kind != "encoder":
            self.tokens = nn.Embedding(num_classes + 1, width)      # the classes and the start token
        if kind == "encoder_decoder":
            self.ln_enc = norm(width, "tokens") if pre_ln else nn.Identity()
            self._positions("dec_pos", length)
            self.dec_blocks = nn.ModuleList([block(causal=True, cross=True) for _ in range(depth)])
        self.ln_f = norm(width, "tokens") if pre_ln else nn.Identity()
        self.head = nn.Linear(width, num_classes)

    def _positions(self, name: str, length: int) -> None:
        if self.positional == "learned":
            setattr(self, name, nn.Parameter(0.02 * torch.randn(1, length, self.width)))
            return
        pe = sinusoidal_positions(length, self.width) if self.positional == "sinusoidal" \
            else torch.zeros(length, self.width)
        self.register_buffer(name, pe.unsqueeze(0), persistent=False)

    def forward(self, x, targets: torch.Tensor | None = None, steps: int | None = None):
        tokens = self.embed(as_sequence(x))                      # (N, L, width)
        if self.kind == "encoder":
            tokens = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1)
            h = self.blocks(self.drop(tokens + self.pos))
            return self.head(self.ln_f(h)[:, 0])
        num_steps, sequence = output_steps(targets, steps)
        if num_steps > self.length:
            raise ValueError(f"model.kind={self.kind} decodes at most as many steps as the input has "
                             f"({self.length}); asked for {num_steps}")
        if self.kind == "decoder":
            decode = functools.partial(self._decode_causal, tokens)
        else:
            decode = functools.partial(self._decode_cross, self.ln_enc(self.blocks(self.drop(tokens + self.pos))))
        if self.training and targets is not None:                # teacher forcing
            return as_output(decode(teacher_inputs(targets, self.start)).transpose(1, 2), sequence)
        logits = greedy(lambda prefix: decode(prefix)[:, -1], len(x), self.start, num_steps, x.device)
        return as_output(logits, sequence)

    def _decode_causal(self, inputs: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Logits (N, t, C) of the next token at each of the ``prefix``'s t positions, read behind the
        input steps ``inputs`` (N, L, width) in one causal stack."""
        seq = torch.cat([inputs, self.tokens(prefix)], dim=1)
        h = self.blocks(self.drop(seq + self.pos[:, : seq.shape[1]]))
        return self.head(self.ln_f(h[:, inputs.shape[1]:]))

    def _decode_cross(self, memory: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Logits (N, t, C) of the next token at each of the ``prefix``'s t positions, the decoder
        attending to the encoder's output ``memory`` (N, L, width)."""
        h = self.drop(self.tokens(prefix) + self.dec_pos[:, : prefix.shape[1]])
        for block in self.dec_blocks:
            h = block(h, memory)
        return self.head(self.ln_f(h))
