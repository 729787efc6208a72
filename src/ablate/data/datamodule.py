from __future__ import annotations

from typing import Any, Callable, Sequence

import lightning as L
import torch

from ablate.data.dataset import Dataset
from ablate.data.files import as_dataset
from ablate.inputs import layout_error, split_problem

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class BatchGroup(list):
    """Several consecutive ``(x, y)`` batches handed to one ``training_step`` call (see
    ``AblationModule.steps_per_call``); a type of its own so that it is never mistaken for a batch."""


def batch_rows(batch) -> int:
    """Training samples in a batch as the loader yields it: an ``(x, y)`` pair, a
    :class:`MemberBatch` (K·N samples) or a :class:`BatchGroup` of them."""
    if isinstance(batch, BatchGroup):
        return sum(batch_rows(b) for b in batch)
    y = batch[1]
    return int(y.shape[0] * y.shape[1]) if isinstance(batch, MemberBatch) else int(y.shape[0])


class MemberBatch(tuple):
    """``(x, y)`` with a leading member axis, ``(K, N, ...)``: one batch per member of a vectorized run."""


class IndexLoader:
    """Batches in-memory tensors by index: one permutation per epoch and one gather per batch, no
    per-sample Python and no worker processes. Under DDP each rank reads its own shard.

    The shuffle order is a function of (seed, epoch) alone, ``epoch`` read from ``epoch_fn`` (the
    trainer's epoch), so a run resumed from a checkpoint sees the same batches as one never stopped.
    ``seed`` may be a list (the seeds of a vectorized run's members): each member then gets the
    permutation its own seed would give, and each batch is gathered for all members at once as a
    :class:`MemberBatch` ``(K, N, ...)``. ``group`` > 1 yields :class:`BatchGroup` s of up to that
    many batches (the same batches, in the same order); its length is then the number of groups.
    ``augment`` (training batches) is applied on the tensors' device with a generator seeded by
    (first seed, epoch).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
                 seed: int | Sequence[int] = 0, rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 epoch_fn=lambda: 0, group: int = 1, augment: Augment | None = None):
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seeds = [int(s) for s in seed] if isinstance(seed, Sequence) else None
        self.seed = self.seeds[0] if self.seeds else int(seed)
        self.rank, self.world_size = rank, world_size
        self.epoch_fn = epoch_fn
        self.group = max(1, int(group))
        self.augment = augment

    def _num_rows(self) -> int:
        n = len(self.y)
        # training shards are cut to equal size so every rank takes the same number of steps
        return n // self.world_size if self.shuffle else len(range(self.rank, n, self.world_size))

    def num_batches(self) -> int:
        """Batches per epoch (each of them an optimizer step in training)."""
        rows = self._num_rows()
        return rows // self.batch_size if self.drop_last else -(-rows // self.batch_size)

    def __len__(self) -> int:
        return -(-self.num_batches() // self.group)

    def __iter__(self):
        if self.group == 1:
            yield from self._batches()
            return
        group = BatchGroup()
        for batch in self._batches():
            group.append(batch)
            if len(group) == self.group:
                yield group
                group = BatchGroup()
        if group:
            yield group

    def _order(self, seed: int, epoch: int) -> torch.Tensor:
        n = len(self.y)
        if self.shuffle:
            generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
            order = torch.randperm(n, generator=generator)[: self._num_rows() * self.world_size]
        else:
            order = torch.arange(n)
        return order[self.rank :: self.world_size].to(self.x.device)

    def _batches(self):
        epoch = self.epoch_fn()
        members = self.seeds is not None and self.shuffle
        order = torch.stack([self._order(s, epoch) for s in self.seeds]) if members else self._order(self.seed, epoch)
        # each run (each member) draws its augmentations from its own generator, so that member k of a
        # vectorized job sees the batches the one run of its seed would
        generators = []
        if self.augment is not None:
            generators = [torch.Generator(device=self.x.device).manual_seed(s * 100_003 + epoch)
                          for s in (self.seeds if members else [self.seed])]
        for i in range(self.num_batches()):
            idx = order[..., i * self.batch_size : (i + 1) * self.batch_size]
            x, y = self.x[idx], self.y[idx]
            if generators and members:
                x = torch.stack([self.augment(x[k], g) for k, g in enumerate(generators)])
            elif generators:
                x = self.augment(x, generators[0])
            yield MemberBatch((x, y)) if members else (x, y)


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """The validation and test sizes of ``n`` examples; :class:`ValueError` when a split would be empty
    (the test split may be, where ``test_fraction`` is 0), with the fewest examples that would do."""
    if problem := split_problem(n, val_fraction, test_fraction):
        raise ValueError(problem)
    return round(n * val_fraction), round(n * test_fraction)


class DataModule(L.LightningDataModule):
    """Splits one in-memory :class:`Dataset` (or what a user's source function returned: see
    :func:`ablate.data.files.as_dataset`) into train/val/test (seeded) and serves
    :class:`IndexLoader` batches, with the tensors on the accelerator when there is one.

    ``seed`` orders the training batches; a list of seeds (a vectorized run) gives one order per
    member. ``batches_per_call`` groups training batches for ``AblationModule(steps_per_call=...)``:
    ``ablate.run.build`` gives both the same value. ``augment`` transforms training batches only.
    """

    def __init__(self, source: Dataset | Any, batch_size: int = 128, val_fraction: float = 0.15,
                 test_fraction: float = 0.15, split_seed: int = 0, train_size: int | None = None,
                 eval_batch_size: int = 1024, seed: int | Sequence[int] = 0, on_device: bool = True,
                 batches_per_call: int = 1, augment: Augment | None = None):
        super().__init__()
        source = as_dataset(source)
        self.source, self.batch_size, self.eval_batch_size = source, batch_size, eval_batch_size
        self.seed, self.on_device = seed, on_device
        self.batches_per_call, self.augment = max(1, int(batches_per_call)), augment
        if message := layout_error(type(augment).__name__.lower(), getattr(augment, "sample_dims", None), source.name,
                                   len(source.input_shape)):
            raise ValueError(message)
        n = len(source.y)
        n_val, n_test = split_sizes(n, val_fraction, test_fraction)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
        test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
        if train_size is not None:
            train = train[:train_size]
        self.splits = {name: (source.x[idx], source.y[idx]) for name, idx in
                       (("train", train), ("val", val), ("test", test))}

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.source.input_shape

    @property
    def num_classes(self) -> int:
        return self.source.num_classes

    @property
    def target_shape(self) -> tuple[int, ...]:
        """``()`` for one label a sample, ``(L,)`` for one label a position (sequence outputs)."""
        return tuple(self.source.y.shape[1:])

    def setup(self, stage: str | None = None) -> None:
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if self.on_device and device.type != "cpu":
            self.splits = {k: (x.to(device), y.to(device)) for k, (x, y) in self.splits.items()}

    def _loader(self, split: str, batch_size: int, shuffle: bool, group: int = 1,
                augment: Augment | None = None) -> IndexLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        x, y = self.splits[split]
        return IndexLoader(x, y, batch_size, shuffle=shuffle, seed=self.seed, rank=rank, world_size=world,
                           epoch_fn=lambda: self.trainer.current_epoch if self.trainer is not None else 0,
                           group=group, augment=augment)

    def train_dataloader(self) -> IndexLoader:
        return self._loader("train", self.batch_size, shuffle=True, group=self.batches_per_call,
                            augment=self.augment)

    def val_dataloader(self) -> IndexLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> IndexLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)
