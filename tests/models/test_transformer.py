"""The Transformer family: every activation × norm trains a step; its variants (post-LN, learned or
no positions); it reads vectors and images as sequences; kind=encoder keeps its names; the decoder
and encoder-decoder kinds decode (teacher forcing in training, greedy in eval), their causal masks
hide the future, and they train through ablate.run.build and a real Trainer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ablate.models import Transformer
from ablate.nn import Norm
from tests.models import (COPY, LAYOUTS, MNIST1D, build, check_decoding, check_forward_backward, check_reads,
                          combos, fit_tiny, seq_batch)


@pytest.mark.parametrize("activation,norm", combos(Transformer))
def test_forward_backward(activation, norm):
    check_forward_backward("transformer", activation, norm)


def test_variants():
    torch.manual_seed(0)
    x = torch.randn(4, *MNIST1D)
    for overrides in ({"pre_ln": False}, {"positional": "learned"}, {"positional": "none"}):
        model, _ = build("transformer", "gelu", "layer", **overrides)
        assert model(x).shape == (4, 10)
    with pytest.raises(ValueError, match=r"divisible by model.heads=4 \(e.g. model.heads=3\)"):
        Transformer(MNIST1D, 10, nn.ReLU, Norm("layer"), width=30, heads=4)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_reads_every_layout(layout):
    check_reads("transformer", layout)


def test_encoder_parameter_names_are_unchanged():
    """kind=encoder (the default) keeps its parameter names: earlier checkpoints still load."""
    model, _ = build("transformer", "gelu", "layer", depth=1, positional="learned")
    block = ["ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
             "attn.out_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight",
             "mlp.2.bias"]
    assert [n for n, _ in model.named_parameters()] == [
        "cls", "pos", "embed.weight", "embed.bias", *(f"blocks.0.{n}" for n in block),
        "ln_f.weight", "ln_f.bias", "head.weight", "head.bias"]
    assert not model.takes_targets and not Transformer.takes_targets


DECODING = [(kind, pre_ln, positional) for kind in ("decoder", "encoder_decoder") for pre_ln in (True, False)
            for positional in ("sinusoidal", "learned", "none")]


@pytest.mark.parametrize("kind,pre_ln,positional", DECODING)
def test_decoding_kinds(kind, pre_ln, positional):
    model, _ = build("transformer", "gelu", "layer", input_shape=COPY, num_classes=8, kind=kind, pre_ln=pre_ln,
                     positional=positional, width=32)
    check_decoding(model)


@pytest.mark.parametrize("kind", ["decoder", "encoder_decoder"])
@pytest.mark.parametrize("activation,norm", [("relu", "none"), ("gelu", "layer"), ("tanh", "layer")])
def test_decoding_kinds_on_class_labels(kind, activation, norm):
    check_forward_backward("transformer", activation, norm, kind=kind)


def _block_states(model, x, targets):
    """The causal stack's output at every position (the input steps, then the decoded ones)."""
    seen = {}
    handle = model.blocks.register_forward_hook(lambda m, args, out: seen.update(h=out))
    model(x, targets=targets)
    handle.remove()
    return seen["h"]


def _on_copy(kind: str):
    """A model of ``kind`` for data=copy in training mode, a batch, and the batch with another symbol
    at the given step."""
    torch.manual_seed(0)
    model, _ = build("transformer", "gelu", "layer", input_shape=COPY, num_classes=8, kind=kind)
    model.train()
    x, y = seq_batch()

    def changed_at(step: int) -> torch.Tensor:
        other = x.clone()
        other[:, :, step] = other[:, :, step].roll(1, dims=1)
        return other

    return model, x, y, changed_at


def test_decoder_mask_hides_the_future():
    """Changing input step 5 leaves positions 0-4 as they were and changes positions 5 on."""
    model, x, y, changed_at = _on_copy("decoder")
    before, after = _block_states(model, x, y), _block_states(model, changed_at(5), y)
    assert before.shape == (6, 16, 64)                               # 8 input steps, then 8 output steps
    assert torch.equal(before[:, :5], after[:, :5])
    assert not torch.allclose(before[:, 5:], after[:, 5:])
    assert (before[:, 5:] - after[:, 5:]).abs().amax(dim=(0, 2)).min() > 0   # every later position


def test_decoder_reads_the_last_position_for_classes():
    torch.manual_seed(0)
    model, _ = build("transformer", "gelu", "layer", kind="decoder")
    model.eval()
    x, labels = torch.randn(4, *MNIST1D), torch.tensor([0, 3, 7, 9])
    states = _block_states(model, x, labels)
    assert states.shape == (4, 41, 64)                             # 40 input steps and the start token
    assert not hasattr(model, "cls")
    assert torch.allclose(model(x, targets=labels), model.head(model.ln_f(states[:, -1])), atol=1e-6)
    first = x.clone()
    first[:, :, 0] += 1.0
    assert not torch.allclose(model(first, targets=labels), model(x, targets=labels))   # it has seen step 0


def test_encoder_decoder_encoder_is_bidirectional():
    """The encoder side sees every input step: changing the last one changes the first output."""
    model, x, y, changed_at = _on_copy("encoder_decoder")
    assert not torch.allclose(model(x, targets=y)[:, :, 0], model(changed_at(7), targets=y)[:, :, 0])
    names = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert names == {"embed", "blocks", "tokens", "ln_enc", "dec_blocks", "ln_f", "head"}
    assert all(hasattr(block, "cross_attn") and block.causal for block in model.dec_blocks)
    assert not any(block.causal or block.cross for block in model.blocks)


def test_decoding_kinds_reject_norms_that_mix_positions_and_bad_kinds():
    for kind in ("decoder", "encoder_decoder"):
        for norm in ("batch", "group"):
            with pytest.raises(ValueError, match=f"norm={norm} is not supported by model=transformer with model.kind={kind}"):
                Transformer(COPY, 8, nn.ReLU, Norm(norm), kind=kind)
    with pytest.raises(ValueError, match="valid values: encoder, decoder, encoder_decoder"):
        Transformer(COPY, 8, nn.ReLU, Norm("none"), kind="seq2seq")
    model = Transformer(COPY, 8, nn.ReLU, Norm("none"), kind="decoder")
    with pytest.raises(ValueError, match="at most as many steps as the input has"):
        model(seq_batch()[0], steps=9)


@pytest.mark.parametrize("overrides", [["model.kind=decoder", "data=mnist1d", "data.source.num_samples=256"],
                                       ["model.kind=decoder", "data=reverse", "data.source.num_samples=256"],
                                       ["model.kind=encoder_decoder", "data=copy", "data.source.num_samples=256",
                                        "model.pre_ln=false", "norm=layer"]])
def test_decoding_kinds_train_through_run_build(compose_cfg, overrides):
    fit_tiny(compose_cfg, ["model=transformer", "model.width=32", *overrides])


@pytest.mark.slow
def test_encoder_decoder_learns_the_copy_task(compose_cfg):
    """Far above chance (1/8 per token) in a few seconds: README's figures are at budget=quick."""
    metrics = fit_tiny(compose_cfg, ["model=transformer", "model.kind=encoder_decoder", "data=copy",
                                     "data.source.num_samples=2000"], epochs=3)
    assert metrics["test/acc"] > 0.5
