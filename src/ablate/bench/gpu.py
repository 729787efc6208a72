"""``python -m ablate.bench --gpu``: everything the first GPU should measure, in one run (≤ ~10 minutes).

Each part runs ``python -m ablate trainer=gpu ...`` processes (``budget=quick``, progress bar and report
off) while a thread samples ``nvidia-smi`` every half second (GPU utilisation, memory used), and reads
the records they write:

1. **vectorized seeds**: the seeds bench's MLP (``--seeds-model``) as one vectorized job of K = 8, 32,
   128 members (``--gpu-k``) against ``--gpu-separate`` seeds trained one after another in one process
   (``vectorize=false``): member-steps per second of training, GPU utilisation and memory;
2. **precision**: a ResNet (``model=resnet norm=batch``) at ``trainer.precision=32`` against
   ``bf16-mixed``: training samples/s and test accuracy;
3. **compile**: the same ResNet with ``compile=true`` against eager: wall time (compiling included)
   and training samples/s;
4. **full budget**: ``+experiment=<--gpu-experiment> budget=full`` for at most ``--gpu-full-timeout``
   seconds: the runs it finished in that time (the catalogue's ``full`` budget, one experiment);
5. **DDP**: ``trainer=ddp`` on one against two devices (where there are two): samples/s.

A part the machine cannot run (no CUDA device; one device for DDP) prints ``SKIPPED (<reason>)``; a
part that fails prints ``FAILED`` with its error and the others still run. The last line is
``gpu: N parts measured, N skipped, N failed``.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

from ablate.bench.common import policy_env, print_table, python_m, records_under
from ablate.bench.seeds import SEEDS_MODELS

GPU_LINE = "gpu: {} parts measured, {} skipped, {} failed"
RESNET = ("model=resnet", "norm=batch")


class GpuMonitor:
    """Samples ``nvidia-smi`` (utilisation %, memory used MiB, summed over the GPUs) every ``every`` s
    while the block runs; ``summary()`` is the mean utilisation and the peak memory, or ``n/a``."""

    def __init__(self, every: float = 0.5):
        self.every, self.samples, self._stop = every, [], threading.Event()
        self._smi = shutil.which("nvidia-smi")

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            try:
                out = subprocess.run([self._smi, "--query-gpu=utilization.gpu,memory.used",
                                      "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5).stdout
                rows = [[float(x) for x in line.split(",")] for line in out.strip().splitlines()]
                self.samples.append((sum(r[0] for r in rows) / len(rows), sum(r[1] for r in rows)))
            except (OSError, ValueError, ZeroDivisionError, subprocess.SubprocessError):
                pass

    def __enter__(self) -> "GpuMonitor":
        if self._smi:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._smi:
            self._thread.join()

    def summary(self) -> tuple[str, str]:
        if not self.samples:
            return "n/a", "n/a"
        return f"{statistics.mean(u for u, _ in self.samples):.0f}%", f"{max(m for _, m in self.samples):.0f} MiB"


def _gpu_run(args, overrides: list[str], out: Path) -> dict:
    """One ``python -m ablate trainer=gpu`` process (``--gpu-trainer``, ``--gpu-budget``): wall time,
    records, GPU utilisation and memory, samples, member-steps, and training seconds (a vectorized
    job's members share theirs) in all and after each job's first epoch (warm-up: cuDNN's search,
    compiling), with the share of the training that came after it."""
    trainer = [] if any(o.startswith("trainer=") for o in overrides) else [f"trainer={args.gpu_trainer}"]
    command = [*trainer, f"budget={args.gpu_budget}", "budget.progress_bar=false", "report=false", *overrides,
               f"hydra.run.dir={out}", f"hydra.sweep.dir={out}"]
    with GpuMonitor() as monitor:
        wall = python_m("ablate", command, env=policy_env(), timeout=args.gpu_timeout)
    records = records_under(out)
    jobs: dict = {}
    for i, record in enumerate(records.values()):
        jobs[(record.get("vectorized") or {}).get("job", i)] = record["probes"]["throughput"]
    epochs = min(len(t["epoch_seconds"]) for t in jobs.values())
    samples = sum(r["probes"]["throughput"]["samples"] for r in records.values())
    steps = sum(r["history"][-1]["step"] for r in records.values() if r["history"])
    util, memory = monitor.summary()
    return {"wall": wall, "records": records, "train_s": sum(t["seconds"] for t in jobs.values()),
            "steady_s": sum(t["seconds"] - t["epoch_seconds"][0] for t in jobs.values()) if epochs > 1 else 0.0,
            "steady_share": (epochs - 1) / epochs if epochs else 0.0, "samples": samples,
            "member_steps": steps, "util": util, "memory": memory,
            "test_acc": statistics.mean(r["metrics"].get("test/acc", float("nan")) for r in records.values())}


def _rates(run: dict, quantity: float) -> tuple[float, float]:
    """``quantity`` per training second of ``run``: in all, and after the first epoch (nan with one)."""
    steady = quantity * run["steady_share"] / run["steady_s"] if run["steady_s"] > 0 else float("nan")
    return quantity / run["train_s"], steady


def _seeds(n: int) -> str:
    return "[" + ",".join(map(str, range(n))) + "]"


def vectorized_part(args, root: Path) -> None:
    model = SEEDS_MODELS[args.seeds_model]
    separate = _gpu_run(args, [*model, f"seeds={_seeds(args.gpu_separate)}", "vectorize=false"], root / "separate")
    base, base_steady = _rates(separate, separate["member_steps"])
    rows = [[f"{args.gpu_separate} one by one", f"{base:,.0f}", f"{base_steady:,.0f}", "1.00", separate["util"],
             separate["memory"]]]
    for k in args.gpu_k:
        run = _gpu_run(args, [*model, f"seeds={_seeds(k)}"], root / f"vectorized-{k}")
        rate, steady = _rates(run, run["member_steps"])
        rows.append([f"K={k} vectorized", f"{rate:,.0f}", f"{steady:,.0f}", f"{rate / base:.2f}", run["util"],
                     run["memory"]])
    print_table(["seeds", "member-steps/s (training)", "after epoch 1", "speed-up", "GPU util", "GPU memory peak"],
                rows)


def _pair(args, root: Path, variants: dict[str, list[str]], extra: list[str] | None = None) -> None:
    rows = []
    for name, overrides in variants.items():
        run = _gpu_run(args, [*(extra or []), *overrides], root / re.sub(r"[^\w.-]+", "-", name))
        rate, steady = _rates(run, run["samples"])
        rows.append([name, f"{run['wall']:.1f}", f"{rate:,.0f}", f"{steady:,.0f}", f"{run['test_acc']:.4f}", run["util"],
                     run["memory"]])
    print_table(["run", "wall s", "training samples/s", "after epoch 1", "test/acc", "GPU util", "GPU memory peak"],
                rows)


def precision_part(args, root: Path) -> None:
    _pair(args, root, {"precision 32": ["trainer.precision=32"], "bf16-mixed": ["trainer.precision=bf16-mixed"]},
          list(RESNET))


def compile_part(args, root: Path) -> None:
    _pair(args, root, {"eager": ["compile=false"], "compile": ["compile=true"]}, list(RESNET))


def full_part(args, root: Path) -> None:
    out = root / "full"
    command = [f"+experiment={args.gpu_experiment}", "budget=full", f"trainer={args.gpu_trainer}",
               "budget.progress_bar=false",
               "report=false", f"hydra.sweep.dir={out}"]
    try:
        wall, finished = python_m("ablate", command, env=policy_env(), timeout=args.gpu_full_timeout), "finished"
    except subprocess.TimeoutExpired:
        wall, finished = args.gpu_full_timeout, f"stopped at {args.gpu_full_timeout:.0f} s"
    done = [r for r in records_under(out).values() if r["status"] == "ok"]
    mean = statistics.mean(r["wall_time_s"] for r in done) if done else float("nan")
    print_table(["experiment", "wall s", "runs ok", "mean run s", "sweep"],
                [[args.gpu_experiment, f"{wall:.0f}", len(done), f"{mean:.1f}", finished]])


def ddp_part(args, root: Path) -> None:
    _pair(args, root, {f"DDP {n} device(s)": ["trainer=ddp", f"trainer.devices={n}"] for n in (1, 2)}, list(RESNET))


def _no_cuda() -> str | None:
    return None if torch.cuda.is_available() else "no CUDA device: torch.cuda.is_available() is False"


def _under_two() -> str | None:
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return _no_cuda() or (f"{n} CUDA device: DDP on two devices needs two" if n < 2 else None)


PARTS = (("vectorized seeds", vectorized_part, _no_cuda), ("ResNet precision 32 vs bf16-mixed", precision_part, _no_cuda),
         ("compile=true vs eager", compile_part, _no_cuda), ("full budget, one experiment", full_part, _no_cuda),
         ("DDP 1 vs 2 devices", ddp_part, _under_two))


def gpu_bench(args) -> int:
    """Runs every part (see the module docstring); returns how many failed."""
    root = Path(tempfile.mkdtemp(prefix="ablate-bench-gpu-"))
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    print(f"gpu: {', '.join(names) or 'no CUDA device'}; torch {torch.__version__}", flush=True)
    counts = {"measured": 0, "skipped": 0, "failed": 0}
    for n, (title, part, unmet) in enumerate(PARTS, 1):
        reason = unmet()
        if reason:
            print(f"gpu {n}/{len(PARTS)}: {title}: SKIPPED ({reason})", flush=True)
            counts["skipped"] += 1
            continue
        print(f"gpu {n}/{len(PARTS)}: {title}", flush=True)
        try:
            part(args, root / f"part{n}")
            counts["measured"] += 1
        except Exception as e:  # noqa: BLE001 - one part failing must not stop the others
            print(f"gpu {n}/{len(PARTS)}: {title}: FAILED ({type(e).__name__}: {str(e)[-2000:]})", flush=True)
            counts["failed"] += 1
    print(GPU_LINE.format(counts["measured"], counts["skipped"], counts["failed"]), flush=True)
    return counts["failed"]
