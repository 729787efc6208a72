"""``python -m ablate.bench.phases [overrides ...]``: where one command's time goes, phase by phase.

Runs ``python -m ablate <overrides>`` (e.g. ``+experiment=learning_rate budget=smoke
hydra.sweep.dir=/tmp/x``) in this process with a counter around each phase of a sweep and of a job,
and prints each phase's calls, CPU seconds (this process's, :func:`time.process_time`), wall seconds
and share of the process's CPU time. CPU time is what a busy machine does not inflate much (one torch
thread, the project's default), so two runs on a shared machine compare where wall times would not.

Phases are inclusive (a job's ``fit`` holds its validation loops and checkpoints): the table indents
each under the phase that holds it. ``imports`` is the process's CPU time before Hydra starts
(interpreter, torch, Lightning, ablate.run: imported up front here, in the first job otherwise);
``the rest`` is the whole process less the sweep and the report (Hydra composing the primary config,
its callbacks). Nothing here changes what a run computes.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import sys
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence


@dataclass
class Phase:
    name: str
    depth: int = 0               # indentation in the table: which phase holds it
    calls: int = 0
    cpu: float = 0.0
    wall: float = 0.0
    _active: int = field(default=0, repr=False)   # a recursive call is counted once, at its outermost


# (phase name, depth, "module:attribute path" of the callable wrapped). Order = the table's order.
PHASES: tuple[tuple[str, int, str], ...] = (
    ("sweep (every look, every job)", 0, "hydra_plugins.ablate_sweeper.ablate_sweeper:AblateSweeper.sweep"),
    ("sweeper: compose (check, packing)", 1, "hydra_plugins.ablate_sweeper.ablate_sweeper:AblateSweeper.compose"),
    ("sweeper: check", 1, "hydra_plugins.ablate_sweeper.ablate_sweeper:AblateSweeper.check"),
    ("sweeper: read records", 1, "hydra_plugins.ablate_sweeper.ablate_sweeper:_read_records"),
    ("sweeper: judge between looks", 1, "hydra_plugins.ablate_sweeper.ablate_sweeper:_judge"),
    ("compose (every Hydra sweep compose)", 1, "hydra._internal.config_loader_impl:ConfigLoaderImpl.load_sweep_config"),
    ("hydra job (its folder, .hydra/*.yaml, logging)", 1, "hydra._internal.core_plugins.basic_launcher:run_job"),
    ("job (ablate.run.run_job)", 2, "ablate.run:run_job"),
    ("validate", 3, "ablate.run:_check"),
    ("member configs", 3, "ablate.run:member_config"),
    ("member configs (one copy a job)", 3, "ablate.run:_MemberConfigs.__init__"),
    ("member folders", 3, "ablate.run:member_folders"),
    ("build (data + model)", 3, "ablate.run:build"),
    ("MNIST-1D", 4, "ablate.data.sources:mnist1d"),
    ("digits", 4, "ablate.data.sources:digits"),
    ("DataModule split", 4, "ablate.data.datamodule:DataModule.__init__"),
    ("logger(s)", 3, "ablate.run:make_logger"),
    ("member loggers", 3, "ablate.run:member_logger"),
    ("Trainer()", 3, "lightning.pytorch.trainer.trainer:Trainer.__init__"),
    ("fit", 3, "lightning.pytorch.trainer.trainer:Trainer.fit"),
    ("training epochs", 4, "lightning.pytorch.loops.training_epoch_loop:_TrainingEpochLoop.run"),
    ("training_step calls", 5, "ablate.module:AblationModule.training_step"),
    ("validation and test loops (in the epochs, in test)", 4, "lightning.pytorch.loops.evaluation_loop:_EvaluationLoop.run"),
    ("epoch-end callbacks (probes, checkpoint)", 4, "lightning.pytorch.loops.fit_loop:_FitLoop.on_advance_end"),
    ("checkpoint save", 5, "lightning.pytorch.trainer.trainer:Trainer.save_checkpoint"),
    ("CSV logger save", 5, "lightning.pytorch.loggers.csv_logs:CSVLogger.save"),
    ("test", 3, "lightning.pytorch.trainer.trainer:Trainer.test"),
    ("make record", 3, "ablate.run:make_record"),
    ("write record", 3, "ablate.run:write"),
    ("report", 0, "ablate.report.build:build_report"),
)


def _resolve(target: str):
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *parents, attribute = path.split(".")
    for name in parents:
        owner = getattr(owner, name)
    return owner, attribute


def _counted(phase: Phase, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if phase._active:
            return fn(*args, **kwargs)
        phase._active += 1
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phase.cpu += time.process_time() - cpu
            phase.wall += time.perf_counter() - wall
            phase.calls += 1
            phase._active -= 1
    return wrapper


@contextlib.contextmanager
def counted(phases: Sequence[tuple[str, int, str]] = PHASES) -> Iterator[list[Phase]]:
    """Counters around ``phases`` for the block (patched back when it ends)."""
    found, patched = [], []
    try:
        for name, depth, target in phases:
            try:
                owner, attribute = _resolve(target)
                original = inspect.getattr_static(owner, attribute)
            except (ImportError, AttributeError):
                continue
            phase = Phase(name, depth)
            own = not isinstance(owner, type) or attribute in owner.__dict__   # else inherited: removed after
            function = original.__func__ if isinstance(original, staticmethod) else original
            wrapped = _counted(phase, function)
            setattr(owner, attribute, staticmethod(wrapped) if isinstance(original, staticmethod) else wrapped)
            patched.append((owner, attribute, original if own else None))
            found.append(phase)
        yield found
    finally:
        for owner, attribute, original in reversed(patched):
            if original is None:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)


def table(phases: Sequence[Phase], start_cpu: float, total_cpu: float, total_wall: float) -> list[str]:
    top = sum(p.cpu for p in phases if p.depth == 0)
    rows = [("imports (interpreter, torch, Lightning, ablate)", 0, 1, start_cpu, float("nan")),
            *[(p.name, p.depth, p.calls, p.cpu, p.wall) for p in phases if p.calls],
            ("the rest (primary config, Hydra's set-up)", 0, 1, total_cpu - start_cpu - top, float("nan")),
            ("whole process", 0, 1, total_cpu, total_wall)]
    width = max(len(name) + 2 * depth for name, depth, *_ in rows)
    lines = [f"  {'phase'.ljust(width)}  {'calls':>6}  {'CPU s':>8}  {'share':>6}  {'wall s':>8}"]
    for name, depth, calls, cpu, wall in rows:
        share = f"{100 * cpu / total_cpu:5.1f}%" if total_cpu else ""
        wall_text = "" if wall != wall else f"{wall:8.2f}"
        lines.append(f"  {('  ' * depth + name).ljust(width)}  {calls:>6}  {cpu:8.2f}  {share:>6}  {wall_text:>8}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    wall0 = time.perf_counter()
    import ablate.__main__ as entry
    import ablate.run  # noqa: F401  (what the first job would import)
    from hydra.core.plugins import Plugins

    Plugins.instance()   # the plugin scan executes the sweeper's and launchers' modules again: count after it

    start_cpu = time.process_time()

    code = 0
    with counted() as phases:
        sys.argv = ["ablate", *argv]
        try:
            entry.main()
        except SystemExit as e:
            code = int(e.code or 0) if not isinstance(e.code, str) else 1
    total_cpu, total_wall = time.process_time(), time.perf_counter() - wall0
    print(f"phases of python -m ablate {' '.join(argv)}", flush=True)
    print("\n".join(table(phases, start_cpu, total_cpu, total_wall)), flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
