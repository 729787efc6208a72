"""``ablate.metrics``: loss and accuracy with one value per member of a vectorized run, on hand-made
tensors."""

from __future__ import annotations

import math

import pytest
import torch

from ablate.metrics import MemberAccuracy, MemberMean


def test_member_mean_is_the_batch_weighted_mean_of_each_member():
    """One value per member (torchmetrics squeezes a one-member result to a scalar, hence reshape)."""
    mean = MemberMean(members=2)
    mean.update(torch.tensor([1.0, 10.0]), weight=3)
    mean.update(torch.tensor([2.0, 20.0]), weight=1)
    assert mean.compute().reshape(-1).tolist() == pytest.approx([(3 * 1 + 2) / 4, (3 * 10 + 20) / 4])
    assert mean.compute().dtype == torch.float64


def test_member_mean_keeps_a_nan_member_nan_and_the_others_finite():
    mean = MemberMean(members=3)
    mean.update(torch.tensor([1.0, math.nan, 3.0]), weight=2)
    mean.update(torch.tensor([3.0, 1.0, 3.0]), weight=2)
    values = mean.compute().tolist()
    assert values[0] == pytest.approx(2.0) and math.isnan(values[1]) and values[2] == pytest.approx(3.0)


def test_member_mean_reset_starts_from_nothing():
    mean = MemberMean()
    mean.update(torch.tensor([5.0]), weight=4)
    mean.reset()
    mean.update(torch.tensor([1.0]), weight=1)
    assert mean.compute().reshape(-1).tolist() == [1.0]


def test_member_accuracy_counts_each_members_hits():
    accuracy = MemberAccuracy(members=2, member_dim=True)
    scores = torch.tensor([[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]],       # member 0 says 0, 1, 0
                           [[0.1, 0.9], [0.1, 0.9], [0.1, 0.9]]])      # member 1 says 1, 1, 1
    target = torch.tensor([[0, 1, 1], [0, 1, 1]])
    accuracy.update(scores, target)
    assert accuracy.compute().reshape(-1).tolist() == pytest.approx([2 / 3, 2 / 3])
    accuracy.update(scores[:, :1], torch.tensor([[0], [1]]))            # one more sample each: 0 right, 1 right
    assert accuracy.compute().reshape(-1).tolist() == pytest.approx([3 / 4, 3 / 4])


def test_member_accuracy_of_one_member_and_per_token_on_sequences():
    plain = MemberAccuracy()
    plain.update(torch.tensor([[0.2, 0.8], [0.7, 0.3]]), torch.tensor([1, 1]))
    assert plain.compute().reshape(-1).tolist() == [0.5]
    tokens = MemberAccuracy()
    scores = torch.zeros(2, 3, 4)                                      # (N, C, L): class 2 at every position
    scores[:, 2] = 1.0
    tokens.update(scores, torch.tensor([[2, 2, 2, 2], [2, 0, 2, 1]]))
    assert tokens.compute().reshape(-1).tolist() == pytest.approx([6 / 8])


def test_whole_sequence_accuracy_counts_a_sample_only_when_every_position_is_right():
    scores = torch.zeros(2, 2, 3, 4)                                   # (K, N, C, L): class 2 everywhere
    scores[:, :, 2] = 1.0
    target = torch.tensor([[[2, 2, 2, 2], [2, 0, 2, 2]],
                           [[1, 2, 2, 2], [0, 2, 2, 1]]])
    whole = MemberAccuracy(members=2, member_dim=True, whole_sequence=True)
    whole.update(scores, target)
    assert whole.compute().reshape(-1).tolist() == pytest.approx([1 / 2, 0.0])
    per_token = MemberAccuracy(members=2, member_dim=True)
    per_token.update(scores, target)
    assert per_token.compute().reshape(-1).tolist() == pytest.approx([7 / 8, 5 / 8])


def test_member_accuracy_reset_starts_from_nothing():
    accuracy = MemberAccuracy()
    accuracy.update(torch.tensor([[1.0, 0.0]]), torch.tensor([1]))
    accuracy.reset()
    accuracy.update(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    assert accuracy.compute().reshape(-1).tolist() == [1.0]
