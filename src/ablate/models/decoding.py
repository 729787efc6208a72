"""What every decoding family does alike (``model.kind`` decoder / encoder_decoder): read the output
length off the targets, feed the targets shifted right behind a start token in training (teacher
forcing), and feed its own predictions back in eval (greedy decoding), so validation and test
accuracy are what the model does on its own.

Targets are class ids; the start token is id ``num_classes``, one past the classes. Targets ``(N, L)``
give ``(N, C, L)`` logits (one class per output step, channel-first like ``CrossEntropyLoss`` takes
them); class labels ``(N,)`` decode one step and give ``(N, C)``.
"""

from __future__ import annotations

from typing import Callable

import torch


def output_steps(targets: torch.Tensor | None, steps: int | None = None) -> tuple[int, bool]:
    """(how many steps to decode, whether the output is a sequence). In eval the targets' values are
    never read, only their length; without targets, ``steps`` steps (a sequence), else one class."""
    if targets is not None:
        return (targets.shape[1], True) if targets.dim() == 2 else (1, False)
    return (int(steps), True) if steps is not None else (1, False)


def teacher_inputs(targets: torch.Tensor, start: int) -> torch.Tensor:
    """The decoder's input under teacher forcing: the start token, then the targets but the last,
    ``(N, L)`` (class labels ``(N,)``: the start token alone, ``(N, 1)``)."""
    first = torch.full((len(targets), 1), start, dtype=torch.long, device=targets.device)
    return first if targets.dim() == 1 else torch.cat([first, targets[:, :-1]], dim=1)


def greedy(next_logits: Callable[[torch.Tensor], torch.Tensor], batch: int, start: int, steps: int,
           device: torch.device) -> torch.Tensor:
    """Decode ``steps`` steps, each fed the argmax of the last: ``next_logits(tokens)`` takes the tokens
    so far, ``(N, t)`` starting with the start token, and returns the next step's logits ``(N, C)``.
    Returns ``(N, C, steps)``."""
    tokens = torch.full((batch, 1), start, dtype=torch.long, device=device)
    logits = []
    for _ in range(steps):
        logits.append(next_logits(tokens))
        tokens = torch.cat([tokens, logits[-1].argmax(1, keepdim=True)], dim=1)
    return torch.stack(logits, dim=2)


def as_output(logits: torch.Tensor, sequence: bool) -> torch.Tensor:
    """``(N, C, L)`` logits as the family returns them: ``(N, C)`` when decoding one class."""
    return logits if sequence else logits[:, :, 0]
