"""The ResNet family: every activation × norm trains a step; the residual switch keeps the
parameters and changes the output; 2-D convolutions on images."""

from __future__ import annotations

import pytest
import torch

from ablate.models import ResNet
from tests.models import MNIST1D, build, check_2d_on_images, check_forward_backward, check_reads, combos, count


@pytest.mark.parametrize("activation,norm", combos(ResNet))
def test_forward_backward(activation, norm):
    check_forward_backward("resnet", activation, norm)


def test_residual_switch_keeps_parameters_changes_output():
    torch.manual_seed(0)
    with_skips, _ = build("resnet", "relu", "batch", residual=True)
    without, _ = build("resnet", "relu", "batch", residual=False)
    assert count(with_skips) == count(without)
    assert [n for n, _ in with_skips.named_parameters()] == [n for n, _ in without.named_parameters()]
    without.load_state_dict(with_skips.state_dict())
    with_skips.eval(), without.eval()
    x = torch.randn(4, *MNIST1D)
    a, b = with_skips(x), without(x)
    assert not torch.allclose(a, b, atol=1e-4)
    # same weights, skips switched back on: identical outputs
    for block in without.blocks:
        block.residual = True
    assert torch.allclose(with_skips(x), without(x))


def test_default_parameter_count():
    """stem conv (1->32, k3, no bias) + 4 blocks x 2 convs (32->32, k3, no bias) + head (32->10)."""
    model, _ = build("resnet")
    assert count(model) == 1 * 32 * 3 + 4 * 2 * 32 * 32 * 3 + 32 * 10 + 10


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "group"])
def test_2d_on_images(norm):
    check_2d_on_images("resnet", norm)


def test_vector_inputs():
    """(F,) feature vectors (data=synthetic) are read as 1-channel signals."""
    check_reads("resnet", "vector")
