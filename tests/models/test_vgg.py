"""The VGG family: every activation × norm trains a step; two convs per block, channels doubling,
pools while the map is wide enough, a dense head with dropout; 1-D on signals, 2-D on images; it
trains through ablate.run.build and a real Trainer."""

from __future__ import annotations

import pytest
from torch import nn

from ablate.models import VGG
from ablate.nn import Norm
from tests.models import DIGITS, build, check_2d_on_images, check_forward_backward, check_reads, combos, count, fit_tiny


@pytest.mark.parametrize("activation,norm", combos(VGG))
def test_forward_backward(activation, norm):
    check_forward_backward("vgg", activation, norm)


def test_blocks_of_two_convs_with_doubling_channels():
    model, _ = build("vgg", "relu", "batch", depth=3, width=8)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32)]
    for block in model.body:
        kinds = [type(m) for m in block]
        assert kinds == [nn.Conv1d, nn.BatchNorm1d, nn.ReLU] * 2 + [nn.MaxPool1d]
    # MNIST-1D: 40 -> 20 -> 10 -> 5 steps of 32 channels; the head: Flatten, Linear, act, Dropout, Linear
    assert [type(m) for m in model.head] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert model.head[1].in_features == 32 * 5 and model.head[1].out_features == 128
    assert model.head[3].p == 0.5


def test_default_parameter_count():
    """conf/model/vgg.yaml: widths 16, 32, 64 (kernel 3), head 64·5 -> 128 -> 10."""
    model, _ = build("vgg")
    convs = (1 * 16 + 16 * 16 + 16 * 32 + 32 * 32 + 32 * 64 + 64 * 64) * 3 + 2 * (16 + 32 + 64)
    assert count(model) == convs + (64 * 5 * 128 + 128) + (128 * 10 + 10)


def test_pools_only_while_the_map_is_wide_enough():
    model, _ = build("vgg", depth=4, input_shape=DIGITS)        # 8x8 -> 4 -> 2 -> 1, then no pool
    assert [isinstance(block[-1], nn.MaxPool2d) for block in model.body] == [True, True, True, False]
    assert model.head[1].in_features == 128 * 1 * 1
    nopool, _ = build("vgg", pool="none", depth=2)
    assert not any(isinstance(m, (nn.MaxPool1d, nn.AvgPool1d)) for m in nopool.modules())
    assert nopool.head[1].in_features == 32 * 40
    avg, _ = build("vgg", pool="avg")
    assert any(isinstance(m, nn.AvgPool1d) for m in avg.modules())
    with pytest.raises(ValueError, match="model.pool='strided' is invalid; valid values: max, avg, none"):
        VGG(DIGITS, 10, nn.ReLU, Norm("none"), pool="strided")


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "group"])
def test_2d_on_images(norm):
    check_2d_on_images("vgg", norm)


def test_vector_inputs():
    """(F,) feature vectors (data=synthetic) are read as 1-channel signals."""
    check_reads("vgg", "vector")


@pytest.mark.parametrize("data", ["mnist1d", "digits"])
def test_trains_through_run_build(compose_cfg, data):
    sized = ["data.source.num_samples=256"] if data == "mnist1d" else ["data.train_size=256"]
    metrics = fit_tiny(compose_cfg, ["model=vgg", f"data={data}", "norm=batch", *sized])
    assert 0 <= metrics["test/acc"] <= 1
