"""``python -m ablate.bench --seeds K``: K seeds as K runs against one vectorized job.

**Seeds** (``--seeds K``). K seeds of one cell (``--seeds-model``: by default the optimizer
experiment's MLP, depth 2 width 128) as K separate in-process ``run_trial`` calls against one
vectorized ``seeds=[0..K-1]`` call, alternating which goes first, at torch's default thread count
(every core: one stacked model's larger ops use them where K small runs cannot; ``--threads 1``
measures the single-core gain). The last line is then ``vectorized speed-up for K seeds: X.XX``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from ablate.bench.common import compose

SEEDS_LINE = "vectorized speed-up for {} seeds: {:.2f}"
# the optimizer experiment's model (conf/experiment/optimizer_adam_vs_sgd.yaml): MLP depth 2, width 128
SEEDS_MODELS = {"mlp": ["model=mlp", "model.depth=2", "model.width=128"],
                "mlp-default": ["model=mlp"],
                "cnn": ["model=cnn"],
                "resnet": ["model=resnet", "norm=batch"]}


def seeds_bench(args) -> float:
    """K seeds of one cell both ways, in this process: K separate runs (``seed=k``) against one
    vectorized run (``seeds=[0..K-1]``), whole ``run_trial`` calls (what a sweep pays per cell:
    building, fit, validation, checkpoints, test, records), alternating which goes first."""
    from ablate.results import read_record
    from ablate.run import run_trial

    k = args.seeds
    overrides = ["budget=quick", "budget.progress_bar=false", f"trainer.max_epochs={args.epochs}",
                 *SEEDS_MODELS[args.seeds_model], *args.override]
    if args.samples:
        overrides.append(f"budget.num_samples={args.samples}")
    seeds = "[" + ",".join(str(s) for s in range(k)) + "]"
    root = Path(tempfile.mkdtemp(prefix="ablate-bench-seeds-"))
    runs = iter(range(10**6))

    def separate() -> float:
        t0 = time.perf_counter()
        for seed in range(k):
            run_trial(compose([*overrides, f"seed={seed}"], root / f"separate-{next(runs)}"))
        return time.perf_counter() - t0

    def vectorized() -> float:
        t0 = time.perf_counter()
        run_trial(compose([*overrides, f"seeds={seeds}"], root / f"vectorized-{next(runs)}"))
        return time.perf_counter() - t0

    cfg = compose(overrides, root / "probe")
    print(f"seeds: {k} seeds of model={args.seeds_model} ({' '.join(SEEDS_MODELS[args.seeds_model])}), "
          f"data={cfg.data.source._target_.rsplit('.', 1)[-1]}, batch {cfg.data.batch_size}, "
          f"{cfg.trainer.max_epochs} epochs, torch threads {torch.get_num_threads()}: {k} separate in-process "
          f"runs against one run of seeds={seeds}", flush=True)
    run_trial(compose([*overrides, "trainer.max_epochs=1", "seed=0"], root / "warm-separate"))
    run_trial(compose([*overrides, "trainer.max_epochs=1", f"seeds={seeds}"], root / "warm-vectorized"))
    times: dict[str, list[float]] = {"separate": [], "vectorized": []}
    for r in range(args.repeats):
        for name in (("separate", "vectorized") if r % 2 == 0 else ("vectorized", "separate")):
            times[name].append(separate() if name == "separate" else vectorized())
        print(f"  repeat {r + 1}/{args.repeats}: separate {times['separate'][-1]:.2f} s, vectorized "
              f"{times['vectorized'][-1]:.2f} s, speed-up {times['separate'][-1] / times['vectorized'][-1]:.2f}",
              flush=True)
    record = read_record(next(root.glob("vectorized-*/seed=0")))
    steps = record["history"][-1]["step"] if record["history"] else 1
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:10s}: {median:.2f} s for {k} seeds x {steps} steps = {median / (k * steps) * 1e3:.3f} ms "
              f"per member-step  [median of {len(values)}]")
    speedups = sorted(s / v for s, v in zip(times["separate"], times["vectorized"]))
    print(f"speed-up: median of {len(speedups)} paired ratios, range {speedups[0]:.2f}-{speedups[-1]:.2f}")
    return statistics.median(speedups)

