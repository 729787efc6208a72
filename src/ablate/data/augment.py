"""Data augmentation for training batches (config group ``augment``), applied where the batch lies
(CPU or GPU), after the batch is gathered: no per-sample Python, no worker processes.

Each transform is called as ``transform(x, generator)`` on a batch of any leading dims - ``(B, C, L)``
signals or ``(B, C, H, W)`` images, or ``(K, B, ...)`` for K stacked models - and draws its randomness
per sample over all the leading dims, from ``generator`` alone: the same generator state gives the
same batch. Draws are made on the generator's device and moved to the batch's; pass a generator on
the batch's device to keep them there. ``augment=none`` builds no transform at all.

A batch's shape does not say where its samples begin (``(K, B, C, L)`` stacked signals look like
``(B, C, H, W)`` images), so each transform states the sample layout it takes: ``sample_dims`` (2 for
``(C, L)`` signals, 3 for ``(C, H, W)`` images, None for any); whoever applies it checks that against
the data's ``input_shape`` once, before training.
"""

from __future__ import annotations

import torch

from ablate.inputs import AUGMENTS


def _randint(low: int, high: int, shape: torch.Size, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=generator, device=generator.device).to(like.device)


def _rand(shape: torch.Size, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=generator.device).to(like.device)


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``values`` (one per sample: x's leading dims) viewed to broadcast against ``x``."""
    return values.reshape(*values.shape, *([1] * (x.dim() - values.dim())))


def translate(x: torch.Tensor, shift: torch.Tensor, dim: int) -> torch.Tensor:
    """Move each sample's content ``shift`` steps along ``dim`` (positive: towards higher indices),
    filling the vacated steps with zeros. ``shift``: integers, one per sample (x's leading dims)."""
    size = x.shape[dim]
    steps = [1] * x.dim()
    steps[dim] = size
    source = torch.arange(size, device=x.device).view(steps) - _per_sample(shift, x)
    inside = (source >= 0) & (source < size)
    moved = x.gather(dim, source.clamp(0, size - 1).expand_as(x))
    return moved.masked_fill(~inside, 0)


class Shift:
    """Translate each signal ``(..., C, L)`` in time by a uniform whole number of steps in
    ``[-max_shift, max_shift]``, zero-filled (the same shift for all its channels)."""

    accepts = AUGMENTS["Shift"]     # what it takes (read by the config check without torch)
    sample_dims = accepts.sample_dims

    def __init__(self, max_shift: int = 4):
        if int(max_shift) != max_shift or max_shift < 0:
            raise ValueError(f"augment.max_shift={max_shift!r}; it must be an integer >= 0")
        self.max_shift = int(max_shift)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        shift = _randint(-self.max_shift, self.max_shift + 1, x.shape[:-2], generator, x)
        return translate(x, shift, dim=-1)

    def __repr__(self) -> str:
        return f"Shift(max_shift={self.max_shift})"


class Noise:
    """Add independent Gaussian noise of standard deviation ``std`` to every value."""

    accepts = AUGMENTS["Noise"]     # what it takes (read by the config check without torch)
    sample_dims = accepts.sample_dims

    def __init__(self, std: float = 0.1):
        if not std >= 0:
            raise ValueError(f"augment.std={std!r}; it must be a number >= 0")
        self.std = float(std)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=generator, device=generator.device)
        return x + self.std * noise.to(x)

    def __repr__(self) -> str:
        return f"Noise(std={self.std})"


class Crop:
    """Random crop of each image ``(..., C, H, W)`` as in the CIFAR ResNets: pad ``padding`` zeros on
    every side, cut an H×W window at a uniform offset; i.e. a zero-filled translation by up to
    ``padding`` pixels along each axis."""

    accepts = AUGMENTS["Crop"]     # what it takes (read by the config check without torch)
    sample_dims = accepts.sample_dims

    def __init__(self, padding: int = 2):
        if int(padding) != padding or padding < 0:
            raise ValueError(f"augment.padding={padding!r}; it must be an integer >= 0")
        self.padding = int(padding)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        lead = x.shape[:-3]
        down = _randint(-self.padding, self.padding + 1, lead, generator, x)
        right = _randint(-self.padding, self.padding + 1, lead, generator, x)
        return translate(translate(x, down, dim=-2), right, dim=-1)

    def __repr__(self) -> str:
        return f"Crop(padding={self.padding})"


class Flip:
    """Mirror each image ``(..., C, H, W)`` left to right with probability ``p``."""

    accepts = AUGMENTS["Flip"]     # what it takes (read by the config check without torch)
    sample_dims = accepts.sample_dims

    def __init__(self, p: float = 0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"augment.p={p!r}; it must be in [0, 1]")
        self.p = float(p)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        flip = _rand(x.shape[:-3], generator, x) < self.p
        return torch.where(_per_sample(flip, x), x.flip(-1), x)

    def __repr__(self) -> str:
        return f"Flip(p={self.p})"
