"""Hand-made run records for the report tests (``from tests.report.records import make_record, ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ablate.results import validate_record, write_record


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def _override_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def make_record(run_id: str, factors: dict[str, Any], seed: int, metrics: dict[str, float], *,
                status: str = "ok", error: str | None = None, claim: dict | None = None,
                history: list[dict] | None = None, probes: dict | None = None,
                experiment: str = "toy", overrides_only: bool = False, wandb: dict | None = None,
                budget: dict | None = None, num_classes: int | None = 10, choices: dict | None = None) -> dict:
    """A schema-valid run record. ``factors`` are dotted keys; they land in the resolved config
    (typed) and in the overrides (as command-line text), like a Hydra multirun job's. ``budget``
    (e.g. ``{"seeds": 3, "max_seeds": 8}``) goes into ``config.budget``: the seed plan the report
    replays; ``choices`` into ``record["choices"]`` (``{"budget": "quick"}``)."""
    overrides = {k: _override_text(v) for k, v in factors.items()}
    overrides["seed"] = str(seed)
    config = {} if overrides_only else _nest(factors)
    config["seed"] = seed
    if budget is not None:
        config["budget"] = dict(budget)
    if status != "ok" and error is None:
        error = "nan loss" if status == "diverged" else "RuntimeError: boom"
    record = {
        "schema": 1, "run_id": run_id, "status": status, "error": error, "experiment": experiment,
        "seed": seed, "overrides": overrides, "config": config, "claim": claim,
        "metrics": dict(metrics), "history": history or [], "probes": probes or {}, "params": 1000,
        "wall_time_s": 1.5, "samples_per_s": 1000.0, "epochs_completed": len(history or []),
        "batch_size": {"per_rank": 32, "world_size": 1, "effective": 32},
        "versions": {"python": "3.11", "torch": "x", "lightning": "x", "ablate": "0.1.0", "git_commit": None},
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:02+00:00",
    }
    if num_classes is not None:
        record["num_classes"] = num_classes
    if choices is not None:
        record["choices"] = dict(choices)
    if wandb is not None:
        record["wandb"] = wandb
    return validate_record(record)


def write_sweep(root: Path, records: list[dict]) -> Path:
    for record in records:
        write_record(root / record["run_id"], record)
    return root


RESIDUAL_CLAIM = {
    "name": "residual_depth",
    "statement": "Residual connections let very deep networks train; plain networks degrade as depth grows.",
    "plot": {"x": "model.depth", "metric": "train/loss", "logx": True, "logy": False},
    "checks": [{
        "name": "residual has lower train loss than plain at the deepest depth",
        "metric": "train/loss", "goal": "min", "factor": "model.residual",
        "treatment": True, "baseline": False, "where": {"model.depth": "max"},
    }],
}

NOISE = [0.004, -0.008, 0.0, 0.006, -0.002]  # zero-mean, sd 0.0055: "small noise" over 5 seeds

TOY_CHECK = {"name": "a < b", "metric": "train/loss", "goal": "min", "factor": "model.a",
             "treatment": True, "baseline": False}


def toy_claim(**check: Any) -> dict:
    """A one-check claim on ``model.a`` true (treatment) vs false (baseline), ``check`` overriding."""
    return {"name": "toy", "statement": "a beats b", "checks": [dict(TOY_CHECK, **check)]}


def two_level_records(treat_mean: float, base_mean: float, *, claim: dict | None = None,
                      noise=NOISE, base_noise=None, metric: str = "train/loss", **kwargs) -> list[dict]:
    """``model.a`` true (``treat_mean`` + noise) vs false (``base_mean`` + noise), one run per seed."""
    base_noise = noise if base_noise is None else base_noise
    claim = claim or toy_claim(metric=metric)
    records = []
    for seed in range(len(noise)):
        records.append(make_record(f"t{seed}", {"model.a": True}, seed,
                                   {metric: treat_mean + noise[seed]}, claim=claim, **kwargs))
        records.append(make_record(f"b{seed}", {"model.a": False}, seed,
                                   {metric: base_mean + base_noise[seed]}, claim=claim, **kwargs))
    return records


def history(final: float, epochs: int = 4) -> list[dict]:
    return [{"epoch": e, "train/loss": final * (epochs - e + 0.5), "val/acc": 0.5 + 0.1 * e} for e in range(epochs)]


def residual_sweep_records() -> list[dict]:
    """depth {2, 8, 32} × residual {true, false} × 3 seeds, plus a diverged and a failed run.
    At depth 32 residual is far better; at depth 2 the two are alike."""
    records = []
    rng = np.random.default_rng(0)
    for depth in (2, 8, 32):
        for residual in (True, False):
            for seed in range(3):
                plain_penalty = 0.0 if residual else {2: 0.0, 8: 0.4, 32: 1.5}[depth]
                loss = 0.2 + plain_penalty + float(rng.normal(0, 0.01))
                jitter = float(rng.normal(0, 0.05))  # seed-to-seed spread in log10 units
                grads = [10.0 ** (-(depth - i) / (4 if residual else 1.5) + jitter) for i in range(depth)]
                records.append(make_record(
                    f"d{depth}-{'res' if residual else 'plain'}-s{seed}",
                    {"model.depth": depth, "model.residual": residual}, seed,
                    {"train/loss": loss, "val/acc": 1 - loss / 3, "grad/first_layer": grads[0]},
                    claim=RESIDUAL_CLAIM, history=history(loss),
                    probes={"grad_norm": {"layers": [f"net.{i}" for i in range(depth)], "init": grads,
                                          "final": [g * 0.5 for g in grads]}},
                    experiment="residual_depth"))
    records.append(make_record("d32-plain-s3", {"model.depth": 32, "model.residual": False}, 3,
                               {"train/loss": float("nan")}, status="diverged",
                               error="loss became nan at epoch 2 | step 40", claim=RESIDUAL_CLAIM,
                               experiment="residual_depth"))
    records.append(make_record("d8-res-s3", {"model.depth": 8, "model.residual": True}, 3, {},
                               status="failed", error="RuntimeError: CUDA out of memory\nTraceback ...",
                               claim=RESIDUAL_CLAIM, experiment="residual_depth"))
    return records


def optimizer_records(means: dict[tuple[str, float], float], seeds=range(4), *, claim: dict | None = None,
                      metric: str = "val/loss", noise=NOISE, status: dict | None = None, **kwargs) -> list[dict]:
    """``optimizer`` (a config group: the level is the group choice) × ``optimizer.lr``, one run per
    seed; ``means[(opt, lr)]`` is the cell's mean (None: every seed diverges), ``status[(opt, lr, seed)]``
    overrides one run's status."""
    records = []
    extra_choices = kwargs.pop("choices", None) or {}
    for (opt, lr), mean in means.items():
        for seed in seeds:
            st = (status or {}).get((opt, lr, seed), "ok" if mean is not None else "diverged")
            value = mean + noise[seed % len(noise)] if st == "ok" and mean is not None else None
            metrics = {m: value for m in ([metric] if isinstance(metric, str) else metric)}
            r = make_record(f"{opt}-{lr}-{seed}", {"optimizer.lr": lr}, seed, metrics, claim=claim,
                            status=st, choices={**extra_choices, "optimizer": opt}, **kwargs)
            r["config"]["optimizer"]["_target_"] = f"torch.optim.{opt}"
            r["overrides"]["optimizer"] = opt
            records.append(r)
    return records
