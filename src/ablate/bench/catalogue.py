"""``python -m ablate.bench --catalogue``: the whole catalogue one experiment at a time against the default.

Runs ``python -m ablate.catalogue budget=<--budget>`` (default ``quick``; ``--only`` picks experiments,
``--catalogue-args`` adds overrides) twice, each into a fresh folder: with ``--jobs 1`` and with its
default (as many experiments at once as the cores allow at the thread policy's count; the catalogue
prints what it chose). The MNIST-1D cache is shared, so the first run pays for generating the data.

Printed: the wall time of each, the speed-up, and whether both gave the same verdicts (every claim's
and clause's) and identical final metrics in every record: the number of jobs must not change them.
The last line is ``catalogue speed-up with the default jobs: X.XX``.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from ablate.bench.common import policy_env, print_table, python_m, records_under, same_numbers

CATALOGUE_LINE = "catalogue speed-up with the default jobs: {:.2f}"
CHOSEN = re.compile(r"^catalogue: \d+ experiments, (\d+) at a time × (\d+) thread\(s\) each", re.MULTILINE)


def verdicts(folder: Path) -> dict[str, list[str]]:
    """Every claim's verdict and its clauses' below a catalogue folder, by experiment and statement."""
    found = {}
    for path in sorted(folder.glob("*/verdict.json")):
        for claim in json.loads(path.read_text())["claims"]:
            found[f"{path.parent.name}: {claim['statement']}"] = [claim["verdict"],
                                                                   *(c["verdict"] for c in claim["clauses"])]
    return found


def catalogue_bench(args) -> float:
    """Runs the comparison of the module docstring; returns the speed-up of the default over ``--jobs 1``."""
    root = Path(tempfile.mkdtemp(prefix="ablate-bench-catalogue-"))
    common = [f"budget={args.budget}", *args.catalogue_args, *(["--only", args.only] if args.only else [])]
    print(f"catalogue: python -m ablate.catalogue {' '.join(common)}, with --jobs 1 and with its default", flush=True)
    seconds, chosen = {}, {}
    for name, jobs in (("--jobs 1", ["--jobs", "1"]), ("default", [])):
        folder = root / name.strip("-").replace(" ", "")
        output: list[str] = []
        seconds[name] = python_m("ablate.catalogue", [*common, "--dir", folder, *jobs], env=policy_env(),
                                 timeout=args.catalogue_timeout, output=output)
        match = CHOSEN.search(output[0])
        chosen[name] = f"{match.group(1)} × {match.group(2)}" if match else "?"
        print(f"  {name}: {seconds[name]:.1f} s ({chosen[name]})", flush=True)
    one, default = root / "jobs1", root / "default"
    same, total = same_numbers(records_under(one), records_under(default))
    first, second = verdicts(one), verdicts(default)
    print_table(["run", "experiments at once × threads", "wall s"],
                [[name, chosen[name], f"{seconds[name]:.1f}"] for name in seconds])
    print(f"same verdicts: {'yes' if first == second else 'NO'} ({len(first)} claims); identical final metrics "
          f"(timings left out) in {same} of {total} records (a run only one side made: a timing check decided at "
          "another look)", flush=True)
    speedup = seconds["--jobs 1"] / seconds["default"]
    print(CATALOGUE_LINE.format(speedup), flush=True)
    return speedup

