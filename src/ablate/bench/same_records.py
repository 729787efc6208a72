"""``python -m ablate.bench.same_records A B``: whether two runs of the same sweep wrote the same records.

For a change meant to make ablate faster without changing any number: run the same command twice
(before and after, into two sweep folders) and compare. Records are matched by their path below each
folder (a job's folder is a hash of its overrides, so the same run has the same path in both), and
compared field by field, exactly (floats bit for bit), after leaving out what differs between any
two runs of one command:

* times: ``wall_time_s``, ``samples_per_s``, ``started_at``, ``finished_at``, the throughput probe and
  every ``speed/...`` metric (seconds measured on the machine, not numbers a run computes);
* ``versions`` (the git commit);
* the sweep folder itself, wherever a path holds it (``config.run_dir``, a logger's ``save_dir``).

Everything else must be equal: status, error, metrics, the per-epoch history, probes, config,
overrides, seeds, parameters, the vectorized job. The claim's verdicts (``verdict.json``: every
claim's, clause's and check's) are compared too. Exit status 0 when all is the same, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Sequence

from ablate.results import RECORD_NAME, read_record

VOLATILE = ("wall_time_s", "samples_per_s", "started_at", "finished_at", "versions")
TIMED_PREFIX = "speed/"


def _without_folder(value: Any, folder: str) -> Any:
    if isinstance(value, str):
        return value.replace(folder, "<sweep>")
    if isinstance(value, dict):
        return {k: _without_folder(v, folder) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_folder(v, folder) for v in value]
    return value


def _untimed(values: dict) -> dict:
    return {k: v for k, v in values.items() if not str(k).startswith(TIMED_PREFIX)}


def normalised(record: dict, folder: Path) -> dict:
    """``record`` less what differs between two runs of one command (see the module docstring)."""
    out = {k: v for k, v in record.items() if k not in VOLATILE}
    out["metrics"] = _untimed(out.get("metrics") or {})
    out["history"] = [_untimed(row) for row in out.get("history") or []]
    out["probes"] = {k: v for k, v in (out.get("probes") or {}).items() if k != "throughput"}
    return _without_folder(out, str(folder.resolve()))


def _same(a: Any, b: Any) -> bool:
    """Equal, floats bit for bit (NaN equals NaN; 0.0 and -0.0 differ)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                return f"{where}.{k}: only in {'the second' if k in b else 'the first'}"
            if not _same(a[k], b[k]):
                return _first_difference(a[k], b[k], f"{where}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if not _same(x, y):
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where or '.'}: {json.dumps(a)[:120]} != {json.dumps(b)[:120]}"


def records(folder: Path) -> dict[str, dict]:
    """Every run record below ``folder`` by its path relative to it, normalised."""
    return {str(p.parent.relative_to(folder)): normalised(read_record(p), folder)
            for p in sorted(folder.rglob(RECORD_NAME))}


def verdicts(folder: Path) -> dict | None:
    """``verdict.json``'s verdicts (every claim's, clause's and check's) below ``folder``, or None."""
    found = {}
    for path in sorted(folder.rglob("verdict.json")):
        for claim in json.loads(path.read_text()).get("claims", []):
            found[f"{path.parent.relative_to(folder)}: {claim.get('name', claim.get('statement'))}"] = {
                "verdict": claim.get("verdict"),
                "clauses": [c.get("verdict") for c in claim.get("clauses", [])],
                "checks": [c.get("verdict") for c in claim.get("checks", [])]}
    return found or None


def compare(first: Path, second: Path) -> list[str]:
    """The differences between the records (and verdicts) below two folders: empty when they are the same."""
    a, b = records(Path(first)), records(Path(second))
    problems = [f"{name}: only in {first if name in a else second}" for name in sorted(set(a) ^ set(b))]
    problems += [f"{name}: {_first_difference(a[name], b[name])}" for name in sorted(set(a) & set(b))
                 if not _same(a[name], b[name])]
    va, vb = verdicts(Path(first)), verdicts(Path(second))
    if va != vb:
        problems.append(f"verdicts differ: {va} != {vb}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ablate.bench.same_records", description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args(argv)
    problems = compare(args.first, args.second)
    count = len(records(args.first))
    for line in problems[:50]:
        print(line)
    print(f"{count} records in {args.first}: " + ("the same records and verdicts in both" if not problems
                                                  else f"{len(problems)} difference(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
