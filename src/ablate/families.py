"""What each built-in model family accepts, readable without importing torch: the config check
(:mod:`ablate.validate`) runs in the process that launches a sweep, and with a parallel launcher
(joblib, submitit) that process never trains, so importing torch there (~3 s) would only delay the
sweep. The families' ``supported_norms`` attributes are these same tuples."""

from __future__ import annotations

NORMS = ("none", "batch", "layer", "group")     # every norm ablate.nn.Norm builds

# family class name (ablate.models.<name>) -> the norms it takes
SUPPORTED_NORMS: dict[str, tuple[str, ...]] = {
    "MLP": NORMS,
    "CNN": NORMS,
    "VGG": NORMS,
    "ResNet": NORMS,
    "Transformer": NORMS,
    "RNN": ("none", "layer"),   # batch statistics over final states are not a normalised recurrent net
}

# what model.kind each family offers (encoder, the classifier, is every family's default): a decoder
# reads its own outputs back (teacher forcing in training, greedy in eval), see ablate.models.decoding
KINDS: dict[str, tuple[str, ...]] = {
    "Transformer": ("encoder", "decoder", "encoder_decoder"),
    "RNN": ("encoder", "encoder_decoder"),
}
READOUTS = ("last", "mean", "all")   # model.readout of the RNN family: which steps its head reads
# A causal decoder takes only norms computed per position: batch and group statistics are taken over
# the positions too, so in training each position would see the future through them.
CAUSAL_NORMS = ("none", "layer")


def supported_norms(family: str, kind: str = "encoder") -> tuple[str, ...]:
    """The norms built-in ``family`` takes as ``kind``."""
    norms = SUPPORTED_NORMS[family]
    return norms if kind == "encoder" else tuple(n for n in norms if n in CAUSAL_NORMS)


def builtin_family(target: str) -> str | None:
    """``"RNN"`` for ``ablate.models.RNN`` or ``ablate.models.rnn.RNN``; None for any other target."""
    module, _, name = str(target).rpartition(".")
    if name in SUPPORTED_NORMS and module in ("ablate.models", f"ablate.models.{name.lower()}"):
        return name
    return None
