"""The data sources (``ablate.data.sources``): shapes, dtypes, determinism, what each task's labels
mean, MNIST-1D's disk cache, and the shipped data configs."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pytest
import torch
from hydra.utils import get_method, instantiate

from ablate import inputs
from ablate.data import DataModule, Dataset
from ablate.data import sources
from ablate.validate import config_errors
from tests.support import choices, compose, group


def _check(d: Dataset, n: int, shape: tuple, num_classes: int):
    assert isinstance(d, Dataset)
    assert d.x.dtype == torch.float32 and d.y.dtype == torch.int64
    assert d.x.shape == (n, *shape) and d.y.shape == (n,)
    assert d.input_shape == shape
    assert d.num_classes == num_classes
    assert int(d.y.min()) >= 0 and int(d.y.max()) < num_classes
    assert torch.isfinite(d.x).all()


def test_synthetic():
    d = sources.synthetic(num_samples=400, num_features=12, num_classes=3, informative=6, seed=1)
    _check(d, 400, (12,), 3)
    assert set(d.y.tolist()) == {0, 1, 2}
    again = sources.synthetic(num_samples=400, num_features=12, num_classes=3, informative=6, seed=1)
    assert torch.equal(d.x, again.x) and torch.equal(d.y, again.y)
    other = sources.synthetic(num_samples=400, num_features=12, num_classes=3, informative=6, seed=2)
    assert not torch.equal(d.x, other.x)


def test_digits():
    d = sources.digits()
    _check(d, 1797, (1, 8, 8), 10)
    assert set(d.y.tolist()) == set(range(10))
    assert float(d.x.min()) == 0.0 and float(d.x.max()) == 1.0
    assert d.name == "digits"


def test_mnist1d():
    d = sources.mnist1d(num_samples=200, seed=42)
    _check(d, 200, (1, 40), 10)
    assert set(d.y.tolist()) == set(range(10))
    again = sources.mnist1d(num_samples=200, seed=42)
    assert torch.equal(d.x, again.x)


@pytest.fixture
def mnist1d_cache(tmp_path, monkeypatch):
    """An empty disk cache and an empty in-process cache; counts the calls of mnist1d's generator."""
    import mnist1d.data

    monkeypatch.setenv("ABLATE_CACHE_DIR", str(tmp_path / "cache"))
    sources._mnist1d_arrays.cache_clear()
    calls = []
    make = mnist1d.data.make_dataset
    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda args: (calls.append(args.num_samples), make(args))[1])
    yield tmp_path / "cache", calls
    sources._mnist1d_arrays.cache_clear()


def test_mnist1d_is_generated_once_across_processes(mnist1d_cache):
    folder, calls = mnist1d_cache
    first = sources.mnist1d(num_samples=150, seed=3)
    assert calls == [150] and [p.name for p in folder.iterdir()] == \
        [f"mnist1d-{version('mnist1d')}-n150-seed3.npz"]                    # no temporary file left
    sources._mnist1d_arrays.cache_clear()                                 # as a fresh process would start
    again = sources.mnist1d(num_samples=150, seed=3)
    assert calls == [150]                                                 # read from disk, not generated
    assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y)
    sources.mnist1d(num_samples=150, seed=4)
    assert calls == [150, 150] and len(list(folder.iterdir())) == 2       # the seed is part of the key


def test_a_torn_cache_file_is_generated_again(mnist1d_cache):
    folder, calls = mnist1d_cache
    fresh = sources.mnist1d(num_samples=120, seed=0)
    (path,) = folder.iterdir()
    path.write_bytes(path.read_bytes()[:100])                             # a write cut short
    sources._mnist1d_arrays.cache_clear()
    again = sources.mnist1d(num_samples=120, seed=0)
    assert calls == [120, 120] and torch.equal(fresh.x, again.x)
    sources._mnist1d_arrays.cache_clear()
    sources.mnist1d(num_samples=120, seed=0)
    assert calls == [120, 120]                                            # and written whole this time


def test_no_disk_cache_when_off_or_not_writable(mnist1d_cache, monkeypatch, tmp_path):
    _, calls = mnist1d_cache
    monkeypatch.setenv("ABLATE_CACHE_DIR", "off")
    sources.mnist1d(num_samples=100, seed=0)
    sources._mnist1d_arrays.cache_clear()
    sources.mnist1d(num_samples=100, seed=0)
    assert calls == [100, 100] and sources.cache_dir() is None
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("ABLATE_CACHE_DIR", str(blocker / "cache"))     # cannot be created: runs uncached
    sources._mnist1d_arrays.cache_clear()
    assert sources.mnist1d(num_samples=100, seed=0).x.shape == (100, 1, 40)


def test_recall_label_is_the_first_symbol():
    d = sources.recall(num_samples=300, length=20, num_symbols=8, seed=3)
    _check(d, 300, (16, 20), 8)                  # (alphabet = 2 * num_symbols channels, length steps)
    assert d.name == "recall20"
    assert torch.equal(d.x.sum(1), torch.ones(300, 20))        # one-hot at every step
    symbols = d.x.argmax(1)                                     # (N, L) symbol ids
    assert torch.equal(symbols[:, 0], d.y)                      # label = symbol at step 0
    assert (symbols[:, 1:] >= 8).all()                          # every later step is a distractor
    assert set(d.y.tolist()) == set(range(8))


def test_adding_labels_follow_the_marked_sum():
    d = sources.adding(num_samples=500, length=30, seed=0)
    _check(d, 500, (2, 30), 2)
    values, markers = d.x[:, 0], d.x[:, 1]
    assert torch.equal(markers.sum(1), torch.full((500,), 2.0))
    assert (markers[:, :15].sum(1) == 1).all()                  # one marker in the first half
    marked_sum = (values * markers).sum(1)
    assert torch.equal(d.y, (marked_sum > 1.0).long())
    assert 0.35 < d.y.float().mean() < 0.65                     # roughly balanced


def test_vision_missing_root_shows_the_layout(tmp_path):
    root = tmp_path / "nothing_here"
    with pytest.raises(FileNotFoundError) as info:
        sources.vision("mnist", str(root))
    message = str(info.value)
    assert str(root) in message
    assert f"{root}/MNIST/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte" in message
    assert "never downloads" in message
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py/\{data_batch_1\.\.5"):
        sources.vision("cifar10", str(root))
    with pytest.raises(ValueError, match="data.source.name='svhn' is invalid; valid values: mnist, fashion_mnist, cifar10"):
        sources.vision("svhn", str(root))


def test_vision_config_is_rejected_before_running(tmp_path):
    errors = config_errors(compose(["data=fashion_mnist", f"data.source.root={tmp_path}"]))
    assert len(errors) == 1
    assert "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte" in errors[0]


@pytest.mark.parametrize("data,shape,classes", [
    ("mnist1d", (1, 40), 10), ("digits", (1, 8, 8), 10), ("synthetic", (20,), 4),
    ("recall", (16, 50), 8), ("adding", (2, 50), 2),
])
def test_datamodule_from_config(data, shape, classes):
    dm = instantiate(compose([f"data={data}", "budget=smoke"]).data)
    assert isinstance(dm, DataModule)
    assert dm.input_shape == shape and dm.num_classes == classes
    n = 1797 if data == "digits" else 600
    assert sum(len(y) for _, y in dm.splits.values()) == n


@pytest.mark.parametrize("task", ["copy", "reverse", "sort"])
def test_seq2seq_targets_follow_the_task(task):
    d = sources.seq2seq(task, length=6, num_symbols=5, num_samples=300, seed=1)
    assert d.x.dtype == torch.float32 and d.y.dtype == torch.int64
    assert d.x.shape == (300, 5, 6) and d.y.shape == (300, 6)   # one-hot (symbols, length); one class per step
    assert d.input_shape == (5, 6) and d.num_classes == 5 and d.name == f"{task}6"
    assert torch.equal(d.x.sum(1), torch.ones(300, 6))          # one-hot at every step
    symbols = d.x.argmax(1)
    expected = {"copy": symbols, "reverse": symbols.flip(1), "sort": symbols.sort(1).values}[task]
    assert torch.equal(d.y, expected)
    assert set(symbols.flatten().tolist()) == set(range(5))
    again = sources.seq2seq(task, length=6, num_symbols=5, num_samples=300, seed=1)
    assert torch.equal(d.x, again.x) and torch.equal(d.y, again.y)
    assert not torch.equal(d.x, sources.seq2seq(task, length=6, num_symbols=5, num_samples=300, seed=2).x)


def test_seq2seq_rejects_an_unknown_task():
    with pytest.raises(ValueError, match="data.source.task='shuffle' is invalid; valid values: copy, reverse, sort"):
        sources.seq2seq("shuffle")


@pytest.mark.parametrize("data", ["copy", "reverse", "sort"])
def test_seq2seq_configs(data):
    cfg = compose([f"data={data}", "budget=smoke", "data.source.length=5"])
    assert cfg.data.source.task == data
    dm = instantiate(cfg.data)
    assert dm.input_shape == (8, 5) and dm.num_classes == 8
    x, y = dm.splits["train"]
    assert y.shape == (len(x), 5)
    assert sum(len(y) for _, y in dm.splits.values()) == 600


# --- the table the config check reads (ablate.inputs) matches the sources ------------------------

def test_the_source_table_matches_the_sources():
    """Each source's entry: the dims of the samples it gives, fields it takes; seq2seq's tasks."""
    built = {"synthetic": sources.synthetic(num_samples=50), "digits": sources.digits(),
             "mnist1d": sources.mnist1d(num_samples=50), "recall": sources.recall(num_samples=50),
             "adding": sources.adding(num_samples=50), "seq2seq": sources.seq2seq(num_samples=50)}
    assert set(inputs.SOURCES) == {*built, "vision", "arrays", "table", "image_folder"}   # the last: a user's files
    assert {name: len(d.input_shape) for name, d in built.items()} == \
        {name: inputs.SOURCES[name].sample_dims for name in built}
    assert [name for name, d in built.items() if d.y.dim() == 2] == \
        [name for name, s in inputs.SOURCES.items() if s.per_position]
    for name, entry in inputs.SOURCES.items():
        assert set(entry.fields) <= set(inspect.signature(getattr(sources, name)).parameters), name
    assert tuple(sources.TARGETS) == inputs.SEQ2SEQ_TASKS


@pytest.mark.parametrize("data", choices("data"))
def test_every_shipped_data_config_names_a_source_in_the_table(data):
    node = group("data", data)
    name = node.source._target_.rsplit(".", 1)[-1]
    assert inputs.source_of(node.source._target_) is inputs.SOURCES[name]
    assert get_method(node.source._target_) is getattr(sources, name)
    assert set(node.source) - {"_target_"} <= set(inspect.signature(getattr(sources, name)).parameters)
    assert set(inputs.DATAMODULE) | set(node) - {"_target_"} <= set(inspect.signature(DataModule).parameters)
    not_here = ("mnist", "fashion_mnist", "cifar10", "torchvision", "npz", "csv", "image_folder", "npy")
    assert inputs.data_errors(node) == [] or data in not_here   # not on disk here, or a user's file to name
