"""``ablate.nn.parts``: the init schemes do what they say (scaled to the activation), the norm
factory's names and group counts."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ablate.nn import INIT_SCHEMES, Init, Norm
from tests.models import build


def _linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def _mlp(scheme: str, activation: str = "relu", seed: int = 0):
    torch.manual_seed(seed)
    model, act = build("mlp", activation)
    Init(scheme)(model, act)
    return model


def test_kaiming_relu_std_is_sqrt_2_over_fan_in():
    for layer in _linears(_mlp("kaiming")):
        expected = math.sqrt(2 / layer.in_features)
        assert layer.weight.std().item() == pytest.approx(expected, rel=0.1)
        assert torch.count_nonzero(layer.bias) == 0


def test_kaiming_tanh_uses_the_tanh_gain():
    for layer in _linears(_mlp("kaiming", "tanh")):
        expected = (5 / 3) / math.sqrt(layer.in_features)
        assert layer.weight.std().item() == pytest.approx(expected, rel=0.1)


def test_default_init_is_pytorch_kaiming_uniform():
    for layer in _linears(_mlp("default")):
        assert layer.weight.std().item() == pytest.approx(1 / math.sqrt(3 * layer.in_features), rel=0.1)
        assert torch.count_nonzero(layer.bias) > 0  # default keeps PyTorch's biases


def test_xavier_relu_std():
    for layer in _linears(_mlp("xavier")):
        expected = math.sqrt(2) * math.sqrt(2 / (layer.in_features + layer.out_features))
        assert layer.weight.std().item() == pytest.approx(expected, rel=0.1)


def test_orthogonal_relu_rows_are_orthogonal_with_gain():
    layers = _linears(_mlp("orthogonal"))
    square = [m for m in layers if m.in_features == m.out_features]
    assert square
    for layer in square:
        w = layer.weight.detach()
        assert torch.allclose(w @ w.T, 2.0 * torch.eye(w.shape[0]), atol=1e-4)
        assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / layer.in_features), rel=0.1)


def test_init_schemes_on_a_non_square_layer():
    """First layer 40 -> 256 with ReLU: kaiming sqrt(2/40), xavier sqrt(2)*sqrt(2/296),
    orthogonal sqrt(2)/sqrt(256) (orthonormal columns), default 1/sqrt(120)."""
    stds = {s: _linears(_mlp(s))[0].weight.std().item() for s in INIT_SCHEMES}
    assert stds["kaiming"] == pytest.approx(math.sqrt(2 / 40), rel=0.1)
    assert stds["xavier"] == pytest.approx(math.sqrt(2) * math.sqrt(2 / 296), rel=0.1)
    assert stds["orthogonal"] == pytest.approx(math.sqrt(2) / 16, rel=0.1)
    assert stds["default"] == pytest.approx(1 / math.sqrt(120), rel=0.1)
    assert stds["kaiming"] > 2 * stds["default"]   # a factor sqrt(6): why init is a recorded factor


def test_init_reaches_conv_layers():
    torch.manual_seed(0)
    model, act = build("cnn")
    Init("kaiming")(model, act)
    conv = model.body[1][0]
    fan_in = conv.in_channels * conv.kernel_size[0]
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.1)


def test_init_from_composed_config(compose_cfg):
    """ablate.run.build applies init=<scheme> to the model it builds."""
    from ablate.run import build as build_trial

    cfg = compose_cfg(["init=kaiming", "budget=smoke", "data.source.num_samples=100"])
    _, module = build_trial(cfg)
    first = _linears(module.model)[0]
    assert first.weight.std().item() == pytest.approx(math.sqrt(2 / 40), rel=0.1)
    assert torch.count_nonzero(first.bias) == 0


def test_bad_scheme_and_norm_names():
    with pytest.raises(ValueError, match="valid: default, kaiming, xavier, orthogonal"):
        Init("he")
    with pytest.raises(ValueError, match="valid: none, batch, layer, group"):
        Norm("instance")


def test_group_norm_picks_a_divisor():
    layer = Norm("group", groups=8)(12, "channels")
    assert isinstance(layer, nn.GroupNorm) and layer.num_groups == 6
