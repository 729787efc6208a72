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


def builtin_family(target: str) -> str | None:
    """``"RNN"`` for ``ablate.models.RNN`` or ``ablate.models.rnn.RNN``; None for any other target."""
    module, _, name = str(target).rpartition(".")
    if name in SUPPORTED_NORMS and module in ("ablate.models", f"ablate.models.{name.lower()}"):
        return name
    return None
