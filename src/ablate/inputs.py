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


def missing_table(path: Any, target: Any = "label") -> str | None:
    """None when ``path`` is a CSV file whose header has the column ``target``, else the message."""
    if not path or not Path(str(path)).expanduser().is_file():
        return (f"data.source.path={path!r}: no such file; give a CSV file with a header row, one example a "
                f"row (data=csv data.source.path=table.csv data.source.target=COLUMN)")
    import csv

    with open(Path(str(path)).expanduser(), newline="") as f:
        header = next(csv.reader(f), [])
    if target not in header:
        return f"data.source.target={target!r} is not a column of {path}; its columns: {', '.join(header)}"
    return None


def missing_images(path: Any) -> str | None:
    """None when ``path`` is a folder with one sub-folder of images a class, else the message."""
    folder = Path(str(path)).expanduser() if path else None
    if folder is None or not folder.is_dir() or not any(p.is_dir() for p in folder.iterdir()):
        return (f"data.source.path={path!r} is not a folder of class folders; the layout ImageFolder reads is "
                f"PATH/<class>/<image>.png (e.g. PATH/cat/1.png, PATH/dog/2.jpg)")
    return None


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
    "table": Source(1, SAMPLES, rule=lambda s: missing_table(s.get("path"), s.get("target", "label"))),
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
        found += (source_of(source.get("_target_")) or ANY_SOURCE).errors(source)
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
