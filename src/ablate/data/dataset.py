"""The one form every source's data takes: in-memory tensors, one row an example."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dataset:
    x: torch.Tensor          # float32, (N, *input_shape)
    y: torch.Tensor          # int64 class labels, (N,), or one per output step, (N, L_out)
    num_classes: int
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])
