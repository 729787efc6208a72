"""The built-in families and what the config check knows of them (``ablate.families``): the shipped
model configs match the code, unsupported norms are config errors, and the check imports no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest
from torch import nn

from ablate.models import CNN, MLP, RNN, VGG, ResNet, Transformer
from ablate.nn import INIT_SCHEMES, NORMS
from ablate.validate import config_errors
from tests.models import ACTIVATIONS, group
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
