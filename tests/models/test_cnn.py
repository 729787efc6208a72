"""The CNN family: every activation × norm trains a step; 1-D convolutions on signals, 2-D on images."""

from __future__ import annotations

import pytest
from torch import nn

from ablate.models import CNN
from tests.models import build, check_2d_on_images, check_forward_backward, check_reads, combos


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
    check_2d_on_images("cnn", norm)


def test_vector_inputs():
    """(F,) feature vectors (data=synthetic) are read as 1-channel signals."""
    check_reads("cnn", "vector")
