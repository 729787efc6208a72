"""``ablate.results``: the run record's schema check, its atomic writes (a reader never sees half a
record, a failed write keeps the old one), and reading the records of a sweep."""

from __future__ import annotations

import copy
import json
import math
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from ablate import results
from ablate.results import (RECORD_NAME, RecordError, RunRecord, iter_records, load_records, load_sweep, read_record,
                            validate_record, write_record)

TIMEOUT_S = 600          # the concurrent writers' deadline; generous: the machine is shared and has 2 cores


def _record(**changes) -> dict:
    record = {
        "schema": 1, "run_id": "abc123", "status": "ok", "error": None, "seed": 0,
        "overrides": {"model.depth": "4"}, "config": {"model": {"depth": 4}},
        "metrics": {"val/acc": 0.5, "train/loss": 1.25}, "history": [{"epoch": 0, "train/loss": 1.25}],
        "probes": {}, "params": 1234, "wall_time_s": 1.5, "versions": {"python": "3.11"},
    }
    record.update(changes)
    return record


def _big_record(writer: str, i: int) -> dict:
    """A record of ~150 kB, so a torn write would be caught mid-file."""
    history = [{"epoch": e, "train/loss": 1.0 / (e + 1), "val/acc": e / 1000, "note": writer * 20} for e in range(600)]
    return _record(run_id=f"{writer}-{i}", seed=i, overrides={}, config={"writer": writer}, history=history)


# --- schema --------------------------------------------------------------------------------------

def test_a_complete_record_passes():
    record = _record()
    assert validate_record(record) is record


@pytest.mark.parametrize("field", list(results.REQUIRED_KEYS))
def test_missing_field_is_named(field):
    record = _record()
    del record[field]
    with pytest.raises(RecordError, match=f"missing the field '{field}'"):
        validate_record(record)


@pytest.mark.parametrize("field,value", [
    ("schema", "1"), ("seed", 0.5), ("params", True), ("metrics", []), ("history", {}), ("wall_time_s", "1s"),
    ("status", 1), ("run_id", None),
])
def test_wrong_type_is_named(field, value):
    with pytest.raises(RecordError, match=f"field '{field}' should be"):
        validate_record(_record(**{field: value}))


def test_an_unknown_field_is_named():
    with pytest.raises(RecordError, match="unknown field 'notes'"):
        validate_record(_record(notes="a field the schema does not have"))
    with pytest.raises(RecordError, match="unknown field 'notes'"):
        RunRecord.from_dict(_record(notes="refused, not dropped"))


def test_from_dict_checks_like_validate_record_and_fills_the_defaults():
    record = RunRecord.from_dict(_record())
    assert record.run_id == "abc123" and record.ok and record.seed == 0
    assert record.to_dict() == {**_full_defaults(), **_record()}
    with pytest.raises(RecordError, match="missing the field 'seed'"):
        RunRecord.from_dict({k: v for k, v in _record().items() if k != "seed"})
    with pytest.raises(RecordError, match="status 'failed' must say why"):
        RunRecord.from_dict(_record(status="failed"))
    with pytest.raises(RecordError, match="JSON object"):
        RunRecord.from_dict([_record()])


def _full_defaults() -> dict:
    """The optional fields of the schema, at their defaults."""
    return {"error": None, "experiment": None, "choices": {}, "claim": None, "num_classes": None,
            "samples_per_s": None, "epochs_completed": 0, "batch_size": {}, "threads": None, "started_at": None,
            "finished_at": None, "wandb": None, "vectorized": None}


def test_wall_time_may_be_int():
    validate_record(_record(wall_time_s=3))


def test_bad_status_lists_the_valid_ones():
    with pytest.raises(RecordError, match="'status' is 'crashed'; valid: ok, diverged, failed"):
        validate_record(_record(status="crashed"))


@pytest.mark.parametrize("status", ["diverged", "failed"])
def test_non_ok_needs_an_error(status):
    for error in (None, ""):
        with pytest.raises(RecordError, match=f"status '{status}' must say why in 'error'"):
            validate_record(_record(status=status, error=error))
        record = _record(status=status)
        del record["error"]
        with pytest.raises(RecordError):
            validate_record(record)
    validate_record(_record(status=status, error="loss became nan"))


# --- writing and reading -------------------------------------------------------------------------

def _strict_load(path):
    def no_constants(name):
        raise AssertionError(f"non-JSON constant {name} in {path}")

    return json.loads(path.read_text(), parse_constant=no_constants)


def test_write_record_round_trip_nan_as_null(tmp_path):
    record = _record(metrics={"val/acc": 0.5, "train/loss": math.nan, "grad": -math.inf},
                     history=[{"epoch": 0, "train/loss": math.inf}, {"epoch": 1, "train/loss": 2.0}],
                     probes={"nested": {"deep": [1.0, math.nan, (2.0, math.inf)]}})
    original = copy.deepcopy(record)
    path = write_record(tmp_path / "run", record)
    assert path == tmp_path / "run" / RECORD_NAME
    stored = _strict_load(path)
    assert stored["metrics"] == {"val/acc": 0.5, "train/loss": None, "grad": None}
    assert stored["history"] == [{"epoch": 0, "train/loss": None}, {"epoch": 1, "train/loss": 2.0}]
    assert stored["probes"] == {"nested": {"deep": [1.0, None, [2.0, None]]}}
    assert read_record(tmp_path / "run") == read_record(path) == stored
    assert math.isnan(record["metrics"]["train/loss"]) and record.keys() == original.keys()  # input untouched
    assert os.listdir(tmp_path / "run") == [RECORD_NAME]                                      # no temp files


def test_write_record_rejects_an_invalid_record_and_writes_nothing(tmp_path):
    with pytest.raises(RecordError):
        write_record(tmp_path / "run", _record(status="failed"))
    assert not (tmp_path / "run" / RECORD_NAME).exists()


def test_write_record_removes_the_temp_file_a_killed_writer_left(tmp_path):
    """A SIGKILL between mkstemp and rename leaves ``.record.json.XXXX.tmp``; the next write removes it,
    and only it: a temp file another writer holds (locked) or has just created is left alone."""
    fcntl = pytest.importorskip("fcntl")
    run = tmp_path / "run"
    run.mkdir()
    old = time.time() - 60
    killed = run / f".{RECORD_NAME}.k1lled.tmp"
    killed.write_text('{"half": ')
    busy = run / f".{RECORD_NAME}.busy.tmp"           # a live writer: it holds the lock
    busy.write_text('{"still writing": ')
    fresh = run / f".{RECORD_NAME}.fresh.tmp"         # created an instant ago, not locked yet
    fresh.write_text("")
    for p in (killed, busy):
        os.utime(p, (old, old))
    (run / "notes.tmp").write_text("not ours")
    with open(busy, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        write_record(run, _record())
        assert sorted(os.listdir(run)) == sorted([RECORD_NAME, "notes.tmp", busy.name, fresh.name])
    assert read_record(run)["run_id"] == "abc123"
    assert results.remove_stale_temps(run / RECORD_NAME) == [busy]          # once its writer is gone
    assert results.remove_stale_temps(run / RECORD_NAME, min_age_s=0) == [fresh]


# --- atomic writes: concurrent writers and readers ---------------------------------------------------

def test_each_write_replaces_the_record_and_leaves_no_temp_file(tmp_path):
    for i in range(30):
        write_record(tmp_path / "run", _big_record("solo", i))
    assert os.listdir(tmp_path / "run") == [RECORD_NAME]
    assert read_record(tmp_path / "run")["run_id"] == "solo-29"


@pytest.mark.parametrize("where,error", [("fsync", KeyboardInterrupt), ("replace", OSError)],
                         ids=["ctrl-c-while-flushing", "rename-fails"])
def test_a_write_that_fails_midway_keeps_the_old_record_whole(tmp_path, monkeypatch, where, error):
    """Ctrl-C (or a SIGTERM turned into an exception) while the new record is flushed, or a rename that
    fails (disk full): the old record stays whole, and the temp file is gone."""
    write_record(tmp_path / "run", _big_record("old", 0))

    def fail(*args):
        raise error("interrupted midway")

    monkeypatch.setattr(results.os, where, fail)
    with pytest.raises(error, match="interrupted midway"):      # the error itself reaches the caller
        write_record(tmp_path / "run", _big_record("new", 1))
    monkeypatch.undo()
    assert read_record(tmp_path / "run")["run_id"] == "old-0"
    assert os.listdir(tmp_path / "run") == [RECORD_NAME]


def _write_many(run_dir: str, writer: str, n: int) -> None:
    for i in range(n):
        write_record(run_dir, _big_record(writer, i))


def _torn_writer(run_dir: str, writer: str, n: int) -> None:
    """A deliberately non-atomic writer (half the text, a pause, the rest): the reader must catch it."""
    for i in range(n):
        text = json.dumps(_big_record(writer, i))
        with open(Path(run_dir) / RECORD_NAME, "w") as f:
            f.write(text[: len(text) // 2])
            f.flush()
            time.sleep(0.01)
            f.write(text[len(text) // 2:])


def _read_while(run_dir: Path, writing) -> tuple[int, list[str]]:
    """Read the record in a loop while ``writing()`` is true (and at least once whole); return
    (whole reads, problems)."""
    path, reads, problems = run_dir / RECORD_NAME, 0, []
    deadline = time.monotonic() + TIMEOUT_S
    while (writing() or reads == 0) and time.monotonic() < deadline:
        try:
            record = read_record(path)
        except FileNotFoundError:
            problems.append("missing")        # the record exists before the writers start
            continue
        except ValueError as e:
            problems.append(f"invalid JSON: {e}")
            continue
        try:
            validate_record(record)
            reads += 1
        except ValueError as e:
            problems.append(f"invalid record: {e}")
    return reads, problems


@pytest.mark.parametrize("kind", ["processes", "threads"])
def test_concurrent_writers_never_expose_a_partial_record(tmp_path, kind):
    run_dir = tmp_path / "run"
    write_record(run_dir, _big_record("initial", 0))
    writers = [("a", 40), ("b", 40), ("c", 40)]
    if kind == "processes":   # like joblib (loky) workers writing to the same folder
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        workers = [ctx.Process(target=_write_many, args=(str(run_dir), w, n)) for w, n in writers]
    else:
        workers = [threading.Thread(target=_write_many, args=(str(run_dir), w, n)) for w, n in writers]
    for w in workers:
        w.start()
    reads, problems = _read_while(run_dir, lambda: any(w.is_alive() for w in workers))
    for w in workers:
        w.join(TIMEOUT_S)
    if kind == "processes":
        assert all(w.exitcode == 0 for w in workers)
    assert problems == [], problems[:5]
    assert reads > 0
    assert os.listdir(run_dir) == [RECORD_NAME]                 # no temp file left by any writer
    assert read_record(run_dir)["run_id"] in {f"{w}-{n - 1}" for w, n in writers}


def test_the_concurrent_reader_does_catch_a_torn_write(tmp_path):
    """Sensitivity check of the harness above: with a non-atomic writer it reports problems."""
    run_dir = tmp_path / "run"
    write_record(run_dir, _big_record("initial", 0))
    worker = threading.Thread(target=_torn_writer, args=(str(run_dir), "torn", 20))
    worker.start()
    reads, problems = _read_while(run_dir, worker.is_alive)
    worker.join()
    assert any(p.startswith("invalid JSON") for p in problems)


# --- reading a sweep -----------------------------------------------------------------------------

def test_load_sweep_reads_nested_folders_in_order(tmp_path):
    for rel in ("b/1", "a", "a/deeper/x", "c/y/z"):
        write_record(tmp_path / rel, _record(run_id=rel.replace("/", "-")))
    (tmp_path / "a" / "notes.json").write_text("{}")           # only record.json files count
    (tmp_path / "empty").mkdir()
    records = load_sweep(tmp_path)
    # sorted by path: a/deeper/x/record.json comes before a/record.json
    assert [r["run_id"] for r in records] == ["a-deeper-x", "a", "b-1", "c-y-z"]
    paths = [p for p, _ in iter_records(tmp_path)]
    assert paths == sorted(paths) and [p.name for p in paths] == [RECORD_NAME] * 4
    assert [p.relative_to(tmp_path).parent.as_posix() for p in paths] == ["a/deeper/x", "a", "b/1", "c/y/z"]
    assert load_sweep(tmp_path / "empty") == []


def test_load_sweep_rejects_a_broken_record(tmp_path):
    write_record(tmp_path / "good", _record())
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / RECORD_NAME).write_text(json.dumps({"status": "ok"}))
    with pytest.raises(RecordError, match="missing the field"):
        load_sweep(tmp_path)


# --- load_records: one loader for every caller ---------------------------------------------------

def _every_field() -> dict:
    """A record as ablate.run writes it: every field of the schema set."""
    return _record(error=None, experiment="toy", choices={"model": "mlp"}, claim={"checks": []}, num_classes=10,
                   samples_per_s=100.0, epochs_completed=1, batch_size={"per_rank": 32, "world_size": 1, "effective": 32},
                   threads=1, started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:00:02+00:00",
                   wandb=None, vectorized={"members": 2, "index": 0, "seeds": [0, 1], "job": "j"})


def test_load_records_returns_the_valid_records_and_one_problem_per_bad_file(tmp_path):
    full = _every_field()
    assert set(full) == {f for f in RunRecord.__dataclass_fields__}
    write_record(tmp_path / "b", full)
    write_record(tmp_path / "a", _record(run_id="old"))                         # an older record: no optional fields
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / RECORD_NAME).write_text('{"status": "ok", "metrics": {"val/acc": 0.9')     # torn
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / RECORD_NAME).write_text(json.dumps({**_record(), "foreign": 1}))
    records, problems = load_records(tmp_path)
    # a real record (every field set) comes back exactly as it was written; an older one gets the defaults
    assert records == [{**_full_defaults(), **_record(run_id="old")}, read_record(tmp_path / "b")]
    assert records[1] == json.loads(json.dumps(full))
    assert [p.split(": ", 1)[0] for p in problems] == [f"c/{RECORD_NAME}", f"d/e/{RECORD_NAME}"]
    assert "unknown field 'foreign'" in problems[1]
    assert load_records(tmp_path / "missing") == ([], [])
    with pytest.raises(RecordError, match=f"^c/{RECORD_NAME}: "):
        load_sweep(tmp_path)
