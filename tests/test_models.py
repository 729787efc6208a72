"""Every family x activation x supported norm builds from the shipped configs and trains one step;
ResNet skips, 2-D inputs and the init schemes do what they say."""

from __future__ import annotations

import functools
import math
import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from ablate.models import CNN, MLP, RNN, ResNet, Transformer
from ablate.nn import INIT_SCHEMES, NORMS, Init, Norm
from ablate.validate import config_errors
from tests.support import compose

FAMILIES = {"mlp": MLP, "cnn": CNN, "resnet": ResNet, "rnn": RNN, "transformer": Transformer}
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "silu", "leaky_relu", "elu", "identity")
ACTIVATION_TYPES = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU,
                    "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "identity": nn.Identity}
MNIST1D = (1, 40)
DIGITS = (1, 8, 8)


# Composing costs ~0.2 s, so each group choice is composed once and the nodes are combined.
@functools.lru_cache(maxsize=None)
def _group(group: str, choice: str):
    return compose([f"{group}={choice}"])[group]


def build(family: str, activation: str = "relu", norm: str = "none", input_shape=MNIST1D, **model_overrides):
    act = instantiate(_group("activation", activation))
    model_cfg = _group("model", family)
    model = instantiate(model_cfg, input_shape=input_shape, num_classes=10, activation=act,
                        norm=instantiate(_group("norm", norm)), **model_overrides)
    return model, act


def test_config_groups_match_the_code():
    """The shipped groups offer exactly the families, activations, norms and inits the code knows."""
    from importlib.resources import files

    conf = files("ablate.conf")
    names = lambda group: sorted(p.name[:-5] for p in conf.joinpath(group).iterdir() if p.name.endswith(".yaml"))
    assert names("model") == sorted(FAMILIES)
    assert names("activation") == sorted(ACTIVATIONS)
    assert names("norm") == sorted(NORMS)
    assert names("init") == sorted(INIT_SCHEMES)
    for family, cls in FAMILIES.items():
        assert _group("model", family)._target_ == f"ablate.models.{cls.__name__}"
        assert set(cls.supported_norms) <= set(NORMS)


COMBOS = [(family, activation, norm) for family, cls in FAMILIES.items() for activation in ACTIVATIONS
          for norm in cls.supported_norms]


@pytest.mark.parametrize("family,activation,norm", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_forward_backward(family, activation, norm):
    torch.manual_seed(0)
    model, act = build(family, activation, norm)
    assert isinstance(act(), ACTIVATION_TYPES[activation])
    # the configured activation is the one in the network (RNN: in its readout; cells keep their own)
    assert any(isinstance(m, ACTIVATION_TYPES[activation]) for m in model.modules())
    expected_norm = {"none": None, "batch": (nn.BatchNorm1d,), "layer": (nn.LayerNorm, nn.GroupNorm),
                     "group": (nn.GroupNorm,)}[norm]
    if expected_norm:
        assert any(isinstance(m, expected_norm) for m in model.modules()), f"no {norm} norm in {family}"
    else:
        assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm))
                       for m in model.modules())

    model.train()
    x = torch.randn(4, *MNIST1D)
    y = torch.tensor([0, 3, 7, 9])
    logits = model(x)
    assert logits.shape == (4, 10)
    assert torch.isfinite(logits).all()
    nn.functional.cross_entropy(logits, y).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    # something upstream of the head learns too (the body is connected)
    body_grads = [p.grad.abs().sum() for n, p in model.named_parameters() if not n.startswith("head")]
    assert body_grads and sum(body_grads) > 0


@pytest.mark.parametrize("family,norm", [(f, n) for f, c in FAMILIES.items() for n in NORMS
                                         if n not in c.supported_norms])
def test_unsupported_norm_is_a_config_error(family, norm):
    errors = config_errors(compose([f"model={family}", f"norm={norm}"]))
    assert len(errors) == 1 and errors[0].startswith(f"norm={norm} is not supported by model={family}")
    assert ", ".join(FAMILIES[family].supported_norms) in errors[0]


def test_rnn_supports_no_batch_or_group_norm():
    assert RNN.supported_norms == ("none", "layer")
    for cls in (MLP, CNN, ResNet, Transformer):
        assert cls.supported_norms == NORMS


class _NoNormsFamily(nn.Module):
    """A user's own family (``model._target_`` outside ablate): its norms are read off the class."""

    supported_norms = ("none",)


def test_custom_family_norms_are_read_from_its_class():
    cfg = compose(["norm=layer", f"model._target_={__name__}._NoNormsFamily"])
    assert config_errors(cfg) == ["norm=layer is not supported by model=_nonormsfamily; valid norms for it: none"]
    cfg = compose(["norm=layer", "model._target_=ablate.models.NoSuchFamily"])
    assert any("model._target_='ablate.models.NoSuchFamily' cannot be imported" in e for e in config_errors(cfg))


def test_the_config_check_does_not_import_torch():
    """A parallel sweep's launching process only checks configs: it must not pay torch's import."""
    code = ("import sys\n"
            "from hydra import compose, initialize_config_module\n"
            "import ablate\n"
            "from ablate.validate import config_errors\n"
            "with initialize_config_module('ablate.conf', version_base='1.3'):\n"
            "    cfg = compose('config', overrides=['model=rnn', 'norm=batch', 'run_dir=.'])\n"
            "print(config_errors(cfg))\n"
            "assert 'torch' not in sys.modules, 'the config check imported torch'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "norm=batch is not supported by model=rnn" in out.stdout


def test_resnet_residual_switch_keeps_parameters_changes_output():
    torch.manual_seed(0)
    with_skips, _ = build("resnet", "relu", "batch", residual=True)
    without, _ = build("resnet", "relu", "batch", residual=False)
    count = lambda m: sum(p.numel() for p in m.parameters())
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


def test_resnet_default_parameter_count():
    """stem conv (1->32, k3, no bias) + 4 blocks x 2 convs (32->32, k3, no bias) + head (32->10)."""
    model, _ = build("resnet")
    assert sum(p.numel() for p in model.parameters()) == 1 * 32 * 3 + 4 * 2 * 32 * 32 * 3 + 32 * 10 + 10


def test_mlp_default_parameter_count():
    model, _ = build("mlp")
    assert sum(p.numel() for p in model.parameters()) == (40 * 256 + 256) + 2 * (256 * 256 + 256) + 256 * 10 + 10


@pytest.mark.parametrize("family", ["cnn", "resnet"])
@pytest.mark.parametrize("norm", ["none", "batch", "layer", "group"])
def test_conv_families_use_2d_convs_on_images(family, norm):
    torch.manual_seed(0)
    model, _ = build(family, "relu", norm, input_shape=DIGITS)
    assert any(isinstance(m, nn.Conv2d) for m in model.modules())
    assert not any(isinstance(m, nn.Conv1d) for m in model.modules())
    if norm == "batch":
        assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.rand(4, *DIGITS)
    logits = model(x)
    assert logits.shape == (4, 10)
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("family", ["mlp", "rnn", "transformer"])
def test_other_families_read_images(family):
    model, _ = build(family, input_shape=DIGITS)
    assert model(torch.rand(4, *DIGITS)).shape == (4, 10)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_vector_inputs(family):
    """(F,) feature vectors (data=synthetic) work for every family."""
    model, _ = build(family, input_shape=(20,))
    assert model(torch.randn(4, 20)).shape == (4, 10)


def test_cnn_1d_on_signals():
    model, _ = build("cnn")
    assert any(isinstance(m, nn.Conv1d) for m in model.modules())
    # 40 -> 20 -> 10 -> 5 after three poolings of the 64 channels of conf/model/cnn.yaml
    assert model.head[-1].in_features == 64 * 5


def test_transformer_variants():
    torch.manual_seed(0)
    x = torch.randn(4, *MNIST1D)
    for overrides in ({"pre_ln": False}, {"positional": "learned"}, {"positional": "none"}):
        model, _ = build("transformer", "gelu", "layer", **overrides)
        assert model(x).shape == (4, 10)
    with pytest.raises(ValueError, match="divisible"):
        Transformer(MNIST1D, 10, nn.ReLU, Norm("layer"), width=30, heads=4)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_rnn_cells(cell):
    model, _ = build("rnn", cell=cell)
    assert isinstance(model.rnn, {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell])
    assert model(torch.randn(4, *MNIST1D)).shape == (4, 10)


# --- initialisation ------------------------------------------------------------------------------

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
