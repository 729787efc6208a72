"""The command line of ``python -m ablate.bench``: one benchmark per run, picked by its flag."""

from __future__ import annotations

import argparse

import torch

import ablate.bench as package
from ablate.bench.catalogue import catalogue_bench
from ablate.bench.fit import RATIO_LINE, fit_bench
from ablate.bench.gpu import gpu_bench
from ablate.bench.load import LOAD_ARGS, load_bench
from ablate.bench.seeds import SEEDS_LINE, SEEDS_MODELS, seeds_bench
from ablate.bench.sweep import SWEEP_GRID, sweep_bench


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(prog="python -m ablate.bench", description=package.__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats of each contender (default 9; 3 with --seeds)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per run (default 20, budget=quick's)")
    parser.add_argument("--samples", type=int, default=None, help="budget.num_samples (default: budget=quick's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for both contenders (default 1; with --seeds, torch's "
                             "default: every core, threads=null; 0 keeps torch's default)")
    parser.add_argument("--progress-bar", action="store_true", help="leave ablate's progress bar on")
    parser.add_argument("--bare", action="store_true",
                        help="raw loop without the per-step divergence check, CSV row and checkpoint")
    parser.add_argument("--whole-runs", action="store_true",
                        help="time whole runs in turn instead of epochs in lockstep (noisier on a shared machine)")
    parser.add_argument("--floor", action="store_true",
                        help="also time a minimal LightningModule against the bare loop: Lightning's own floor")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override for both contenders (repeatable)")
    parser.add_argument("--seeds", type=int, default=None, metavar="K",
                        help="time K seeds of a cell as K separate runs against one vectorized run instead")
    parser.add_argument("--seeds-model", choices=sorted(SEEDS_MODELS), default="mlp",
                        help="the model of --seeds (default mlp: the optimizer experiment's, depth 2 width 128)")
    parser.add_argument("--sweep", action="store_true", help="also time a sweep: basic launcher vs joblib")
    parser.add_argument("--sweep-repeats", type=int, default=1)
    parser.add_argument("--sweep-skip-default-threads", action="store_true",
                        help="skip the basic launcher with torch's default threads (slow on a busy machine)")
    parser.add_argument("--sweep-grid", nargs="+", default=None, metavar="OVERRIDE",
                        help=f"the sweep's overrides (default: {' '.join(SWEEP_GRID)})")
    mode = parser.add_argument_group("the thread policy, the catalogue, the GPU (one of these per run)")
    mode.add_argument("--load", action="store_true",
                      help="idle against one core busy, for the default and fixed thread counts (ablate.bench.load)")
    mode.add_argument("--load-args", nargs="+", default=None, metavar="OVERRIDE",
                      help=f"the run of --load (default: {' '.join(LOAD_ARGS)})")
    mode.add_argument("--load-threads", type=int, nargs="+", default=None, metavar="N",
                      help="the fixed thread counts of --load (default: 1 and every core)")
    mode.add_argument("--load-repeats", type=int, default=1)
    mode.add_argument("--load-timeout", type=float, default=1800, help="seconds one --load run may take")
    mode.add_argument("--catalogue", action="store_true",
                      help="the catalogue with --jobs 1 against its default (ablate.bench.catalogue)")
    mode.add_argument("--budget", default="quick", help="the budget of --catalogue (default quick)")
    mode.add_argument("--only", default=None, help="--catalogue: comma-separated experiments (default: all)")
    mode.add_argument("--catalogue-args", nargs="+", default=[], metavar="OVERRIDE",
                      help="--catalogue: further overrides for every experiment")
    mode.add_argument("--catalogue-timeout", type=float, default=7200, help="seconds one catalogue run may take")
    mode.add_argument("--gpu", action="store_true", help="every GPU measurement at once, a part SKIPPED where the "
                      "machine cannot run it (ablate.bench.gpu)")
    mode.add_argument("--gpu-k", type=int, nargs="+", default=[8, 32, 128], metavar="K",
                      help="--gpu: vectorized seeds per job (default 8 32 128)")
    mode.add_argument("--gpu-separate", type=int, default=8, help="--gpu: seeds trained one by one (default 8)")
    mode.add_argument("--gpu-experiment", default="residual_depth", help="--gpu: the experiment at budget=full")
    mode.add_argument("--gpu-full-timeout", type=float, default=180,
                      help="--gpu: seconds the full-budget experiment may run (default 180)")
    mode.add_argument("--gpu-timeout", type=float, default=300, help="--gpu: seconds one other run may take")
    mode.add_argument("--gpu-trainer", default="gpu", help="--gpu: the trainer config of its runs (default gpu)")
    mode.add_argument("--gpu-budget", default="quick", help="--gpu: the budget of its runs but the full one "
                      "(default quick)")
    args = parser.parse_args(argv)
    if args.gpu:
        return gpu_bench(args)
    if args.load:
        return load_bench(args)
    if args.catalogue:
        return catalogue_bench(args)
    if args.repeats is None:
        args.repeats = 3 if args.seeds else 9
    if args.threads is None:
        # one stacked model's larger ops use every core where K small runs cannot: measured both ways
        # (2-core CPU, 8 seeds, 2026-12-06: 2.24 at one thread, 2.68 at two), the default is what runs
        args.threads = 0 if args.seeds else 1
    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        args.threads = None
    # ablate's runs set torch's threads from their config (conf/config.yaml: 1): the same count for them
    args.override.append(f"threads={args.threads or 'null'}")

    if args.seeds:
        speedup = seeds_bench(args)
        print(SEEDS_LINE.format(args.seeds, speedup), flush=True)
        return speedup
    ratio = fit_bench(args)
    if args.sweep:
        sweep_bench(args)
    print(RATIO_LINE.format(ratio), flush=True)
    return ratio

