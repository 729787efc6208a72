"""The RNN family: every activation × supported norm trains a step; the three cells; it reads
vectors and images as sequences."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ablate.models import RNN
from tests.models import LAYOUTS, MNIST1D, build, check_forward_backward, combos


@pytest.mark.parametrize("activation,norm", combos(RNN))
def test_forward_backward(activation, norm):
    check_forward_backward("rnn", activation, norm)


def test_supports_no_batch_or_group_norm():
    assert RNN.supported_norms == ("none", "layer")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_cells(cell):
    model, _ = build("rnn", cell=cell)
    assert isinstance(model.rnn, {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell])
    assert model(torch.randn(4, *MNIST1D)).shape == (4, 10)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_reads_every_layout(layout):
    shape = LAYOUTS[layout]
    model, _ = build("rnn", input_shape=shape)
    assert model(torch.rand(4, *shape)).shape == (4, 10)
