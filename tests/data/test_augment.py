"""``ablate.data.augment``: each transform keeps the shape, is a function of the generator's state,
draws per sample over every leading dim, and does what its name says."""

from __future__ import annotations

import inspect

import pytest
import torch
from hydra.utils import get_class, instantiate

from ablate import inputs
from ablate.data.augment import Crop, Flip, Noise, Shift, translate
from tests.support import choices, compose, group


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ramp(*lead: int, shape=(2, 12)) -> torch.Tensor:
    """Distinct positive values (so a zero is a filled step and a position is readable), the same for
    every sample."""
    one = torch.arange(1, 1 + torch.Size(shape).numel(), dtype=torch.float32).reshape(shape)
    return one.expand(*lead, *shape).clone()


SIGNAL, IMAGE = (2, 12), (3, 6, 6)
CASES = [(Shift(3), SIGNAL), (Noise(0.5), SIGNAL), (Crop(2), IMAGE), (Flip(0.5), IMAGE)]


@pytest.mark.parametrize("transform,shape", CASES, ids=lambda c: repr(c) if not isinstance(c, tuple) else "")
@pytest.mark.parametrize("lead", [(16,), (3, 16)], ids=["batch", "stacked"])
def test_shape_dtype_and_determinism(transform, shape, lead):
    x = _ramp(*lead, shape=shape)
    out = transform(x, _gen(0))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.equal(out, transform(x, _gen(0)))                 # same generator state, same batch
    assert not torch.equal(out, transform(x, _gen(1)))
    g = _gen(0)
    first = transform(x, g)
    assert not torch.equal(first, transform(x, g))                 # the generator moves on
    assert torch.equal(x, _ramp(*lead, shape=shape))               # the input is left as it was


def _shift_of(original: torch.Tensor, moved: torch.Tensor, dim: int, limit: int) -> int:
    """The translation along ``dim`` that makes ``moved`` from ``original``."""
    found = [s for s in range(-limit, limit + 1)
             if torch.equal(translate(original[None], torch.tensor([s]), dim)[0], moved)]
    assert len(found) == 1, "not a translation within the limit"
    return found[0]


def test_shift_moves_each_signal_in_time_zero_filled():
    x = _ramp(4, 50, shape=SIGNAL)
    out = Shift(3)(x, _gen(0))
    shifts = torch.tensor([[_shift_of(x[k, b], out[k, b], -1, 3) for b in range(50)] for k in range(4)])
    assert set(shifts.flatten().tolist()) == set(range(-3, 4))     # every shift in range is drawn
    assert len({tuple(row.tolist()) for row in shifts}) == 4       # stacked models draw their own
    k, b = (shifts == 2).nonzero()[0].tolist()
    assert torch.equal(out[k, b, :, :2], torch.zeros(2, 2))        # content moved right, zeros behind
    assert torch.equal(out[k, b, :, 2:], x[k, b, :, :-2])           # both channels by the same steps
    assert torch.equal(Shift(0)(x, _gen(0)), x)


def test_translate_by_hand():
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]], [[5.0, 6.0, 7.0, 8.0]]])
    assert translate(x, torch.tensor([1, -2]), dim=-1).tolist() == [[[0, 1, 2, 3]], [[7, 8, 0, 0]]]
    assert translate(x, torch.tensor([5, 0]), dim=-1).tolist() == [[[0, 0, 0, 0]], [[5, 6, 7, 8]]]


def test_noise_has_the_configured_std():
    x = _ramp(64, shape=(4, 100))
    noise = Noise(0.3)(x, _gen(0)) - x
    assert noise.std().item() == pytest.approx(0.3, rel=0.03)
    assert abs(noise.mean().item()) < 0.01
    assert torch.equal(Noise(0.0)(x, _gen(0)), x)
    half = _ramp(8, shape=(4, 100)).to(torch.bfloat16)
    assert Noise(0.3)(half, _gen(0)).dtype == torch.bfloat16


def test_flip_mirrors_whole_images_with_probability_p():
    x = _ramp(4, 100, shape=IMAGE)
    out = Flip(0.5)(x, _gen(0))
    mirrored = torch.tensor([[torch.equal(out[k, b], x[k, b].flip(-1)) for b in range(100)] for k in range(4)])
    kept = torch.tensor([[torch.equal(out[k, b], x[k, b]) for b in range(100)] for k in range(4)])
    assert (mirrored ^ kept).all()                                 # each image: all channels, or none
    assert 0.35 < mirrored.float().mean().item() < 0.65
    assert len({tuple(row.tolist()) for row in mirrored}) == 4
    assert torch.equal(Flip(0.0)(x, _gen(0)), x)
    assert torch.equal(Flip(1.0)(x, _gen(0)), x.flip(-1))


def test_crop_translates_images_by_up_to_padding():
    x = _ramp(2, 60, shape=IMAGE)
    out = Crop(2)(x, _gen(0))
    windows = [(down, right) for down in range(-2, 3) for right in range(-2, 3)]

    def window(image, moved):
        found = [(d, r) for d, r in windows
                 if torch.equal(translate(translate(image[None], torch.tensor([d]), -2), torch.tensor([r]), -1)[0],
                                moved)]
        assert len(found) == 1, "not a crop within the padding"
        return found[0]

    offsets = {window(x[k, b], out[k, b]) for k in range(2) for b in range(60)}
    assert len(offsets) > 15                                       # of the 25 windows
    assert (out == 0).any() and torch.equal(Crop(0)(x, _gen(0)), x)


def test_bad_settings_are_rejected():
    for make in (lambda: Shift(-1), lambda: Shift(1.5), lambda: Noise(-0.1), lambda: Crop(-2),
                 lambda: Flip(1.5)):
        with pytest.raises(ValueError, match="augment"):
            make()


@pytest.mark.parametrize("name,cls", [("shift", Shift), ("noise", Noise), ("crop", Crop), ("flip", Flip)])
def test_configs_build_the_transforms(name, cls):
    assert isinstance(instantiate(compose([f"augment={name}"]).augment), cls)


def test_none_config_builds_nothing():
    node = compose(["augment=none"]).augment
    assert not node and "_target_" not in node                     # an empty node: no transform


def test_each_transform_states_its_sample_layout():
    assert (Shift.sample_dims, Noise.sample_dims, Crop.sample_dims, Flip.sample_dims) == (2, None, 3, 3)


@pytest.mark.parametrize("name", [c for c in choices("augment") if c != "none"])
def test_a_transform_table_is_its_class_arguments_and_its_shipped_config(name):
    """What the config check reads without torch (ablate.inputs.AUGMENTS) is what the class takes."""
    node = group("augment", name)
    cls = get_class(node._target_)
    entry = inputs.AUGMENTS[cls.__name__]
    assert cls.accepts is entry and cls.sample_dims == entry.sample_dims
    assert inputs.augment_of(node._target_) is entry
    assert set(entry.fields) == set(inspect.signature(cls).parameters) == set(node) - {"_target_"}
    assert inputs.augment_errors(node, None) == []


# --- wired into the DataModule ------------------------------------------------------------------


def _datamodule(seed, augment):
    from ablate.data.datamodule import DataModule
    from ablate.data.sources import mnist1d

    return DataModule(mnist1d(num_samples=400), batch_size=32, seed=seed, augment=augment)


def _first(loader):
    batch = next(iter(loader))
    return batch[0] if isinstance(batch, (tuple, list)) else batch[0]


def test_the_datamodule_augments_training_batches_only_and_reproducibly():
    plain, shifted = _datamodule(0, None), _datamodule(0, Shift(4))
    x_plain, x_shift = _first(plain.train_dataloader()), _first(shifted.train_dataloader())
    assert x_plain.shape == x_shift.shape and not torch.equal(x_plain, x_shift)
    assert torch.equal(x_shift, _first(_datamodule(0, Shift(4)).train_dataloader()))     # same seed, same draws
    for split in ("val_dataloader", "test_dataloader"):
        assert torch.equal(_first(getattr(plain, split)()), _first(getattr(shifted, split)()))


def test_each_member_of_a_vectorized_job_is_augmented_as_its_own_run():
    (x, _), *_ = iter(_datamodule([3, 5], Noise(0.3)).train_dataloader())
    assert x.shape[0] == 2
    for k, seed in enumerate([3, 5]):
        assert torch.equal(x[k], _first(_datamodule(seed, Noise(0.3)).train_dataloader()))


def test_a_transform_for_another_layout_is_refused_naming_both():
    with pytest.raises(ValueError, match=r"augment=crop takes \(C, H, W\) images; data=mnist1d gives"):
        _datamodule(0, Crop(2))
