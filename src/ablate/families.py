"""What each built-in model family accepts, readable without importing torch: the config check
(:mod:`ablate.validate`) runs in the process that launches a sweep, and with a parallel launcher
(joblib, submitit) that process never trains, so importing torch there (~3 s) would only delay the
sweep. The families (:mod:`ablate.models`) take their names from here (the cells, pools, positional
encodings, readouts, kinds and norms they build), carry their entry as ``accepts`` and check their
arguments with it, so the config check and the constructor say the same thing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from ablate.checks import (BOOLEAN, FRACTION, POSITIVE, Check, builtin, field_errors, is_int, merged, one_of,
                           unknown_fields)

NORMS = ("none", "batch", "layer", "group")     # every norm ablate.nn.Norm builds
# A causal decoder takes only norms computed per position: batch and group statistics are taken over
# the positions too, so in training each position would see the future through them.
CAUSAL_NORMS = ("none", "layer")
CELLS = ("rnn", "lstm", "gru")                  # ablate.models.rnn: the recurrent layer of each
POOLS = ("max", "avg", "none")                  # ablate.models.cnn: the pooling layer of each but none
POSITIONAL = ("sinusoidal", "learned", "none")  # ablate.models.transformer: the positional encodings
READOUTS = ("last", "mean", "all")              # model.readout of the RNN family: which steps its head reads
# what model.kind a family offers (encoder, the classifier, is every family's default): a decoder reads
# its own outputs back (teacher forcing in training, greedy in eval), see ablate.models.decoding
DECODING = ("decoder", "encoder_decoder")

Rule = Callable[[Mapping[str, Any]], "str | None"]     # across a family's fields: a message, or None


def divisible_heads(model: Mapping[str, Any]) -> str | None:
    width, heads = model.get("width"), model.get("heads")
    if is_int(width) and is_int(heads) and heads >= 1 and width % heads:
        return (f"model.width={width} must be divisible by model.heads={heads} "
                f"(e.g. model.heads={max(h for h in range(1, heads + 1) if width % h == 0)})")
    return None


def decoder_reads_last(model: Mapping[str, Any]) -> str | None:
    readout = model.get("readout") or "last"
    if model.get("kind") == "encoder_decoder" and readout != "last":
        return (f"model.readout={readout!r} is invalid with model.kind=encoder_decoder: the decoder reads the "
                "encoder's final state; valid values: last")
    return None


@dataclass(frozen=True)
class Family:
    """A family: its ``fields`` (``model.<key>``, its keyword arguments but ``kind``) and what each must
    be, the ``norms`` it takes (None: any), the ``kinds`` it offers (None: unknown, a user's family) and
    its ``rules`` across fields."""

    name: str
    fields: Mapping[str, Check]
    norms: tuple[str, ...] | None = NORMS
    kinds: tuple[str, ...] | None = ("encoder",)
    rules: tuple[Rule, ...] = ()

    def supported_norms(self, kind: str = "encoder") -> tuple[str, ...] | None:
        """The norms it takes as ``kind``: a decoding kind only the per-position ones."""
        if self.norms is None or kind == "encoder" or self.kinds is None:
            return self.norms
        return tuple(n for n in self.norms if n in CAUSAL_NORMS)

    def errors(self, model: Any, norm: str | None = None) -> list[str]:
        """Every problem of the ``model`` node (a config or a mapping of its fields) with ``norm``."""
        found = field_errors(model, self.fields, "model")
        if self.kinds is not None:        # a built-in family: its fields are all it takes
            found += unknown_fields(model, self.fields, "model", f"model={self.name.lower()}", also=("kind",))
        given = model.get("kind") or "encoder"
        kind = str(given)
        if self.kinds is not None and kind not in self.kinds:
            found.append(f"model.kind={given!r} is invalid for model={self.name.lower()}; "
                         f"valid values: {', '.join(self.kinds)}")
        found += [message for rule in self.rules if (message := rule(model)) is not None]
        supported = self.supported_norms(kind)
        if norm is not None and supported is not None and norm not in supported:
            why = "" if kind not in DECODING or self.kinds is None else (
                f" with model.kind={kind}: its statistics are taken over the positions, so the future "
                "would leak into the past")
            found.append(f"norm={norm} is not supported by model={self.name.lower()}{why}; "
                         f"valid norms for it: {', '.join(supported)}")
        return found

    def check(self, norm: str | None = None, **model: Any) -> None:
        """Raise :class:`ValueError` with :meth:`errors` of the given arguments: for the constructor."""
        if found := self.errors(model, norm):
            raise ValueError("; ".join(found))


DEPTH, WIDTH = {"depth": POSITIVE}, {"width": POSITIVE}
CONV = {**DEPTH, **WIDTH, "kernel_size": POSITIVE, "pool": one_of(*POOLS), "dropout": FRACTION}

FAMILIES: dict[str, Family] = {f.name: f for f in (   # class name (ablate.models.<Name>) -> what it accepts
    Family("MLP", {**DEPTH, **WIDTH, "dropout": FRACTION}),
    Family("CNN", CONV),
    Family("VGG", {**CONV, "hidden": POSITIVE}),
    Family("ResNet", {**DEPTH, **WIDTH, "residual": BOOLEAN, "stem_stride": POSITIVE, "dropout": FRACTION}),
    # batch statistics over final states are not a normalised recurrent net
    Family("RNN", {"cell": one_of(*CELLS), **DEPTH, **WIDTH, "dropout": FRACTION, "bidirectional": BOOLEAN,
                   "readout": one_of(*READOUTS)},
           norms=("none", "layer"), kinds=("encoder", "encoder_decoder"), rules=(decoder_reads_last,)),
    Family("Transformer", {**DEPTH, **WIDTH, "heads": POSITIVE, "mlp_ratio": POSITIVE, "pre_ln": BOOLEAN,
                           "positional": one_of(*POSITIONAL), "dropout": FRACTION},
           kinds=("encoder", *DECODING), rules=(divisible_heads,)),
)}
# a field means the same in every family: any other family is checked on each of these it has
ANY_FAMILY = Family("model", merged(*(f.fields for f in FAMILIES.values())), norms=None, kinds=None,
                    rules=(divisible_heads,))


def builtin_family(target: Any) -> Family | None:
    """The entry of ``ablate.models.RNN`` or ``ablate.models.rnn.RNN``, without importing it (or torch);
    None for any other target."""
    return builtin(target, FAMILIES, "ablate.models", own_modules=True)


def family_of(target: Any) -> Family:
    """What ``model._target_`` accepts: a built-in family's entry, else what its class (or factory)
    says (imported: its ``accepts``, or its ``supported_norms`` and ablate's field names). Raises on an
    import failure."""
    if (family := builtin_family(target)) is not None:
        return family
    from hydra.utils import get_object

    made = get_object(str(target))
    return getattr(made, "accepts", None) or replace(ANY_FAMILY, name=getattr(made, "__name__", str(target)),
                                                     norms=getattr(made, "supported_norms", None))
