"""The model contract (docs/models.md, ablate.contract): a model of the user's own, named by
``model._target_``, is passed ``input_shape`` and ``num_classes``, and the parts and fields its signature
takes, nothing else; one that cannot take a batch of the data stops before anything trains or is written.

The end-to-end rows run the real command (``python -m ablate model._target_=usermodels.<Name>
budget=smoke``) with the model module written into ``tmp_path`` and put on ``PYTHONPATH``; each model
writes down the keyword arguments it was given (``<Name>.json`` beside the module)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from ablate.contract import Signature, batch_errors, model_builder, signature_errors
from ablate.validate import config_errors
from tests.support import compose, run_ablate

MODULE = "usermodels"
SOURCE = '''
"""Models of a user's own, for tests/test_model_contract.py."""
import json
import math
from pathlib import Path

from torch import nn


def _seen(name, kwargs):
    shown = {k: (type(v).__name__ if k in ("activation", "norm", "init") else v) for k, v in kwargs.items()}
    if "activation" in kwargs:
        shown["activation_module"] = type(kwargs["activation"]()).__name__
    (Path(__file__).parent / f"{name}.json").write_text(json.dumps(shown, default=str))


def _mlp(input_shape, num_classes, width=32, activation=nn.ReLU):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), activation(),
                         nn.Linear(width, num_classes))


class Plain(nn.Module):
    """Takes only what every model is passed."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        _seen("Plain", {"input_shape": input_shape, "num_classes": num_classes})
        self.body = _mlp(input_shape, num_classes)

    def forward(self, x):
        return self.body(x)


class Swappable(nn.Module):
    """Takes an activation and a width, nothing else of ablate's."""

    def __init__(self, input_shape, num_classes, activation, width=8):
        super().__init__()
        _seen("Swappable", {"input_shape": input_shape, "num_classes": num_classes, "activation": activation,
                            "width": width})
        self.body = _mlp(input_shape, num_classes, width, activation)

    def forward(self, x):
        return self.body(x)


def factory(input_shape, num_classes, *, width=8):
    """A function, not a class, returning the model."""
    _seen("factory", {"input_shape": input_shape, "num_classes": num_classes, "width": width})
    return _mlp(input_shape, num_classes, width)


class Open(nn.Module):
    """Takes anything (**kwargs)."""

    def __init__(self, input_shape, num_classes, **kwargs):
        super().__init__()
        _seen("Open", {"input_shape": input_shape, "num_classes": num_classes, **kwargs})
        self.body = _mlp(input_shape, num_classes)

    def forward(self, x):
        return self.body(x)


class WrongOutput(nn.Module):
    """Gives three classes too many."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.body = _mlp(input_shape, num_classes + 3)

    def forward(self, x):
        return self.body(x)
'''


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("user-models")
    (folder / f"{MODULE}.py").write_text(SOURCE)
    return folder


def _run(models: Path, tmp_path: Path, name: str, *args: str):
    """``python -m ablate model._target_=usermodels.<name> budget=smoke``: the result, its run folder
    and what the model was given (None when it was never built in the run's process)."""
    run_dir = tmp_path / "run"
    seen = models / f"{name}.json"
    seen.unlink(missing_ok=True)
    path = os.pathsep.join(p for p in (str(models), os.environ.get("PYTHONPATH")) if p)
    result = run_ablate([f"model._target_={MODULE}.{name}", "budget=smoke", *args, f"hydra.run.dir={run_dir}"],
                        tmp_path, timeout=300, PYTHONPATH=path)
    return result, run_dir, json.loads(seen.read_text()) if seen.exists() else None


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "record.json").read_text())


def test_a_model_taking_only_input_shape_and_num_classes_runs(models, tmp_path):
    result, run_dir, seen = _run(models, tmp_path, "Plain")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert _record(run_dir)["status"] == "ok"
    assert seen == {"input_shape": [1, 40], "num_classes": 10}        # mnist1d: (1, 40) signals, 10 classes
    # the default model node's fields (model=mlp) are left out, and the log says which
    assert "model._target_=usermodels.Plain takes no depth, width, dropout: not passed" in result.stdout + result.stderr


def test_a_model_taking_activation_gets_it_and_its_fields(models, tmp_path):
    result, run_dir, seen = _run(models, tmp_path, "Swappable", "activation=tanh", "model.width=12")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert _record(run_dir)["status"] == "ok"
    assert seen["activation_module"] == "Tanh" and seen["width"] == 12
    assert "takes no depth, dropout: not passed" in result.stdout + result.stderr


def test_a_factory_function_is_a_model(models, tmp_path):
    result, run_dir, seen = _run(models, tmp_path, "factory", "model.width=6")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert _record(run_dir)["status"] == "ok"
    assert seen == {"input_shape": [1, 40], "num_classes": 10, "width": 6}


def test_a_model_taking_kwargs_gets_everything(models, tmp_path):
    result, run_dir, seen = _run(models, tmp_path, "Open", "norm=layer", "model.depth=2")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert _record(run_dir)["status"] == "ok"
    assert seen["activation_module"] == "ReLU" and seen["norm"] == "Norm" and seen["init"] == "Init"
    assert {k: seen[k] for k in ("depth", "width", "dropout")} == {"depth": 2, "width": 256, "dropout": 0.0}
    assert "not passed" not in result.stdout + result.stderr


def test_a_model_with_the_wrong_output_stops_before_anything_is_written(models, tmp_path):
    result, run_dir, _ = _run(models, tmp_path, "WrongOutput")
    out = result.stdout + result.stderr
    assert result.returncode == 2, out[-3000:]
    assert ("model._target_=usermodels.WrongOutput gives the wrong output for the data: input (2, 1, 40) gave "
            "(2, 13); ablate expects (2, 10), (batch, num_classes), num_classes=10") in out
    assert "Traceback" not in out
    assert not run_dir.exists()
    assert list(tmp_path.rglob("record.json")) == []


def test_a_sweep_of_a_model_with_the_wrong_output_stops_before_any_job(models, tmp_path):
    sweep = tmp_path / "sweep"
    path = os.pathsep.join(p for p in (str(models), os.environ.get("PYTHONPATH")) if p)
    result = run_ablate(["-m", f"model._target_={MODULE}.WrongOutput", "optimizer.lr=0.1,0.01", "budget=smoke",
                         f"hydra.sweep.dir={sweep}"], tmp_path, timeout=300, PYTHONPATH=path)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out[-3000:]
    assert "sweep job" in out and "ablate expects (2, 10)" in out
    assert "Launching" not in out and not sweep.exists()
    assert list(tmp_path.rglob("record.json")) == []


def test_setting_a_field_the_model_does_not_take_is_refused_before_any_job(models, tmp_path):
    """A sweep of model.depth over a model without depth would compare a model with itself under two
    labels: the field named on the command line (or by a sweep) must reach the model, or nothing runs."""
    result, run_dir, _ = _run(models, tmp_path, "Plain", "model.depth=3")
    out = result.stdout + result.stderr
    assert result.returncode == 2, out[-3000:]
    assert ("model.depth=3 is set, but model._target_=usermodels.Plain takes no depth (its parameters: "
            "input_shape, num_classes)") in out
    assert not run_dir.exists()
    sweep = tmp_path / "sweep"
    path = os.pathsep.join(p for p in (str(models), os.environ.get("PYTHONPATH")) if p)
    result = run_ablate(["-m", f"model._target_={MODULE}.Plain", "model.depth=2,4", "budget=smoke",
                         f"hydra.sweep.dir={sweep}"], tmp_path, timeout=300, PYTHONPATH=path)
    out = result.stdout + result.stderr
    assert result.returncode == 2 and "takes no depth" in out and "sweep job" in out, out[-3000:]
    assert not sweep.exists() and list(tmp_path.rglob("record.json")) == []


# --- in process: the signature filter and the checks ---------------------------------------------------

class _Net(nn.Module):
    def __init__(self, input_shape, num_classes, activation=nn.ReLU, *, depth=2):
        super().__init__()
        self.activation, self.depth = activation, depth
        self.head = nn.Linear(input_shape[-1], num_classes)

    def forward(self, x):
        return self.head(x.flatten(1))


def _factory(input_shape, num_classes, **options):
    return _Net(input_shape, num_classes, **{k: v for k, v in options.items() if k in ("activation", "depth")})


class _NoClasses(nn.Module):
    def __init__(self, input_shape):
        super().__init__()


class _BadInput(nn.Module):
    """Reads a fixed 7 features, whatever the data."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.head = nn.Linear(7, num_classes)

    def forward(self, x):
        return self.head(x)


def test_the_signature_is_read_from_a_class_or_a_factory():
    assert Signature.of(_Net) == Signature(("input_shape", "num_classes", "activation", "depth"))
    assert Signature.of(_factory) == Signature(("input_shape", "num_classes"), any=True)
    assert Signature.of(_factory).takes("anything") and not Signature.of(_Net).takes("norm")
    assert Signature.of(dict) == Signature((), any=True)      # no readable signature: nothing is refused
    kept, dropped = Signature.of(_Net).split({"_target_": "x._Net", "depth": 3, "width": 4, "dropout": 0.1})
    assert kept == ["_target_", "depth"] and dropped == ["width", "dropout"]
    assert Signature.of(_Net).describe() == "input_shape, num_classes, activation, depth"
    assert Signature.of(_factory).describe() == "input_shape, num_classes, **kwargs"


def test_what_the_signature_does_not_take_is_never_passed(caplog):
    node = OmegaConf.create({"_target_": f"{__name__}._Net", "depth": 5, "width": 64, "dropout": 0.0})
    norm_asked = []
    parts = {"activation": lambda: nn.Tanh, "norm": lambda: norm_asked.append(1), "init": lambda: None}
    with caplog.at_level("INFO", logger="ablate"):
        model = model_builder(node, (1, 40), 10, parts)()
    assert isinstance(model, _Net) and model.activation is nn.Tanh and model.depth == 5
    assert norm_asked == []                  # a part it does not take is not even built
    assert f"model._target_={__name__}._Net takes no width, dropout: not passed" in caplog.text
    made = model_builder(OmegaConf.create({"_target_": f"{__name__}._factory", "depth": 4}), (6,), 3, parts)()
    assert made.depth == 4 and made.activation is nn.Tanh and made.head.out_features == 3


def test_the_config_check_names_what_a_model_does_not_take():
    errors = config_errors(compose([f"model._target_={__name__}._NoClasses"]))
    assert errors == [f"model._target_={__name__}._NoClasses must take input_shape and num_classes (ablate passes "
                      "both); it takes no num_classes (its parameters: input_shape)"]
    errors = config_errors(compose([f"model._target_={__name__}._Net", "norm=batch"]))
    assert errors == [f"norm=batch needs a model that takes norm; model._target_={__name__}._Net takes no norm "
                      "(its parameters: input_shape, num_classes, activation, depth); use norm=none"]
    assert config_errors(compose([f"model._target_={__name__}._factory", "norm=batch"])) == []


def test_a_batch_the_model_cannot_take_is_named_with_its_shapes():
    errors = batch_errors(compose([f"model._target_={__name__}._BadInput"]))
    assert len(errors) == 1 and errors[0].startswith(
        f"model._target_={__name__}._BadInput cannot take a batch of the data: input (2, 1, 40) "
        "(batch, *input_shape=(1, 40)) raised RuntimeError")
    assert batch_errors(compose([f"model._target_={__name__}._factory"])) == []


def test_the_probe_leaves_the_random_state_alone_and_skips_the_builtin_families():
    state = torch.random.get_rng_state()
    assert batch_errors(compose(["model._target_=ablate.models.MLP", "model.width=7"])) == []   # never built
    batch_errors(compose([f"model._target_={__name__}._Net", "model.depth=3"]))
    assert torch.equal(torch.random.get_rng_state(), state)
