"""``python -m ablate.bench --load``: the thread policy on an idle machine and on one with a core busy.

A smoke experiment (``--load-args``: by default ``+experiment=residual_depth budget=smoke``) runs as a
``python -m ablate`` process for each thread setting: the default (whatever ``conf/config.yaml``'s
``threads`` says; ``OMP_NUM_THREADS`` is removed from its environment) and each fixed ``threads=N``
of ``--load-threads`` (by default 1 and every core), each **idle** and **loaded**: with one core kept
busy by a spinning process that the bench starts before the run and stops after it (it also stops
itself after ``--load-timeout`` seconds), after one untimed warm-up run. Settings and conditions
alternate order between repeats.

Printed side by side: the wall times (medians over ``--load-repeats``), loaded ÷ idle, idle ÷ the
fastest idle setting, the thread count the records carry, and whether the idle and the loaded runs of
a setting gave identical final metrics (the policy must not change the numbers). The last line is
``default under load: X.XXx its idle time; idle: X.XXx the fastest setting``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from ablate.bench.common import busy_core, policy_env, print_table, python_m, records_under, same_numbers

LOAD_ARGS = ("+experiment=residual_depth", "budget=smoke")
LOAD_LINE = "default under load: {:.2f}x its idle time; idle: {:.2f}x the fastest setting"
CONDITIONS = ("idle", "loaded")


def _run(args: list[str], out: Path, threads: int | None, loaded: bool, timeout: float) -> float:
    command = [*args, "report=false", "budget.progress_bar=false", f"hydra.run.dir={out}", f"hydra.sweep.dir={out}"]
    if threads is not None:
        command.append(f"threads={threads}")
    if not loaded:
        return python_m("ablate", command, env=policy_env(), timeout=timeout)
    with busy_core(timeout):
        return python_m("ablate", command, env=policy_env(), timeout=timeout)


def load_bench(args) -> float:
    """Runs the table of the module docstring; returns the default's loaded ÷ idle time."""
    cores = os.cpu_count() or 1
    run_args = list(args.load_args or LOAD_ARGS)
    fixed = args.load_threads or sorted({1, cores})
    settings: dict[str, int | None] = {"default": None, **{f"threads={n}": n for n in fixed}}
    root = Path(tempfile.mkdtemp(prefix="ablate-bench-load-"))
    print(f"load: python -m ablate {' '.join(run_args)}, {len(settings)} thread settings × idle and with one of "
          f"{cores} cores busy (a spinning process), {args.load_repeats} repeat(s)", flush=True)
    warm = _run(run_args, root / "warm-up", None, False, args.load_timeout)   # data cache, disk caches
    print(f"  warm-up (untimed: fills the data cache): {warm:.1f} s", flush=True)
    times = {(name, c): [] for name in settings for c in CONDITIONS}
    for r in range(args.load_repeats):
        names = list(settings) if r % 2 == 0 else list(reversed(settings))
        for name in names:
            for condition in (CONDITIONS if r % 2 == 0 else reversed(CONDITIONS)):
                out = root / f"{name.replace('=', '')}-{condition}-{r}"
                seconds = _run(run_args, out, settings[name], condition == "loaded", args.load_timeout)
                times[name, condition].append(seconds)
                print(f"  {name}, {condition}: {seconds:.1f} s", flush=True)
    median = {key: statistics.median(values) for key, values in times.items()}
    fastest = min(median[name, "idle"] for name in settings)
    rows = []
    for name in settings:
        idle, loaded = (records_under(root / f"{name.replace('=', '')}-{c}-0") for c in CONDITIONS)
        threads = sorted({str(rec.get("threads")) for rec in [*idle.values(), *loaded.values()]})
        same, total = same_numbers(idle, loaded)
        rows.append([name, ",".join(threads), f"{median[name, 'idle']:.1f}", f"{median[name, 'loaded']:.1f}",
                     f"{median[name, 'loaded'] / median[name, 'idle']:.2f}x",
                     f"{median[name, 'idle'] / fastest:.2f}x", f"{same} of {total}"])
    print_table(["setting", "threads in records", "idle s", "one core busy s", "busy/idle", "idle/fastest idle",
                 "same metrics idle and busy"], rows)
    ratio = median["default", "loaded"] / median["default", "idle"]
    print(LOAD_LINE.format(ratio, median["default", "idle"] / fastest), flush=True)
    return ratio
