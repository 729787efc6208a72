"""Helpers for the family tests (one module per file of ``ablate/models``): build a family from the
shipped configs, the forward/backward check every family passes, and a tiny real training run."""

from __future__ import annotations

import functools

import torch
from hydra.utils import instantiate
from torch import nn

from tests.support import compose

ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "silu", "leaky_relu", "elu", "identity")
ACTIVATION_TYPES = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU,
                    "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "identity": nn.Identity}
NORM_TYPES = {"none": None, "batch": (nn.BatchNorm1d, nn.BatchNorm2d), "layer": (nn.LayerNorm, nn.GroupNorm),
              "group": (nn.GroupNorm,)}
MNIST1D = (1, 40)
DIGITS = (1, 8, 8)
LAYOUTS = {"vector": (20,), "signal": MNIST1D, "image": DIGITS}


# Composing costs ~0.2 s, so each group choice is composed once and the nodes are combined.
@functools.lru_cache(maxsize=None)
def group(name: str, choice: str):
    return compose([f"{name}={choice}"])[name]


def build(family: str, activation: str = "relu", norm: str = "none", input_shape=MNIST1D, num_classes: int = 10,
          **model_overrides):
    """``(model, activation factory)`` from ``conf/model/<family>.yaml`` with the given parts."""
    act = instantiate(group("activation", activation))
    model = instantiate(group("model", family), input_shape=input_shape, num_classes=num_classes, activation=act,
                        norm=instantiate(group("norm", norm)), **model_overrides)
    return model, act


def combos(cls) -> list[tuple[str, str]]:
    """Every activation × every norm the family supports."""
    return [(activation, norm) for activation in ACTIVATIONS for norm in cls.supported_norms]


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_forward_backward(family: str, activation: str, norm: str, **model_overrides) -> None:
    """The configured activation and norm are in the network; logits are (N, C) and finite; every
    parameter gets a finite gradient, the body's too (it is connected to the head)."""
    torch.manual_seed(0)
    model, act = build(family, activation, norm, **model_overrides)
    assert isinstance(act(), ACTIVATION_TYPES[activation])
    # the configured activation is the one in the network (RNN: in its readout; cells keep their own)
    assert any(isinstance(m, ACTIVATION_TYPES[activation]) for m in model.modules())
    expected_norm = NORM_TYPES[norm]
    if expected_norm:
        assert any(isinstance(m, expected_norm) for m in model.modules()), f"no {norm} norm in {family}"
    else:
        assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm))
                       for m in model.modules())

    model.train()
    x = torch.randn(4, *MNIST1D)
    y = torch.tensor([0, 3, 7, 9])
    logits = model(x, targets=y) if getattr(model, "takes_targets", False) else model(x)
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


def check_2d_on_images(family: str, norm: str) -> None:
    """A conv family convolves images in 2-D (2-D batch norm too) and trains on them."""
    torch.manual_seed(0)
    model, _ = build(family, "relu", norm, input_shape=DIGITS)
    assert any(isinstance(m, nn.Conv2d) for m in model.modules())
    assert not any(isinstance(m, nn.Conv1d) for m in model.modules())
    if norm == "batch":
        assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    logits = model(torch.rand(4, *DIGITS))
    assert logits.shape == (4, 10)
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def check_reads(family: str, layout: str) -> None:
    """``family`` reads ``layout`` (LAYOUTS: vector, signal, image) and returns (N, C) logits."""
    shape = LAYOUTS[layout]
    model, _ = build(family, input_shape=shape)
    assert model(torch.rand(4, *shape)).shape == (4, 10)


def fit_tiny(compose_cfg, overrides, epochs: int = 1) -> dict[str, float]:
    """Train ``overrides`` for ``epochs`` through :func:`ablate.run.build` and a real Lightning Trainer,
    then test it; returns the trainer's metrics (``train/loss``, ``val/acc``, ``test/acc``, ...).
    Keep the data small in ``overrides`` (``data.source.num_samples=256``, ``data.train_size=256``)."""
    import lightning as L

    from ablate.run import build as build_trial

    cfg = compose_cfg(["budget=smoke", "data.batch_size=32", "steps_per_call=1", *overrides])
    L.seed_everything(0, verbose=False)
    datamodule, module = build_trial(cfg)
    trainer = instantiate(cfg.trainer, max_epochs=epochs, logger=False, enable_checkpointing=False,
                          default_root_dir=str(cfg.run_dir))
    trainer.fit(module, datamodule=datamodule)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    (tested,) = trainer.test(module, datamodule=datamodule, verbose=False)
    metrics.update({k: float(v) for k, v in tested.items()})
    for key in ("train/loss", "val/loss", "test/loss", "test/acc"):
        assert key in metrics and metrics[key] == metrics[key], f"{key} missing or NaN: {metrics}"
    return metrics


COPY = (8, 8)          # data=copy's input: 8 one-hot symbols × 8 steps


def seq_batch(n: int = 6, symbols: int = 8, length: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A copy-task batch: one-hot inputs (n, symbols, length), targets (n, length)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, symbols, (n, length), generator=g)
    return nn.functional.one_hot(y, symbols).transpose(1, 2).float(), y


def check_decoding(model: nn.Module) -> None:
    """What every decoding family (``takes_targets``) does on ``(N, L)`` targets: (N, C, L) logits in
    training and eval; eval never reads the targets' values; greedy decoding is teacher forcing on its
    own predictions; under teacher forcing, step j's output depends on the targets before j only; the
    same model on class labels gives (N, C); without targets, ``steps`` steps or one class."""
    assert model.takes_targets
    torch.manual_seed(0)
    x, y = seq_batch()
    model.train()
    forced = model(x, targets=y)
    assert forced.shape == (6, 8, 8) and torch.isfinite(forced).all()
    forced.sum().backward()
    assert all(p.grad is not None for p in model.parameters()), "a parameter is unused in teacher forcing"
    model.eval()
    with torch.no_grad():
        decoded = model(x, targets=y)
        assert decoded.shape == (6, 8, 8)
        assert torch.equal(decoded, model(x, targets=torch.zeros_like(y)))       # only the length is read
        assert torch.equal(decoded, model(x, steps=8))
        assert model(x, steps=3).shape == (6, 8, 3)
        assert model(x).shape == model(x, targets=y[:, 0]).shape == (6, 8)       # class labels: one step
        model.train()                                                             # (dropout is 0)
        assert torch.allclose(model(x, targets=decoded.argmax(1)), decoded, atol=1e-5)
        forced = model(x, targets=y)
        changed = y.clone()
        changed[:, 4] = (y[:, 4] + 1) % 8
        later = model(x, targets=changed)
    assert torch.equal(later[:, :, :5], forced[:, :, :5])                # steps 0..4 read targets 0..3
    assert not torch.allclose(later[:, :, 5:], forced[:, :, 5:])
