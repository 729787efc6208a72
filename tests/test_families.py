"""The built-in families and what the config check knows of them (``ablate.families``): the tables
match the code (each family's fields are its arguments, every name in a table builds, a name outside
is refused alike by the constructor and the config check), the shipped model configs match both,
unsupported norms are config errors, and the check imports no torch."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import torch
from hydra.utils import get_class
from torch import nn

from ablate import families
from ablate.checks import POSITIVE, Check, merged
from ablate.families import family_of
from ablate.models import CNN, MLP, RNN, VGG, ResNet, Transformer, cnn, rnn
from ablate.nn import INIT_SCHEMES, NORMS, Norm, parts
from ablate.validate import config_errors
from tests.models import ACTIVATIONS, MNIST1D, build, group
from tests.support import compose

FAMILIES = {"mlp": MLP, "cnn": CNN, "vgg": VGG, "resnet": ResNet, "rnn": RNN, "transformer": Transformer}


def test_config_groups_match_the_code():
    """The shipped groups offer exactly the families, activations, norms and inits the code knows."""
    from importlib.resources import files

    conf = files("ablate.conf")
    names = lambda g: sorted(p.name[:-5] for p in conf.joinpath(g).iterdir() if p.name.endswith(".yaml"))
    assert names("model") == sorted(FAMILIES)
    assert names("activation") == sorted(ACTIVATIONS)
    assert names("norm") == sorted(NORMS)
    assert names("init") == sorted(INIT_SCHEMES)
    for family, cls in FAMILIES.items():
        assert group("model", family)._target_ == f"ablate.models.{cls.__name__}"
        assert set(cls.supported_norms) <= set(NORMS)


def test_supported_norms():
    assert RNN.supported_norms == ("none", "layer")
    for cls in (MLP, CNN, VGG, ResNet, Transformer):
        assert cls.supported_norms == NORMS


@pytest.mark.parametrize("family,norm", [(f, n) for f, c in FAMILIES.items() for n in NORMS
                                         if n not in c.supported_norms])
def test_unsupported_norm_is_a_config_error(family, norm):
    errors = config_errors(compose([f"model={family}", f"norm={norm}"]))
    assert len(errors) == 1 and errors[0].startswith(f"norm={norm} is not supported by model={family}")
    assert ", ".join(FAMILIES[family].supported_norms) in errors[0]


TABLES = families.FAMILIES   # class name -> what the family accepts
GIVEN = {"input_shape", "num_classes", "activation", "norm"}    # given by ablate.run, not by the config


@pytest.mark.parametrize("name", TABLES)
def test_a_family_table_is_its_class_arguments_and_its_shipped_config(name):
    cls, entry = get_class(f"ablate.models.{name}"), TABLES[name]
    assert cls.accepts is entry and cls.supported_norms == entry.norms
    params = inspect.signature(cls).parameters
    takes = set(params) - GIVEN
    assert takes == set(entry.fields) | ({"kind"} if entry.kinds != ("encoder",) else set())
    assert entry.errors({k: params[k].default for k in takes}) == []         # its defaults are accepted
    shipped = group("model", name.lower())
    assert set(shipped) == takes | {"_target_"}
    assert family_of(shipped._target_) is entry and family_of(f"ablate.models.{name.lower()}.{name}") is entry
    assert entry.errors(shipped) == []


def test_the_layers_are_built_for_exactly_the_names_in_the_tables():
    assert tuple(rnn.CELLS) == families.CELLS
    assert (*cnn.POOLS, "none") == families.POOLS
    assert tuple(parts.NORM_LAYERS) == families.NORMS


CHOICES = [(name.lower(), key, value) for name, entry in TABLES.items()
           for key, values in [*((k, c.valid) for k, c in entry.fields.items() if c.valid),
                               *([("kind", entry.kinds)] if len(entry.kinds) > 1 else [])]
           for value in values]


@pytest.mark.parametrize("family,key,value", CHOICES, ids=[f"{f}-{k}-{v}" for f, k, v in CHOICES])
def test_every_name_in_a_table_builds(family, key, value):
    model, _ = build(family, **{key: value})
    assert model(torch.rand(2, *MNIST1D)).shape == (2, 10)


@pytest.mark.parametrize("family,key", sorted({(f, k) for f, k, _ in CHOICES}))
def test_a_name_outside_a_table_is_refused_alike_by_the_family_and_the_config_check(family, key):
    errors = config_errors(compose([f"model={family}", f"model.{key}=nope"]))
    cls = get_class(group("model", family)._target_)
    with pytest.raises(ValueError) as info:
        cls(MNIST1D, 10, nn.ReLU, Norm("none"), **{key: "nope"})
    assert [str(info.value)] == errors
    assert f"model.{key}='nope' is invalid" in errors[0]


def test_an_argument_the_family_does_not_take_is_a_config_error():
    assert config_errors(compose(["model=mlp", "+model.cell=gru"])) == \
        ["model.cell is not a field of model=mlp; its fields: depth, width, dropout"]
    assert config_errors(compose(["model=mlp", "+model.kind=decoder"])) == \
        ["model.kind='decoder' is invalid for model=mlp; valid values: encoder"]


def test_a_field_means_one_thing_in_every_family():
    """A user's family is checked on the fields of ablate's: one name, one check."""
    assert set(families.ANY_FAMILY.fields) == {k for f in TABLES.values() for k in f.fields}
    with pytest.raises(ValueError, match="'depth' is checked two ways"):
        merged({"depth": POSITIVE}, {"depth": Check(bool, "")})


class _NoNormsFamily(nn.Module):
    """A user's own family (``model._target_`` outside ablate): its norms are read off the class."""

    supported_norms = ("none",)


def test_custom_family_norms_are_read_from_its_class():
    cfg = compose(["norm=layer", f"model._target_={__name__}._NoNormsFamily"])
    assert config_errors(cfg) == ["norm=layer is not supported by model=_nonormsfamily; valid norms for it: none"]
    cfg = compose(["norm=layer", "model._target_=ablate.models.NoSuchFamily"])
    assert any("model._target_='ablate.models.NoSuchFamily' cannot be imported" in e for e in config_errors(cfg))


def test_the_config_check_does_not_import_torch(tmp_path):
    """A parallel sweep's launching process only checks configs: it must not pay torch's import, for
    any of the built-in parts (families, sources, augments, vision data on disk)."""
    runs = [["model=rnn", "norm=batch"], ["model=transformer", "model.kind=decoder", "norm=group", "data=copy"],
            ["model=cnn", "data=digits", "augment=shift"], ["augment=crop"], ["augment=noise", "data=recall"],
            ["data=mnist", f"data.source.root={tmp_path}", "augment=flip", "model=vgg"],
            ["model=resnet", "data=sort", "model.width=0"]]
    code = ("import sys\n"
            "from hydra import compose, initialize_config_module\n"
            "import ablate\n"
            "from ablate.validate import config_errors\n"
            "with initialize_config_module('ablate.conf', version_base='1.3'):\n"
            f"    for overrides in {runs!r}:\n"
            "        print(config_errors(compose('config', overrides=[*overrides, 'run_dir=.'])))\n"
            "assert 'torch' not in sys.modules, 'the config check imported torch'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for expected in ("norm=batch is not supported by model=rnn",
                     "norm=group is not supported by model=transformer with model.kind=decoder",
                     "augment=shift takes (C, L) signals; data=digits gives (C, H, W) images",
                     "augment=crop takes (C, H, W) images; data=mnist1d gives (C, L) signals",
                     "does not hold MNIST", "model.width=0 is invalid", "data=sort has one target per position"):
        assert expected in out.stdout, out.stdout
    assert out.stdout.count("[]") == 1                 # augment=noise on recall: nothing wrong
