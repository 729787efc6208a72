"""Data sources, the DataModule's splits and the IndexLoader's batching and sharding."""

from __future__ import annotations

from importlib.metadata import version
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate

from ablate.data import BatchGroup, DataModule, Dataset, IndexLoader
from ablate.data import sources
from ablate.validate import config_errors
from tests.support import compose


# --- sources -------------------------------------------------------------------------------------

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
    with pytest.raises(ValueError, match="valid: mnist, fashion_mnist, cifar10"):
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


# --- DataModule splits ---------------------------------------------------------------------------

def _rows(n: int = 1000) -> Dataset:
    # x[i] = i, so the rows of a split are readable from x
    return Dataset(torch.arange(n, dtype=torch.float32)[:, None], torch.arange(n) % 7, 7, "rows")


def _ids(dm: DataModule, split: str) -> list[int]:
    return dm.splits[split][0][:, 0].long().tolist()


def test_splits_disjoint_sizes_and_complete():
    dm = DataModule(_rows(1000), val_fraction=0.15, test_fraction=0.25, split_seed=0)
    train, val, test = (_ids(dm, s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (600, 150, 250)
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert sorted(train + val + test) == list(range(1000))
    # labels travel with their rows
    x, y = dm.splits["val"]
    assert torch.equal(y, x[:, 0].long() % 7)


def test_split_sizes_round():
    dm = DataModule(_rows(101), val_fraction=0.1, test_fraction=0.2)
    assert [len(_ids(dm, s)) for s in ("train", "val", "test")] == [101 - 10 - 20, 10, 20]


def test_splits_depend_on_split_seed_only():
    a = DataModule(_rows(), split_seed=0, seed=0)
    b = DataModule(_rows(), split_seed=0, seed=5)       # the training seed does not move the split
    c = DataModule(_rows(), split_seed=1, seed=0)
    for split in ("train", "val", "test"):
        assert _ids(a, split) == _ids(b, split)
        assert set(_ids(a, split)) != set(_ids(c, split))


def test_train_size_caps_training_only():
    full, capped = DataModule(_rows(), train_size=None), DataModule(_rows(), train_size=100)
    assert _ids(capped, "train") == _ids(full, "train")[:100]
    assert _ids(capped, "val") == _ids(full, "val") and _ids(capped, "test") == _ids(full, "test")


# --- IndexLoader ---------------------------------------------------------------------------------

def _epoch(loader: IndexLoader) -> list[int]:
    out = []
    for xb, yb in loader:
        assert len(xb) == len(yb) <= loader.batch_size
        assert torch.equal(yb, xb[:, 0].long() % 7)             # x and y gathered with the same index
        out += xb[:, 0].long().tolist()
    return out


def _loader(n=103, batch_size=10, epoch=0, seed=0, **kwargs) -> IndexLoader:
    d = _rows(n)
    return IndexLoader(d.x, d.y, batch_size, seed=seed, epoch_fn=lambda: epoch, **kwargs)


def test_training_epoch_covers_every_row_once():
    loader = _loader(shuffle=True)
    rows = _epoch(loader)
    assert len(loader) == 11 and len(rows) == 103
    assert sorted(rows) == list(range(103))
    assert rows != list(range(103))                             # shuffled


def test_shuffle_is_a_function_of_seed_and_epoch():
    e0, e0_again = _epoch(_loader(shuffle=True, epoch=0)), _epoch(_loader(shuffle=True, epoch=0))
    e1 = _epoch(_loader(shuffle=True, epoch=1))
    other_seed = _epoch(_loader(shuffle=True, epoch=0, seed=1))
    assert e0 == e0_again
    assert e0 != e1 and sorted(e0) == sorted(e1)
    assert e0 != other_seed


def test_epoch_is_read_at_iteration_time():
    epoch = {"now": 0}
    d = _rows(50)
    loader = IndexLoader(d.x, d.y, 8, shuffle=True, epoch_fn=lambda: epoch["now"])
    first = _epoch(loader)
    epoch["now"] = 1
    assert _epoch(loader) != first
    epoch["now"] = 0
    assert _epoch(loader) == first


@pytest.mark.parametrize("group", [1, 3, 11, 20])
def test_grouped_loader_yields_the_same_batches_in_groups(group):
    """``group`` > 1 (steps_per_call) regroups the epoch's batches; it never changes them."""
    plain = [(xb.clone(), yb.clone()) for xb, yb in _loader(shuffle=True, epoch=2)]
    loader = _loader(shuffle=True, epoch=2, group=group)
    groups = list(loader)
    assert len(loader) == len(groups) == -(-11 // group)
    if group == 1:
        assert all(isinstance(b, tuple) for b in groups)
        flat = groups
    else:
        assert all(isinstance(g, BatchGroup) for g in groups)
        assert [len(g) for g in groups] == [min(group, 11 - i) for i in range(0, 11, group)]
        flat = [b for g in groups for b in g]
    assert len(flat) == len(plain) == 11
    for (x, y), (x0, y0) in zip(flat, plain):
        assert torch.equal(x, x0) and torch.equal(y, y0)


def test_eval_loader_is_in_order():
    loader = _loader(shuffle=False)
    assert _epoch(loader) == list(range(103))
    assert len(loader) == 11


def test_drop_last():
    loader = _loader(shuffle=True, drop_last=True)
    assert len(loader) == 10 and len(_epoch(loader)) == 100


def test_two_rank_training_shards_disjoint_and_equal():
    shards = [_epoch(_loader(shuffle=True, rank=r, world_size=2, epoch=3)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 51              # 103 // 2 rows each
    assert not set(shards[0]) & set(shards[1])
    assert len(_loader(shuffle=True, rank=0, world_size=2)) == len(_loader(shuffle=True, rank=1, world_size=2))


def test_two_rank_eval_shards_cover_everything():
    shards = [_epoch(_loader(shuffle=False, rank=r, world_size=2)) for r in (0, 1)]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(103))


def test_datamodule_loaders_follow_the_trainer():
    """Rank, world size and epoch come from the attached trainer."""
    dm = DataModule(_rows(500), batch_size=16, eval_batch_size=64, seed=4)

    def attach(rank, epoch=0):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2, current_epoch=epoch,
                                     strategy=SimpleNamespace(root_device=torch.device("cpu")))

    shards = []
    for rank in (0, 1):
        attach(rank)
        dm.setup("fit")
        shards.append(_epoch(dm.train_dataloader()))
        assert dm.val_dataloader().batch_size == 64
    assert len(shards[0]) == len(shards[1]) == len(_ids(dm, "train")) // 2
    assert not set(shards[0]) & set(shards[1])
    assert set(shards[0]) | set(shards[1]) <= set(_ids(dm, "train"))
    attach(0, epoch=1)
    assert _epoch(dm.train_dataloader()) != shards[0]
    val = []
    for rank in (0, 1):
        attach(rank)
        val += _epoch(dm.val_dataloader())
    assert sorted(val) == sorted(_ids(dm, "val"))
