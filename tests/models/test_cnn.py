"""The CNN family: every activation × norm trains a step; 1-D convolutions on signals, 2-D on images."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ablate.models import CNN
from tests.models import DIGITS, build, check_forward_backward, combos


@pytest.mark.parametrize("activation,norm", combos(CNN))
def test_forward_backward(activation, norm):
    check_forward_backward("cnn", activation, norm)


def test_1d_on_signals():
    model, _ = build("cnn")
    assert any(isinstance(m, nn.Conv1d) for m in model.modules())
    # 40 -> 20 -> 10 -> 5 after three poolings of the 64 channels of conf/model/cnn.yaml
    assert model.head[-1].in_features == 64 * 5


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "group"])
def test_2d_on_images(norm):
    torch.manual_seed(0)
    model, _ = build("cnn", "relu", norm, input_shape=DIGITS)
    assert any(isinstance(m, nn.Conv2d) for m in model.modules())
    assert not any(isinstance(m, nn.Conv1d) for m in model.modules())
    if norm == "batch":
        assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.rand(4, *DIGITS)
    logits = model(x)
    assert logits.shape == (4, 10)
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_vector_inputs():
    """(F,) feature vectors (data=synthetic) are read as 1-channel signals."""
    model, _ = build("cnn", input_shape=(20,))
    assert model(torch.randn(4, 20)).shape == (4, 10)
