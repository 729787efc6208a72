"""The run record: one JSON file per run, the only thing downstream code (sweeps, reports) reads.

Its schema is :class:`RunRecord` (``ablate.run`` fills one per run, :meth:`RunRecord.from_dict` checks
a dict read back against it); it is written atomically as ``<run dir>/record.json`` and read back,
every record of a folder at once, by :func:`load_records`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: stale temp files are recognised by age alone
    fcntl = None

SCHEMA_VERSION = 1
RECORD_NAME = "record.json"
STATUSES = ("ok", "diverged", "failed")


@dataclass
class RunRecord:
    """What one run measured, plus the resolved config: the fields of ``record.json``."""

    run_id: str                  # the run folder's name: a hash of the job's overrides (stable across relaunches)
    status: str                  # "ok" | "diverged" | "failed"
    seed: int
    overrides: dict              # the job's own overrides, key -> value text ({"model.depth": "32", "seed": "1"})
    config: dict                 # the fully resolved config (no hydra node)
    metrics: dict                # final values: {"train/loss": 0.31, "val/acc": 0.88, "test/acc": 0.87, ...}
    history: list                # one row per epoch: [{"epoch": 0, "step": 28, "train/loss": 1.9, ...}, ...]
    probes: dict                 # summaries written by the probe callbacks (per-layer profiles, ...)
    params: int                  # trainable parameters of the (one member's) model
    wall_time_s: float           # the run's wall time (a vectorized member: its share of the job's)
    versions: dict               # python, torch, lightning, ablate, git_commit
    schema: int = SCHEMA_VERSION
    error: str | None = None     # why a run that is not ok stopped (the exception, or the divergence)
    experiment: str | None = None
    choices: dict = field(default_factory=dict)   # config group choices, {"model": "resnet", ...}
    claim: dict | None = None    # the experiment's declared claim, copied from the config
    num_classes: int | None = None
    samples_per_s: float | None = None
    epochs_completed: int = 0
    batch_size: dict = field(default_factory=dict)  # {"per_rank": 128, "world_size": 1, "effective": 128}
    threads: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    wandb: dict | None = None    # {"project", "entity", "group", "id"} when the run logged to W&B
    vectorized: dict | None = None  # {"members": K, "index": i, "seeds": [...], "job": <folder>} when
                                    # trained as one member of K stacked seeds

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "RunRecord":
        """The record ``record`` (a dict read back from ``record.json``), checked against the schema:
        :class:`RecordError` names the first field that is missing, of the wrong type or unknown (a
        field this schema does not have is refused, not dropped: one schema, and nothing a record
        holds is lost silently). Fields with a default may be absent (they get it)."""
        if not isinstance(record, dict):
            raise RecordError(f"a run record is a JSON object, not {type(record).__name__}")
        for key, kind in REQUIRED_KEYS.items():
            if key not in record:
                raise RecordError(f"run record is missing the field '{key}'")
            if not isinstance(record[key], kind) or isinstance(record[key], bool) and kind is int:
                raise RecordError(f"run record field '{key}' should be {kind}, got {type(record[key]).__name__}")
        for key in record:
            if key not in _FIELDS:
                raise RecordError(f"run record has an unknown field '{key}'")
        if record["status"] not in STATUSES:
            raise RecordError(f"run record field 'status' is {record['status']!r}; valid: {', '.join(STATUSES)}")
        if record["status"] != "ok" and not record.get("error"):
            raise RecordError(f"a run with status '{record['status']}' must say why in 'error'")
        return cls(**record)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


_CHECKED = {"int": int, "str": str, "dict": dict, "list": list, "float": (int, float)}
# the fields every record must have (those without a default), with the type each must hold
REQUIRED_KEYS = {"schema": int, **{f.name: _CHECKED[f.type] for f in dataclasses.fields(RunRecord)
                                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}}
_FIELDS = frozenset(f.name for f in dataclasses.fields(RunRecord))


class RecordError(ValueError):
    """A run record does not follow the schema."""


def validate_record(record: dict[str, Any]) -> dict[str, Any]:
    """Raise :class:`RecordError` naming the first field that breaks the schema
    (:meth:`RunRecord.from_dict`); return the record, unchanged."""
    RunRecord.from_dict(record)
    return record


def is_ok(record: dict[str, Any] | None) -> bool:
    """Whether ``record`` (a record dict, or None for no record) is of a run that finished."""
    return record is not None and record.get("status") == "ok"


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null (a diverged run's last loss is typically nan)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` so that a reader sees the old file or the new one, never half of one."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a uniquely named temp file in the same folder (a rename is
    only atomic within one file system; concurrent writers never share a temp file), fsync, rename.

    The writer holds an exclusive ``flock`` on its temp file until the rename, which is how
    :func:`remove_stale_temps` tells a live writer's temp file from one a killed writer left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)   # released when the file is closed, after the rename
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def remove_stale_temps(path: str | os.PathLike, min_age_s: float = 2.0) -> list[Path]:
    """Delete the temp files that killed writers of ``path`` left beside it; return what went.

    A temp file is stale when no process holds its lock (a writer keeps it until its rename; the kernel
    drops it when the writer dies) and it is older than ``min_age_s`` (which covers the instant between
    a writer creating the file and locking it). Concurrent writers of the same file are left alone.
    Without ``fcntl`` (Windows) only temp files older than an hour are removed.
    """
    path = Path(path)
    if fcntl is None:
        min_age_s = max(min_age_s, 3600.0)
    removed = []
    for tmp in sorted(path.parent.glob(f".{path.name}.*.tmp")):
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:   # renamed or removed meanwhile
            continue
        try:
            if time.time() - os.fstat(fd).st_mtime < min_age_s:
                continue
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:   # a live writer
                    continue
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
        finally:
            os.close(fd)
    return removed


def write_record(run_dir: str | os.PathLike, record: RunRecord | dict[str, Any]) -> Path:
    """Validate and atomically write ``record`` as ``run_dir/record.json``.

    Temp files a killed attempt left behind are removed first (see :func:`remove_stale_temps`).
    """
    record = _finite_or_none(record.to_dict() if isinstance(record, RunRecord) else record)
    validate_record(record)
    path = Path(run_dir) / RECORD_NAME
    remove_stale_temps(path)
    return atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str))


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read one record; ``path`` is the JSON file or the run folder that holds it."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_NAME
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def iter_records(sweep_dir: str | os.PathLike) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Yield ``(path, record)`` for every run record below ``sweep_dir``, in a stable order."""
    for path in sorted(Path(sweep_dir).rglob(RECORD_NAME)):
        yield path, read_record(path)


def load_records(folder: str | os.PathLike) -> tuple[list[dict[str, Any]], list[str]]:
    """Every valid run record below ``folder``, sorted by path, each normalised through
    ``RunRecord.from_dict(raw).to_dict()`` (a field the file lacks gets its default); and one problem,
    ``"<path relative to folder>: <error>"``, per file that cannot be read or breaks the schema. A
    folder that does not exist gives ``([], [])``: what that means is the caller's to say."""
    folder = Path(folder)
    records, problems = [], []
    for path in sorted(folder.rglob(RECORD_NAME)):
        try:
            records.append(RunRecord.from_dict(read_record(path)).to_dict())
        except (OSError, ValueError) as e:     # json.JSONDecodeError and RecordError are ValueErrors
            problems.append(f"{path.relative_to(folder)}: {e}")
    return records, problems


def load_sweep(sweep_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """All run records below ``sweep_dir`` (see :func:`load_records`), sorted by path; the first
    unreadable or invalid one raises (:class:`RecordError`, naming its file)."""
    records, problems = load_records(sweep_dir)
    if problems:
        raise RecordError(problems[0])
    return records
