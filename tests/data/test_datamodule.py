"""``ablate.data.datamodule``: the DataModule's seeded splits, and the IndexLoader's batching, shuffle
order (a function of seed and epoch alone) and sharding over ranks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate

from ablate.data import BatchGroup, DataModule, Dataset, IndexLoader
from tests.support import compose


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


def test_split_sizes_are_rounded_fractions():
    dm = DataModule(_rows(101), val_fraction=0.1, test_fraction=0.2)
    assert [len(_ids(dm, s)) for s in ("train", "val", "test")] == [101 - 10 - 20, 10, 20]


def test_the_split_depends_on_split_seed_alone():
    a = DataModule(_rows(), split_seed=0, seed=0)
    b = DataModule(_rows(), split_seed=0, seed=5)       # the training seed does not move the split
    c = DataModule(_rows(), split_seed=1, seed=0)
    for split in ("train", "val", "test"):
        assert _ids(a, split) == _ids(b, split)
        assert set(_ids(a, split)) != set(_ids(c, split))
        assert len(_ids(a, split)) == len(_ids(c, split))
    # the same through the shipped config: `seed` leaves the split alone, `data.split_seed` moves it
    splits = {o: instantiate(compose(["budget=smoke", o]).data).splits for o in ("seed=0", "seed=1", "data.split_seed=1")}
    for name in ("train", "val", "test"):
        for i in (0, 1):
            assert torch.equal(splits["seed=0"][name][i], splits["seed=1"][name][i]), name
        assert len(splits["seed=0"][name][1]) == len(splits["data.split_seed=1"][name][1])
    assert not torch.equal(splits["seed=0"]["test"][0], splits["data.split_seed=1"]["test"][0])


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


def test_shuffle_order_is_a_function_of_seed_and_epoch_read_at_iteration_time():
    """Reshuffled every epoch; a fresh loader at epoch e (a resumed run) gives that epoch's batches
    again; another seed another order; the epoch is read when iterating, not when built."""
    epoch = {"now": 0}
    d = _rows(103)

    def loader(seed: int = 0) -> IndexLoader:
        return IndexLoader(d.x, d.y, 10, shuffle=True, seed=seed, epoch_fn=lambda: epoch["now"])

    first = loader()
    orders = []
    for e in range(3):
        epoch["now"] = e
        orders.append(_epoch(first))
    assert orders[0] != orders[1] != orders[2] and sorted(orders[0]) == sorted(orders[1]) == list(range(103))
    for e in range(3):
        epoch["now"] = e
        assert _epoch(loader()) == orders[e] == _epoch(first)
    epoch["now"] = 0
    assert _epoch(loader(seed=1)) != orders[0]


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


def test_eval_loader_is_in_order_whatever_the_seed_and_epoch():
    for seed, epoch in ((0, 0), (3, 7)):
        loader = _loader(shuffle=False, seed=seed, epoch=epoch)
        assert _epoch(loader) == list(range(103))
        assert len(loader) == 11


def test_drop_last_drops_the_short_batch():
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
