"""A user's own data (``ablate.data.files``): ``.npz`` / ``.npy`` arrays, a CSV table, an image folder,
torchvision's sets with ``download``, a source function's arrays or ``torch.utils.data.Dataset``, and
the message each bad input gets before anything trains (a missing file: from the config check,
with nothing written)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from ablate.data import DataModule, sources
from ablate.data.files import as_dataset, checked
from ablate.validate import config_errors
from tests.support import compose, run_ablate


def _arrays(n: int = 60, features: int = 5, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype(np.float32), np.arange(n) % classes


def _csv(path, n: int = 60, labels=None) -> None:
    x, y = _arrays(n, features=3)
    labels = y if labels is None else labels
    rows = [f"{a:.4f},{b:.4f},note{i},{c:.4f},{lab}" for i, ((a, b, c), lab) in enumerate(zip(x, labels))]
    path.write_text("f1,f2,comment,f3,species\n" + "\n".join(rows) + "\n")


def _one_batch(dm: DataModule) -> tuple[torch.Tensor, torch.Tensor]:
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


# --- each source, composed from its YAML as a newcomer would --------------------------------------

def test_npz_from_config(tmp_path):
    x, y = _arrays(60)
    np.savez(tmp_path / "mine.npz", features=x, target=y)
    cfg = compose(["data=npz", f"data.source.path={tmp_path / 'mine.npz'}", "data.source.inputs=features",
                   "data.source.labels=target", "data.batch_size=8"])
    assert config_errors(cfg) == []
    dm = instantiate(cfg.data)
    assert dm.input_shape == (5,) and dm.num_classes == 3
    assert sum(len(s[1]) for s in dm.splits.values()) == 60
    xb, yb = _one_batch(dm)
    assert xb.shape == (8, 5) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    rows = {tuple(r) for r in x.round(5).tolist()}
    assert all(tuple(r) in rows for r in xb.numpy().round(5).tolist())      # the file's rows, unchanged


def test_npy_files_keep_their_shape(tmp_path):
    x = np.random.default_rng(0).random((40, 2, 6, 6)).astype(np.float32)      # (N, C, H, W) images
    np.save(tmp_path / "images.npy", x)
    np.save(tmp_path / "classes.npy", np.arange(40) % 4)
    cfg = compose(["data=npy", f"data.source.path={tmp_path}", "data.source.inputs=images",
                   "data.source.labels=classes.npy", "data.source.num_samples=30", "data.batch_size=4"])
    assert config_errors(cfg) == []
    dm = instantiate(cfg.data)
    assert dm.input_shape == (2, 6, 6) and dm.num_classes == 4
    assert sum(len(s[1]) for s in dm.splits.values()) == 30
    assert _one_batch(dm)[0].shape == (4, 2, 6, 6)


def test_csv_features_are_the_other_numeric_columns(tmp_path):
    _csv(tmp_path / "plants.csv")
    cfg = compose(["data=csv", f"data.source.path={tmp_path / 'plants.csv'}", "data.source.target=species",
                   "data.batch_size=16"])
    assert config_errors(cfg) == []
    dm = instantiate(cfg.data)
    assert dm.input_shape == (3,) and dm.num_classes == 3            # the text column 'comment' is left out
    xb, yb = _one_batch(dm)
    assert xb.shape == (16, 3) and set(yb.tolist()) <= {0, 1, 2}
    two = sources.table(str(tmp_path / "plants.csv"), target="species", features=["f3", "f1"])
    x, _ = _arrays(60, features=3)
    assert torch.allclose(two.x, torch.as_tensor(x[:, [2, 0]]), atol=1e-4)


def test_image_folder(tmp_path):
    pytest.importorskip("torchvision", reason="torchvision is not installed (extra: vision)")
    from PIL import Image

    for k, name in enumerate(("cat", "dog")):
        (tmp_path / name).mkdir()
        for i in range(10):
            size = (6, 4) if i % 2 else (5, 5)                          # (W, H): sizes differ
            Image.new("RGB", size, (k * 200, i * 20, 7)).save(tmp_path / name / f"{i}.png")
    with pytest.raises(ValueError, match=r"the images differ in size .* set data.source.size=\[H,W\]"):
        sources.image_folder(str(tmp_path))
    cfg = compose(["data=image_folder", f"data.source.path={tmp_path}", "data.source.size=[4,6]",
                   "data.batch_size=4"])
    assert config_errors(cfg) == []
    dm = instantiate(cfg.data)
    assert dm.input_shape == (3, 4, 6) and dm.num_classes == 2
    assert _one_batch(dm)[0].shape == (4, 3, 4, 6)
    gray = sources.image_folder(str(tmp_path), size=[4, 6], grayscale=True, num_samples=6)
    assert gray.x.shape == (6, 1, 4, 6) and set(gray.y.tolist()) == {0, 1}   # spread over both classes
    assert float(gray.x.max()) <= 1.0


def _idx_files(raw, n: int) -> None:
    """MNIST's four idx files (the format torchvision reads), ``n`` 28x28 images each split."""
    raw.mkdir(parents=True)
    for split in ("train", "t10k"):
        images = np.random.default_rng(0).integers(0, 255, (n, 28, 28), dtype=np.uint8)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(
            np.array([2051, n, 28, 28], ">i4").tobytes() + images.tobytes())
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(
            np.array([2049, n], ">i4").tobytes() + (np.arange(n) % 10).astype(np.uint8).tobytes())


def test_torchvision_download_fetches_what_root_lacks(tmp_path, monkeypatch):
    """``download: true`` hands the fetch to torchvision (its ``download``, copying from a local folder here:
    no network), and offline stays the default."""
    tv = pytest.importorskip("torchvision", reason="torchvision is not installed (extra: vision)")
    root, fetched = tmp_path / "data", []

    def download(self):       # what the real one leaves on disk, from a local copy instead of the network
        fetched.append(self.train)
        if not (root / "MNIST" / "raw").exists():
            _idx_files(root / "MNIST" / "raw", 12)

    monkeypatch.setattr(tv.datasets.MNIST, "download", download)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        sources.vision("mnist", str(root))
    assert fetched == []
    d = sources.vision("mnist", str(root), download=True)
    assert fetched == [True, False] and d.x.shape == (24, 1, 28, 28) and d.num_classes == 10


def test_download_is_checked_by_the_config_check(tmp_path):
    offline = config_errors(compose(["data=torchvision", f"data.source.root={tmp_path}"]))
    assert len(offline) == 1 and "never downloads" in offline[0]
    online = compose(["data=torchvision", f"data.source.root={tmp_path}", "data.source.download=true"])
    assert config_errors(online) == []
    bad = config_errors(compose(["data=torchvision", f"data.source.root={tmp_path}", "data.source.download=yes"]))
    assert "data.source.download='yes' is invalid; valid values: true, false" in bad


# --- a source function's own return value ----------------------------------------------------------

def test_a_source_function_may_return_arrays_or_a_torch_dataset():
    x, y = _arrays(50)
    from_arrays = DataModule((x, y.tolist()), batch_size=10)
    assert from_arrays.input_shape == (5,) and from_arrays.num_classes == 3
    dataset = torch.utils.data.TensorDataset(torch.as_tensor(x), torch.as_tensor(y))
    from_dataset = DataModule(dataset, batch_size=10)
    assert from_dataset.input_shape == (5,) and from_dataset.num_classes == 3
    for dm in (from_arrays, from_dataset):
        assert torch.equal(dm.splits["train"][0], from_arrays.splits["train"][0])
        assert _one_batch(dm)[0].shape == (10, 5)
    with pytest.raises(ValueError, match="a source must return an ablate.data.Dataset, a pair of arrays"):
        as_dataset({"x": x, "y": y})
    ragged = [(np.zeros(3 + i % 2), i % 2) for i in range(20)]          # inputs of two lengths
    with pytest.raises(ValueError, match=r"whose inputs are ndarrays that do not stack into one array .*: give "
                                         r"arrays or tensors of one shape"):
        as_dataset(torch.utils.data.Subset(ragged, range(20)))


def tensor_pairs(num_samples: int, num_features: int, num_classes: int, seed: int) -> torch.utils.data.Dataset:
    """A user's source function, named by ``data.source._target_``: a map-style torch Dataset."""
    x, y = _arrays(num_samples, num_features, num_classes, seed)
    return torch.utils.data.TensorDataset(torch.as_tensor(x), torch.as_tensor(y))


def test_a_source_function_named_in_the_config():
    cfg = compose(["data=synthetic", "budget=smoke", f"data.source._target_={__name__}.tensor_pairs",
                   "data.source.num_features=7", "data.batch_size=32"])
    assert config_errors(cfg) == []
    dm = instantiate(cfg.data)
    assert dm.input_shape == (7,) and dm.num_classes == 4 and sum(len(s[1]) for s in dm.splits.values()) == 600
    assert _one_batch(dm)[0].shape == (32, 7)


# --- bad input: the message names the field and what would work --------------------------------------

def test_labels_that_are_not_integers(tmp_path):
    x, _ = _arrays(30)
    np.savez(tmp_path / "d.npz", x=x, y=np.linspace(0, 1, 30))
    with pytest.raises(ValueError, match=r"the labels \(data.source.labels='y'\) must be class ids, integers 0..K-1; "
                                         r"they hold 0.0, 0.034"):
        sources.arrays(str(tmp_path / "d.npz"))
    _csv(tmp_path / "t.csv", 30, labels=["setosa", "virginica", "setosa"] * 10)
    with pytest.raises(ValueError, match=r"data.source.target='species'\) must be class ids.*'setosa', 'virginica'"
                                         r".*astype\('category'\).cat.codes"):
        sources.table(str(tmp_path / "t.csv"), target="species")
    with pytest.raises(ValueError, match="they hold -1, 1"):
        checked(x, np.array([-1, 1] * 15), "signs")
    whole = checked(x, np.arange(30, dtype=np.float64) % 2, "floats")      # 0.0 / 1.0 are class ids
    assert whole.y.dtype == torch.int64 and whole.num_classes == 2


def test_mismatched_lengths(tmp_path):
    x, y = _arrays(30)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y[:29])
    with pytest.raises(ValueError, match=r"30 inputs \(data.source.inputs='x.npy', shape \(30, 5\)\) but 29 labels "
                                         r"\(data.source.labels='y.npy', shape \(29,\)\): give one label per input"):
        sources.arrays(str(tmp_path), inputs="x.npy", labels="y.npy")


def test_too_few_examples_for_the_splits():
    x, y = _arrays(4)
    with pytest.raises(ValueError, match=r"too few examples for the splits: data.source gives 4, and data.val_fraction="
                                         r"0.1, data.test_fraction=0.2 leave 3 for training, 0 for validation, 1 for "
                                         r"testing; each needs at least one: give at least 6 examples"):
        DataModule((x, y), val_fraction=0.1, test_fraction=0.2)
    assert len(DataModule((x, y), val_fraction=0.2, test_fraction=0.0).splits["test"][1]) == 0


@pytest.mark.parametrize("make,overrides,expect", [
    (None, ["data=csv", "data.source.path={tmp}/nothing.csv"], "data.source.path='{tmp}/nothing.csv': no such file"),
    ("csv", ["data=csv", "data.source.path={tmp}/t.csv", "data.source.target=kind"],
     "data.source.target='kind' is not a column of {tmp}/t.csv; its columns: f1, f2, comment, f3, species"),
    ("csv", ["data=csv", "data.source.path={tmp}/t.csv", "data.source.target=species", "data.source.features=[f1,f9]"],
     "data.source.features: f9 not columns of {tmp}/t.csv; its columns: f1, f2, comment, f3, species"),
    (None, ["data=npz"], "data.source.path is not set: give a .npz file"),
    ("npz", ["data=npz", "data.source.path={tmp}/d.npz", "data.source.labels=label"],
     "data.source.labels='label' is not an array of {tmp}/d.npz; its arrays: x, y"),
    (None, ["data=npy", "data.source.path={tmp}"], "data.source.inputs='x.npy': no file {tmp}/x.npy"),
    (None, ["data=image_folder", "data.source.path={tmp}"], "is not a folder of class folders"),
])
def test_a_missing_file_is_found_by_the_config_check(tmp_path, make, overrides, expect):
    if make == "csv":
        _csv(tmp_path / "t.csv")
    elif make == "npz":
        np.savez(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.zeros(3, int))
    errors = config_errors(compose([o.format(tmp=tmp_path) for o in overrides]))
    assert len(errors) == 1 and expect.format(tmp=tmp_path) in errors[0]


def test_the_config_check_reads_the_labels_not_the_inputs(tmp_path):
    """Labels, lengths and the split sizes of a user's arrays or table, found before a sweep starts."""
    x, y = _arrays(30)
    np.savez(tmp_path / "floats.npz", x=x, y=y + 0.5)
    np.save(tmp_path / "x.npy", x), np.save(tmp_path / "y.npy", y[:20])
    _csv(tmp_path / "few.csv", 4)
    cases = {
        ("data=npz", f"data.source.path={tmp_path / 'floats.npz'}"):
            "floats: the labels (data.source.labels='y') must be class ids, integers 0..K-1; they hold 0.5, 1.5",
        ("data=npy", f"data.source.path={tmp_path}"):
            ": 30 inputs (data.source.inputs='x.npy', shape (30, 5)) but 20 labels (data.source.labels='y.npy'",
        ("data=csv", f"data.source.path={tmp_path / 'few.csv'}", "data.source.target=species"):
            "too few examples for the splits: data.source gives 4",
        ("data=npz", f"data.source.path={tmp_path / 'floats.npz'}", "data.source.labels=x"):
            "x: 30 inputs (data.source.inputs='x', shape (30, 5)) but 30 labels",
    }
    for overrides, expect in list(cases.items())[:3]:
        errors = config_errors(compose(list(overrides)))
        assert len(errors) == 1 and expect in errors[0], (overrides, errors)
    assert "must be class ids" in config_errors(compose(list(list(cases)[3])))[0]     # 2-d labels
    np.savez(tmp_path / "objects.npz", x=x, y=np.array([{"a": 1}] * 30, dtype=object))
    errors = config_errors(compose(["data=npz", f"data.source.path={tmp_path / 'objects.npz'}"]))
    assert len(errors) == 1 and errors[0].startswith(f"data.source.path='{tmp_path / 'objects.npz'}' cannot be read: ")


# --- the command line: a real run, and what each rejection leaves behind ------------------------------

def test_a_csv_runs_end_to_end(tmp_path):
    _csv(tmp_path / "plants.csv", 120)
    run_dir = tmp_path / "run"
    result = run_ablate(["data=csv", f"data.source.path={tmp_path / 'plants.csv'}", "data.source.target=species",
                         "budget=smoke", f"hydra.run.dir={run_dir}"], tmp_path, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert '"status": "ok"' in (run_dir / "record.json").read_text()


@pytest.mark.parametrize("case", ["missing file", "labels"])
def test_a_bad_file_stops_the_command_and_writes_nothing(tmp_path, case):
    """Relaunched into a finished run's folder: the config check stops it before Hydra writes there."""
    data, cwd, earlier = tmp_path / "data", tmp_path / "cwd", tmp_path / "cwd" / "earlier"
    data.mkdir(), earlier.mkdir(parents=True)
    (earlier / "record.json").write_text('{"status": "ok"}')
    if case == "labels":
        _csv(data / "t.csv", 30, labels=[0.5, 1.5, 2.5] * 10)
    result = run_ablate(["data=csv", f"data.source.path={data / 't.csv'}", "data.source.target=species",
                         "budget=smoke", f"hydra.run.dir={earlier}"], cwd, timeout=300)
    assert result.returncode == 2, (result.stdout + result.stderr)[-3000:]
    expect = "no such file" if case == "missing file" else "must be class ids, integers 0..K-1; they hold 0.5, 1.5"
    assert expect in result.stderr
    assert os.listdir(cwd) == ["earlier"] and os.listdir(earlier) == ["record.json"]       # nothing written
    assert (earlier / "record.json").read_text() == '{"status": "ok"}'                     # nor lost
    assert os.listdir(data) == ([] if case == "missing file" else ["t.csv"])


def test_the_config_check_of_a_users_files_imports_no_torch(tmp_path):
    import subprocess

    from tests.support import PYTHON, subprocess_env

    np.savez(tmp_path / "a.npz", x=np.zeros((30, 2)), y=np.arange(30) % 2)
    _csv(tmp_path / "t.csv")
    code = ("import sys; from ablate.inputs import data_errors; from omegaconf import OmegaConf\n"
            f"for s in [dict(_target_='ablate.data.sources.arrays', path='{tmp_path / 'a.npz'}'),\n"
            f"          dict(_target_='ablate.data.sources.table', path='{tmp_path / 't.csv'}', target='species')]:\n"
            "    assert data_errors(OmegaConf.create(dict(batch_size=8, val_fraction=0.1, test_fraction=0.2,\n"
            "                                             source=s))) == []\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([PYTHON, "-c", code], env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr[-2000:]
