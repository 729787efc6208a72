"""Data sources, all offline. Each returns a :class:`Dataset` in the channel-first layout of
:mod:`ablate.nn.parts`: (F,) vectors, (C, L) signals/sequences, (C, H, W) images."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from ablate.data.dataset import Dataset
from ablate.data.files import arrays, image_folder, table  # noqa: F401  (ablate.data.sources.<name>)
from ablate.inputs import SOURCES, VISION, missing_vision_files

log = logging.getLogger(__name__)


def _dataset(x, y, num_classes: int, name: str) -> Dataset:
    """Tensors of their own (copies: never views of arrays a source keeps for the next job of the
    process, so nothing a run does to its data reaches another run's)."""
    return Dataset(torch.tensor(np.asarray(x), dtype=torch.float32),
                   torch.tensor(np.asarray(y), dtype=torch.long), num_classes, name)


def synthetic(num_samples: int = 2000, num_features: int = 20, num_classes: int = 4, informative: int = 10,
              seed: int = 0) -> Dataset:
    """A non-linear classification task from scikit-learn's ``make_classification`` (clusters on
    hypercube vertices), generated in memory."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=num_samples, n_features=num_features, n_informative=informative,
                               n_redundant=0, n_classes=num_classes, n_clusters_per_class=2,
                               class_sep=1.0, random_state=seed)
    return _dataset(x, y, num_classes, "synthetic")


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return _read_only(d.images[:, None] / 16.0), _read_only(d.target)


def digits() -> Dataset:
    """scikit-learn's bundled 8×8 handwritten digits (1797 images, 10 classes), as (1, 8, 8) in [0, 1].
    Read once a process (~80 ms: scikit-learn parses its bundled CSV every time), not once a job."""
    x, y = _digits_arrays()
    return _dataset(x, y, 10, "digits")


def _read_only(array: np.ndarray) -> np.ndarray:
    """An array a process keeps for its next jobs (the per-process caches here), made read-only so
    that nothing can change it in place."""
    array.setflags(write=False)
    return array


def cache_dir() -> Path | None:
    """Where generated data sets are kept between processes: ``$ABLATE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/ablate``, else ``~/.cache/ablate``. ``ABLATE_CACHE_DIR=off`` (or empty) turns
    the disk cache off."""
    configured = os.environ.get("ABLATE_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "0", "false", "none") else Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ablate"


def _load_npz(path: Path, num_samples: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = f["x"], f["y"]
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 - a torn or foreign file: generate the data again
        log.warning("ignoring the unreadable cached data set %s (%s); generating it again", path, e)
        return None
    if len(x) != num_samples or len(y) != num_samples:
        log.warning("ignoring the cached data set %s: %d samples, not %d", path, len(x), num_samples)
        return None
    return x, y


def _save_npz(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Written to a temporary file beside ``path`` and renamed: a reader (another worker of the same
    sweep) sees the whole file or none. A cache that cannot be written is skipped, not an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        log.info("not caching %s: %s", path, e)
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x=x, y=y)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if not isinstance(e, OSError):
            raise
        log.warning("not caching %s: %s", path, e)      # a full disk, say: the run goes on without it


@functools.lru_cache(maxsize=8)
def _mnist1d_arrays(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from importlib.metadata import version

    folder = cache_dir()
    path = folder / f"mnist1d-{version('mnist1d')}-n{num_samples}-seed{seed}.npz" if folder else None
    cached = _load_npz(path, num_samples) if path else None
    if cached is not None:
        return _read_only(cached[0]), _read_only(cached[1])
    # make_dataset generates in memory; the package's get_dataset would try a download and write a pickle.
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    d = make_dataset(args)
    x, y = np.concatenate([d["x"], d["x_test"]]), np.concatenate([d["y"], d["y_test"]])
    if path:
        _save_npz(path, x, y)
    return _read_only(x), _read_only(y)


def mnist1d(num_samples: int = 5000, seed: int = 42) -> Dataset:
    """MNIST-1D (Greydanus 2020): 10 digit templates as 40-sample 1-D signals with shifts, shear and
    noise. Returned as (1, 40) signals; MLPs flatten them, sequence models read 40 steps.
    Generation costs ~1 s per 1000 samples, so the arrays are kept in memory for the process and on
    disk (:func:`cache_dir`, one ``.npz`` per size, seed and mnist1d version) for the next ones:
    every worker of a parallel sweep would otherwise generate them again."""
    x, y = _mnist1d_arrays(int(num_samples), int(seed))
    return _dataset(x[:, None, :], y, 10, "mnist1d")


def recall(num_samples: int = 4000, length: int = 50, num_symbols: int = 8, seed: int = 0) -> Dataset:
    """A long-range memory task: the first step shows one of ``num_symbols`` symbols (one-hot), the
    next ``length - 1`` steps are noise symbols from a disjoint alphabet, and the label is the first
    symbol. Solvable only by carrying information across the whole sequence, so accuracy vs
    ``length`` separates plain RNNs from gated cells and attention. Chance is 1/num_symbols."""
    rng = np.random.default_rng(seed)
    alphabet = 2 * num_symbols                      # symbols 0..k-1 are targets, k..2k-1 are distractors
    labels = rng.integers(0, num_symbols, num_samples)
    steps = rng.integers(num_symbols, alphabet, (num_samples, length))
    steps[:, 0] = labels
    onehot = np.eye(alphabet, dtype=np.float32)[steps]           # (N, L, alphabet)
    return _dataset(onehot.transpose(0, 2, 1), labels, num_symbols, f"recall{length}")


def adding(num_samples: int = 4000, length: int = 50, seed: int = 0) -> Dataset:
    """Hochreiter & Schmidhuber's adding problem as classification: each step is (value, marker); two
    steps are marked, one in the first half; the label says whether the two marked values sum to
    more than 1 (balanced classes, chance 50%)."""
    rng = np.random.default_rng(seed)
    values = rng.random((num_samples, length))
    markers = np.zeros((num_samples, length))
    first = rng.integers(0, length // 2, num_samples)
    second = rng.integers(length // 2, length, num_samples)
    rows = np.arange(num_samples)
    markers[rows, first] = markers[rows, second] = 1.0
    labels = (values[rows, first] + values[rows, second] > 1.0).astype(np.int64)
    return _dataset(np.stack([values, markers], axis=1), labels, 2, f"adding{length}")


TARGETS = {  # ablate.inputs.SEQ2SEQ_TASKS: the target sequence of each row of symbols (N, length)
    "copy": lambda symbols: symbols,
    "reverse": lambda symbols: symbols[:, ::-1],
    "sort": lambda symbols: np.sort(symbols, axis=1),
}


def seq2seq(task: str = "copy", length: int = 8, num_symbols: int = 8, num_samples: int = 4000,
            seed: int = 0) -> Dataset:
    """A sequence-to-sequence task: the input is ``length`` uniform random symbols, one-hot,
    ``(num_symbols, length)``; the target is the same symbols copied, reversed or sorted, ``(length,)``
    class ids, one per output step. No delimiter or start channel: a decoding family adds its own start
    token. Copy and reverse need the whole input carried to the decoder (for reverse, the first output
    is the last input); sort also needs counting. Per-token chance is 1/num_symbols (sort's positions
    have skewed marginals - the first sorted symbol is usually a small one - so a model that learns
    only those beats it); whole-sequence chance is num_symbols**-length."""
    SOURCES["seq2seq"].fields["task"].require("data.source.task", task)
    rng = np.random.default_rng(seed)
    symbols = rng.integers(0, num_symbols, (num_samples, length))
    onehot = np.eye(num_symbols, dtype=np.float32)[symbols]                 # (N, L, num_symbols)
    targets = np.ascontiguousarray(TARGETS[task](symbols))
    return _dataset(onehot.transpose(0, 2, 1), targets, num_symbols, f"{task}{length}")


def vision(name: str, root: str, num_samples: int | None = None, download: bool = False) -> Dataset:
    """A torchvision data set read from a local ``root``; train and test files are pooled and re-split
    by the DataModule like every other source. Offline by default: with ``download`` (a machine with
    a network) torchvision fetches the files that ``root`` lacks."""
    SOURCES["vision"].fields["name"].require("data.source.name", name)
    problem = None if download else missing_vision_files(name, root)
    if problem:
        raise FileNotFoundError(problem)
    try:
        import torchvision
    except ImportError as e:
        raise RuntimeError(f"data={name} needs torchvision: pip install 'ablate[vision]'") from e
    cls_name, _, _, num_classes = VISION[name]
    cls = getattr(torchvision.datasets, cls_name)
    parts = [cls(str(Path(root).expanduser()), train=train, download=bool(download)) for train in (True, False)]
    xs, ys = [], []
    for part in parts:
        data = torch.as_tensor(np.asarray(part.data))
        data = data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2)   # (N, C, H, W)
        xs.append(data.float() / 255.0)
        ys.append(torch.as_tensor(np.asarray(part.targets)))
    x, y = torch.cat(xs), torch.cat(ys).long()
    if num_samples:
        x, y = x[:num_samples], y[:num_samples]
    return Dataset(x, y, num_classes, name)
