"""What the data side accepts, readable without importing torch (see :mod:`ablate.families` for why):
each data source (:mod:`ablate.data.sources`), the DataModule's split and batch fields, and each
augment transform (:mod:`ablate.data.augment`), with the sample layout each gives or takes. The
sources and transforms take their names and layouts from here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ablate.checks import (BOOLEAN, POSITIVE, Check, builtin, field_errors, in_range, integer, is_number, merged,
                           number, one_of, required, unknown_fields)

# dims of one sample -> how the messages call it (the layouts of ablate.nn.parts)
LAYOUTS = {1: "feature vectors", 2: "(C, L) signals", 3: "(C, H, W) images"}
SEQ2SEQ_TASKS = ("copy", "reverse", "sort")    # ablate.data.sources.seq2seq: the target of each
VISION = {  # name: (torchvision class, a file it needs under root, how the folder must look, classes)
    "mnist": ("MNIST", "MNIST/raw/train-images-idx3-ubyte",
              "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte", 10),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST/raw/train-images-idx3-ubyte",
                      "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte", 10),
    "cifar10": ("CIFAR10", "cifar-10-batches-py/data_batch_1",
                "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}", 10),
}


def missing_vision_files(name: str, root: str) -> str | None:
    """None when ``root`` holds data set ``name``, else a message showing the expected layout."""
    cls_name, needed, layout, _ = VISION[name]
    root_path = Path(root).expanduser()
    if (root_path / needed).exists():
        return None
    return (f"data.source.root={str(root_path)!r} does not hold {cls_name} (no {root_path / needed}). "
            f"Expected layout: {root_path}/{layout}. ablate never downloads: fetch it once where there is "
            f"network (torchvision.datasets.{cls_name}(root, download=True)) and copy the folder here.")


def _vision_files(source: Any) -> str | None:
    name = source.get("name")
    if source.get("download") is True or name not in VISION:    # torchvision fetches what is missing
        return None
    return missing_vision_files(name, str(source.get("root")))


# --- a user's files (ablate.data.files): what the config check finds without reading the data -----

def npy_file(folder: str | Path, name: str) -> Path:
    """The .npy file ``name`` (".npy" may be left off) in ``folder``; an absolute ``name`` is itself."""
    file = Path(folder).expanduser() / str(name)
    return file if file.suffix == ".npy" else file.with_name(file.name + ".npy")


def missing_arrays(path: Any, inputs: Any = "x", labels: Any = "y") -> str | None:
    """None when the inputs and labels arrays are there (keys of a .npz ``path``, or .npy files in the
    folder ``path``), else a message naming the field and what would work."""
    if not path:
        return ("data.source.path is not set: give a .npz file (data=npz data.source.path=data.npz) or the "
                "folder of the .npy files (data=npy data.source.path=DIR)")
    file = Path(str(path)).expanduser()
    if file.suffix != ".npz":
        for field, name in (("inputs", inputs), ("labels", labels)):
            if not npy_file(file, name).is_file():
                return (f"data.source.{field}={name!r}: no file {npy_file(file, name)}; name a .npy file "
                        f"(np.save) in data.source.path={str(path)!r}, or set data.source.path to a .npz file")
        return None
    if not file.is_file():
        return (f"data.source.path={str(path)!r}: no such file; give a .npz file written by "
                f"np.savez(path, x=inputs, y=labels)")
    import numpy as np

    with np.load(file, allow_pickle=False) as arrays:
        keys = arrays.files
    for field, key in (("inputs", inputs), ("labels", labels)):
        if key not in keys:
            return f"data.source.{field}={key!r} is not an array of {file}; its arrays: {', '.join(keys)}"
    return None


def missing_table(path: Any, target: Any = "label", features: Any = None) -> str | None:
    """None when ``path`` is a CSV file whose header has the columns ``target`` and ``features``, else the message."""
    if not path or not Path(str(path)).expanduser().is_file():
        return (f"data.source.path={path!r}: no such file; give a CSV file with a header row, one example a "
                f"row (data=csv data.source.path=table.csv data.source.target=COLUMN)")
    import csv

    with open(Path(str(path)).expanduser(), newline="") as f:
        header = next(csv.reader(f), [])
    if target not in header:
        return f"data.source.target={target!r} is not a column of {path}; its columns: {', '.join(header)}"
    if unknown := [str(c) for c in features or () if c not in header]:
        return (f"data.source.features: {', '.join(unknown)} not columns of {path}; "
                f"its columns: {', '.join(header)}")
    return None


def missing_images(path: Any) -> str | None:
    """None when ``path`` is a folder with one sub-folder of images a class, else the message."""
    folder = Path(str(path)).expanduser() if path else None
    if folder is None or not folder.is_dir() or not any(p.is_dir() for p in folder.iterdir()):
        return (f"data.source.path={path!r} is not a folder of class folders; the layout ImageFolder reads is "
                f"PATH/<class>/<image>.png (e.g. PATH/cat/1.png, PATH/dog/2.jpg)")
    return None


# --- what a user's data must hold: the config check and the loaders (ablate.data.files) say it alike ---

def rows_problem(name: str, inputs: str, x_shape: tuple, labels: str, y_shape: tuple) -> str | None:
    """None when there is one label a row of inputs, else the message."""
    if x_shape and y_shape and x_shape[0] == y_shape[0]:
        return None
    return (f"{name}: {x_shape[0] if x_shape else 'no'} inputs ({inputs}, shape {tuple(x_shape)}) but "
            f"{y_shape[0] if y_shape else 'no'} labels ({labels}, shape {tuple(y_shape)}): give one label per "
            "input, the same number of rows in both")


def labels_problem(y: Any, name: str, labels: str) -> str | None:
    """None when the labels ``y`` (an array) are class ids, integers >= 0 (0.0, 1.0, ... too), else the message."""
    import numpy as np

    whole = y.dtype.kind in "biu" or (y.dtype.kind == "f" and np.isfinite(y).all() and np.array_equal(y, np.round(y)))
    if whole and not (y.size and y.min() < 0):
        return None
    shown = ", ".join(map(repr, list(dict.fromkeys(y.ravel().tolist()))[:4]))
    return (f"{name}: the labels ({labels}) must be class ids, integers 0..K-1; they hold {shown}, ... ({y.dtype}). "
            "Map each class to an integer first, e.g. with pandas: df[col] = df[col].astype('category').cat.codes")


def split_problem(n: int, val_fraction: float, test_fraction: float) -> str | None:
    """None when ``n`` examples leave at least one for training, one for validation and (unless
    ``test_fraction`` is 0) one for testing, else the message, with the fewest examples that would do."""
    def sizes(m: int) -> tuple[int, int, int]:
        val, test = round(m * val_fraction), round(m * test_fraction)
        return m - val - test, val, test

    def enough(m: int) -> bool:
        train, val, test = sizes(m)
        return train >= 1 and val >= 1 and (test >= 1 or not test_fraction)

    if enough(n):
        return None
    need = next((m for m in range(n + 1, 100_000) if enough(m)), None)
    train, val, test = sizes(n)
    return (f"too few examples for the splits: data.source gives {n}, and data.val_fraction={val_fraction}, "
            f"data.test_fraction={test_fraction} leave {train} for training, {val} for validation, {test} for "
            f"testing; each needs at least one: give at least {need} examples, or change the fractions")


def _npz_shape(file: Path, key: str) -> tuple:
    """The shape of array ``key`` of a .npz file, from its header alone."""
    import zipfile

    import numpy as np

    with zipfile.ZipFile(file) as z, z.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return read(member)[0]


def _cell(value: str | None) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except (TypeError, ValueError):
            pass
    return value


def _user_data_problems(source: Any, val: Any, test: Any) -> list[str]:
    """The rows, labels and split problems of a user's arrays or table, read without the inputs."""
    import numpy as np

    name = str(source.get("_target_")).rsplit(".", 1)[-1]
    file = Path(str(source.get("path"))).expanduser()
    if name == "arrays":
        inputs, labels = source.get("inputs", "x"), source.get("labels", "y")
        if file.suffix == ".npz":
            x_shape = _npz_shape(file, inputs)
            with np.load(file, allow_pickle=False) as f:
                y = f[labels]
        else:
            x_shape = np.load(npy_file(file, inputs), mmap_mode="r", allow_pickle=False).shape
            y = np.load(npy_file(file, labels), allow_pickle=False)
        inputs, labels = f"data.source.inputs={inputs!r}", f"data.source.labels={labels!r}"
    else:
        import csv

        with open(file, newline="") as f:
            column = [_cell(row[source.get("target", "label")]) for row in csv.DictReader(f)]
        y, x_shape = np.asarray(column), (len(column),)
        inputs, labels = "data.source.features", f"data.source.target={source.get('target', 'label')!r}"
    found = [rows_problem(file.stem, inputs, tuple(x_shape), labels, y.shape), labels_problem(y, file.stem, labels)]
    if is_number(val) and is_number(test) and not found[0]:
        found.append(split_problem(min(len(y), source.get("num_samples") or len(y)), val, test))
    return [message for message in found if message]


@dataclass(frozen=True)
class Source:
    """A data source: the dims of one sample, its checked ``fields`` (``data.source.<key>``), whether
    it has one target per position (a decoding family's data), and a ``rule`` on the whole node."""

    sample_dims: int | None
    fields: Mapping[str, Check]
    per_position: bool = False
    rule: Callable[[Any], "str | None"] | None = None

    def errors(self, source: Any) -> list[str]:
        found = field_errors(source, self.fields, "data.source")
        if self.rule is not None and (message := self.rule(source)) is not None:
            found.append(message)
        return found


SAMPLES, LENGTH = {"num_samples": POSITIVE}, {"length": POSITIVE}
SOURCES: dict[str, Source] = {   # function name (ablate.data.sources.<name>) -> what it accepts
    "synthetic": Source(1, SAMPLES),
    "digits": Source(3, {}),
    "mnist1d": Source(2, SAMPLES),
    "recall": Source(2, {**SAMPLES, **LENGTH}),
    "adding": Source(2, {**SAMPLES, **LENGTH}),
    "seq2seq": Source(2, {"task": one_of(*SEQ2SEQ_TASKS), **LENGTH, "num_symbols": integer(2), **SAMPLES},
                      per_position=True),
    "vision": Source(3, {"name": required(one_of(*VISION)), **SAMPLES, "download": BOOLEAN}, rule=_vision_files),
    # a user's files: how many dims a sample has is known only once they are read
    "arrays": Source(None, SAMPLES, rule=lambda s: missing_arrays(s.get("path"), s.get("inputs", "x"),
                                                                  s.get("labels", "y"))),
    "table": Source(1, SAMPLES, rule=lambda s: missing_table(s.get("path"), s.get("target", "label"),
                                                                s.get("features"))),
    "image_folder": Source(3, {**SAMPLES, "grayscale": BOOLEAN}, rule=lambda s: missing_images(s.get("path"))),
}
ANY_SOURCE = Source(None, {**SAMPLES, **LENGTH})     # a user's source: the fields every source means alike


def source_of(target: Any) -> Source | None:
    """A built-in source's entry (``ablate.data.sources.<name>``), None for any other target."""
    return builtin(target, SOURCES, "ablate.data.sources")


def _split_errors(data: Any) -> list[str]:
    val, test = data.get("val_fraction"), data.get("test_fraction")
    if is_number(val) and is_number(test) and val + test >= 1:
        return [f"data.val_fraction + data.test_fraction = {val + test} leaves no training data; keep it < 1"]
    return []


DATAMODULE = {   # ablate.data.DataModule's fields (data.<key>)
    "batch_size": required(POSITIVE), "eval_batch_size": POSITIVE, "train_size": POSITIVE,
    "val_fraction": Check(lambda v: is_number(v) and 0 < v < 1, ": it must be in (0, 1); validation accuracy "
                                                                 "is what sweeps optimise and reports compare"),
    "test_fraction": in_range(0.0, 1.0),
}


def data_errors(data: Any) -> list[str]:
    """Every problem of the ``data`` node: the DataModule's fields and its source's."""
    source = data.get("source")
    found = field_errors(data, DATAMODULE, "data") + _split_errors(data)
    if source is not None:
        source_errors = (source_of(source.get("_target_")) or ANY_SOURCE).errors(source)
        found += source_errors
        if not source_errors and any(source_of(source.get("_target_")) is SOURCES[n] for n in ("arrays", "table")):
            try:
                found += _user_data_problems(source, data.get("val_fraction"), data.get("test_fraction"))
            except (OSError, ValueError, KeyError) as e:     # a torn zip, pickled objects, a bad header
                found.append(f"data.source.path={source.get('path')!r} cannot be read: {e}")
    return found


@dataclass(frozen=True)
class Augment:
    """An augment transform: the dims of the samples it takes (None: any) and its ``fields``."""

    sample_dims: int | None
    fields: Mapping[str, Check]


AUGMENTS: dict[str, Augment] = {   # class name (ablate.data.augment.<Name>) -> what it accepts
    "Shift": Augment(2, {"max_shift": integer(0)}),
    "Noise": Augment(None, {"std": number(at_least=0)}),
    "Crop": Augment(3, {"padding": integer(0)}),
    "Flip": Augment(3, {"p": in_range(0.0, 1.0, high_open=False)}),
}
ANY_AUGMENT = Augment(None, merged(*(a.fields for a in AUGMENTS.values())))


def augment_of(target: Any) -> Augment | None:
    """What ``augment._target_`` accepts: a built-in transform's entry, else what its class says
    (imported: its ``sample_dims``); None when it cannot be imported (reported where it is built)."""
    if (augment := builtin(target, AUGMENTS, "ablate.data.augment")) is not None:
        return augment
    from hydra.utils import get_class

    try:
        cls = get_class(str(target))
    except Exception:  # noqa: BLE001
        return None
    return getattr(cls, "accepts", None) or Augment(getattr(cls, "sample_dims", None), ANY_AUGMENT.fields)


def layout_error(augment: str, takes: int | None, data: str, gives: int | None) -> str | None:
    """The message for an augment ``augment`` taking ``takes``-dim samples on data giving ``gives``."""
    if takes is None or gives is None or takes == gives:
        return None
    takes_, gives_ = (LAYOUTS.get(dims, f"{dims}-d samples") for dims in (takes, gives))
    return f"augment={augment} takes {takes_}; data={data} gives {gives_}"


def augment_errors(augment: Any, data: Any) -> list[str]:
    """Every problem of the ``augment`` node, the layout of ``data``'s samples included."""
    target = augment.get("_target_")
    spec = augment_of(target) if target else None
    name = str(target).rsplit(".", 1)[-1].lower()
    found = field_errors(augment, (spec or ANY_AUGMENT).fields, "augment")
    if builtin(target, AUGMENTS, "ablate.data.augment") is not None:    # its fields are all it takes
        found += unknown_fields(augment, spec.fields, "augment", f"augment={name}")
    source = source_of((data.get("source") or {}).get("_target_")) if data is not None else None
    if spec is not None and source is not None:
        gives = data.source.get("task") or data.source.get("name") or str(data.source._target_).rsplit(".", 1)[-1]
        if message := layout_error(name, spec.sample_dims, gives, source.sample_dims):
            found.append(message)
    return found
