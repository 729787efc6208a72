"""The Transformer family: every activation × norm trains a step; its variants (post-LN, learned or
no positions); it reads vectors and images as sequences."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ablate.models import Transformer
from ablate.nn import Norm
from tests.models import LAYOUTS, MNIST1D, build, check_forward_backward, combos


@pytest.mark.parametrize("activation,norm", combos(Transformer))
def test_forward_backward(activation, norm):
    check_forward_backward("transformer", activation, norm)


def test_variants():
    torch.manual_seed(0)
    x = torch.randn(4, *MNIST1D)
    for overrides in ({"pre_ln": False}, {"positional": "learned"}, {"positional": "none"}):
        model, _ = build("transformer", "gelu", "layer", **overrides)
        assert model(x).shape == (4, 10)
    with pytest.raises(ValueError, match="divisible"):
        Transformer(MNIST1D, 10, nn.ReLU, Norm("layer"), width=30, heads=4)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_reads_every_layout(layout):
    shape = LAYOUTS[layout]
    model, _ = build("transformer", input_shape=shape)
    assert model(torch.rand(4, *shape)).shape == (4, 10)
