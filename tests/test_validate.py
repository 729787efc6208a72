"""``ablate.validate.config_errors`` on the options of the vectorized jobs, the sequence families and
the augment group: each bad value is named with what is valid (in-process; the end-to-end refusals,
exit 2 and nothing written, are tests/test_bad_input.py)."""

from __future__ import annotations

import pytest

from ablate.validate import config_errors
from tests.support import compose

CASES = [
    (["seeds=[0,-1]"], "seeds=[0, -1] is invalid: a list of distinct integers >= 0"),
    (["seeds=[0,0]"], "seeds=[0, 0] is invalid: a list of distinct integers >= 0"),
    (["lrs=[0.1,-1]"], "lrs=[0.1, -1] is invalid: a list of distinct numbers > 0"),
    (["weight_decays=[-1]"], "weight_decays=[-1] is invalid: a list of distinct numbers >= 0"),
    (["vectorize=maybe"], "vectorize='maybe' is invalid; valid values: true, false"),
    (["model=transformer", "model.kind=gpt"],
     "model.kind='gpt' is invalid for model=transformer; valid values: encoder, decoder, encoder_decoder"),
    (["model=rnn", "model.readout=first"], "model.readout='first' is invalid; valid values: last, mean, all"),
    (["model=rnn", "model.bidirectional=maybe"], "model.bidirectional='maybe' is invalid; valid values: true, false"),
    (["data=copy", "model=transformer"],
     "data=copy has one target per position: it needs a decoding model; model=transformer model.kind=encoder "
     "is a classifier; valid values for model.kind: decoder, encoder_decoder"),
    (["data=copy"], "model=mlp is a classifier; use model=transformer or model=rnn with model.kind=encoder_decoder"),
    (["data=copy", "data.source.num_symbols=1"], "data.source.num_symbols=1 is invalid: it must be an integer >= 2"),
    (["augment=shift", "augment.max_shift=-1"], "augment.max_shift=-1 is invalid: it must be an integer >= 0"),
    (["augment=noise", "augment.std=-1"], "augment.std=-1 is invalid: it must be a number >= 0"),
    (["augment=flip", "augment.p=2"], "augment.p=2 is invalid: it must be in [0.0, 1.0]"),
]


@pytest.mark.parametrize("overrides,message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_a_bad_value_is_named_with_the_valid_ones(overrides, message):
    errors = config_errors(compose(overrides))
    assert any(message in e for e in errors), errors


@pytest.mark.parametrize("overrides", [
    ["seeds=[0,1,2]", "lrs=[0.01,0.1]", "weight_decays=[0,0.1]", "vectorize=false"],
    ["data=copy", "model=transformer", "model.kind=decoder"],
    ["data=reverse", "model=rnn", "model.cell=lstm", "model.kind=encoder_decoder"],
    ["model=rnn", "data=recall", "model.bidirectional=true", "model.readout=all"],
    ["augment=shift"], ["augment=noise"], ["augment=crop", "data=digits", "model=cnn"],
], ids=lambda o: " ".join(o))
def test_good_values_pass(overrides):
    assert config_errors(compose(overrides)) == []


@pytest.mark.parametrize("overrides,message", [
    (["augment=crop"], "augment=crop takes (C, H, W) images; data=mnist1d gives (C, L) signals"),
    (["augment=shift", "data=digits", "model=cnn"], "augment=shift takes (C, L) signals; data=digits gives (C, H, W) images"),
])
def test_an_augment_for_another_sample_layout_is_refused(overrides, message):
    assert message in config_errors(compose(overrides))


def test_the_sample_layout_table_matches_the_sources():
    from ablate.data import sources

    built = {"synthetic": sources.synthetic(num_samples=50), "digits": sources.digits(),
             "mnist1d": sources.mnist1d(num_samples=50), "recall": sources.recall(num_samples=50),
             "adding": sources.adding(num_samples=50), "seq2seq": sources.seq2seq(num_samples=50)}
    assert {name: len(d.input_shape) for name, d in built.items()} == \
        {k: v for k, v in sources.SAMPLE_DIMS.items() if k != "vision"}
