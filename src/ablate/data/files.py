"""A user's own data: arrays in ``.npz`` / ``.npy`` files, a CSV table, a folder of images, or
whatever a source function of theirs returns (arrays, or a map-style ``torch.utils.data.Dataset``).
Each becomes a :class:`~ablate.data.sources.Dataset` after the checks every source's data must pass:
as many labels as inputs, labels that are class ids (integers >= 0), numeric inputs. A problem
raises :class:`ValueError` (a missing file :class:`FileNotFoundError`) naming the field and what
would work, before anything trains. The file checks are shared with the config check
(:mod:`ablate.inputs`), which runs them before a sweep starts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ablate.data.dataset import Dataset
from ablate.inputs import labels_problem, missing_arrays, missing_images, missing_table, npy_file, rows_problem

log = logging.getLogger(__name__)


def checked(x: Any, y: Any, name: str, inputs: str = "inputs", labels: str = "labels",
            num_samples: int | None = None) -> Dataset:
    """``x`` and ``y`` as a :class:`Dataset`, its classes ``0..max(y)``; ``inputs`` and ``labels``
    are how the messages call the two (the fields that named them)."""
    x, y = np.asarray(x), np.asarray(y)
    if problem := rows_problem(name, inputs, x.shape, labels, y.shape):
        raise ValueError(problem)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{name}: the inputs ({inputs}) are {x.dtype}, not numbers: give numeric features")
    if problem := labels_problem(y, name, labels):
        raise ValueError(problem)
    y = y.astype(np.int64)
    if num_samples:
        x, y = x[:num_samples], y[:num_samples]
    return Dataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long),   # copies: never read-only
                   int(y.max()) + 1 if y.size else 0, name)


def _require(problem: str | None) -> None:
    if problem is not None:
        raise FileNotFoundError(problem)


def arrays(path: str, inputs: str = "x", labels: str = "y", num_samples: int | None = None) -> Dataset:
    """Inputs and labels from a ``.npz`` file (``inputs``, ``labels``: its keys, as written by
    ``np.savez(path, x=..., y=...)``) or from two ``.npy`` files in the folder ``path`` (their
    names). Inputs keep their shape: (N, F) vectors, (N, C, L) signals, (N, C, H, W) images."""
    _require(missing_arrays(path, inputs, labels))
    file = Path(str(path)).expanduser()
    if file.suffix == ".npz":
        with np.load(file, allow_pickle=False) as f:
            x, y = f[inputs], f[labels]
    else:
        x, y = (np.load(npy_file(file, name), allow_pickle=False) for name in (inputs, labels))
    return checked(x, y, file.stem, f"data.source.inputs={inputs!r}", f"data.source.labels={labels!r}", num_samples)


def table(path: str, target: str = "label", features: Sequence[str] | None = None,
          num_samples: int | None = None) -> Dataset:
    """A CSV file, one example a row: the column ``target`` holds the labels, and the ``features``
    columns (by default every other numeric column) the inputs, as (F,) vectors."""
    import pandas as pd

    if problem := missing_table(path, target, features):
        raise (ValueError if Path(str(path)).expanduser().is_file() else FileNotFoundError)(problem)
    frame = pd.read_csv(Path(str(path)).expanduser())
    if features is None:
        rest = frame.drop(columns=[target])
        numeric = rest.select_dtypes("number")
        if skipped := [c for c in rest.columns if c not in numeric.columns]:
            log.warning("%s: not numeric, left out of the features: %s", path, ", ".join(map(str, skipped)))
        features = list(numeric.columns)
    if not len(features):
        raise ValueError(f"{path}: no numeric column besides data.source.target={target!r}; "
                         "the features must be numbers")
    if empty := [str(c) for c in [*features, target] if frame[c].isna().any()]:
        raise ValueError(f"{path}: empty cells in the columns {', '.join(empty)}; fill or drop those rows first")
    return checked(frame[list(features)].to_numpy(np.float32), frame[target].to_numpy(), Path(str(path)).stem,
                   "data.source.features", f"data.source.target={target!r}", num_samples)


def image_folder(path: str, size: Sequence[int] | None = None, grayscale: bool = False,
                 num_samples: int | None = None) -> Dataset:
    """``torchvision.datasets.ImageFolder``: one sub-folder of images a class (classes in sorted
    order), as (C, H, W) in [0, 1]; ``size`` [H, W] resizes them (needed when they differ),
    ``grayscale`` gives one channel instead of three."""
    _require(missing_images(path))
    try:
        from torchvision.datasets import ImageFolder
    except ImportError as e:
        raise RuntimeError("data=image_folder needs torchvision: pip install 'ablate[vision]'") from e

    def to_array(image) -> np.ndarray:
        image = image.convert("L" if grayscale else "RGB")
        if size is not None:
            image = image.resize((int(size[1]), int(size[0])))
        return np.asarray(image)

    folder = ImageFolder(str(Path(str(path)).expanduser()), transform=to_array)
    count = min(len(folder), num_samples or len(folder))
    images, labels = zip(*(folder[i] for i in _spread(count, len(folder))))
    if len({a.shape for a in images}) > 1:
        shapes = sorted({a.shape[:2] for a in images})
        raise ValueError(f"data.source.path={path!r}: the images differ in size ({shapes[0]} and {shapes[-1]}, "
                         f"H x W); set data.source.size=[H,W] to resize them")
    x = np.stack(images).astype(np.float32) / 255.0
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    data = checked(x, np.asarray(labels), Path(str(path)).name)
    return Dataset(data.x, data.y, len(folder.classes), data.name)


def _spread(count: int, total: int) -> np.ndarray:
    """``count`` of ``total`` indices, evenly spaced: ImageFolder lists the images class by class,
    so the first ``count`` would hold the first classes only."""
    return np.linspace(0, total - 1, count).round().astype(int) if count < total else np.arange(total)


def as_dataset(source: Any) -> Dataset:
    """What a source function returned, as a :class:`Dataset`: a Dataset as it is, a pair of arrays
    ``(inputs, labels)``, or a map-style ``torch.utils.data.Dataset`` whose items are such pairs."""
    if isinstance(source, Dataset):
        return source
    if isinstance(source, (tuple, list)) and len(source) == 2:
        x, y = (v.numpy() if isinstance(v, torch.Tensor) else v for v in source)
        return checked(x, y, "data.source", "the first array data.source returned", "the second")
    if isinstance(source, torch.utils.data.Dataset) and hasattr(source, "__len__"):
        items = [source[i] for i in range(len(source))]
        if not items or any(not isinstance(item, (tuple, list)) or len(item) != 2 for item in items):
            raise ValueError(f"data.source returned a {type(source).__name__} whose items are not (input, label) "
                             "pairs" if items else f"data.source returned an empty {type(source).__name__}")
        xs, ys = zip(*items)
        try:
            x = torch.stack([torch.as_tensor(np.asarray(v, dtype=np.float32)) for v in xs]).numpy()
        except (TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"data.source returned a {type(source).__name__} whose inputs are {type(xs[0]).__name__}s"
                             f" that do not stack into one array ({e}): give arrays or tensors of one shape (a "
                             "torchvision set: transform=torchvision.transforms.ToTensor())") from None
        return checked(x, np.asarray([np.asarray(v) for v in ys]), type(source).__name__, "its inputs", "its labels")
    raise ValueError(f"data.source._target_ returned a {type(source).__name__}; a source must return an "
                     "ablate.data.Dataset, a pair of arrays (inputs, labels) with one row an example, or a "
                     "map-style torch.utils.data.Dataset of (input, label) pairs")
