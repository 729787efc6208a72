"""``ablate.models.decoding``: output length from the targets, teacher-forcing inputs, greedy decoding."""

from __future__ import annotations

import torch

from ablate.models.decoding import as_output, greedy, output_steps, teacher_inputs


def test_output_steps():
    assert output_steps(torch.zeros(4, 7, dtype=torch.long)) == (7, True)
    assert output_steps(torch.zeros(4, dtype=torch.long)) == (1, False)
    assert output_steps(None, steps=5) == (5, True)
    assert output_steps(None) == (1, False)


def test_teacher_inputs_shift_the_targets_right_behind_the_start_token():
    targets = torch.tensor([[3, 1, 2], [0, 0, 1]])
    assert teacher_inputs(targets, start=4).tolist() == [[4, 3, 1], [4, 0, 0]]
    assert teacher_inputs(torch.tensor([2, 0]), start=4).tolist() == [[4], [4]]


def test_greedy_feeds_back_its_own_argmax():
    seen = []

    def next_logits(tokens):                        # predicts (last token + 1) mod 5
        seen.append(tokens.clone())
        return torch.nn.functional.one_hot((tokens[:, -1] + 1) % 5, 5).float()

    logits = greedy(next_logits, batch=2, start=5, steps=3, device=torch.device("cpu"))
    assert logits.shape == (2, 5, 3)
    assert logits.argmax(1).tolist() == [[1, 2, 3], [1, 2, 3]]
    assert [t[0].tolist() for t in seen] == [[5], [5, 1], [5, 1, 2]]
    assert as_output(logits, True) is logits and torch.equal(as_output(logits, False), logits[:, :, 0])
