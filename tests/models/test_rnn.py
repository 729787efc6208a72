"""The RNN family: every activation × supported norm trains a step; the three cells; it reads
vectors and images as sequences; bidirectional stacks and the readouts read the right steps; the
encoder-decoder decodes (teacher forcing in training, greedy in eval); the options train through
ablate.run.build and a real Trainer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ablate.models import RNN
from ablate.nn import Norm
from tests.models import (COPY, LAYOUTS, MNIST1D, build, check_decoding, check_forward_backward, check_reads, combos,
                          fit_tiny)


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
    check_reads("rnn", layout)


def test_bidirectional_last_reads_each_direction_where_it_ends():
    """Forward: the last step; backward: step 0 (what it has after reading the whole sequence), i.e.
    the two final hidden states; not out[:, -1], where the backward direction has read one step."""
    torch.manual_seed(0)
    model, _ = build("rnn", bidirectional=True, width=16)
    x = torch.randn(4, *MNIST1D)
    seen = {}
    model.head.register_forward_hook(lambda m, args, out: seen.update(read=args[0]))
    model(x)
    _, (h, _) = model.rnn(x.transpose(1, 2))
    assert torch.allclose(seen["read"], torch.cat([h[-2], h[-1]], dim=-1))
    assert model.head[0].in_features == 32
    assert model(x).shape == (4, 10)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_readouts(bidirectional):
    torch.manual_seed(0)
    hidden = 16 * (2 if bidirectional else 1)
    x = torch.randn(4, *MNIST1D)
    mean, _ = build("rnn", readout="mean", width=16, bidirectional=bidirectional)
    assert mean.head[0].in_features == hidden
    everything, _ = build("rnn", readout="all", width=16, bidirectional=bidirectional)
    assert everything.head[0].in_features == 40 * hidden          # a head over every step's output
    for model in (mean, everything):
        seen = {}
        model.head.register_forward_hook(lambda m, args, out: seen.update(read=args[0]))
        logits = model(x)
        out, _ = model.rnn(x.transpose(1, 2))
        expected = out.mean(1) if model is mean else out.flatten(1)
        assert torch.allclose(seen["read"], expected)
        logits.sum().backward()
        assert model.rnn.weight_ih_l0.grad.abs().sum() > 0


def test_bad_options():
    with pytest.raises(ValueError, match="model.readout='first' is invalid; valid values: last, mean, all"):
        RNN(MNIST1D, 10, nn.ReLU, Norm("none"), readout="first")
    with pytest.raises(ValueError, match="valid values: encoder, encoder_decoder"):
        RNN(MNIST1D, 10, nn.ReLU, Norm("none"), kind="decoder")
    with pytest.raises(ValueError, match="invalid with model.kind=encoder_decoder: the decoder reads the encoder's final state"):
        RNN(MNIST1D, 10, nn.ReLU, Norm("none"), kind="encoder_decoder", readout="all")


@pytest.mark.parametrize("cell,bidirectional,depth", [("lstm", False, 1), ("lstm", True, 2), ("gru", True, 1),
                                                      ("rnn", False, 2)])
def test_encoder_decoder(cell, bidirectional, depth):
    model, _ = build("rnn", "relu", "layer", input_shape=COPY, num_classes=8, kind="encoder_decoder", cell=cell,
                     bidirectional=bidirectional, depth=depth, width=16)
    assert isinstance(model.decoder, type(model.rnn)) and model.decoder.hidden_size == 16 * (1 + bidirectional)
    assert not RNN.takes_targets and not build("rnn")[0].takes_targets      # only the seq2seq mode takes them
    check_decoding(model)


def test_encoder_decoder_on_class_labels():
    check_forward_backward("rnn", "tanh", "layer", kind="encoder_decoder")


@pytest.mark.parametrize("overrides", [["model.bidirectional=true"], ["model.readout=mean"],
                                       ["model.readout=all", "model.bidirectional=true"]])
def test_options_train_through_run_build(compose_cfg, overrides):
    fit_tiny(compose_cfg, ["model=rnn", "data=recall", "data.source.length=10", "data.source.num_samples=256",
                           "norm=layer", *overrides])


def test_encoder_decoder_trains_through_run_build(compose_cfg):
    metrics = fit_tiny(compose_cfg, ["model=rnn", "model.kind=encoder_decoder", "model.bidirectional=true",
                                     "data=copy", "data.source.num_samples=256"])
    assert 0 <= metrics["test/acc"] <= 1


@pytest.mark.slow
def test_encoder_decoder_learns_the_copy_task(compose_cfg):
    """Above chance (1/8 per token) in a few seconds; it needs more epochs than the Transformer."""
    metrics = fit_tiny(compose_cfg, ["model=rnn", "model.kind=encoder_decoder", "optimizer.lr=0.003", "data=copy",
                                     "data.source.num_samples=2000"], epochs=8)
    assert metrics["test/acc"] > 0.25
