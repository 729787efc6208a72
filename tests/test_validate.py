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


@pytest.mark.parametrize("overrides,message", [
    (["augment=shift", "+augment.std=0.1"], "augment.std is not a field of augment=shift; its fields: max_shift"),
    (["data=mnist1d", "data.source.num_samples=0"], "data.source.num_samples=0 is invalid: it must be an integer >= 1"),
    (["data=copy", "model=rnn", "model.kind=encoder_decoder", "data.source.task=shuffle"],
     "data.source.task='shuffle' is invalid; valid values: copy, reverse, sort"),
    (["data=cifar10", "data.source.name=svhn"],
     "data.source.name='svhn' is invalid; valid values: mnist, fashion_mnist, cifar10"),
    (["data.batch_size=null"], "data.batch_size=None is invalid: it must be an integer >= 1"),
    (["trainer.devices=0"], "trainer.devices=0 is invalid: an integer >= 1, -1 (all), 'auto', or a list of ids"),
    (["model=rnn", "model.kind=encoder_decoder", "model.readout=mean", "data=copy"],
     "model.readout='mean' is invalid with model.kind=encoder_decoder: the decoder reads the encoder's final state"),
])
def test_each_part_names_its_own_bad_field(overrides, message):
    assert any(e.startswith(message) for e in config_errors(compose(overrides)))


def test_a_users_parts_are_asked_what_they_accept():
    """Targets outside ablate are imported and checked on ablate's field names (a field means the same
    everywhere); an augment is asked for the sample layout it takes."""
    cfg = compose(["model._target_=collections.OrderedDict", "model.depth=0", "model.dropout=1",
                   "augment=crop", "augment._target_=tests.test_validate._Images", "augment.padding=-1"])
    assert sorted(config_errors(cfg)) == [
        "augment.padding=-1 is invalid: it must be an integer >= 0",
        "augment=_images takes (C, H, W) images; data=mnist1d gives (C, L) signals",
        "model.depth=0 is invalid: it must be an integer >= 1",
        "model.dropout=1 is invalid: it must be in [0.0, 1.0)"]


class _Images:
    sample_dims = 3
